"""``hdh audit ...``: verify the audit chain, read the log with filters, and sign, export and
verify checkpoints (:mod:`jupyterlab_hdh.audit.checkpoint`) that someone outside the platform
checks with the public key alone."""

from __future__ import annotations

import json
from pathlib import Path
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
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also prove the log up to this signed checkpoint is the one that was signed",
)
@click.option(
    "--log",
    "log_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An export of the log (`hdh audit export`) to verify instead of the store:"
    " no installation needed",
)
@click.option(
    "--public-key",
    "public_key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The published public key (default: the installation's own)",
)
@click.pass_context
def audit_verify(
    ctx: click.Context,
    checkpoint_file: Path | None,
    log_file: Path | None,
    public_key_file: Path | None,
) -> None:
    """Recompute the hash chain; report the first broken link (exit status 1).

    With --checkpoint, also prove that the log up to it is the one that was signed (a
    rewrite that recomputed every hash shows there). With --log and --public-key too, the
    verification needs nothing of the platform: anyone holding the checkpoint, the public
    key and an export can run it."""
    if checkpoint_file is None:
        if log_file is not None or public_key_file is not None:
            raise click.UsageError("--log and --public-key go with --checkpoint")
        _verify_chain(ctx)
        return
    _verify_checkpoint(ctx, checkpoint_file, log_file, public_key_file)


def _verify_chain(ctx: click.Context) -> None:
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


def _verify_checkpoint(
    ctx: click.Context, checkpoint_file: Path, log_file: Path | None, public_key_file: Path | None
) -> None:
    from jupyterlab_hdh.audit import checkpoint as cp

    try:
        checkpoint = cp.parse_checkpoint(checkpoint_file.read_text(), str(checkpoint_file))
        if public_key_file is not None:
            public = cp.load_public_key(public_key_file.read_bytes(), str(public_key_file))
        else:
            keys = open_installation(ctx).data_dir.keys
            public = cp.signing_key(keys)[0].public_key()
        if log_file is not None:
            with log_file.open(encoding="utf-8") as fh:
                result = cp.verify_export((line.rstrip("\n") for line in fh), checkpoint, public)
        else:
            with open_installation(ctx).sessions() as s:
                result = cp.verify_export(cp.export_lines(s), checkpoint, public)
    except cp.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    where = f"{log_file}" if log_file is not None else "the store's log"
    if not result.ok:
        raise click.ClickException(
            f"{where} is not the log the checkpoint signed: {result.reason}"
            f" ({result.checked} events before it verified)"
        )
    click.echo(
        f"{where} matches the checkpoint of event {result.checkpoint_seq}"
        f" (signed {checkpoint['time']} by key {checkpoint['key_id']}): {result.checked} events"
        f" verified, {result.after} after it chained"
    )


@audit.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the checkpoint here (to publish it)",
)
@click.option("--as", "actor", default="admin", show_default=True, help="Who takes it")
@click.pass_context
def audit_checkpoint(ctx: click.Context, out: Path | None, actor: str) -> None:
    """Sign the audit log's head with the installation's Ed25519 key (made on first use).

    Publish the checkpoint and the public key (`hdh audit public-key`): with them and an
    export of the log (`hdh audit export`), anyone proves it was not rewritten."""
    from jupyterlab_hdh.audit import checkpoint as cp

    hub = open_installation(ctx)
    try:
        with hub.transaction() as s:
            checkpoint, made = cp.take(s, hub.data_dir.keys, actor=actor)
    except cp.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    text = json.dumps(checkpoint, indent=2) + "\n"
    kept = cp.keep(hub.data_dir.root, checkpoint)
    if out is not None:
        out.write_text(text)
    if made:
        _say(f"made the audit signing key {hub.data_dir.keys / cp.KEY_FILE} (mode 0600)")
    _say(f"checkpoint of event {checkpoint['seq']} kept in {kept}")
    click.echo(text, nl=False)


@audit.command("public-key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here")
@click.pass_context
def audit_public_key(ctx: click.Context, out: Path | None) -> None:
    """Print the public key that verifies this installation's checkpoints (PEM)."""
    from jupyterlab_hdh.audit import checkpoint as cp

    try:
        key, _ = cp.signing_key(open_installation(ctx).data_dir.keys)
    except cp.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    pem = cp.public_key_pem(key.public_key())
    if out is not None:
        out.write_text(pem)
        _say(f"public key written to {out}")
    click.echo(pem, nl=False)


@audit.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def audit_export(ctx: click.Context, out: Path) -> None:
    """Write the whole audit log as JSON Lines (one event per line, as stored), for
    `hdh audit verify --checkpoint FILE --log OUT --public-key KEY` anywhere."""
    from jupyterlab_hdh.audit import checkpoint as cp

    partial = out.with_name(f".{out.name}.partial")
    n = 0
    try:
        with open_installation(ctx).sessions() as s, partial.open("w", encoding="utf-8") as fh:
            for line in cp.export_lines(s):
                fh.write(line + "\n")
                n += 1
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    _say(f"exported {n} audit events to {out}")


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
