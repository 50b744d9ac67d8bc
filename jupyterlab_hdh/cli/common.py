"""What the command groups of ``hdh`` share: one-line errors, progress lines, JSON output."""

from __future__ import annotations

import json
from typing import Any

import click

from jupyterlab_hdh.errors import HdhError


def known_errors() -> tuple[type[BaseException], ...]:
    """Errors printed as one line (``Error: ...``), not a traceback: HDH's error vocabulary,
    and the notebook library's (``hdh.HDHError``, ``hdh.airlock.AirlockError``) for the
    commands that run in a sandbox."""
    from hdh.airlock import AirlockError
    from hdh.errors import HDHError

    return (HdhError, HDHError, AirlockError)


class HdhGroup(click.Group):
    """A group whose commands report domain errors as one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except known_errors() as exc:
            raise click.ClickException(str(exc)) from None


def say(msg: str) -> None:
    """A progress line, on stderr (stdout is for results)."""
    click.echo(msg, err=True)


def emit(data: Any) -> None:
    """A result as indented JSON on stdout."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
