"""What the Job that archives a project's workspace claim runs, in the project's namespace.

``python -m jupyterlab_hdh.k8s.workspace_job ACTION ROOT``, as the project's uid, with the
workspace claim mounted at ``ROOT`` and no network (the namespace's default-deny policy):

* ``archive``: every file and folder made read-only (never through a link), the manifest
  (every file's size and SHA-256) written into the claim at ``.hdh-archive/manifest.jsonl``
  (a name HDH keeps for itself, left out of the manifest);
* ``reopen``: owner write given back, the kept manifest removed;
* ``verify``: the files compared with the kept manifest.

The last line printed is a JSON object, the result the sweep reads from the pod's log
(:mod:`jupyterlab_hdh.k8s.workspaces`): the totals and the manifest's digest (which the
control plane records and audits), the changes found, or the entries it could not make
read-only. Standard library only (with :mod:`jupyterlab_hdh.workspace_files`): it runs in
any of HDH's images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jupyterlab_hdh.workspace_files import (
    differences,
    digest_of,
    let_owner_read,
    manifest,
    set_writable,
    totals,
)

#: the folder of the claim where the archive's manifest is kept, left out of the manifest
KEPT = ".hdh-archive"
MANIFEST = "manifest.jsonl"
ACTIONS = ("archive", "reopen", "verify")
#: at most this many paths are named in a result (a count says how many there were)
NAMED = 200


class JobError(Exception):
    """The workspace cannot be handled as asked (no manifest to verify against...)."""


def _remove_kept(root: Path) -> None:
    kept = root / KEPT
    if kept.is_symlink() or kept.is_file():
        kept.unlink()
    elif kept.is_dir():
        set_writable(kept, True)
        shutil.rmtree(kept)


def _named(paths: list[str]) -> dict[str, Any]:
    return {"paths": paths[:NAMED], "count": len(paths)}


def archive(root: Path) -> dict[str, Any]:
    let_owner_read(root)
    top = os.stat(root)
    if top.st_uid == os.geteuid() and not top.st_mode & stat.S_IWUSR:  # a retried archive
        os.chmod(root, stat.S_IMODE(top.st_mode) | stat.S_IWUSR)
    _remove_kept(root)  # a leftover of an interrupted archive (or the person's own)
    (root / KEPT).mkdir(mode=0o700)
    refused: list[str] = []
    set_writable(root, False, skip={KEPT}, refused=refused)
    entries, digest = manifest(root, skip={KEPT})
    kept = root / KEPT / MANIFEST
    kept.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    kept.chmod(0o444)
    (root / KEPT).chmod(0o555)
    return {"action": "archive", **totals(entries, digest), "not_read_only": _named(refused)}


def reopen(root: Path) -> dict[str, Any]:
    refused: list[str] = []
    set_writable(root, True, skip={KEPT}, refused=refused)
    _remove_kept(root)
    return {"action": "reopen", "not_writable": _named(refused)}


def verify(root: Path) -> dict[str, Any]:
    path = root / KEPT / MANIFEST
    try:
        kept = [json.loads(line) for line in path.read_text().splitlines()]
    except FileNotFoundError:
        raise JobError(f"{path} is missing: the workspace was not archived here") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"{path} cannot be read: {exc}") from None
    changes = differences(kept, manifest(root, skip={KEPT})[0])
    return {"action": "verify", "kept_sha256": digest_of(kept), "changes": _named(changes)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyterlab_hdh.k8s.workspace_job")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("root", type=Path, help="where the workspace claim is mounted")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        if not root.is_dir() or root.is_symlink():
            raise JobError(f"{root} is not the workspace claim's folder")
        result = {"archive": archive, "reopen": reopen, "verify": verify}[args.action](root)
    except (JobError, OSError) as exc:
        print(json.dumps({"action": args.action, "error": str(exc)}))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
