"""``hdh workspace ...``: the workspaces of projects whose permit ended (archive, retention).

Thin: the domain is :mod:`jupyterlab_hdh.governance.retention`. The control plane sweeps on
its own (every minute); ``hdh workspace sweep`` does it now, e.g. from cron without ``hdh up``.
"""

from __future__ import annotations

import click

from jupyterlab_hdh.cli.common import HdhGroup, say
from jupyterlab_hdh.cli_context import actor, open_installation


@click.group(cls=HdhGroup)
def workspace() -> None:
    """Project workspaces: archived read-only when the permit ends, purged after retention."""


@workspace.command("sweep")
@click.pass_context
def workspace_sweep(ctx: click.Context) -> None:
    """Archive the workspaces of projects with no active permit, reopen renewed ones, and
    list the archives past their retention period."""
    from jupyterlab_hdh.governance import retention

    hub = open_installation(ctx)
    with hub.transaction() as s:
        outcomes = retention.sweep(s, hub.data_dir, actor=actor())
    for o in outcomes:
        click.echo(f"{o.project}: {o.action} {o.detail}")
    if not outcomes:
        say("nothing to archive, reopen or purge")


@workspace.command("list")
@click.pass_context
def workspace_list(ctx: click.Context) -> None:
    """The archived workspaces: since when, until when, what they hold."""
    from jupyterlab_hdh.governance import retention

    hub = open_installation(ctx)
    folder = hub.data_dir.workspaces / retention.ARCHIVE_DIR
    slugs = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    for slug in slugs:
        m = retention.archive_of(hub.data_dir, slug)
        if m is not None:
            click.echo(
                f"{slug}\tarchived {m['archived_at']}\tkept until {m['until']}"
                f"\t{m['files']} files, {m['bytes']} bytes\t{m['reason']}"
                + (f"\tKubernetes claim {m[retention.CLAIM]}" if retention.on_claim(m) else "")
            )
    if not slugs:
        say("no archived workspace")


@workspace.command("verify")
@click.argument("slug")
@click.pass_context
def workspace_verify(ctx: click.Context, slug: str) -> None:
    """Check that an archived workspace is as it was archived (every file's SHA-256)."""
    from jupyterlab_hdh.governance import retention

    changes = retention.verify(open_installation(ctx).data_dir, slug)
    if changes:
        for line in changes:
            click.echo(line)
        raise click.ClickException(f"the archive of {slug} changed ({len(changes)} entries)")
    click.echo(f"the archive of {slug} is as it was archived")


@workspace.command("purge")
@click.argument("slug")
@click.pass_context
def workspace_purge(ctx: click.Context, slug: str) -> None:
    """Delete an archived workspace whose retention period is over (audited first)."""
    from jupyterlab_hdh.governance import retention

    hub = open_installation(ctx)
    with hub.transaction() as s:
        marker = retention.purge(s, hub.data_dir, slug, actor=actor())
    retention.remove(hub.data_dir, slug)
    click.echo(
        f"workspace of {slug} purged ({marker['files']} files, kept until {marker['until']})"
    )
