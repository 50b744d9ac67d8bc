"""The catalogue over the store: which records exist, lookup, search and DCAT export.

Owns reading catalogue records from dataset versions and keeping one search
index per catalogue state (rebuilt when a version is added).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jupyterlab_hdh.catalogue.dcat import to_jsonld
from jupyterlab_hdh.catalogue.records import DatasetRecord
from jupyterlab_hdh.catalogue.search import Hit, SearchIndex
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.store.models import Dataset, DatasetVersion


class NotInCatalogue(HdhError, LookupError):
    """No such dataset or version."""

    http_status = 404


def records(session: Session, *, current_only: bool = True) -> list[DatasetRecord]:
    query = select(DatasetVersion).join(Dataset).order_by(Dataset.name, DatasetVersion.number)
    if current_only:
        query = query.where(DatasetVersion.status == "current")
    return [DatasetRecord.model_validate(v.record) for v in session.scalars(query)]


def version_row(session: Session, name: str, version: str | None = None) -> DatasetVersion:
    query = select(DatasetVersion).join(Dataset).where(Dataset.name == name)
    if version is None:
        query = query.where(DatasetVersion.status == "current")
    else:
        if not version.startswith("v") or not version[1:].isdigit():
            raise NotInCatalogue(
                f"no version {version!r} of dataset {name!r} (versions are v1, v2…)"
            )
        query = query.where(DatasetVersion.number == int(version[1:]))
    row = session.scalar(query)
    if row is None:
        what = f"version {version} of dataset {name!r}" if version else f"dataset {name!r}"
        raise NotInCatalogue(f"no {what} in the catalogue")
    return row


def get_record(session: Session, name: str, version: str | None = None) -> DatasetRecord:
    return DatasetRecord.model_validate(version_row(session, name, version).record)


def versions(session: Session, name: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(DatasetVersion)
        .join(Dataset)
        .where(Dataset.name == name)
        .order_by(DatasetVersion.number)
    ).all()
    if not rows:
        raise NotInCatalogue(f"no dataset {name!r} in the catalogue")
    return [
        {
            "version": r.label,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
            "records": r.record.get("records"),
            "individuals": r.record.get("individuals"),
            "content_sha256": r.content_sha256,
        }
        for r in rows
    ]


class Catalogue:
    """Search and export over the current records, with the index cached per catalogue state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[int, int] | None = None
        self._index: SearchIndex | None = None

    def _index_for(self, session: Session) -> SearchIndex:
        state = session.execute(
            select(
                func.count(DatasetVersion.id), func.coalesce(func.max(DatasetVersion.id), 0)
            ).where(DatasetVersion.status == "current")
        ).one()
        key = (int(state[0]), int(state[1]))
        with self._lock:
            if self._index is None or self._state != key:
                self._index = SearchIndex(records(session))
                self._state = key
            return self._index

    def search(self, session: Session, query: str, limit: int = 50) -> list[Hit]:
        return self._index_for(session).search(query, limit)

    def dcat(self, session: Session, base_url: str) -> dict[str, Any]:
        return to_jsonld(records(session), base_url)
