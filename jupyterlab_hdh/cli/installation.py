"""``hdh init``: create an installation (data directory, keys, store) or check it."""

from __future__ import annotations

import click

from jupyterlab_hdh.cli_context import actor as _actor
from jupyterlab_hdh.cli_context import data_dir as _data_dir


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create (or upgrade) the data directory, the keys and the store."""
    from jupyterlab_hdh.context import init_installation

    hub, done = init_installation(_data_dir(ctx), actor=_actor())
    hub.close()
    for line in done or ["already initialised: nothing to do"]:
        click.echo(line)
    click.echo(f"data directory: {_data_dir(ctx).root}")
