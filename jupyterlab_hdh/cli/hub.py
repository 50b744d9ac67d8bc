"""``hdh up``, ``hdh serve`` and ``hdh token``: the embedded hub, the control plane, hub tokens."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from jupyterlab_hdh.cli.common import say as _say
from jupyterlab_hdh.cli.demo import (
    DEMO_DATASET,
    _demo_credentials,
    _demo_project,
)
from jupyterlab_hdh.cli_context import actor as _actor
from jupyterlab_hdh.cli_context import data_dir as _data_dir
from jupyterlab_hdh.cli_context import open_installation
from jupyterlab_hdh.paths import DataDir

if TYPE_CHECKING:
    from jupyterlab_hdh.hub.oidc import OidcSettings

#: The demo extract of `hdh up`: large enough for every template study to find its cohort
#: and fit its model (tests/hdh/test_templates.py), small enough to make in seconds
DEMO_PATIENTS = 10_000
DEMO_SEED = 2026


@click.command("token")
@click.argument("name")
@click.option(
    "--expires-in",
    type=click.IntRange(60, 366 * 86400),
    default=86400,
    show_default=True,
    help="Seconds the token is valid",
)
@click.pass_context
def hub_token(ctx: click.Context, name: str, expires_in: int) -> None:
    """Print a JupyterHub API token for NAME (the hub started by `hdh up` must be running)."""
    from jupyterlab_hdh.api.hub_client import HubClient
    from jupyterlab_hdh.governance.accounts import get_user
    from jupyterlab_hdh.hub.config import HubConfigError, hub_api

    with open_installation(ctx).sessions() as s:
        get_user(s, name)  # an HDH account, or a one-line error
    try:
        api, token = hub_api(_data_dir(ctx).root)
    except HubConfigError as exc:
        raise click.ClickException(str(exc)) from None
    hub_client = HubClient(api, token)
    click.echo(hub_client.issue_token(name, note=f"hdh token ({_actor()})", expires_in=expires_in))


# --- servers ----------------------------------------------------------------------------------


def _serve(data_dir: DataDir, host: str, port: int) -> None:
    """Run the API; as the hub's ``hdh`` service (``hdh up``) also its web pages and bridge."""
    import uvicorn

    from jupyterlab_hdh.api.app import SWEEP_SECONDS, create_app
    from jupyterlab_hdh.api.browser import HubBrowserAuth
    from jupyterlab_hdh.api.hub_client import HubClient
    from jupyterlab_hdh.egress.settings import AirlockConfigError, load_settings

    try:
        load_settings(data_dir)  # a bad airlock.toml stops the start, with its reason
    except AirlockConfigError as exc:
        raise click.ClickException(str(exc)) from None
    base_url = f"http://{host}:{port}"
    token_file = os.environ.get("HDH_BRIDGE_TOKEN_FILE")
    app = create_app(
        data_dir,
        base_url=base_url,
        bridge_token=Path(token_file).read_text().strip() if token_file else None,
        browser_auth=HubBrowserAuth.from_env(),
        hub_servers=HubClient.from_env(),
        sweep_every=SWEEP_SECONDS,
    )
    click.echo(
        f"HDH control plane: {base_url}/api/docs  (catalogue: {base_url}/api/catalogue/datasets)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="The port `hdh up` gives the control plane (its hub is on 8000)",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Start the control-plane REST API on an initialised data directory."""
    from jupyterlab_hdh.context import open_installation

    open_installation(_data_dir(ctx)).close()  # fail early and clearly if not initialised
    _serve(_data_dir(ctx), host, port)


def _memory_size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """``4G``, ``512M``, ``1.5G``, ``1073741824`` or ``0`` → bytes (None: the default)."""
    from jupyterlab_hdh.units import parse_size

    if value is None:
        return None
    try:
        nbytes = parse_size(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a size: write e.g. 4G, 512M or 0 (no limit)"
        ) from None
    if 0 < nbytes < 256 * 2**20:
        raise click.BadParameter(f"{value!r} is too small for a sandbox: give at least 256M")
    return nbytes


def _oidc_settings(
    issuer: str | None,
    client_id: str | None,
    secret_file: str | None,
    scopes: str,
    username_claim: str,
    groups_claim: str,
    role_map: tuple[str, ...],
) -> OidcSettings | None:
    """``hdh up``'s single sign-on, checked and its endpoints discovered (one-line errors)."""
    given = {
        "--oidc-client-id": client_id,
        "--oidc-client-secret-file": secret_file,
    }
    if not issuer:
        extra = [k for k, v in given.items() if v] + (["--oidc-role-map"] if role_map else [])
        if extra:
            raise click.UsageError(f"{', '.join(extra)} needs --oidc-issuer")
        return None
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise click.UsageError(f"--oidc-issuer needs {' and '.join(missing)}")
    from dataclasses import replace

    from jupyterlab_hdh.hub.oidc import OidcConfigError, OidcSettings, parse_role_map

    try:
        settings = OidcSettings(
            issuer=issuer,
            client_id=str(client_id),
            client_secret_file=str(Path(str(secret_file)).resolve()),
            scopes=tuple(scopes.split()),
            username_claim=username_claim,
            groups_claim=groups_claim,
            role_map=parse_role_map(role_map),
        )
        settings.check()
        return replace(settings, endpoints=settings.resolved())
    except OidcConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--patients",
    type=click.IntRange(10, 1_000_000),
    default=DEMO_PATIENTS,
    show_default=True,
    help="Size of the demo extract (the default gives every template study a cohort)",
)
@click.option("--seed", type=int, default=DEMO_SEED, show_default=True)
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the control-plane REST API [default: PORT+1]",
)
@click.option(
    "--poll-interval",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds between the hub's checks of running sandboxes (permit still active?)",
)
@click.option(
    "--memory-limit",
    callback=_memory_size,
    default=None,
    metavar="SIZE",
    help="Memory of each sandbox, e.g. 4G or 512M; 0: no limit"
    " [default: half the host's memory, at most 8G]",
)
@click.option(
    "--cpu-limit",
    type=click.FloatRange(0, 1024),
    default=None,
    help="CPU cores each sandbox may use; 0: no limit [default: all cores]",
)
@click.option(
    "--oidc-issuer",
    metavar="URL",
    default=None,
    help="Single sign-on: log in through this OpenID Connect provider (its endpoints are"
    " discovered from URL/.well-known/openid-configuration) instead of the local passwords",
)
@click.option("--oidc-client-id", metavar="ID", default=None, help="The hub's client id there")
@click.option(
    "--oidc-client-secret-file",
    metavar="FILE",
    default=None,
    help="A file (chmod 600) holding the client secret (never given on the command line)",
)
@click.option(
    "--oidc-scopes",
    default="openid profile email groups",
    show_default=True,
    help="The scopes asked of the provider",
)
@click.option(
    "--oidc-username-claim",
    default="preferred_username",
    show_default=True,
    help="The claim that is the HDH user name (refused unless a valid one)",
)
@click.option(
    "--oidc-groups-claim",
    default="groups",
    show_default=True,
    help="The claim listing the person's groups at the provider",
)
@click.option(
    "--oidc-role-map",
    "oidc_role_map",
    metavar="GROUP=ROLE",
    multiple=True,
    help="A provider group and the HDH role it gives (repeat) [default: hdh-researchers="
    "researcher, hdh-reviewers=reviewer, hdh-committee=committee, hdh-data-controllers="
    "data_controller, hdh-admins=admin]",
)
@click.pass_context
def up(
    ctx: click.Context,
    host: str,
    port: int,
    patients: int,
    seed: int,
    api_port: int | None,
    poll_interval: int,
    memory_limit: int | None,
    cpu_limit: float | None,
    oidc_issuer: str | None,
    oidc_client_id: str | None,
    oidc_client_secret_file: str | None,
    oidc_scopes: str,
    oidc_username_claim: str,
    oidc_groups_claim: str,
    oidc_role_map: tuple[str, ...],
) -> None:
    """Set up everything on first run (store, keys, demo data, demo users) and start the hub.

    The hub (JupyterHub, configurable-http-proxy, the guard, one bubblewrap sandbox per
    project and person) listens on PORT; the control-plane REST API on --api-port.
    State persists in the data directory; running it again starts from there. Ctrl-C
    stops everything. With --oidc-issuer, people log in through that OpenID Connect
    provider: their provider groups give their HDH role (--oidc-role-map).
    """
    from sqlalchemy import select

    from jupyterlab_hdh.context import init_installation
    from jupyterlab_hdh.data.synth import generate
    from jupyterlab_hdh.ingestion import DatasetDescription, recover
    from jupyterlab_hdh.ingestion import ingest as run_ingest
    from jupyterlab_hdh.store.models import Dataset

    oidc = _oidc_settings(
        oidc_issuer,
        oidc_client_id,
        oidc_client_secret_file,
        oidc_scopes,
        oidc_username_claim,
        oidc_groups_claim,
        oidc_role_map,
    )
    data_dir = _data_dir(ctx)
    from jupyterlab_hdh.guard.display import DisplayConfigError, DisplaySettings

    try:
        DisplaySettings.load(data_dir.root)  # a bad guard.toml stops the start, with its reason
    except DisplayConfigError as exc:
        raise click.ClickException(str(exc)) from None
    hub, done = init_installation(data_dir, actor="hdh-up")
    for line in done:
        _say(line)
    for p in recover(hub):
        _say(f"removed leftover {p}")
    with hub.sessions() as s:
        have_demo = s.scalar(select(Dataset).where(Dataset.name == DEMO_DATASET)) is not None
    if not have_demo:
        raw = data_dir.incoming / f"{DEMO_DATASET}-raw-{seed}-{patients}"
        if not (raw / "extract.json").exists():
            if raw.exists():
                from jupyterlab_hdh.ingestion import remove_tree

                remove_tree(raw)
            _say(f"generating a synthetic extract of {patients:,} patients (raw identifiers)")
            generate(raw, patients=patients, seed=seed, raw=True, progress=True)
        run_ingest(
            hub,
            raw,
            DEMO_DATASET,
            actor="hdh-up",
            progress=_say,
            description=DatasetDescription(
                title="Démonstration : extrait SNDS synthétique",
                description="Extrait synthétique au format SNDS (DCIR, PMSI MCO, ALD,"
                " causes de décès,"
                " pharmacovigilance, télésurveillance) : parcours cohérents, aucune donnée réelle.",
                synthetic=True,
                keywords=["SNDS", "DCIR", "PMSI", "synthétique", "démonstration"],
            ),
        )
    creds = _demo_credentials(hub)
    _demo_project(hub)
    hub.close()
    from jupyterlab_hdh.hub.run import run_embedded_hub

    if oidc is not None:
        click.echo(
            f"Hub login: single sign-on through {oidc.issuer} (the provider's groups give the"
            " HDH role); the demo passwords below are not used"
        )
    click.echo("Demo accounts (hub login: NAME + PASSWORD; control-plane API: Bearer TOKEN):")
    for name, c in creds.items():
        click.echo(f"  {name:<11} {c['role']:<16} {c['password']:<14} {c['token']}")
    code = run_embedded_hub(
        data_dir,
        host=host,
        port=port,
        api_port=api_port or port + 1,
        poll_interval=poll_interval,
        memory_limit=memory_limit,
        cpu_limit=cpu_limit,
        oidc=oidc,
        say=_say,
        echo=click.echo,
    )
    if code:
        sys.exit(code)
