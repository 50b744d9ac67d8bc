"""The embedded hub's configuration for one data directory (what ``hdh up`` runs).

Owns the layout of ``<data-dir>/jupyterhub/`` and the JupyterHub settings:

===========================  ================================================================
``jupyterhub_config.py``     generated on every start (ports may change); plain literals only,
                             but for one :class:`MayReview` (a callable template variable)
``jupyterhub.sqlite``        JupyterHub's own database (users, tokens, OAuth clients)
``cookie_secret``            hub cookie secret (0600, created once)
``proxy_token``              configurable-http-proxy's API token (0600, created once)
``guard_token``              the guard service's API token (0600, created once)
``guard_cookie_secret``      signs the guard's OAuth token cookie (0600, created once)
``cli_token``                the ``hdh-cli`` service's token, used by ``hdh token`` (0600)
``bridge_token``             proves a request comes from the hub's API bridge (0600): read by
                             the spawner and the control-plane API, never by a sandbox
``hub.json``                 where the running hub listens (read by ``hdh token``)
``auth_state_key``           with single sign-on (``hdh up --oidc-issuer``): encrypts the
                             provider's tokens kept for ``refresh_user`` (0600, created once)
===========================  ================================================================

With single sign-on the authenticator is :class:`~jupyterlab_hdh.hub.oidc.HdhOIDCAuthenticator`
(endpoints discovered once by ``hdh up``); the generated file names the client secret's
file and the key's file, never the secrets themselves.

The public URL ``http://127.0.0.1:PORT`` is configurable-http-proxy: ``/hub/`` goes
to JupyterHub, ``/services/guard/`` and every ``/user/<name>/<project>/`` to the
guard (a managed JupyterHub service with its own OAuth client), which forwards to
the sandbox's Unix socket under ``<data-dir>/sandboxes/``. JupyterHub's home page is
HDH's own (``hub/templates/home.html``): the person's project servers, no default server,
and for those who may review, the link to their review workspace (:class:`MayReview`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jupyterlab_hdh

if TYPE_CHECKING:
    from jupyterlab_hdh.hub.oidc import Endpoints, OidcSettings

HUB_DIR = "jupyterhub"
GUARD_SERVICE = "guard"
CLI_SERVICE = "hdh-cli"
API_SERVICE = "hdh"  # the control plane: REST API, web pages, the bridge's upstream
TEMPLATES = Path(__file__).parent / "templates"  # HDH's pages of JupyterHub (home.html)


class HubConfigError(RuntimeError):
    """The embedded hub cannot be configured on this machine (e.g. no proxy installed)."""


def hub_dir(data_root: Path) -> Path:
    return Path(data_root) / HUB_DIR


def bridge_token_file(data_root: Path) -> Path:
    return hub_dir(data_root) / "bridge_token"


def bridge_token(data_root: Path) -> str:
    """The API bridge's token (created once, 0600; ``hub/bridge.py``)."""
    hdir = hub_dir(data_root)
    hdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return secret_file(bridge_token_file(data_root))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def secret_file(path: Path, nbytes: int = 32) -> str:
    """The hex secret in ``path``, created (0600) on first use."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(nbytes))
    os.chmod(path, 0o600)
    return path.read_text().strip()


def proxy_command() -> str:
    """configurable-http-proxy as ``scripts/setup-env`` installs it (or from the PATH)."""
    repo = Path(jupyterlab_hdh.__file__).resolve().parent.parent
    local = repo / "scripts" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    raise HubConfigError(
        "configurable-http-proxy is not installed: run scripts/setup-env"
        " (it runs `npm ci` in scripts/hub-proxy)"
    )


def hdh_command() -> list[str]:
    exe = Path(sys.executable).parent / "hdh"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyterlab_hdh.cli"]


def guard_command() -> list[str]:
    exe = Path(sys.executable).parent / "hdh-guard"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyterlab_hdh.guard.app"]


@dataclass(frozen=True)
class HubPlan:
    """Where each part listens and which files hold the generated config."""

    data_root: Path
    host: str
    port: int
    hub_port: int
    proxy_api_port: int
    guard_port: int
    config_file: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class MayReview:
    """JupyterHub template variable ``hdh_may_review``: whether the person whose page is
    rendered may open the review workspace (``/hub/spawn/<user>/review``), asked of the HDH
    store on each render (a role changed or an account disabled shows at once).

    JupyterHub calls a callable template variable with the page's user (None when logged
    out). The generated config holds ``MayReview(data_dir='…')``; :func:`render` imports it.
    """

    data_dir: str

    def __call__(self, user: Any) -> bool:
        if user is None:
            return False
        from jupyterlab_hdh.governance.projects import review_problem
        from jupyterlab_hdh.hub.store import hdh_store

        with hdh_store(self.data_dir).sessions() as s:
            return review_problem(s, str(user.name)) is None


def hub_roles(*, control_plane: bool = True) -> list[dict[str, Any]]:
    """JupyterHub's roles for HDH (one machine and Kubernetes alike): users reach the guard
    and the control plane; each service gets only what its role uses."""
    roles: list[dict[str, Any]] = [
        {
            "name": "user",
            "scopes": [
                "self",
                f"access:services!service={GUARD_SERVICE}",
                f"access:services!service={API_SERVICE}",
            ],
        },
        # the guard only exchanges OAuth codes and reads who a token belongs to
        {"name": "hdh-guard", "scopes": ["read:users:name"], "services": [GUARD_SERVICE]},
        {
            "name": "hdh-cli",
            "scopes": ["admin:users", "tokens", "admin:servers"],
            "services": [CLI_SERVICE],
        },
    ]
    if control_plane:
        # its web pages restart a user's sandbox (stop it; the browser then spawns it again)
        roles.append(
            {
                "name": "hdh-control-plane",
                "scopes": ["read:users:name", "read:servers", "servers"],
                "services": [API_SERVICE],
            }
        )
    return roles


def default_sandbox_limits() -> tuple[int, float]:
    """(memory bytes, CPU cores) for each sandbox: half the host's memory up to 8 GiB, all cores.

    Applied through cgroups where the host allows, else memory through RLIMIT_AS
    (see ``sandbox/limits.py``); a kernel past the limit dies, the server lives.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):  # pragma: no cover - not Linux
        total = 4 * 2**30
    memory = max(2**30, min(8 * 2**30, total // 2))
    return memory, float(os.cpu_count() or 1)


def hub_settings(
    data_root: Path,
    *,
    host: str,
    port: int,
    hub_port: int,
    proxy_api_port: int,
    guard_port: int,
    poll_interval: int = 30,
    store_url: str | None = None,
    api_url: str = "",
    api_listen: str = "",
    memory_limit: int | None = None,
    cpu_limit: float | None = None,
    oidc: OidcSettings | None = None,
    oidc_endpoints: Endpoints | None = None,
) -> dict[str, dict[str, Any]]:
    """The JupyterHub configuration as ``{section: {trait: value}}`` (literals, and one
    :class:`MayReview`).

    ``memory_limit`` (bytes) and ``cpu_limit`` (cores) apply to each sandbox; None: the
    defaults of :func:`default_sandbox_limits`; 0: no limit. ``oidc``: single sign-on
    through that provider (``oidc_endpoints``: discovered) instead of the local accounts."""
    hdir = hub_dir(data_root)
    default_memory, default_cpu = default_sandbox_limits()
    memory_limit = default_memory if memory_limit is None else memory_limit
    cpu_limit = default_cpu if cpu_limit is None else cpu_limit
    guard_url = f"http://127.0.0.1:{guard_port}"
    store_env = {"HDH_STORE_URL": store_url} if store_url else {}
    guard = {
        "name": GUARD_SERVICE,
        "url": guard_url,
        "api_token": secret_file(hdir / "guard_token"),
        "command": [
            *guard_command(),
            "--port",
            str(guard_port),
            "--sockets-root",
            str(Path(data_root) / "sandboxes"),
            "--data-dir",
            str(data_root),
        ],
        "environment": {
            "HDH_GUARD_COOKIE_SECRET": secret_file(hdir / "guard_cookie_secret"),
            **store_env,
        },
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [f"access:services!service={GUARD_SERVICE}"],
    }
    cli = {"name": CLI_SERVICE, "api_token": secret_file(hdir / "cli_token")}
    services: list[dict[str, Any]] = [guard, cli]
    if api_url:
        bridge_token(data_root)  # created here once (0600); the spawner and the API read it
        api_host, _, api_port = api_url.removeprefix("http://").rpartition(":")
        services.append(
            {
                "name": API_SERVICE,
                "url": api_url,
                "api_token": secret_file(hdir / "api_token"),
                "command": [
                    *hdh_command(),
                    "--data-dir",
                    str(data_root),
                    "serve",
                    "--host",
                    api_listen or api_host,
                    "--port",
                    api_port,
                ],
                "environment": {
                    "HDH_BRIDGE_TOKEN_FILE": str(bridge_token_file(data_root)),
                    **store_env,
                },
                "oauth_no_confirm": True,
                "oauth_client_allowed_scopes": [f"access:services!service={API_SERVICE}"],
                "display": True,
            }
        )
    secret_file(hdir / "cookie_secret")  # JupyterHub reads it (hex); created here, once, 0600
    settings: dict[str, dict[str, Any]] = {
        "JupyterHub": {
            "bind_url": f"http://{host}:{port}",
            "hub_bind_url": f"http://127.0.0.1:{hub_port}",
            "db_url": f"sqlite:///{hdir / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(hdir / "cookie_secret"),
            "pid_file": str(hdir / "jupyterhub.pid"),
            "authenticator_class": "jupyterlab_hdh.hub.authenticator.HdhAuthenticator",
            "spawner_class": "jupyterlab_hdh.hub.spawner.SandboxSpawner",
            "allow_named_servers": True,
            "named_server_limit_per_user": 20,
            "cleanup_servers": True,
            "cleanup_proxy": True,
            # after login: the control plane's project list (each project opens its own
            # sandbox); not /hub/spawn, as there is no default server
            "default_url": f"/services/{API_SERVICE}/ui/" if api_url else "/hub/home",
            # JupyterHub's home page offers a default server HDH does not have: HDH's own
            # home page (hub/templates/home.html) lists the project servers and links the projects
            "template_paths": [str(TEMPLATES)],
            "template_vars": {
                "hdh_projects_url": f"/services/{API_SERVICE}/ui/" if api_url else "",
                "hdh_may_review": MayReview(str(data_root)),
            },
            "services": services,
            "load_roles": hub_roles(control_plane=bool(api_url)),
        },
        "ConfigurableHTTPProxy": {
            "command": [proxy_command()],
            "api_url": f"http://127.0.0.1:{proxy_api_port}",
            "auth_token": secret_file(hdir / "proxy_token"),
            "should_start": True,
        },
        "Authenticator": {"allow_all": True},
        "HdhAuthenticator": {"data_dir": str(data_root)},
        "Spawner": {
            "start_timeout": 120,
            "http_timeout": 30,
            "poll_interval": poll_interval,
        },
        "SandboxSpawner": {
            "data_dir": str(data_root),
            "memory_limit_bytes": memory_limit,
            "cpu_limit": cpu_limit,
            "guard_url": guard_url,
            "sandbox_start_timeout": 90.0,
            # the API bridge (hub/bridge.py): forwards to the control plane with this token
            "api_url": api_url,
            "bridge_token_file": str(bridge_token_file(data_root)) if api_url else "",
        },
    }
    if oidc is not None:
        from jupyterlab_hdh.hub.oidc import authenticator_settings

        key_file = hdir / "auth_state_key"
        secret_file(key_file)  # 32 bytes, hex: what JupyterHub's CryptKeeper takes
        wildcard = host in ("0.0.0.0", "", "::")  # noqa: S104
        sso = authenticator_settings(
            oidc,
            data_dir=str(data_root),
            endpoints=oidc_endpoints or oidc.resolved(),
            # behind a wildcard address the callback is guessed from the request's host
            callback_url="" if wildcard else f"http://{host}:{port}/hub/oauth_callback",
            auth_state_key_file=str(key_file),
        )
        settings["JupyterHub"].update(sso.pop("JupyterHub"))
        del settings["HdhAuthenticator"]
        settings.update(sso)
    return settings


def render(settings: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Generated by `hdh up` on every start (jupyterlab_hdh/hub/config.py): do not edit.",
        "c = get_config()  # noqa: F821",
        f"from {__name__} import {MayReview.__name__}",
    ]
    for section, traits in settings.items():
        for trait, value in traits.items():
            lines.append(f"c.{section}.{trait} = {value!r}")
    return "\n".join(lines) + "\n"


def write_hub_config(
    data_root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_interval: int = 30,
    store_url: str | None = None,
    api_url: str = "",
    api_listen: str = "",
    memory_limit: int | None = None,
    cpu_limit: float | None = None,
    oidc: OidcSettings | None = None,
    oidc_endpoints: Endpoints | None = None,
) -> HubPlan:
    """Write ``<data-dir>/jupyterhub/jupyterhub_config.py`` (fresh internal ports) and hub.json."""
    hdir = hub_dir(data_root)
    hdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(hdir, 0o700)
    ports = {"hub_port": free_port(), "proxy_api_port": free_port(), "guard_port": free_port()}
    while len(set(ports.values()) | {port}) < 4:  # pragma: no cover - unlucky draw
        ports = {k: free_port() for k in ports}
    settings = hub_settings(
        data_root,
        host=host,
        port=port,
        poll_interval=poll_interval,
        store_url=store_url,
        api_url=api_url,
        api_listen=api_listen,
        memory_limit=memory_limit,
        cpu_limit=cpu_limit,
        oidc=oidc,
        oidc_endpoints=oidc_endpoints,
        **ports,
    )
    config_file = hdir / "jupyterhub_config.py"
    fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render(settings))  # holds tokens: owner-only
    plan = HubPlan(Path(data_root), host, port, config_file=config_file, **ports)
    (hdir / "hub.json").write_text(json.dumps({"url": plan.url}))
    return plan


def hub_api(data_root: Path) -> tuple[str, str]:
    """(API URL, hdh-cli service token) of the hub last started on ``data_root``."""
    hdir = hub_dir(data_root)
    try:
        url = json.loads((hdir / "hub.json").read_text())["url"]
        token = (hdir / "cli_token").read_text().strip()
    except (OSError, ValueError, KeyError):
        raise HubConfigError(
            f"no embedded hub configured in {data_root}: start it with `hdh up`"
        ) from None
    return f"{url}/hub/api", token
