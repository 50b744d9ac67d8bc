"""The names released files download under: readable, distinct within a request.

Owns :func:`download_names` (pure), used by the request views (``manager``) and the
release's downloads (``release``); the outbox itself stores ``<sha256>-<name>``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath


def download_names(paths: list[str]) -> list[str]:
    """The names the files of workspace ``paths`` download under, distinct, in order: each
    file's own name, or its path joined by ``_`` when another file has the same name (a
    ``-2``, ``-3``... before the extension should that still clash)."""
    own = [PurePosixPath(p).name for p in paths]
    clashing = {n for n, k in Counter(own).items() if k > 1}
    taken = {n for n in own if n not in clashing}
    out: list[str] = []
    for path, name in zip(paths, own, strict=True):
        if name in clashing:
            wanted = "_".join(PurePosixPath(path).parts)
            stem, suffix = PurePosixPath(wanted).stem, PurePosixPath(wanted).suffix
            name, k = wanted, 2
            while name in taken:
                name, k = f"{stem}-{k}{suffix}", k + 1
            taken.add(name)
        out.append(name)
    return out
