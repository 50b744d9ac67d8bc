"""``hdh audit ...``: verify the audit chain, read the log with filters."""

from __future__ import annotations

import json
from typing import Any

import click

from jupyterlab_hdh.cli.common import HdhGroup
from jupyterlab_hdh.cli.common import say as _say
from jupyterlab_hdh.cli_context import open_installation

# --- audit ------------------------------------------------------------------------------------


@click.group(cls=HdhGroup)
def audit() -> None:
    """Read and verify the audit log."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Recompute the hash chain; report the first broken link (exit status 1)."""
    from jupyterlab_hdh.audit import verify

    with open_installation(ctx).sessions() as s:
        result = verify(s)
    if result.ok:
        click.echo(f"audit log intact: {result.checked} events verified")
    else:
        raise click.ClickException(
            f"audit log broken at event {result.broken_seq}: {result.reason}"
            f" ({result.checked} events before it verified)"
        )


def _moment(end: bool) -> Any:
    def convert(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        from jupyterlab_hdh.audit.query import parse_moment

        if value is None:
            return None
        try:
            return parse_moment(value, end=end)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


@audit.command("log")
@click.option("--user", help="Only events by, or about, this user")
@click.option("--project", help="Only events about this project (its members, sandboxes…)")
@click.option(
    "--action",
    "actions",
    multiple=True,
    help="Only this action (user.disable) or family (permit: every permit.*); repeatable",
)
@click.option(
    "--since", callback=_moment(False), help="From this ISO date or time (UTC unless offset)"
)
@click.option(
    "--until",
    callback=_moment(True),
    help="Up to this ISO date (the whole day) or time (UTC unless offset)",
)
@click.option(
    "--after", type=click.IntRange(0), default=0, help="Only events after this sequence number"
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--oldest-first", is_flag=True, help="In chain order (the oldest first)")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line")
@click.pass_context
def audit_log(
    ctx: click.Context,
    user: str | None,
    project: str | None,
    actions: tuple[str, ...],
    since: str | None,
    until: str | None,
    after: int,
    limit: int,
    oldest_first: bool,
    as_json: bool,
) -> None:
    """Print audit events, the newest first, one per line (filters combine)."""
    from jupyterlab_hdh.audit import query

    if since is not None and until is not None and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    where = query.AuditFilter(user, project, actions, since, until, after)
    with open_installation(ctx).sessions() as s:
        found = query.events(s, where, limit=limit, newest_first=not oldest_first)
        total = query.count(s, where) if len(found) == limit else len(found)
    for e in found:
        if as_json:
            click.echo(json.dumps(query.as_dict(e), ensure_ascii=False))
        else:
            details = "" if e.details == "{}" else " " + e.details
            if len(details) > 160:  # the whole event: --json
                details = details[:159] + "…"
            click.echo(f"#{e.seq} {e.ts[:19]}Z {e.actor} {e.action} {e.target}{details}")
    if not found:
        _say("no event matches")
    elif total > len(found):
        which = "oldest" if oldest_first else "newest"
        _say(f"showing the {len(found)} {which} of {total} events; --limit N to see more")
