"""Test helpers: catalogue rows without files, for tests that do not mount data."""

from __future__ import annotations

from jupyterlab_hdh.store.models import Dataset, DatasetVersion


def fake_version(hub, name: str = "snds", number: int = 1) -> None:
    """A current ``name`` vN in the catalogue, without files (much faster than ingesting)."""
    with hub.transaction() as s:
        dataset = s.query(Dataset).filter_by(name=name).one_or_none()
        if dataset is None:
            dataset = Dataset(name=name)
            s.add(dataset)
            s.flush()
        s.add(
            DatasetVersion(
                dataset_id=dataset.id,
                number=number,
                status="current",
                created_by="test",
                source="fake",
                source_sha256="0" * 64,
                content_sha256=f"{number:064d}",
                key_fingerprint="0" * 32,
                optout_seq=0,
                record={},
                manifest={},
                quality={},
            )
        )
