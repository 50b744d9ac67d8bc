"""Single sign-on's rules and settings without a provider (``jupyterlab_hdh/hub/oidc.py``).

The pure rules: the groups claim → one HDH role (none mapped or two roles: refused), the
username claim taken only when it already is a valid HDH user name, ``GROUP=ROLE`` maps;
the client secret's file (owner-only); discovery's one-line errors (against a real local
HTTP server); the generated hub configuration (no secret in it); ``hdh up --oidc-*``'s bad
input stopping it before anything is created. The login itself against a real provider:
``tests/hub/test_oidc_login.py``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.hub import config as hub_config
from jupyterlab_hdh.hub.oidc import (
    DEFAULT_ROLE_MAP,
    Endpoints,
    HdhOIDCAuthenticator,
    OidcConfigError,
    OidcSettings,
    Refused,
    discover,
    hdh_username,
    parse_role_map,
    read_secret_file,
    role_for_groups,
)

MAP = {"hdh-researchers": "researcher", "hdh-reviewers": "reviewer", "hdh-admins": "admin"}


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        (["hdh-researchers"], "researcher"),
        (["staff", "hdh-reviewers"], "reviewer"),
        (["hdh-admins", "hdh-admins"], "admin"),
        ("hdh-researchers", "researcher"),  # a single group given as a string
    ],
)
def test_the_mapped_group_gives_the_role(groups: object, role: str) -> None:
    assert role_for_groups(groups, MAP) == role


def test_several_groups_of_one_role_are_fine() -> None:
    two = {**MAP, "hdh-lab-a": "researcher"}
    assert role_for_groups(["hdh-lab-a", "hdh-researchers"], two) == "researcher"


@pytest.mark.parametrize("groups", [[], ["staff", "hdh"], None])
def test_no_mapped_group_is_refused_naming_the_groups_that_would_do(groups: object) -> None:
    with pytest.raises(Refused) as e:
        role_for_groups(groups, MAP, who="mallory")
    assert e.value.status_code == 403
    assert str(e.value.reason_text) == (
        "mallory may not use HDH: no group of mallory gives an HDH role"
        " (ask to be added to one of: hdh-admins, hdh-researchers, hdh-reviewers)"
    )


def test_groups_of_two_roles_are_refused_not_resolved() -> None:
    """An HDH account has one role: a researcher who is also a reviewer is not silently
    either; the provider's administrator decides."""
    with pytest.raises(Refused, match="amber's groups give several HDH roles") as e:
        role_for_groups(["hdh-researchers", "hdh-admins"], MAP, who="amber")
    assert "hdh-admins → admin, hdh-researchers → researcher" in e.value.reason_text


@pytest.mark.parametrize("claim", [{"hdh-admins": True}, [1, 2], ["hdh-admins", None], 7])
def test_a_malformed_groups_claim_is_refused(claim: object) -> None:
    with pytest.raises(Refused, match="not a list of names"):
        role_for_groups(claim, MAP)


@pytest.mark.parametrize("name", ["alice", "j.doe", "r2-d2", "a_b"])
def test_a_valid_user_name_is_taken_as_it_is(name: str) -> None:
    assert hdh_username(name) == name


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Alice", "is not a valid HDH user name"),  # never lowercased into another account
        ("alice@example.org", "is not a valid HDH user name"),
        ("1alice", "is not a valid HDH user name"),
        ("a" * 65, "is not a valid HDH user name"),
        ("", "gave no preferred_username"),
        (None, "gave no preferred_username"),
        (["alice"], "gave no preferred_username"),
    ],
)
def test_an_invalid_user_name_is_refused(value: object, message: str) -> None:
    with pytest.raises(Refused, match=message):
        hdh_username(value)


def test_role_maps_parse_and_bad_ones_say_why() -> None:
    assert parse_role_map([]) == DEFAULT_ROLE_MAP
    assert parse_role_map(["/hdh/a=researcher", " g = admin ", "g=admin"]) == {
        "/hdh/a": "researcher",
        "g": "admin",
    }
    for bad, message in [
        (["hdh-researchers"], "write GROUP=ROLE"),
        (["=admin"], "write GROUP=ROLE"),
        (["g="], "write GROUP=ROLE"),
        (["g=root"], "'root' is no HDH role"),
        (["g=admin", "g=researcher"], "mapped twice"),
    ]:
        with pytest.raises(OidcConfigError, match=message):
            parse_role_map(bad)


def test_the_client_secret_file_must_be_owner_only(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text("s3cret\n")
    f.chmod(0o644)
    with pytest.raises(OidcConfigError, match="may be read by others: chmod 600"):
        read_secret_file(f)
    f.chmod(0o600)
    assert read_secret_file(f) == "s3cret"
    f.write_text("\n")
    with pytest.raises(OidcConfigError, match="is empty"):
        read_secret_file(f)
    with pytest.raises(OidcConfigError, match="cannot read"):
        read_secret_file(tmp_path / "missing")


class _Discovery(BaseHTTPRequestHandler):
    document: dict[str, Any] | str = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.document if isinstance(self.document, str) else json.dumps(self.document)
        ok = self.path == "/.well-known/openid-configuration"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def issuer() -> Iterator[tuple[str, type[_Discovery]]]:
    handler = type("Handler", (_Discovery,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_discovery_reads_the_endpoints_and_checks_the_issuer(issuer: Any) -> None:
    url, handler = issuer
    handler.document = {
        "issuer": url,
        "authorization_endpoint": f"{url}/auth",
        "token_endpoint": f"{url}/token",
        "userinfo_endpoint": f"{url}/me",
        "end_session_endpoint": f"{url}/logout",
    }
    assert discover(url) == Endpoints(f"{url}/auth", f"{url}/token", f"{url}/me", f"{url}/logout")
    handler.document = {**handler.document, "issuer": "https://evil.example"}
    with pytest.raises(OidcConfigError, match="names the issuer 'https://evil.example'"):
        discover(url)
    handler.document = {"issuer": url, "authorization_endpoint": f"{url}/auth"}
    with pytest.raises(OidcConfigError, match="lacks token_endpoint, userinfo_endpoint"):
        discover(url)
    handler.document = "<html>"
    with pytest.raises(OidcConfigError, match="is not JSON"):
        discover(url)
    with pytest.raises(OidcConfigError, match="answered 404"):
        discover(url + "/realms/none")


def test_an_unreachable_issuer_is_one_line() -> None:
    port = hub_config.free_port()  # nothing listens there
    with pytest.raises(OidcConfigError) as e:
        discover(f"http://127.0.0.1:{port}", timeout=5)
    assert "is unreachable" in str(e.value) and "\n" not in str(e.value)


def _sso(secret: Path) -> OidcSettings:
    return OidcSettings(
        issuer="https://idp.example.org",
        client_id="hdh-hub",
        client_secret_file=str(secret),
        endpoints=Endpoints(
            "https://idp.example.org/auth",
            "https://idp.example.org/token",
            "https://idp.example.org/userinfo",
            "https://idp.example.org/logout",
        ),
    )


def test_plain_http_is_refused_but_for_this_machine(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    sso = _sso(secret)
    sso.check()
    assert sso.endpoints is not None
    for bad in (
        dataclasses.replace(sso, issuer="http://idp.example.org"),
        dataclasses.replace(
            sso, endpoints=dataclasses.replace(sso.endpoints, token_url="http://10.0.0.5/token")
        ),
    ):
        with pytest.raises(OidcConfigError, match="is plain http"):
            bad.check()
    dataclasses.replace(sso, issuer="http://127.0.0.1:9000", endpoints=None).check()


def test_the_generated_hub_config_names_the_secrets_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_config, "proxy_command", lambda: "/bin/true")
    secret = tmp_path / "client-secret"
    secret.write_text("the-real-client-secret")
    secret.chmod(0o600)
    plan = hub_config.write_hub_config(tmp_path / "hdh", port=8123, oidc=_sso(secret))
    text = plan.config_file.read_text()
    assert oct(plan.config_file.stat().st_mode & 0o777) == "0o600"
    assert "the-real-client-secret" not in text
    key = tmp_path / "hdh" / "jupyterhub" / "auth_state_key"
    assert key.read_text() not in text and oct(key.stat().st_mode & 0o777) == "0o600"
    assert "c.HdhAuthenticator" not in text
    assert "jupyterlab_hdh.hub.oidc.HdhOIDCAuthenticator" in text
    assert "'http://127.0.0.1:8123/hub/oauth_callback'" in text
    assert "'https://idp.example.org/logout?client_id=hdh-hub'" in text
    compile(text, str(plan.config_file), "exec")
    # the authenticator reads both files, and refuses a start without a secret
    settings = hub_config.hub_settings(
        tmp_path / "hdh", host="127.0.0.1", port=8123, hub_port=1, proxy_api_port=2,
        guard_port=3, oidc=_sso(secret),
    )  # fmt: skip
    from traitlets.config import Config

    c = Config({"HdhOIDCAuthenticator": settings["HdhOIDCAuthenticator"]})
    assert HdhOIDCAuthenticator(config=c).client_secret == "the-real-client-secret"
    monkeypatch.delenv("HDH_OIDC_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("OAUTH_CLIENT_SECRET", raising=False)
    c.HdhOIDCAuthenticator.client_secret_file = ""
    with pytest.raises(OidcConfigError, match="no OIDC client secret"):
        HdhOIDCAuthenticator(config=c)


def _up(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path / "hdh"), "up", *args])


def test_hdh_up_refuses_bad_single_sign_on_settings_before_creating_anything(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    closed = f"http://127.0.0.1:{hub_config.free_port()}"
    base = ["--oidc-client-id", "hdh-hub", "--oidc-client-secret-file", str(secret)]
    for args, message in [
        (["--oidc-issuer", closed, *base], f"the OpenID Connect issuer {closed} is unreachable"),
        (
            ["--oidc-issuer", closed, *base, "--oidc-role-map", "hdh-x=boss"],
            "'boss' is no HDH role",
        ),
        (["--oidc-issuer", closed, *base, "--oidc-role-map", "hdh-x"], "write GROUP=ROLE"),
        (["--oidc-issuer", closed, "--oidc-client-id", "x"], "needs --oidc-client-secret-file"),
        (["--oidc-client-id", "x"], "--oidc-client-id needs --oidc-issuer"),
        (["--oidc-issuer", "idp.example.org", *base], "is not an http(s) URL"),
        (["--oidc-issuer", "http://idp.example.org", *base], "is plain http"),
        (
            ["--oidc-issuer", closed, *base, "--oidc-scopes", "profile groups"],
            "must include openid",
        ),
    ]:
        result = _up(tmp_path, *args)
        assert result.exit_code != 0, (args, result.output)
        assert message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 or "Usage:" in result.output
        assert not (tmp_path / "hdh").exists()  # nothing set up
    secret.chmod(0o640)
    result = _up(tmp_path, "--oidc-issuer", closed, *base)
    assert "may be read by others" in result.output and not (tmp_path / "hdh").exists()


def test_the_authenticator_applies_the_rules_to_the_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from traitlets.config import Config

    monkeypatch.setenv("HDH_OIDC_CLIENT_SECRET", "from-the-environment")
    c = Config()
    c.HdhOIDCAuthenticator.username_claim = "uid"
    c.HdhOIDCAuthenticator.groups_claim = "roles"
    c.HdhOIDCAuthenticator.role_map = {"/hdh/admins": "admin", "/hdh/lab": "researcher"}
    auth = HdhOIDCAuthenticator(config=c)
    assert auth.client_secret == "from-the-environment"
    assert auth.enable_auth_state and auth.refresh_pre_spawn
    assert auth.user_info_to_username({"uid": "jdoe", "preferred_username": "x"}) == "jdoe"
    with pytest.raises(Refused, match="'JDoe' \\(uid\\) is not a valid HDH user name"):
        auth.user_info_to_username({"uid": "JDoe"})

    def model(roles: object) -> dict[str, Any]:
        state = {"oauth_user": {"uid": "jdoe", "roles": roles}}
        return asyncio.run(auth.update_auth_model({"name": "jdoe", "auth_state": state}))

    assert model(["/hdh/admins"])["admin"] is True
    assert model(["/hdh/lab"]) | {"auth_state": None} == {
        "name": "jdoe", "admin": False, "hdh_role": "researcher", "auth_state": None,
    }  # fmt: skip
    with pytest.raises(Refused, match="no group of jdoe gives an HDH role"):
        model(["hdh-researchers"])  # the default map no longer applies
    c.HdhOIDCAuthenticator.role_map = {"g": "king"}
    with pytest.raises(OidcConfigError, match="'king' is no HDH role"):
        HdhOIDCAuthenticator(config=c)


def test_hdh_ups_single_sign_on_defaults_are_the_authenticators() -> None:
    """`hdh up --oidc-*` writes its defaults as literals (importing the authenticator would
    slow every `hdh` command by seconds): they must stay the authenticator's."""
    from jupyterlab_hdh.cli.hub import up
    from jupyterlab_hdh.hub.oidc import (
        DEFAULT_GROUPS_CLAIM,
        DEFAULT_ROLE_MAP,
        DEFAULT_SCOPES,
        DEFAULT_USERNAME_CLAIM,
    )

    defaults = {p.name: p.default for p in up.params}
    (role_map,) = [p for p in up.params if p.name == "oidc_role_map"]
    shown = role_map.help.split("[default: ", 1)[1].rstrip("]").replace(" ", "")
    assert dict(pair.split("=") for pair in shown.split(",")) == DEFAULT_ROLE_MAP
    assert tuple(defaults["oidc_scopes"].split()) == DEFAULT_SCOPES
    assert defaults["oidc_username_claim"] == DEFAULT_USERNAME_CLAIM
    assert defaults["oidc_groups_claim"] == DEFAULT_GROUPS_CLAIM
