"""The ``hdh`` command: every operation of the platform from a terminal.

Owns the ``hdh`` group and its options (``--data-dir``, ``--store-url``); the command groups
live one per module beside it and are imported only when used (``COMMANDS``), so that
``hdh --help`` and each command start fast: ``installation`` (init), ``data`` (data,
optout), ``catalogue``, ``audit``, ``users`` (user), ``projects`` (project, permit),
``applications`` (application: the access desk), ``hub`` (up, serve, token), ``egress``
(the airlock, with ``egress_check``), ``guard`` (the display budget), ``template`` (the
template studies, run where the data is). ``demo`` is the demo installation of ``hdh up``;
``common`` what they share: one-line errors, progress lines, JSON output, the administrator
the console acts as, e-mailing notifications; ``cli_context`` (beside this package) the
opened installation and the audit actor. Domain errors print as one line on stderr (exit
status 1), never a stack trace.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from jupyterlab_hdh import __version__
from jupyterlab_hdh.cli.common import HdhGroup
from jupyterlab_hdh.paths import DataDir

#: command name → ``module:attribute`` in this package, imported when the command is used
COMMANDS = {
    "application": "applications:application",
    "audit": "audit:audit",
    "backup": "backup:backup",
    "catalogue": "catalogue:catalogue",
    "data": "data:data",
    "egress": "egress:egress",
    "guard": "guard:guard",
    "init": "installation:init",
    "k8s": "k8s:k8s",
    "linkage": "linkage:linkage",
    "optout": "data:optout",
    "permit": "projects:permit",
    "project": "projects:project",
    "register": "register:register",
    "restore": "backup:restore",
    "serve": "hub:serve",
    "template": "template:template",
    "token": "hub:hub_token",
    "up": "hub:up",
    "user": "users:user",
    "workspace": "workspace:workspace",
}


class LazyGroup(HdhGroup):
    """The ``hdh`` group: its commands come from :data:`COMMANDS`, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (store, keys, datasets, outbox). Default: $HDH_DATA_DIR or ~/.hdh",
)
@click.option(
    "--store-url",
    default=None,
    help="SQLAlchemy URL of the store (default: SQLite in the data directory; or $HDH_STORE_URL)",
)
@click.version_option(__version__, prog_name="hdh")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, store_url: str | None) -> None:
    """HDH, the open Health Data Hub."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = DataDir.resolve(data_dir, store_url)
    root = ctx.obj["data_dir"].root
    blocking = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():  # a file where a folder must go
        what = f"{blocking} is a file, not a folder"
        if data_dir is not None:
            raise click.BadParameter(what, param_hint="'--data-dir'")
        raise click.UsageError(f"$HDH_DATA_DIR: {what}")
    if ctx.obj["data_dir"].store_url_override is not None:  # checked before any command uses it
        from jupyterlab_hdh.store.db import StoreError, sqlalchemy_url

        try:
            sqlalchemy_url(ctx.obj["data_dir"].store_url_override)
        except StoreError as exc:
            if store_url:
                raise click.BadParameter(str(exc), param_hint="'--store-url'") from None
            raise click.UsageError(f"$HDH_STORE_URL: {exc}") from None
