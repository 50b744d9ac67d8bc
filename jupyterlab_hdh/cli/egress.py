"""``hdh egress``: the airlock from the control-plane host's terminal.

Owns the ``egress`` click group added to ``hdh`` (``jupyterlab_hdh/cli.py``; what the two
share is ``cli_context``).
The CLI runs on the control-plane host as an operator: ``--as USER`` acts as
that user of the store (with their role, so every rule of the workflow still
applies: a member cannot review, a reviewer cannot download; an unknown or a
disabled user is refused); without it, the command acts as an administrator
(``cli:<login>``), who sees every request and may start a release or recover
one, but never votes or decides. Each command's help says who its ``--as`` is.

Domain errors are one line on stderr and exit status 1. ``--json`` prints the
JSON the REST API would return. ``hdh egress check FILE...`` is the offline
disclosure checker (``cli/egress_check.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click

from jupyterlab_hdh.cli.common import mail_pending as _mail


class EgressGroup(click.Group):
    """Reports airlock (and other domain) errors as one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from jupyterlab_hdh.errors import HdhError

        known: tuple[type[BaseException], ...] = (HdhError,)
        try:
            return super().invoke(ctx)
        except known as exc:
            raise click.ClickException(str(exc)) from None

    # ``check`` (engineer-facing, pulls in pandas) is imported only when it is used, so that
    # ``hdh`` itself starts fast.
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "check"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "check":
            from jupyterlab_hdh.cli.egress_check import check_command

            return check_command
        return super().get_command(ctx, cmd_name)


def _installation(ctx: click.Context) -> Any:
    from jupyterlab_hdh.cli_context import open_installation

    return open_installation(ctx)


def _actor(ctx: click.Context, user_name: str | None) -> Any:
    """The store user ``user_name`` (with their role), or the operator at the console."""
    from sqlalchemy import select

    from jupyterlab_hdh.cli_context import actor as console
    from jupyterlab_hdh.governance.projects import Actor
    from jupyterlab_hdh.store.models import User

    if user_name is None:
        return Actor.administrator(console())
    with _installation(ctx).sessions() as s:
        user = s.scalar(select(User).where(User.name == user_name))
        if user is None:
            raise click.ClickException(f"no user {user_name!r} (see `hdh user list`)")
        if user.disabled_at is not None:
            raise click.ClickException(f"user {user_name!r} is disabled (see `hdh user enable`)")
        return Actor.of(user)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _show(view: dict[str, Any], as_json: bool) -> None:
    from hdh.airlock import describe

    if as_json:
        _emit(view)
    else:
        click.echo(describe(view))


def as_option(who: str, *, required: bool = False) -> Any:
    """``--as USER``: the user of the store the command acts as; ``who`` says who that is."""
    return click.option("--as", "as_user", metavar="USER", required=required, help=who)


REVIEWER = "A reviewer of the request"
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON")


@click.group(cls=EgressGroup)
def egress() -> None:
    """The airlock: export requests, reviews and releases."""


@egress.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@as_option("The request's author, a member of the project", required=True)
@click.option("--project", help="Project of a new request")
@click.option("--title", help="Title of a new request")
@click.option("--request", "request_id", type=click.IntRange(1), help="Add to this draft instead")
@click.option(
    "--role",
    type=click.Choice(["output", "supporting", "code"]),
    default="output",
    show_default=True,
    help="Role of the PATHs",
)
@click.option("--code", "code", multiple=True, metavar="PATH", help="A code file (repeatable)")
@click.option("--supporting", "supporting", multiple=True, metavar="PATH", help="A supporting file")
@click.option("--context", "context_json", help="JSON object: population, variables, ...")
@click.option("--controls", default="", help="Disclosure controls applied")
@click.option("--draft", is_flag=True, help="Add the files but do not submit yet")
@json_option
@click.pass_context
def submit(
    ctx: click.Context,
    paths: tuple[str, ...],
    as_user: str,
    project: str | None,
    title: str | None,
    request_id: int | None,
    role: str,
    code: tuple[str, ...],
    supporting: tuple[str, ...],
    context_json: str | None,
    controls: str,
    draft: bool,
    as_json: bool,
) -> None:
    """Submit workspace files (PATHs relative to the project workspace) for review."""
    from jupyterlab_hdh.egress import manager

    if (request_id is None) == (project is None):
        raise click.UsageError("give --project (and --title) for a new request, or --request ID")
    context = None
    if context_json:
        try:
            context = json.loads(context_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--context") from None
    actor = _actor(ctx, as_user)
    hub = _installation(ctx)
    with hub.transaction() as s:
        if request_id is None:
            assert project is not None
            from jupyterlab_hdh.egress.settings import load_settings

            quotas = load_settings(hub.data_dir).quotas  # airlock.toml, as the API does
            request_id = manager.create_request(
                s, project, title=title or paths[0], actor=actor, quotas=quotas
            ).id
        files = [(p, role) for p in paths]
        files += [(p, "code") for p in code] + [(p, "supporting") for p in supporting]
        for path, file_role in files:
            manager.add_file(
                s,
                hub.data_dir,
                request_id,
                path,
                role=file_role,
                actor=actor,
                context=context if file_role == role else None,
                controls=controls if file_role == role else "",
            )
        if not draft:
            manager.submit(s, hub.data_dir, request_id, actor=actor)
        view = manager.get_request(s, request_id, actor=actor)
    _mail(ctx)
    _show(view, as_json)


@egress.command("list")
@as_option("See the requests as this user (default: the operator, who sees them all)")
@click.option("--state", help="Only requests in this state")
@click.option("--project", help="Only this project's requests")
@json_option
@click.pass_context
def list_requests(
    ctx: click.Context, as_user: str | None, state: str | None, project: str | None, as_json: bool
) -> None:
    """The requests you (or USER) may see, newest first."""
    from jupyterlab_hdh.egress import manager

    actor = _actor(ctx, as_user)
    with _installation(ctx).sessions() as s:
        rows = manager.list_requests(s, actor=actor, state=state, project=project)
    if as_json:
        _emit(rows)
        return
    for r in rows:
        click.echo(
            f"#{r['id']}\t{r['project']}\t{r['state']}\t{r['author']}\t{r['files']} file(s)\t"
            f"{r['title']}"
        )


@egress.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@as_option("See the request as this user (default: the operator)")
@json_option
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the reviewer page (inert HTML, no script) to this file",
)
@click.pass_context
def show(
    ctx: click.Context,
    request_id: int,
    as_user: str | None,
    as_json: bool,
    html_out: Path | None,
) -> None:
    """A request as you (or USER) may see it: files, checks, votes, comments."""
    from jupyterlab_hdh.egress import manager
    from jupyterlab_hdh.egress.render import review_page
    from jupyterlab_hdh.egress.snapshot import blob_path

    actor = _actor(ctx, as_user)
    hub = _installation(ctx)
    with hub.sessions() as s:
        view = manager.get_request(s, request_id, actor=actor)
    if html_out is not None:

        def read(sha256: str) -> bytes | None:
            try:
                return blob_path(hub.data_dir.egress_blobs, sha256).read_bytes()
            except (OSError, ValueError):
                return None

        html_out.write_text(review_page(view, read), encoding="utf-8")
        click.echo(f"reviewer page written to {html_out}", err=True)
    _show(view, as_json)


@egress.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@click.argument("path")
@click.argument("decision", type=click.Choice(["approve", "changes", "reject"]))
@as_option(REVIEWER, required=True)
@click.option("--exception", "exception_reason", help="Reason to approve despite failed checks")
@json_option
@click.pass_context
def vote(
    ctx: click.Context,
    request_id: int,
    path: str,
    decision: str,
    as_user: str,
    exception_reason: str | None,
    as_json: bool,
) -> None:
    """Vote on one output file of a request (final; two reviewers per file)."""
    from jupyterlab_hdh.egress import manager

    actor = _actor(ctx, as_user)
    with _installation(ctx).transaction() as s:
        v = manager.vote(
            s, request_id, path, decision, actor=actor, exception_reason=exception_reason
        )
        out = {"request": request_id, "path": path, "decision": v.decision, "sha256": v.sha256}
        out["state"] = manager.get_request(s, request_id, actor=actor, provenance=False)["state"]
    _mail(ctx)
    if as_json:
        _emit(out)
    else:
        click.echo(f"{as_user} voted {decision} on {path}; request #{request_id} is {out['state']}")


def _decision(name: str, needs_reason: bool) -> Any:
    reason_help = {
        "return": "What to change (shown to the requester)",
        "reject": "Why (shown to the requester)",
        "withdraw": "Why (recorded with the request)",
    }

    def reason_option(f: Any) -> Any:
        if name not in reason_help:  # an approval gives no reason
            return f
        return click.option("--reason", required=needs_reason, default="", help=reason_help[name])(
            f
        )

    @click.argument("request_id", type=click.IntRange(1), metavar="ID")
    @as_option("The request's author" if name == "withdraw" else REVIEWER, required=True)
    @reason_option
    @json_option
    @click.pass_context
    def command(
        ctx: click.Context, request_id: int, as_user: str, as_json: bool, reason: str = ""
    ) -> None:
        from jupyterlab_hdh.egress import manager

        actor = _actor(ctx, as_user)
        with _installation(ctx).transaction() as s:
            if name == "approve":
                manager.approve(s, request_id, actor=actor)
            elif name == "return":
                manager.return_request(s, request_id, actor=actor, reason=reason)
            elif name == "reject":
                manager.reject(s, request_id, actor=actor, reason=reason)
            else:
                manager.withdraw(s, request_id, actor=actor, reason=reason)
            view = manager.get_request(s, request_id, actor=actor, provenance=False)
        _mail(ctx)
        _show(view, as_json)

    command.__doc__ = {
        "approve": "Approve a reviewed request (every output has two approvals).",
        "return": "Return a reviewed request to its author for changes.",
        "reject": "Reject a reviewed request for good.",
        "withdraw": "Withdraw your own request before a decision.",
    }[name]
    return egress.command(name)(command)


for _name, _needs_reason in (
    ("approve", False),
    ("return", True),
    ("reject", True),
    ("withdraw", False),
):
    _decision(_name, _needs_reason)


@egress.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@click.argument("body")
@as_option("A member of the project or a reviewer of the request", required=True)
@click.option("--private", is_flag=True, help="Reviewers only")
@click.option("--file", "path", help="About this file of the request")
@click.pass_context
def comment(
    ctx: click.Context, request_id: int, body: str, as_user: str, private: bool, path: str | None
) -> None:
    """Comment on a request (members and reviewers; private: reviewers only)."""
    from jupyterlab_hdh.egress import manager

    actor = _actor(ctx, as_user)
    with _installation(ctx).transaction() as s:
        manager.comment(
            s,
            request_id,
            body,
            actor=actor,
            visibility="private" if private else "public",
            path=path,
        )
    click.echo(f"comment added to request #{request_id}")


@egress.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@as_option(f"{REVIEWER} (default: the operator)")
@json_option
@click.pass_context
def release(ctx: click.Context, request_id: int, as_user: str | None, as_json: bool) -> None:
    """Release an approved request to the outbox (exactly once; resumable by `recover`)."""
    from jupyterlab_hdh.egress import manager
    from jupyterlab_hdh.egress import release as rel

    actor = _actor(ctx, as_user)
    hub = _installation(ctx)
    done = rel.release(hub, request_id, actor=actor)
    _mail(ctx)
    with hub.sessions() as s:
        view = manager.get_request(s, request_id, actor=actor, provenance=False)
    if as_json:
        _emit({**view, "release_complete": done})
        return
    click.echo(f"request #{request_id} is {view['state']}")
    for f in view["released"]:
        click.echo(f"  {f['filename']}\t{'done' if f['done'] else 'pending'}")


@egress.command()
@json_option
@click.pass_context
def recover(ctx: click.Context, as_json: bool) -> None:
    """Finish every interrupted release and remove stray temporary copies."""
    from jupyterlab_hdh.egress import release as rel

    outcomes = rel.recover(_installation(ctx))
    _mail(ctx)
    if as_json:
        _emit([{"request": rid, "outcome": what} for rid, what in outcomes])
        return
    for rid, what in outcomes:
        click.echo(f"#{rid}\t{what}")
    if not outcomes:
        click.echo("nothing to recover")
    if any(what.startswith("failed") for _, what in outcomes):
        raise click.ClickException("some releases could not be finished (see above)")


@egress.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@click.argument("name", required=False)
@as_option("A member of the project", required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder (or, with NAME, a file path) to write to",
)
@click.option("--force", is_flag=True, help="Overwrite existing files")
@click.pass_context
def download(
    ctx: click.Context,
    request_id: int,
    name: str | None,
    as_user: str,
    output: Path,
    force: bool,
) -> None:
    """Copy released files of a request (all, or NAME) out of the outbox.

    Each is saved under its own name (its workspace path joined by _ when two released
    files share a name; see `hdh egress show ID`); NAME is that name or the outbox name.
    """
    from jupyterlab_hdh.egress import release as rel

    actor = _actor(ctx, as_user)
    hub = _installation(ctx)
    with hub.sessions() as s:
        names = (
            [name] if name else [f["name"] for f in rel.released_files(s, request_id, actor=actor)]
        )
        if not names:
            raise click.ClickException(f"request #{request_id} has no released file")
        sources = [
            rel.released_download(s, hub.data_dir, request_id, n, actor=actor) for n in names
        ]
    single_file = name is not None and not output.is_dir()
    for source, filename in sources:
        dest = output if single_file else output / filename
        if dest.exists() and not force:
            raise click.ClickException(f"{dest} exists (use --force to overwrite)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        click.echo(str(dest))


@egress.command()
@as_option("Whose notifications", required=True)
@click.option("--unread", is_flag=True, help="Only unread ones")
@click.option("--mark-read", is_flag=True, help="Then mark them read")
@json_option
@click.pass_context
def notifications(
    ctx: click.Context, as_user: str, unread: bool, mark_read: bool, as_json: bool
) -> None:
    """A user's airlock notifications, newest first."""
    from jupyterlab_hdh.egress import manager

    actor = _actor(ctx, as_user)
    with _installation(ctx).transaction() as s:
        rows = manager.notifications(s, actor.name, unread_only=unread)
        if mark_read and rows:
            manager.mark_read(s, actor.name, [r["id"] for r in rows])
    if as_json:
        _emit(rows)
        return
    for r in rows:
        flag = " " if r["read_at"] else "*"
        click.echo(f"{flag} {r['created_at'][:19]}  #{r['request_id']}  {r['subject']}")


@egress.command("send-mail")
@json_option
@click.pass_context
def send_mail(ctx: click.Context, as_json: bool) -> None:
    """E-mail pending notifications now (SMTP from smtp.toml or HDH_SMTP_*)."""
    from jupyterlab_hdh.egress.notify import EmailSettings, send_pending

    hub = _installation(ctx)
    settings = EmailSettings.load(hub.data_dir.root)
    if not settings.enabled:
        raise click.ClickException(
            "e-mail is off: configure [smtp] in smtp.toml of the data directory or HDH_SMTP_HOST"
        )
    with hub.sessions() as s:
        report = send_pending(s, settings)
    if as_json:
        _emit(report.to_dict())
    else:
        click.echo(f"sent {len(report.sent)}, pending {len(report.pending)}")
        for user in sorted(set(report.no_address)):
            click.echo(f"no e-mail address for {user}", err=True)
    if report.error:
        raise click.ClickException(report.error)


@egress.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the airlock's settings in force (<data dir>/airlock.toml over the defaults)."""
    from jupyterlab_hdh.egress.settings import config_path, load_settings

    data_dir = ctx.find_root().obj["data_dir"]
    settings = load_settings(data_dir)
    path = config_path(data_dir)
    click.echo(f"# {path if path.exists() else 'defaults (no ' + str(path) + ')'}", err=True)
    click.echo(json.dumps(settings.to_dict(), indent=2, ensure_ascii=False))
