"""``hdh register ...``: the public register, as files to publish anywhere.

Thin: the register's content is :mod:`jupyterlab_hdh.governance.register`; its pages are
the control plane's (``/register/``), rendered here too for a static copy.
"""

from __future__ import annotations

from pathlib import Path

import click

from jupyterlab_hdh.cli.common import HdhGroup, say
from jupyterlab_hdh.cli_context import open_installation


@click.group(cls=HdhGroup)
def register() -> None:
    """The public register of projects, datasets, decisions and releases."""


@register.command("export")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder (made if missing): register.json, the audit checkpoint and public key,"
    " and the pages in French and English",
)
@click.pass_context
def register_export(ctx: click.Context, out: Path) -> None:
    """Write the register as it is now: JSON, the latest signed audit checkpoint, its public
    key, and static HTML pages (fr/ and en/) to publish on any web server."""
    from jupyterlab_hdh.api.register_site import write_site
    from jupyterlab_hdh.governance import register as rg

    hub = open_installation(ctx)
    with hub.sessions() as s:
        snapshot = rg.snapshot(s, hub.data_dir)
    written = write_site(snapshot, out)
    say(f"register of {len(snapshot['projects'])} projects written to {out}")
    for path in written:
        click.echo(str(path))
