"""What the command groups of ``hdh`` share: one-line errors, progress lines, JSON output,
the administrator the console acts as, and e-mailing the notifications a step wrote."""

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


#: the compute profiles a permit names (``governance.projects.COMPUTE_PROFILES``, kept equal by
#: a test): spelled here so that ``hdh --help`` loads no domain module
COMPUTE_PROFILES = ("cpu", "gpu", "spark")


def profile_option(help: str) -> Any:  # noqa: A002  (click's own keyword)
    """``--profile``, one of :data:`COMPUTE_PROFILES`, for the commands that set a permit's."""
    return click.option("--profile", type=click.Choice(COMPUTE_PROFILES), help=help)


def say(msg: str) -> None:
    """A progress line, on stderr (stdout is for results)."""
    click.echo(msg, err=True)


def emit(data: Any) -> None:
    """A result as indented JSON on stdout."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def admin() -> Any:
    """The operator at the console as an administrator (audit actor ``cli:<login>``). The CLI
    is the operator's console: whoever can run it can read the store and the keys anyway;
    the API is where roles are enforced per person, by bearer token."""
    from jupyterlab_hdh.cli_context import actor
    from jupyterlab_hdh.governance.projects import Actor

    return Actor.administrator(actor())


def mail_pending(ctx: click.Context) -> None:
    """E-mail the notifications a step wrote (when SMTP is configured); never fails the step."""
    from jupyterlab_hdh.cli_context import open_installation
    from jupyterlab_hdh.egress.notify import EmailConfigError, EmailSettings, send_pending

    hub = open_installation(ctx)
    try:
        settings = EmailSettings.load(hub.data_dir.root)
    except EmailConfigError as exc:
        click.echo(f"warning: e-mail not sent: {exc}", err=True)
        return
    if settings.enabled:
        with hub.sessions() as s:
            report = send_pending(s, settings)
        if report.error:
            click.echo(f"warning: e-mail not sent yet (will retry): {report.error}", err=True)
