"""Linkage of a study's own cohort to the hub's pseudonyms (``jupyterlab_hdh.linkage``), on
both stores: match counts per identifier quality, a linked table without identifier, the
source deleted after the commit; every refusal leaves nothing written and the source kept;
the linked table reaches only the sandboxes of the permit's project while it is active."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from jupyterlab_hdh import linkage as lk
from jupyterlab_hdh.data.pseudonymise import pseudonymise_one
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.hub.plan import project_plan
from jupyterlab_hdh.store.models import AuditEvent, Linkage
from tests.governance.conftest import CONTROLLER

RESEARCHER = pj.Actor("alice", "researcher")


def _nir(body: str) -> str:
    """A valid 15-character NIR from its 13 characters (Corsica's 2A/2B allowed)."""
    digits = body.replace("2A", "19").replace("2B", "18")
    return f"{body}{97 - int(digits) % 97:02d}"


def _wrong_key(nir: str) -> str:
    return f"{nir[:13]}{(int(nir[13:]) + 1) % 100:02d}"


#: persons who are in no dataset (valid NIRs, with or without their key)
STRANGERS = [_nir("1850775123456"), _nir("2990199000001"), _nir("170052A123456")]


@pytest.fixture
def persons(raw_extract: Path) -> list[str]:
    """Raw NIRs of persons of the ingested extract (their own NIR: BEN_NIR_ANO)."""
    table = pq.read_table(raw_extract / "IR_BEN_R.parquet", columns=["BEN_NIR_ANO"])
    return sorted(set(table["BEN_NIR_ANO"].to_pylist()))[:8]


@pytest.fixture
def permitted(ingested):
    """cohort-2027 holds an active permit on snds v1; returns (hub, permit id)."""
    with ingested.transaction() as s:
        permit = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice", "bob"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=CONTROLLER,
        )
        permit_id = permit.id
    return ingested, permit_id


def _csv(path: Path, rows: list[tuple[str, str]], header: str = "subject,nir") -> Path:
    path.write_text(header + "\n" + "".join(f"{s},{n}\n" for s, n in rows), encoding="utf-8")
    return path


def _run(hub, permit_id: int, source: Path, name: str = "cohort", **kw):
    with hub.transaction() as s:
        return lk.run_linkage(
            s,
            hub.data_dir,
            permit_id,
            name,
            source,
            keys=hub.keys,
            actor=kw.pop("actor", CONTROLLER),
            **kw,
        )


def _cohort(tmp_path: Path, persons: list[str]) -> tuple[Path, dict[str, str | None]]:
    """4 persons with their key, 3 without (13 characters), 3 strangers, 1 missing."""
    rows = [(f"S{i:03d}", nir) for i, nir in enumerate(persons[:4])]
    rows += [(f"S{i:03d}", f" {nir[:13]} ") for i, nir in enumerate(persons[4:7], start=4)]
    rows += [("X-1", STRANGERS[0]), ("X-2", STRANGERS[1][:13]), ("X-3", STRANGERS[2])]
    rows += [("M-1", "")]
    expected: dict[str, str | None] = {s: None for s, _ in rows}
    for i, nir in enumerate(persons[:7]):
        expected[f"S{i:03d}"] = nir
    return _csv(tmp_path / "cohort.csv", rows), expected


def test_a_cohort_is_linked_per_identifier_quality_and_its_source_deleted(
    permitted, persons: list[str], tmp_path: Path
) -> None:
    hub, permit_id = permitted
    source, expected = _cohort(tmp_path, persons)
    report = _run(hub, permit_id, source)

    assert (report.rows, report.matched) == (11, 7)
    assert report.classes == {
        "nir_key": {"rows": 6, "matched": 4, "match_rate": round(4 / 6, 4)},
        "nir_no_key": {"rows": 4, "matched": 3, "match_rate": 0.75},
        "missing": {"rows": 1, "matched": 0, "match_rate": 0.0},
    }
    assert report.match_rate == round(7 / 11, 4)
    assert report.datasets == ["snds/v1"]
    assert report.source_deleted and not source.exists()  # the direct identifiers are gone

    # the linked table: subject numbers and the datasets' pseudonyms, never an identifier
    table_path = hub.data_dir.linkage_dir(permit_id) / "cohort.parquet"
    assert report.table == table_path
    table = pq.read_table(table_path)
    assert table.column_names == ["subject", "pseudonym", "quality"]
    linked = dict(zip(table["subject"].to_pylist(), table["pseudonym"].to_pylist(), strict=True))
    assert linked == {
        s: None if nir is None else pseudonymise_one(nir, hub.keys) for s, nir in expected.items()
    }
    dataset = pq.read_table(
        hub.data_dir.dataset_version_dir("snds", "v1") / "IR_BEN_R.parquet",
        columns=["BEN_NIR_ANO"],
    )
    assert {p for p in linked.values() if p} <= set(dataset["BEN_NIR_ANO"].to_pylist())
    raw = table_path.read_bytes()
    for nir in [*persons, *STRANGERS]:
        assert nir.encode() not in raw and nir[:13].encode() not in raw

    # the store's row and the audit event: counts and hash, no identifier
    with hub.sessions() as s:
        (entry,) = s.scalars(select(Linkage)).all()
        assert (entry.permit_id, entry.name, entry.rows, entry.matched) == (
            permit_id,
            "cohort",
            11,
            7,
        )
        assert entry.input_sha256 == report.input_sha256 and entry.report["matched"] == 7
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "linkage.run"))
        assert event.actor == "ctl" and event.target == f"linkage:{entry.id}"
        details = json.loads(event.details)
    assert details["input_sha256"] == report.input_sha256
    assert (details["rows"], details["matched"], details["permit"]) == (11, 7, permit_id)
    text = event.details
    for nir in [*persons, *STRANGERS]:
        assert nir not in text and nir[:13] not in text
        assert pseudonymise_one(nir, hub.keys) not in text


def _nothing_written(hub, source: Path, permit_id: int) -> None:
    assert source.exists()  # kept: the controller fixes it and runs again
    with hub.sessions() as s:
        assert s.scalars(select(Linkage)).all() == []
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "linkage.run")).all() == []
    folder = hub.data_dir.linkage_dir(permit_id)
    assert not folder.exists() or list(folder.iterdir()) == []
    assert not hub.data_dir.staging.exists() or list(hub.data_dir.staging.iterdir()) == []


@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([("S1", "1850775123456"[:12])], "subject,nir", r"line 2, column 'nir': .*12 characters"),
        ([("S1", STRANGERS[0]), ("S2", _wrong_key(STRANGERS[1]))], "subject,nir", r"line 3, "),
        ([("S1", STRANGERS[0]), ("S1", STRANGERS[1])], "subject,nir", r"line 3, .*line 2"),
        ([("S1", STRANGERS[0]), ("S2", STRANGERS[0])], "subject,nir", r"line 3, .*same person"),
        ([("S1", STRANGERS[0])], "subject,nir_number", r"line 1: no column 'nir'"),
        ([("1850775123456", STRANGERS[0])], "subject,nir", r"line 2, column 'subject': .*NIR"),
    ],
    ids=["malformed", "bad-key", "duplicate-subject", "same-person", "no-column", "nir-subject"],
)
def test_a_bad_file_is_refused_naming_the_line_nothing_written(
    permitted, tmp_path: Path, rows, header: str, message: str
) -> None:
    hub, permit_id = permitted
    source = _csv(tmp_path / "cohort.csv", rows, header)
    with pytest.raises(lk.LinkageError, match=message) as caught:
        _run(hub, permit_id, source)
    for nir in STRANGERS:  # an error message never repeats an identifier
        assert nir[:12] not in str(caught.value)
    _nothing_written(hub, source, permit_id)


def test_the_same_file_twice_for_a_permit_is_refused(
    permitted, persons: list[str], tmp_path: Path
) -> None:
    hub, permit_id = permitted
    source, _ = _cohort(tmp_path, persons)
    content = source.read_bytes()
    _run(hub, permit_id, source)
    again = tmp_path / "again.csv"
    again.write_bytes(content)
    with pytest.raises(lk.DuplicateLinkage, match="already linked .* as 'cohort'"):
        _run(hub, permit_id, again, name="cohort-bis")
    assert again.exists()
    with pytest.raises(lk.DuplicateLinkage, match="already has a linked table 'cohort'"):
        _run(hub, permit_id, _csv(tmp_path / "other.csv", [("Z1", STRANGERS[0])]))
    with hub.sessions() as s:
        assert len(s.scalars(select(Linkage)).all()) == 1
    assert [p.name for p in hub.data_dir.linkage_dir(permit_id).iterdir()] == ["cohort.parquet"]


def test_an_ended_permit_or_a_researcher_is_refused(
    permitted, persons: list[str], tmp_path: Path
) -> None:
    hub, permit_id = permitted
    source, _ = _cohort(tmp_path, persons)
    with pytest.raises(pj.NotAuthorised, match="may not link a cohort"):
        _run(hub, permit_id, source, actor=RESEARCHER)
    _nothing_written(hub, source, permit_id)
    with pytest.raises(lk.LinkageError, match="invalid linkage name"):
        _run(hub, permit_id, source, name="../escape")
    with hub.transaction() as s:
        pj.revoke_permit(s, permit_id, reason="end of study", actor=CONTROLLER)
    with pytest.raises(lk.LinkageError, match=f"permit #{permit_id} is revoked"):
        _run(hub, permit_id, source)
    _nothing_written(hub, source, permit_id)


def test_a_rollback_after_the_run_removes_the_table_and_keeps_the_source(
    permitted, persons: list[str], tmp_path: Path
) -> None:
    hub, permit_id = permitted
    source, _ = _cohort(tmp_path, persons)
    with pytest.raises(RuntimeError), hub.transaction() as s:
        lk.run_linkage(
            s, hub.data_dir, permit_id, "cohort", source, keys=hub.keys, actor=CONTROLLER
        )
        assert (hub.data_dir.linkage_dir(permit_id) / "cohort.parquet").exists()
        raise RuntimeError("the caller's transaction fails after the run")
    _nothing_written(hub, source, permit_id)


def test_other_columns_and_a_semicolon_file(permitted, persons: list[str], tmp_path: Path) -> None:
    hub, permit_id = permitted
    source = tmp_path / "cohorte.csv"
    source.write_text(
        "\ufeffnumero;age;NIR\n" + f"A1;54;{persons[0]}\nA2;61;{STRANGERS[0]}\n", "utf-8"
    )
    report = _run(hub, permit_id, source, id_column="NIR", subject_column="numero")
    assert (report.rows, report.matched) == (2, 1)


# --- the mount ------------------------------------------------------------------------------


def test_only_the_permits_project_sandboxes_mount_the_linked_tables(
    permitted, persons: list[str], tmp_path: Path
) -> None:
    hub, permit_id = permitted
    plan = project_plan(hub, "alice", "cohort-2027")
    assert plan.linkage is None  # nothing linked yet
    source, _ = _cohort(tmp_path, persons)
    _run(hub, permit_id, source)

    for user in ("alice", "bob"):
        plan = project_plan(hub, user, "cohort-2027")
        assert plan.permit_id == permit_id
        assert plan.linkage == hub.data_dir.linkage_dir(permit_id)
    with hub.transaction() as s:  # another project, same dataset: not its table
        pj.create_project(s, "other", title="t", purpose="p", actor=CONTROLLER)
        pj.add_member(s, "other", "carol", role="lead", actor=CONTROLLER)
        pj.grant_permit(
            s,
            "other",
            members=["carol"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=CONTROLLER,
        )
    assert project_plan(hub, "carol", "other").linkage is None
    with hub.transaction() as s:  # a new permit of the project: the table was the old one's
        new = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=60),
            actor=CONTROLLER,
        )
        new_id = new.id
    plan = project_plan(hub, "alice", "cohort-2027")
    assert (plan.permit_id, plan.linkage) == (new_id, None)


def test_recover_keeps_the_linked_tables(permitted, persons: list[str], tmp_path: Path) -> None:
    from jupyterlab_hdh.ingestion import recover

    hub, permit_id = permitted
    source, _ = _cohort(tmp_path, persons)
    report = _run(hub, permit_id, source)
    recover(hub)
    assert report.table.exists()


# --- the command line -----------------------------------------------------------------------


def test_cli_runs_lists_and_refuses(permitted, persons: list[str], tmp_path: Path) -> None:
    from jupyterlab_hdh.cli import main

    hub, permit_id = permitted
    base = ["--data-dir", str(hub.data_dir.root), "--store-url", hub.data_dir.store_url]
    source, _ = _cohort(tmp_path, persons)
    runner = CliRunner()
    args = [*base, "linkage", "run", "--permit", str(permit_id), "--name", "cohort"]
    result = runner.invoke(main, [*args, "--file", str(source)])
    assert result.exit_code == 0, result.output
    assert "nir_no_key" in result.output and "63.6%" in result.output
    assert "/data/linkage/cohort.parquet" in result.output
    assert "was deleted" in result.output and not source.exists()

    bad = _csv(tmp_path / "bad.csv", [("S1", "123")])
    result = runner.invoke(main, [*args[:-1], "bad", "--file", str(bad)])
    assert result.exit_code == 1 and "line 2, column 'nir'" in result.output
    assert "Traceback" not in result.output and bad.exists()

    result = runner.invoke(main, [*base, "linkage", "list", "--permit", str(permit_id)])
    assert result.exit_code == 0 and "cohort" in result.output and "7/11 matched" in result.output
    result = runner.invoke(main, [*base, "linkage", "list", "--json"])
    (view,) = json.loads(result.output)
    assert view["mounted_at"] == "/data/linkage/cohort.parquet" and view["matched"] == 7


def test_a_permit_reissued_for_opt_outs_keeps_the_linked_table_without_them(
    permitted, persons: list[str], tmp_path: Path
) -> None:
    from jupyterlab_hdh.cli import main
    from jupyterlab_hdh.data import optout

    hub, permit_id = permitted
    source, _ = _cohort(tmp_path, persons)
    _run(hub, permit_id, source)
    with hub.transaction() as s:
        optout.add(s, hub.keys, persons[0], actor="test")  # S000 objects
    base = ["--data-dir", str(hub.data_dir.root), "--store-url", hub.data_dir.store_url]
    result = CliRunner().invoke(main, [*base, "data", "reapply-optout"])
    assert result.exit_code == 0, result.output
    with hub.sessions() as s:
        new = pj.active_permit(s, "alice", "cohort-2027").id
        assert new != permit_id
        (carried,) = lk.linkages(s, new)
        assert carried.matched == 6
    assert f"permit #{new}: linked table cohort carried" in result.output
    table = pq.read_table(hub.data_dir.linkage_dir(new) / "cohort.parquet")
    linked = dict(zip(table["subject"].to_pylist(), table["pseudonym"].to_pylist(), strict=True))
    assert linked["S000"] is None and linked["S001"] == pseudonymise_one(persons[1], hub.keys)
