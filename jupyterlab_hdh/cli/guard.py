"""``hdh guard``: the guarded display from the operator's terminal.

Owns the ``guard`` click group added to ``hdh`` (``jupyterlab_hdh/cli.py``):
``hdh guard display`` shows what each person was shown today (from the counts
the guard writes to the audit log), their budget and whether the alert was
raised; ``hdh guard raise-budget USER --by 50M`` records an administrator's
raise for today (audited ``display.budget_raise``), which a running guard
picks up within seconds.
"""

from __future__ import annotations

import json

import click


def _installation(ctx: click.Context):  # type: ignore[no-untyped-def]
    from jupyterlab_hdh.cli_context import open_installation

    return open_installation(ctx)


def _settings(ctx: click.Context):  # type: ignore[no-untyped-def]
    from jupyterlab_hdh.guard.display import DisplayConfigError, DisplaySettings

    try:
        return DisplaySettings.load(_installation(ctx).data_dir.root)
    except DisplayConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    from jupyterlab_hdh.units import parse_size

    try:
        n = parse_size(value, "--by")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if n <= 0:
        raise click.BadParameter("--by must be a positive size, e.g. 50M")
    return n


@click.group("guard")
def guard() -> None:
    """The guarded display: what each person was shown, and their daily budget."""


@guard.command("display")
@click.option("--day", default=None, help="UTC day YYYY-MM-DD [default: today]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@click.pass_context
def display(ctx: click.Context, day: str | None, as_json: bool) -> None:
    """Bytes of sandbox output shown to each person (written counts), budget, alert."""
    from datetime import date

    from jupyterlab_hdh.guard.display import day_report
    from jupyterlab_hdh.units import human

    if day is not None:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise click.BadParameter(
                f"{day!r} is not a day (YYYY-MM-DD)", param_hint="--day"
            ) from None
    settings = _settings(ctx)
    rows = day_report(_installation(ctx), day)
    for r in rows:
        r["budget"] = settings.daily_budget + r["raised"]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"nothing shown yet (counts are written every {settings.flush_seconds:g} s)")
        return
    for r in rows:
        flag = "  OVER BUDGET (alert raised)" if r["shown"] >= r["budget"] else ""
        per = ", ".join(f"{p} {human(n)}" for p, n in r["projects"].items())
        click.echo(
            f"{r['day']}  {r['user']}: {human(r['shown'])} of {human(r['budget'])}"
            + (f" ({per})" if per else "")
            + flag
        )


@guard.command("raise-budget")
@click.argument("user")
@click.option("--by", "nbytes", required=True, callback=_size, help="e.g. 50M, 1G")
@click.pass_context
def raise_budget_command(ctx: click.Context, user: str, nbytes: int) -> None:
    """Raise USER's display budget for today (UTC) by a size; the guard applies it at once."""
    from sqlalchemy import select

    from jupyterlab_hdh.cli_context import actor as _actor
    from jupyterlab_hdh.guard.display import day_report, raise_budget
    from jupyterlab_hdh.store.models import User
    from jupyterlab_hdh.units import human

    hub = _installation(ctx)
    with hub.sessions() as s:
        if s.scalar(select(User.id).where(User.name == user)) is None:
            raise click.ClickException(f"no user {user!r} in this installation")
    day = raise_budget(hub, user=user, nbytes=nbytes, by=_actor())
    total = _settings(ctx).daily_budget + sum(
        r["raised"] for r in day_report(hub, day) if r["user"] == user
    )
    click.echo(f"{user}'s display budget for {day} raised by {human(nbytes)} (now {human(total)})")
