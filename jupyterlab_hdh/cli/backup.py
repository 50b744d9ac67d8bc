"""``hdh backup --out DIR`` and ``hdh restore DIR``: a whole installation in open formats.

Thin: the domain is :mod:`jupyterlab_hdh.backup.installation`. The passphrase that seals the
keys comes from ``--passphrase-file``, else ``HDH_BACKUP_PASSPHRASE``, else a prompt.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from jupyterlab_hdh.cli.common import say
from jupyterlab_hdh.cli_context import actor, data_dir, open_installation

PASSPHRASE_ENV = "HDH_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name

_passphrase_file = click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=f"a file whose first line is the passphrase (else ${PASSPHRASE_ENV}, else a prompt)",
)


def _passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        lines = path.read_text(encoding="utf-8").splitlines()
        text = lines[0] if lines else ""
    elif PASSPHRASE_ENV in os.environ:
        text = os.environ[PASSPHRASE_ENV]
    else:
        text = click.prompt(
            "Passphrase that seals the keys", hide_input=True, confirmation_prompt=confirm
        )
    if not text:
        raise click.UsageError("the passphrase is empty: the keys would not be protected")
    return text


@click.command("backup")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="a new or empty folder",
)
@_passphrase_file
@click.option(
    "--base-url",
    default="http://127.0.0.1:8001",
    show_default=True,
    help="the catalogue's public base URL, for its DCAT export",
)
@click.pass_context
def backup(ctx: click.Context, out: Path, passphrase_file: Path | None, base_url: str) -> None:
    """Back up the whole installation while it runs: the store as JSON Lines, the audit log
    with a signed checkpoint, datasets as Parquet, the catalogue as DCAT JSON-LD, the
    airlock's files, workspaces as tar, the keys sealed with a passphrase, and a manifest of
    every file's SHA-256 (docs/operations.md)."""
    from jupyterlab_hdh.backup.installation import backup as run

    passphrase = _passphrase(passphrase_file, confirm=True)
    done = run(open_installation(ctx), out, passphrase, actor=actor(), base_url=base_url, say=say)
    for path in done.skipped:
        say(f"not backed up (a link or a special file): {path}")
    click.echo(
        f"backup in {done.folder}: {done.files} files, {done.bytes} bytes, {done.rows} store"
        " rows"
        + (f", audit checkpoint of event {done.checkpoint_seq}" if done.checkpoint_seq else "")
    )


@click.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_passphrase_file
@click.pass_context
def restore(ctx: click.Context, folder: Path, passphrase_file: Path | None) -> None:
    """Restore a backup into this data directory and store, which must be empty (SQLite or
    PostgreSQL: --store-url). Everything is verified first; an altered backup is refused,
    naming what changed. Run it again to complete a restore that was interrupted."""
    from jupyterlab_hdh.backup.installation import restore as run

    passphrase = _passphrase(passphrase_file, confirm=False)
    target = data_dir(ctx)
    inst = run(folder, target, passphrase, actor=actor(), say=say)
    inst.close()
    store = "PostgreSQL" if target.store_url.startswith("postgres") else "SQLite"
    click.echo(f"restored {folder} into {target.root} (store: {store})")
    where = f"hdh --data-dir {target.root}" + (
        " --store-url <the same store URL>" if target.store_url_override else ""
    )
    say(f"start it with: {where} up (or serve)")
