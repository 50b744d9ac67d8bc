"""The HDH data directory: one folder holding the store, keys, datasets and outbox.

Owns where things live. Every command works on one data directory, chosen by
``--data-dir``, else ``HDH_DATA_DIR``, else ``~/.hdh``. The store URL defaults
to a SQLite file inside it and can point to PostgreSQL (``--store-url`` or
``HDH_STORE_URL``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "HDH_DATA_DIR"
STORE_URL_ENV = "HDH_STORE_URL"
#: The folder of linked cohort tables under ``datasets/`` (never a dataset name).
LINKAGE_FOLDER = ".linkage"
#: A data directory a restore is filling, or that a killed restore left (``hdh restore``
#: again completes it): no command opens it meanwhile.
RESTORE_MARKER = "RESTORING"


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".hdh"


@dataclass(frozen=True)
class DataDir:
    """Paths of one HDH installation."""

    root: Path
    store_url_override: str | None = None

    @classmethod
    def resolve(cls, root: str | Path | None = None, store_url: str | None = None) -> DataDir:
        path = Path(root).expanduser() if root else default_data_dir()
        return cls(path.absolute(), store_url or os.environ.get(STORE_URL_ENV) or None)

    @property
    def store_url(self) -> str:
        return self.store_url_override or f"sqlite:///{self.root / 'hdh.sqlite'}"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def staging(self) -> Path:
        """Where ingestion writes a version before it is moved into place."""
        return self.root / "staging"

    @property
    def incoming(self) -> Path:
        """Where data controllers drop raw extracts for the API to ingest."""
        return self.root / "incoming"

    @property
    def outbox(self) -> Path:
        """Released airlock files: ``<request id>/<sha256>-<name>`` (``egress.release``)."""
        return self.root / "outbox"

    @property
    def workspaces(self) -> Path:
        """Project workspaces: ``<project>/`` is what that project's sandboxes write."""
        return self.root / "workspaces"

    def workspace(self, project: str) -> Path:
        return self.workspaces / project

    @property
    def review_workspaces(self) -> Path:
        """Reviewers' own workspaces: ``<user>/`` is ``/workspace`` of their ``review`` server."""
        return self.root / "review-workspaces"

    def review_workspace(self, user: str) -> Path:
        return self.review_workspaces / user

    @property
    def egress_blobs(self) -> Path:
        """Immutable, content-addressed snapshots of airlock files: ``<sha256>``."""
        return self.root / "egress" / "blobs"

    def dataset_version_dir(self, dataset: str, version: str) -> Path:
        return self.datasets / dataset / version

    @property
    def linkage(self) -> Path:
        """Linked cohort tables (``jupyterlab_hdh.linkage``), beside the dataset versions (so
        a cluster's datasets volume carries them) in a folder no dataset can be named."""
        return self.datasets / LINKAGE_FOLDER

    def linkage_dir(self, permit_id: int) -> Path:
        """``permit-<id>/``: the linked tables of one permit, mounted read-only at
        ``/data/linkage`` in its project's sandboxes while it is active."""
        return self.linkage / f"permit-{int(permit_id)}"

    def create(self) -> None:
        """Create the folders (owner-only permissions). Idempotent."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in (self.keys, self.datasets, self.staging, self.incoming, self.outbox):
            sub.mkdir(exist_ok=True, mode=0o700)
