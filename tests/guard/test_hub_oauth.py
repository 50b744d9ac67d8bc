"""The guard as a real JupyterHub service: the full OAuth login through a real hub.

Starts ``jupyterhub`` (DummyAuthenticator, an in-memory proxy class instead
of configurable-http-proxy, the guard registered as an OAuth service) and the
guard with ``GuardHubOAuth``/``HubOAuthIdentity`` as ``main()`` builds them;
then logs in as a browser would: hub login form, redirect to the hub's
authorize endpoint, code exchange at the guard's callback, token cookie.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import websocket

from jupyterlab_hdh.guard.auth import GuardHubOAuth, HubOAuthIdentity
from jupyterlab_hdh.guard.policy import GuardConfig

from .conftest import BASE, GuardServer, Upstream, free_port, run_guard

HUB_CONFIG = '''
import os
from jupyterhub.proxy import Proxy

class MemProxy(Proxy):
    """Routes kept in memory: the test talks to the hub and the guard directly."""
    routes = {}
    should_start = False
    def start(self): pass
    def stop(self): pass
    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}
    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)
    async def get_all_routes(self):
        return dict(self.routes)

c = get_config()  # noqa
c.JupyterHub.proxy_class = MemProxy
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.hub_bind_url = "http://127.0.0.1:" + os.environ["HUB_PORT"]
c.JupyterHub.db_url = "sqlite:///" + os.environ["HUB_DIR"] + "/hub.sqlite"
c.JupyterHub.cookie_secret_file = os.environ["HUB_DIR"] + "/cookie_secret"
c.JupyterHub.services = [{
    "name": "guard",
    "api_token": os.environ["GUARD_TOKEN"],
    "oauth_client_id": "service-guard",
    "oauth_redirect_uri": os.environ["GUARD_CALLBACK"],
    "oauth_no_confirm": True,
    "oauth_client_allowed_scopes": ["access:services!service=guard"],
}]
c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "access:services!service=guard"]}]
'''


@pytest.fixture(scope="module")
def hub_and_guard(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GuardServer, str]]:
    hub_dir = tmp_path_factory.mktemp("jupyterhub")
    (hub_dir / "jupyterhub_config.py").write_text(HUB_CONFIG)
    hub_port, guard_port = free_port(), free_port()
    token = secrets.token_hex(16)
    callback = f"http://127.0.0.1:{guard_port}/services/guard/oauth_callback"
    env = {
        **os.environ,
        "HUB_PORT": str(hub_port),
        "HUB_DIR": str(hub_dir),
        "GUARD_TOKEN": token,
        "GUARD_CALLBACK": callback,
    }
    log = (hub_dir / "hub.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(hub_dir / "jupyterhub_config.py")],
        cwd=hub_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    hub = f"http://127.0.0.1:{hub_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{hub}/hub/api/").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("jupyterhub did not start: " + (hub_dir / "hub.log").read_text())
            time.sleep(0.3)
        hub_auth = GuardHubOAuth(
            api_token=token,
            api_url=f"{hub}/hub/api",
            base_url="/services/guard/",
            hub_host=hub,  # the hub's public origin (the OAuth login URL is built from it)
            hub_prefix="/hub/",
            oauth_client_id="service-guard",
            oauth_redirect_uri=callback,
        )
        identity = HubOAuthIdentity(hub_auth, "guard")
        for g in run_guard(
            upstream.sock,
            tmp_path_factory.mktemp("hubguard"),
            GuardConfig(),
            port=guard_port,
            identify=identity,
            login_redirect=identity.login_redirect,
            hub_auth=hub_auth,
            service_prefix="/services/guard/",
        ):
            yield g, hub
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def browser_login(hub: str, user: str) -> Iterator[httpx.Client]:
    """A cookie jar logged in to the hub through its login form."""
    with httpx.Client(timeout=30) as c:
        c.get(f"{hub}/hub/login")
        xsrf = c.cookies.get("_xsrf", path="/hub/")
        r = c.post(f"{hub}/hub/login", data={"username": user, "password": "pw", "_xsrf": xsrf})
        assert r.status_code == 302, r.text
        yield c


def follow(c: httpx.Client, url: str, limit: int = 10) -> httpx.Response:
    for _ in range(limit):
        r = c.get(url, follow_redirects=False)
        if r.status_code not in (301, 302, 303, 307):
            return r
        url = str(r.url.join(r.headers["location"]))
    raise AssertionError("redirect loop")


def test_oauth_login_then_lab_api_and_kernel_websocket(
    hub_and_guard: tuple[GuardServer, str],
) -> None:
    g, hub = hub_and_guard
    with browser_login(hub, "alice") as c:
        first = c.get(g.url + BASE + "lab", follow_redirects=False)
        assert first.status_code == 302
        assert first.headers["location"].startswith(f"{hub}/hub/api/oauth2/authorize")
        page = follow(c, g.url + BASE + "lab")
        assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
        assert c.cookies.get("service-guard")  # the guard's token cookie
        r = c.get(g.url + BASE + "api/status")
        assert r.status_code == 200
        xsrf = c.cookies.get("_xsrf", path="/user/alice/proj1/")
        k = c.post(
            g.url + BASE + "api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}
        )
        assert k.status_code == 201, k.text
        kid = k.json()["id"]
        cookie = "; ".join(f"{ck.name}={ck.value}" for ck in c.cookies.jar)
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{g.port}{BASE}api/kernels/{kid}/channels?session_id={uuid.uuid4()}",
            cookie=cookie,
            origin=g.url,
            subprotocols=["v1.kernel.websocket.jupyter.org"],
        )
        ws.close()
        c.delete(g.url + BASE + f"api/kernels/{kid}", headers={"X-XSRFToken": xsrf})


def test_other_hub_user_is_refused(hub_and_guard: tuple[GuardServer, str]) -> None:
    g, hub = hub_and_guard
    before = len(g.forwarded)
    with browser_login(hub, "bob") as c:
        r = follow(c, g.url + BASE + "lab")
        assert r.status_code == 403 and "another user" in r.text
    assert len(g.forwarded) == before


def test_hub_cookie_alone_is_not_enough(hub_and_guard: tuple[GuardServer, str]) -> None:
    """Logged in to the hub but no guard token yet: API calls get 403, not upstream."""
    g, hub = hub_and_guard
    with browser_login(hub, "alice") as c:
        assert c.get(g.url + BASE + "api/status").status_code == 403
