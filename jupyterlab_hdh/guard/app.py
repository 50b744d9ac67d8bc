"""Assembling the guard: the Tornado application and the hub-service entry point.

Owns ``make_guard_app`` (route table: the OAuth callback under the service
prefix, everything else through :class:`~jupyterlab_hdh.guard.proxy.GuardHandler`),
``service_app`` (the guard as a JupyterHub service: the service environment, the HDH
store for permits, audit and display accounting; given how to find a sandbox) and
``main()``, which the embedded hub runs as a service: sandboxes found by their Unix
sockets, listening on a port or a Unix socket. The cluster's guard is
:mod:`jupyterlab_hdh.k8s.guard` (pods found through the Kubernetes API).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tornado import httpserver, ioloop, netutil, web

from jupyterlab_hdh.guard.audit import AuditSink, StoreAuditSink
from jupyterlab_hdh.guard.display import (
    AuditDisplayStore,
    DisplayConfigError,
    DisplayLedger,
    DisplaySettings,
)
from jupyterlab_hdh.guard.policy import GuardConfig
from jupyterlab_hdh.guard.proxy import Authorise, Guard, GuardHandler, Identify, Resolve
from jupyterlab_hdh.paths import DataDir

log = logging.getLogger("hdh.guard")


def make_guard_app(
    resolve: Resolve,
    authorise: Authorise,
    audit_sink: AuditSink,
    config: GuardConfig | None = None,
    *,
    identify: Identify,
    prefix: str = "/user/",
    login_redirect: Callable[[web.RequestHandler], str | None] | None = None,
    hub_auth: Any = None,
    service_prefix: str | None = None,
    cookie_secret: bytes | None = None,
    ledger: DisplayLedger | None = None,
) -> web.Application:
    """Build the guard application (call ``app.settings['guard'].close()`` when done).

    ``ledger``: the display accounting (default: counted in memory, default
    budget). Its counts are written every ``flush_seconds`` while the loop runs.
    """
    ledger = ledger or DisplayLedger(DisplaySettings(), None)
    guard = Guard(
        ledger=ledger,
        resolve=resolve,
        authorise=authorise,
        identify=identify,
        audit_sink=audit_sink,
        config=config or GuardConfig(),
        prefix=prefix,
        login_redirect=login_redirect,
        private_cookies=frozenset({hub_auth.cookie_name}) if hub_auth is not None else frozenset(),
    )
    handlers: list[Any] = []
    if hub_auth is not None and service_prefix:
        from jupyterlab_hdh.guard.auth import GuardOAuthCallbackHandler

        handlers.append((re.escape(service_prefix) + "oauth_callback", GuardOAuthCallbackHandler))
    handlers.append((r".*", GuardHandler, {"guard": guard}))
    flusher = ioloop.PeriodicCallback(ledger.flush_soon, ledger.settings.flush_seconds * 1000)
    flusher.start()
    guard.on_close.append(flusher.stop)
    return web.Application(
        handlers,
        guard=guard,
        hub_auth=hub_auth,
        cookie_secret=cookie_secret or os.urandom(32),
        websocket_ping_interval=30,
        xsrf_cookies=False,  # the guard checks same-origin itself (GuardHandler.check_xsrf_cookie)
    )


def max_body(config: GuardConfig) -> int:
    return max(config.max_upload_bytes, config.max_request_bytes) + 1024 * 1024


def socket_dir_resolver(root: Path) -> Resolve:
    """Default resolver: the sandbox layout, ``<root>/<project>--<user>/sock/jupyter.sock``.

    ``root`` is the sandboxes folder (``<data-dir>/sandboxes``); the path is
    checked again, without following links, when the guard connects.
    """
    from jupyterlab_hdh.sandbox.spec import runtime_dir_for

    def resolve(user: str, project: str) -> str | None:
        p = runtime_dir_for(root, project, user) / "sock" / "jupyter.sock"
        return str(p) if p.exists() or p.is_symlink() else None

    return resolve


def service_app(resolve: Resolve, data_dir: DataDir) -> web.Application:
    """The guard as a JupyterHub service, in front of the sandboxes ``resolve`` finds.

    Reads the JupyterHub service environment (``JUPYTERHUB_API_TOKEN``,
    ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_BASE_URL``…) and ``HDH_GUARD_COOKIE_SECRET``
    (hex, shared by every replica); checks permits in, audits to and accounts the display
    in the installation at ``data_dir``. Raises ``SystemExit`` with one line on a bad
    display configuration. The one machine's guard (:func:`main`) and the cluster's
    (``hdh k8s guard``) differ only in ``resolve``.
    """
    from jupyterlab_hdh.context import open_installation
    from jupyterlab_hdh.governance import projects
    from jupyterlab_hdh.guard.auth import GuardHubOAuth, HubOAuthIdentity

    service_prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/guard/")
    hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    hub_auth = GuardHubOAuth(
        api_token=os.environ["JUPYTERHUB_API_TOKEN"],
        base_url=service_prefix,
        cache_max_age=60,
    )
    identity = HubOAuthIdentity(hub_auth, os.environ.get("JUPYTERHUB_SERVICE_NAME", "guard"))
    hub = open_installation(data_dir)

    def check_permit(user: str, project: str) -> str | None:
        with hub.sessions() as s:
            try:
                return projects.access_problem(s, user, project)
            except Exception as exc:  # a broken check (store down…): refuse, never allow
                return f"the permit could not be checked: {type(exc).__name__}"

    async def authorise(user: str, project: str) -> str | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, check_permit, user, project)

    config = GuardConfig()
    try:
        display = DisplaySettings.load(hub.data_dir.root)
    except DisplayConfigError as exc:
        raise SystemExit(f"hdh-guard: {exc}") from None
    ledger = DisplayLedger(display, AuditDisplayStore(hub))
    return make_guard_app(
        resolve,
        authorise,
        StoreAuditSink(hub),
        config,
        identify=identity,
        prefix=hub_prefix.rstrip("/") + "/user/",
        login_redirect=identity.login_redirect,
        hub_auth=hub_auth,
        service_prefix=service_prefix,
        # shared by every guard replica (the OAuth token cookie is signed with it)
        cookie_secret=bytes.fromhex(os.environ["HDH_GUARD_COOKIE_SECRET"])
        if os.environ.get("HDH_GUARD_COOKIE_SECRET")
        else None,
        ledger=ledger,
    )


def guard_server(app: web.Application) -> httpserver.HTTPServer:
    """The guard's HTTP server (behind the proxy: ``X-Forwarded-*`` are the proxy's)."""
    config = app.settings["guard"].config
    return httpserver.HTTPServer(app, xheaders=True, max_body_size=max_body(config))


def run_until_signal(app: web.Application) -> None:
    """Run the loop until SIGTERM or SIGINT, then write the display counts not yet written
    to the audit log before the guard exits."""
    loop = asyncio.get_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        app.settings["guard"].close()


def main(argv: list[str] | None = None) -> None:
    """Run the guard as a JupyterHub service (env: JUPYTERHUB_SERVICE_PREFIX, _API_TOKEN...)."""
    ap = argparse.ArgumentParser(prog="hdh-guard", description=main.__doc__)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--ip", default="127.0.0.1")
    ap.add_argument("--sock", default=None, help="listen on this Unix socket instead of a port")
    ap.add_argument("--sockets-root", default=os.environ.get("HDH_SANDBOX_SOCKETS", ""))
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if not args.sockets_root:
        raise SystemExit("--sockets-root (or HDH_SANDBOX_SOCKETS) is required")
    app = service_app(socket_dir_resolver(Path(args.sockets_root)), DataDir.resolve(args.data_dir))
    server = guard_server(app)
    if args.sock:
        server.add_socket(netutil.bind_unix_socket(args.sock, mode=0o600))
    else:
        port = args.port or int(os.environ.get("JUPYTERHUB_SERVICE_URL", ":8765").rsplit(":", 1)[1])
        server.listen(port, args.ip)
    run_until_signal(app)


if __name__ == "__main__":  # pragma: no cover
    main()
