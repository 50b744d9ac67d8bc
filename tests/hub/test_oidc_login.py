"""Single sign-on for real: ``hdh up --oidc-...`` against a real OpenID Connect provider.

The provider is the certified ``oidc-provider`` (``scripts/oidc-provider/provider.mjs``, on
a free port of 127.0.0.1) with test accounts and a groups claim in a JSON file the tests
rewrite, as the provider's administrator would. A browser-like httpx client goes through
the hub's "Sign in" link, the provider's login and consent forms and back. Checked: a
researcher's account created with the mapped role, who opens her project after a permit;
a reviewer landing on the review page; a person in an unmapped group and one in groups of
two roles refused with the reason; a disabled account refused; a role changed at the
provider applied at the next refresh (before a spawn) and a person taken out of every
group refused at the next refresh; logout ending the hub session and, through the provider's
end-session endpoint, the provider's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.hdh_up import free_port, start_up, stop_up
from tests.hub.test_embedded_hub import Up, _problem, follow, spawn, wait_ready
from tests.waiting import wait_for

PROVIDER_DIR = Path(__file__).resolve().parents[2] / "scripts" / "oidc-provider"
CLIENT_ID = "hdh-hub"
CLIENT_SECRET = "test-client-secret-0123456789"  # noqa: S105 - the test provider's


def _provider_problem() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run scripts/setup-env"
    return _problem()


pytestmark = pytest.mark.skipif(_provider_problem() is not None, reason=str(_provider_problem()))

ACCOUNTS = {
    "rita": {"password": "rita-pw-123", "groups": ["hdh-researchers", "staff"]},
    "victor": {"password": "victor-pw-123", "groups": ["hdh-reviewers"]},
    "mallory": {"password": "mallory-pw-123", "groups": ["staff"]},
    "amber": {"password": "amber-pw-123", "groups": ["hdh-researchers", "hdh-admins"]},
    "sam": {"password": "sam-pw-123", "groups": ["hdh-researchers"]},
    "Bad.Name": {"password": "bad-pw-123", "groups": ["hdh-researchers"]},
}


@dataclass
class Provider:
    proc: subprocess.Popen[str]
    issuer: str
    config: Path
    hub_url: str

    def set_groups(self, user: str, groups: list[str]) -> None:
        cfg = json.loads(self.config.read_text())
        cfg["accounts"][user]["groups"] = groups
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(cfg))
        tmp.replace(self.config)  # the provider reads whole files only


@dataclass
class Sso:
    up: Up
    provider: Provider


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    root = tmp_path_factory.mktemp("oidc")
    port, provider_port = free_port(), free_port()
    hub_url = f"http://127.0.0.1:{port}"
    config = root / "provider.json"
    config.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "redirect_uris": [f"{hub_url}/hub/oauth_callback"],
                        "grant_types": ["authorization_code", "refresh_token"],
                        "response_types": ["code"],
                    }
                ],
                "accounts": ACCOUNTS,
            }
        )
    )
    proc = subprocess.Popen(
        ["node", str(PROVIDER_DIR / "provider.mjs"), str(provider_port), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    issuer = f"http://127.0.0.1:{provider_port}"
    try:
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("oidc-provider ready on"):
                break
        else:
            pytest.fail(f"the OIDC provider did not start: {''.join(lines)}")
        secret = root / "client-secret"
        secret.write_text(CLIENT_SECRET + "\n")
        secret.chmod(0o600)
        data_dir = root / "hdh"
        t0 = time.monotonic()
        up_proc, up_lines = start_up(
            data_dir,
            port,
            free_port(),
            seed=7,
            stderr_file=root / "up.err",
            extra_args=(
                "--oidc-issuer", issuer,
                "--oidc-client-id", CLIENT_ID,
                "--oidc-client-secret-file", str(secret),
            ),
        )  # fmt: skip
        try:
            assert any("single sign-on through " + issuer in x for x in up_lines), up_lines
            api_url = next(
                x.split()[3].removesuffix("/api/docs")
                for x in up_lines
                if x.startswith("HDH control plane:")
            )
            creds = json.loads((data_dir / "demo-credentials.json").read_text())
            up = Up(up_proc, data_dir, hub_url, api_url, creds, time.monotonic() - t0)
            yield Sso(up, Provider(proc, issuer, config, hub_url))
        finally:
            stop_up(up_proc)
    finally:
        proc.terminate()
        proc.wait(10)


def sso_login(
    sso: Sso, user: str, password: str | None = None, client: httpx.Client | None = None
) -> tuple[httpx.Client, httpx.Response]:
    """Through the hub's sign-in link, the provider's login and consent forms, and back."""
    c = client or httpx.Client(timeout=60, follow_redirects=True)
    r = c.get(f"{sso.up.url}/hub/oauth_login")
    for _ in range(4):
        if r.url.path.startswith("/interaction/") and 'name="password"' in r.text:
            pw = password or ACCOUNTS[user]["password"]
            r = c.post(f"{r.url}/login", data={"username": user, "password": pw})
        elif r.url.path.startswith("/interaction/") and "/confirm" in r.text:
            r = c.post(f"{r.url}/confirm")
        else:
            break
    return c, r


def test_the_hub_offers_single_sign_on_only(sso: Sso) -> None:
    page = httpx.get(f"{sso.up.url}/hub/login", timeout=30)
    assert page.status_code == 200
    assert "/hub/oauth_login" in page.text and "single sign-on" in page.text
    assert 'name="password"' not in page.text  # no local password form any more
    # the generated config names the secret's file, never the secret
    generated = (sso.up.data_dir / "jupyterhub" / "jupyterhub_config.py").read_text()
    assert CLIENT_SECRET not in generated and "client_secret_file" in generated
    key = sso.up.data_dir / "jupyterhub" / "auth_state_key"
    assert oct(key.stat().st_mode & 0o777) == "0o600" and key.read_text() not in generated


def test_a_researcher_is_created_with_the_mapped_role_and_opens_her_project(sso: Sso) -> None:
    up = sso.up
    browser, page = sso_login(sso, "rita")
    try:
        assert page.status_code == 200, page.text[:500]
        assert page.url.path == "/services/hdh/ui/", page.url
        assert "Your projects" in page.text and "rita" in page.text
        users = {u["name"]: u for u in json.loads(up.hdh("user", "list", "--json").stdout)}
        assert users["rita"]["role"] == "researcher" and not users["rita"]["password"]
        events = up.audit()
        assert any(e["action"] == "user.create" and e["target"] == "user:rita" for e in events), (
            events[-5:]
        )
        login = [e for e in events if e["action"] == "auth.login" and e["actor"] == "rita"]
        assert login and login[-1]["details"]["via"] == "oidc"
        assert login[-1]["details"]["role"] == "researcher"
        # a member with a permit opens the project's JupyterLab through the guard
        for args in (
            ("project", "add-member", "demo", "rita"),
            ("permit", "grant", "demo", "--member", "rita", "--dataset", "demo-snds",
             "--days", "1"),
        ):  # fmt: skip
            done = up.hdh(*args)
            assert done.returncode == 0, done.stderr
        with up.api("rita") as api:
            r = spawn(api, "rita", "demo")
            assert r.status_code in (201, 202), r.text
            wait_ready(api, "rita", "demo")
            lab = follow(browser, f"{up.url}/user/rita/demo/lab", limit=20)
            assert lab.status_code == 200 and "<html" in lab.text.lower(), lab.text[:300]
            api.delete("/users/rita/servers/demo")
            wait_for(lambda: "demo" not in api.get("/users/rita").json()["servers"], "rita's stop")
    finally:
        browser.close()


def test_a_reviewer_lands_on_the_review_page(sso: Sso) -> None:
    browser, page = sso_login(sso, "victor")
    try:
        assert page.status_code == 200 and page.url.path == "/services/hdh/ui/", page.url
        assert 'href="/services/hdh/ui/egress/"' in page.text, page.text[:2000]
        review = browser.get(f"{sso.up.url}/services/hdh/ui/egress/")
        assert review.status_code == 200, review.text[:300]
        users = {u["name"]: u for u in json.loads(sso.up.hdh("user", "list", "--json").stdout)}
        assert users["victor"]["role"] == "reviewer"
    finally:
        browser.close()


def test_a_person_in_no_mapped_group_is_refused_with_the_reason(sso: Sso) -> None:
    browser, page = sso_login(sso, "mallory")
    try:
        assert page.status_code == 403, page.text[:500]
        assert "mallory may not use HDH: no group of mallory gives an HDH role" in page.text
        assert "hdh-researchers" in page.text  # which groups would do
        assert browser.get(f"{sso.up.url}/hub/home", follow_redirects=False).status_code == 302
    finally:
        browser.close()
    users = {u["name"] for u in json.loads(sso.up.hdh("user", "list", "--json").stdout)}
    assert "mallory" not in users
    failed = [e for e in sso.up.audit() if e["action"] == "auth.login_failed"]
    assert failed[-1]["target"] == "user:mallory" and failed[-1]["details"]["via"] == "oidc"


def test_groups_of_two_roles_and_a_bad_user_name_are_refused(sso: Sso) -> None:
    browser, page = sso_login(sso, "amber")
    browser.close()
    assert page.status_code == 403, page.text[:500]
    text = page.text.replace("&#39;", "'").replace("&gt;", ">")
    assert "amber's groups give several HDH roles" in text, text[:2000]
    browser, page = sso_login(sso, "Bad.Name")
    browser.close()
    assert page.status_code == 403
    assert "is not a valid HDH user name" in page.text.replace("&#39;", "'")
    users = {u["name"] for u in json.loads(sso.up.hdh("user", "list", "--json").stdout)}
    assert not users & {"amber", "Bad.Name", "bad.name"}


def test_a_disabled_account_stays_refused(sso: Sso) -> None:
    up = sso.up
    assert up.hdh("user", "disable", "victor").returncode == 0
    try:
        browser, page = sso_login(sso, "victor")
        browser.close()
        assert page.status_code == 403, page.text[:500]
        assert "victor's HDH account is disabled" in page.text.replace("&#39;", "'")
        failed = [e for e in up.audit() if e["action"] == "auth.login_failed"]
        assert failed[-1]["target"] == "user:victor"
    finally:
        assert up.hdh("user", "enable", "victor").returncode == 0


def test_a_role_changed_at_the_provider_applies_at_the_next_refresh(sso: Sso) -> None:
    up, provider = sso.up, sso.provider
    browser, page = sso_login(sso, "sam")
    try:
        assert page.status_code == 200, page.text[:300]
        # a researcher may not open the review workspace (the spawn refreshes first)
        refused = follow(browser, f"{up.url}/hub/spawn/sam/review")
        assert refused.status_code == 403, refused.text[:300]
        provider.set_groups("sam", ["hdh-reviewers"])
        opened = follow(browser, f"{up.url}/hub/spawn/sam/review", limit=20)
        assert opened.status_code == 200, opened.text[:500]
        users = {u["name"]: u for u in json.loads(up.hdh("user", "list", "--json").stdout)}
        assert users["sam"]["role"] == "reviewer"
        changed = [e for e in up.audit() if e["action"] == "user.role"]
        assert changed[-1]["target"] == "user:sam"
        assert changed[-1]["details"] == {
            "from": "researcher",
            "to": "reviewer",
            "via": "oidc",
            "issuer": provider.issuer,
        }
        with up.api("sam") as api:
            wait_for(
                lambda: (
                    api.get("/users/sam").json()["servers"].get("review", {}).get("ready")
                    or "review" not in api.get("/users/sam").json()["servers"]
                ),
                "sam's review server to settle",
                timeout=120,
            )
            api.delete("/users/sam/servers/review")
            wait_for(lambda: "review" not in api.get("/users/sam").json()["servers"], "stop")
        # taken out of every mapped group: the next refresh (here, before a spawn) refuses
        provider.set_groups("sam", ["staff"])
        again = browser.get(f"{up.url}/hub/spawn/sam/review", follow_redirects=False)
        assert again.status_code == 403 and "login again" in again.text, again.text[:300]
        with up.api("sam") as api:
            assert "review" not in api.get("/users/sam").json()["servers"]
    finally:
        browser.close()


def test_logout_ends_the_hub_session_and_the_providers(sso: Sso) -> None:
    up, provider = sso.up, sso.provider
    browser, page = sso_login(sso, "rita")
    try:
        assert page.status_code == 200
        out = browser.get(f"{up.url}/hub/logout", follow_redirects=False)
        assert out.status_code == 302, out.text[:300]
        end = httpx.URL(out.headers["location"])
        assert str(end).startswith(f"{provider.issuer}/session/end")
        assert end.params["client_id"] == CLIENT_ID
        home = browser.get(f"{up.url}/hub/home", follow_redirects=False)
        assert home.status_code == 302 and "/hub/login" in home.headers["location"]
        # the provider asks to confirm, then ends its own session
        confirm = browser.get(str(end))
        assert confirm.status_code == 200 and "<form" in confirm.text, confirm.text[:500]
        xsrf = confirm.text.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
        done = browser.post(
            f"{provider.issuer}/session/end/confirm", data={"xsrf": xsrf, "logout": "yes"}
        )
        assert done.status_code == 200, done.text[:300]
        # signing in again asks for the password again
        r = browser.get(f"{up.url}/hub/oauth_login")
        assert r.url.path.startswith("/interaction/") and 'name="password"' in r.text
    finally:
        browser.close()
    assert os.path.exists(up.data_dir / "jupyterhub" / "jupyterhub.sqlite")
