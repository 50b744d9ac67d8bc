"""Ingestion: validated, pseudonymised, opt-outs applied, versioned — all or nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.context import KeyMismatchError, open_installation
from jupyterlab_hdh.data import optout, snds_schemas
from jupyterlab_hdh.data.pseudonymise import KeyFileError, create_keys
from jupyterlab_hdh.data.validate import read_table
from jupyterlab_hdh.ingestion import (
    LINKAGE_PLACEHOLDERS,
    IngestError,
    ingest,
    reapply_optout,
    recover,
)
from jupyterlab_hdh.store.models import AuditEvent, DatasetVersion, OptOut

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _versions(hub) -> int:
    with hub.sessions() as s:
        return s.scalar(select(func.count()).select_from(DatasetVersion)) or 0


def _assert_nothing_published(hub) -> None:
    assert _versions(hub) == 0
    datasets = hub.data_dir.datasets
    assert not any(datasets.rglob("*.parquet")), "a failed ingestion left files"
    assert not any(hub.data_dir.staging.iterdir()), "a failed ingestion left a staging folder"
    with hub.sessions() as s:
        assert verify(s).ok


def _raw_values(extract: Path) -> set[str]:
    """Every direct identifier present in the raw extract."""
    values: set[str] = set()
    for path in extract.glob("*.parquet"):
        table = path.stem
        t = pq.read_table(path)
        for col in snds_schemas.identifier_fields(table):
            if col in t.column_names:
                values.update(v for v in t[col].to_pylist() if v)
    return values


def test_ingest_publishes_a_pseudonymised_valid_version(hub, raw_extract: Path) -> None:
    version = ingest(hub, raw_extract, "snds", actor="tester")
    assert version.label == "v1" and version.status == "current"
    folder = hub.data_dir.dataset_version_dir("snds", "v1")
    files = sorted(p.stem for p in folder.glob("*.parquet"))
    assert files == sorted(p.stem for p in raw_extract.glob("*.parquet"))
    assert not os.access(folder / "IR_BEN_R.parquet", os.W_OK) or os.geteuid() == 0
    assert oct(folder.stat().st_mode & 0o777) == "0o550"

    raw = _raw_values(raw_extract)
    for path in folder.glob("*.parquet"):
        table = read_table(path, snds_schemas.load_schema(path.stem))  # validates the output
        for col in snds_schemas.identifier_fields(path.stem):
            values = [
                v for v in table[col].to_pylist() if v is not None and v not in LINKAGE_PLACEHOLDERS
            ]
            assert all(HEX64.match(v) for v in values), f"{path.stem}.{col} not pseudonymised"
            assert not raw.intersection(values)
        assert "BEN_NAI_DTE" not in table.column_names

    ben = pq.read_table(folder / "IR_BEN_R.parquet")
    prs = pq.read_table(folder / "ER_PRS_F.parquet")
    linked = pc.is_in(prs["BEN_NIR_PSA"], value_set=ben["BEN_NIR_PSA"])
    assert pc.all(linked).as_py(), "claims no longer join beneficiaries after pseudonymisation"
    stays_c = [p for p in folder.glob("T_MCO*C.parquet")]
    assert stays_c
    for path in stays_c:
        nir = pq.read_table(path)["NIR_ANO_17"]
        assert pc.sum(pc.cast(pc.is_in(nir, value_set=ben["BEN_NIR_PSA"]), pa.int64())).as_py() > 0

    record = version.record
    assert record["individuals"] == len(set(ben["BEN_IDT_ANO"].to_pylist()))
    assert record["records"] == sum(t["rows"] for t in version.manifest["tables"].values())
    assert record["synthetic"] is True
    assert "ICD-10" in record["coding_systems"] and "ATC" in record["coding_systems"]
    assert version.quality["summary"]["passed"] > 0
    with hub.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "dataset.ingest"))
        assert event is not None and event.target == "snds/v1".join(["dataset:", ""])
        assert verify(s).ok


def test_same_extract_twice_is_refused(hub, raw_extract: Path) -> None:
    ingest(hub, raw_extract, "snds", actor="tester")
    with pytest.raises(IngestError, match="already ingested as snds v1"):
        ingest(hub, raw_extract, "snds", actor="tester")
    assert _versions(hub) == 1
    assert not (hub.data_dir.datasets / "snds" / "v2").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("..", "path separator or '..'"),
        ("a/b", "path separator"),
        ("../etc", "path separator"),
        ("a\x00b", "NUL"),
        ("données", "non-ASCII"),
        ("ｓｎｄｓ", "normalises to 'snds'"),
        ("Snds", "invalid dataset name"),
        ("-x", "invalid dataset name"),
        ("x" * 64, "invalid dataset name"),
        ("linkage", "reserved"),  # /data/linkage: a permit's linked tables
    ],
)
def test_bad_dataset_names_are_refused(hub, raw_extract: Path, name: str, message: str) -> None:
    with pytest.raises(IngestError, match=re.escape(message)):
        ingest(hub, raw_extract, name, actor="tester")
    _assert_nothing_published(hub)


def _rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    table = change(pq.read_table(path))
    path.unlink()
    pq.write_table(table, path)


def test_truncated_file_names_file_and_rule(hub, extract_copy: Path) -> None:
    path = extract_copy / "ER_PRS_F.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError) as err:
        ingest(hub, extract_copy, "snds", actor="tester")
    assert "ER_PRS_F.parquet" in str(err.value) and "file-unreadable" in str(err.value)
    assert "Traceback" not in str(err.value)
    _assert_nothing_published(hub)
    with hub.sessions() as s:
        failed = s.scalar(select(AuditEvent).where(AuditEvent.action == "dataset.ingest_failed"))
        assert failed is not None and "ER_PRS_F" in failed.details


def test_wrong_type_names_row_and_rule(hub, extract_copy: Path) -> None:
    def corrupt(t: pa.Table) -> pa.Table:
        col = t["PHA_ACT_QSN"].cast(pa.string()).to_pylist()
        col[4] = "douze"
        return t.set_column(t.column_names.index("PHA_ACT_QSN"), "PHA_ACT_QSN", pa.array(col))

    _rewrite(extract_copy / "ER_PHA_F.parquet", corrupt)
    with pytest.raises(IngestError) as err:
        ingest(hub, extract_copy, "snds", actor="tester")
    text = str(err.value)
    assert "ER_PHA_F" in text and "PHA_ACT_QSN" in text and "type" in text and "5" in text
    _assert_nothing_published(hub)


def test_missing_column_is_refused(hub, extract_copy: Path) -> None:
    _rewrite(extract_copy / "IR_IMB_R.parquet", lambda t: t.drop_columns(["MED_MTF_COD"]))
    with pytest.raises(IngestError, match="MED_MTF_COD") as err:
        ingest(hub, extract_copy, "snds", actor="tester")
    assert "missing-column" in str(err.value)
    _assert_nothing_published(hub)


def test_duplicate_primary_key_is_refused(hub, extract_copy: Path) -> None:
    stays = sorted(extract_copy.glob("T_MCO*B.parquet"))[0]
    _rewrite(stays, lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    with pytest.raises(IngestError, match="primary-key") as err:
        ingest(hub, extract_copy, "snds", actor="tester")
    assert stays.name in str(err.value)
    _assert_nothing_published(hub)


def test_unknown_table_file_is_refused(hub, extract_copy: Path) -> None:
    (extract_copy / "NOT_A_TABLE.csv").write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match="not a known table"):
        ingest(hub, extract_copy, "snds", actor="tester")
    _assert_nothing_published(hub)


def test_missing_key_file_is_refused(hub, raw_extract: Path) -> None:
    (hub.data_dir.keys / "foin2.key").unlink()
    fresh = open_installation(hub.data_dir)
    with pytest.raises(KeyFileError, match="foin2.key"):
        ingest(fresh, raw_extract, "snds", actor="tester")
    fresh.close()
    _assert_nothing_published(hub)


def test_wrong_key_files_are_refused(hub, raw_extract: Path) -> None:
    shutil.rmtree(hub.data_dir.keys)
    create_keys(hub.data_dir.keys)
    fresh = open_installation(hub.data_dir)
    with pytest.raises(KeyMismatchError, match="not the keys this store was created with"):
        ingest(fresh, raw_extract, "snds", actor="tester")
    fresh.close()
    _assert_nothing_published(hub)


FULL_DISK_SCRIPT = """
import sys
from pathlib import Path
from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.ingestion import IngestError, ingest
from jupyterlab_hdh.paths import DataDir
hub = open_installation(DataDir.resolve(sys.argv[1], sys.argv[2]))
try:
    ingest(hub, Path(sys.argv[3]), "snds", actor="tester")
except IngestError as exc:
    print("INGEST-ERROR:", exc)
    sys.exit(3)
"""


def _full_disk_command(staging: Path, store_is_local: bool) -> list[str] | None:
    """A command prefix that makes writes under ``staging`` fail as on a full disk.

    With a local (SQLite) store: a 256 KiB tmpfs mounted over staging/ in a private
    mount namespace, a real ENOSPC. With a PostgreSQL store (reached over a socket the
    namespace cannot use): a per-file size limit on the ingesting process (EFBIG).
    """
    if store_is_local:
        if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode != 0:
            return None
        return [
            "unshare",
            "-Urm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=256k tmpfs "{staging}" && exec "$0" "$@"',
            sys.executable,
        ]
    return [
        sys.executable,
        "-c",
        "import resource,signal,sys,runpy;signal.signal(signal.SIGXFSZ,signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE,(16384,16384));"
        "sys.argv=sys.argv[1:];runpy.run_path(sys.argv[0],run_name='__main__')",
    ]


def test_full_disk_mid_write_publishes_nothing(hub, raw_extract: Path, tmp_path: Path) -> None:
    cmd = _full_disk_command(hub.data_dir.staging, hub.engine.dialect.name == "sqlite")
    if cmd is None:
        pytest.skip("no user namespaces here to mount a small filesystem")
    script = tmp_path / "ingest_full_disk.py"
    script.write_text(FULL_DISK_SCRIPT)
    proc = subprocess.run(
        [*cmd, str(script), str(hub.data_dir.root), hub.data_dir.store_url, str(raw_extract)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no space left" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    _assert_nothing_published(hub)


def test_recover_removes_crash_leftovers(hub, raw_extract: Path) -> None:
    ingest(hub, raw_extract, "snds", actor="tester")
    orphan = hub.data_dir.datasets / "snds" / "v2"
    orphan.mkdir()
    (orphan / "IR_BEN_R.parquet").write_bytes(b"half")
    dead = hub.data_dir.staging / "999999999-deadbeef"
    dead.mkdir()
    removed = recover(hub)
    assert str(orphan) in removed and str(dead) in removed
    assert hub.data_dir.dataset_version_dir("snds", "v1").exists()
    assert recover(hub) == []


def _person_with_everything(extract: Path) -> tuple[str, list[str]]:
    """A raw NIR of a person with claims and stays, and all their BEN_NIR_PSA values."""
    ben = pq.read_table(extract / "IR_BEN_R.parquet").to_pylist()
    prs_psa = set(pq.read_table(extract / "ER_PRS_F.parquet")["BEN_NIR_PSA"].to_pylist())
    stay_psa: set[str] = set()
    for p in extract.glob("T_MCO*C.parquet"):
        stay_psa.update(pq.read_table(p)["NIR_ANO_17"].to_pylist())
    by_person: dict[str, list[str]] = {}
    for row in ben:
        by_person.setdefault(row["BEN_IDT_ANO"], []).append(row["BEN_NIR_PSA"])
    for person, psas in sorted(by_person.items(), key=lambda kv: -len(kv[1])):
        if any(p in prs_psa for p in psas) and any(p in stay_psa for p in psas):
            return person, psas
    raise AssertionError("the extract has nobody with both claims and stays")


def _rows_of(folder: Path, psa_pseudonyms: set[str]) -> int:
    n = 0
    for path in folder.glob("*.parquet"):
        t = pq.read_table(path)
        for col in ("BEN_NIR_PSA", "NIR_ANO_17"):
            if col in t.column_names:
                n += (
                    pc.sum(
                        pc.cast(
                            pc.is_in(t[col], value_set=pa.array(sorted(psa_pseudonyms))), pa.int64()
                        )
                    ).as_py()
                    or 0
                )
    return n


def _orphans(folder: Path) -> int:
    """Detail rows whose parent row is missing (DCIR by the 9 keys, PMSI by stay)."""
    from jupyterlab_hdh.ingestion import DCIR_KEYS, STAY_KEYS, _composite

    prs = pq.read_table(folder / "ER_PRS_F.parquet")
    parents = _composite(prs, DCIR_KEYS)
    bad = 0
    for name in ("ER_PHA_F", "ER_CAM_F"):
        t = pq.read_table(folder / f"{name}.parquet")
        bad += (
            t.num_rows
            - pc.sum(
                pc.cast(pc.is_in(_composite(t, DCIR_KEYS), value_set=parents), pa.int64())
            ).as_py()
        )
    for c_path in folder.glob("T_MCO*C.parquet"):
        stays = _composite(pq.read_table(c_path), STAY_KEYS)
        for part in "ABD":
            p = c_path.with_name(c_path.name[:-9] + f"{part}.parquet")
            if p.exists():
                t = pq.read_table(p)
                if t.num_rows:
                    bad += (
                        t.num_rows
                        - pc.sum(
                            pc.cast(pc.is_in(_composite(t, STAY_KEYS), value_set=stays), pa.int64())
                        ).as_py()
                    )
    return bad


def test_optout_before_ingestion_removes_the_person_everywhere(hub, raw_extract: Path) -> None:
    nir, psas = _person_with_everything(raw_extract)
    with hub.transaction() as s:
        optout.add(s, hub.keys, nir, actor="desk")
    version = ingest(hub, raw_extract, "snds", actor="tester")
    folder = hub.data_dir.dataset_version_dir("snds", "v1")
    from jupyterlab_hdh.data.pseudonymise import pseudonymise_one

    pseudo = {pseudonymise_one(p, hub.keys) for p in psas}
    assert _rows_of(folder, pseudo) == 0
    ben = pq.read_table(folder / "IR_BEN_R.parquet")
    assert pseudonymise_one(nir, hub.keys) not in set(ben["BEN_IDT_ANO"].to_pylist())
    assert _orphans(folder) == 0
    assert version.optout_seq == 1


def test_reapply_optout_issues_a_new_version_without_the_person(hub, raw_extract: Path) -> None:
    from jupyterlab_hdh.data.pseudonymise import pseudonymise_one

    ingest(hub, raw_extract, "snds", actor="tester")
    v1 = hub.data_dir.dataset_version_dir("snds", "v1")
    nir, psas = _person_with_everything(raw_extract)
    pseudo = {pseudonymise_one(p, hub.keys) for p in psas}
    assert _rows_of(v1, pseudo) > 0
    with hub.transaction() as s:
        reg_id, added = optout.add(s, hub.keys, nir, actor="desk")
        assert added
        again = optout.add(s, hub.keys, nir, actor="desk")
        assert again == (reg_id, False)
    outcomes = dict(reapply_optout(hub, actor="controller"))
    assert "v2" in outcomes["snds"]
    v2 = hub.data_dir.dataset_version_dir("snds", "v2")
    assert _rows_of(v2, pseudo) == 0 and _orphans(v2) == 0
    assert _rows_of(v1, pseudo) > 0  # versions are immutable; v1 is superseded
    with hub.sessions() as s:
        statuses = dict(s.execute(select(DatasetVersion.number, DatasetVersion.status)).all())
        assert statuses == {1: "superseded", 2: "current"}
        assert verify(s).ok
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "dataset.reapply_optout"))
    assert "already honours" in dict(reapply_optout(hub, actor="controller"))["snds"]


def test_optout_register_keeps_no_raw_identifier(hub, raw_extract: Path) -> None:
    nir, _ = _person_with_everything(raw_extract)
    with hub.transaction() as s:
        optout.add(s, hub.keys, nir, actor="desk")
    with hub.sessions() as s:
        rows = s.scalars(select(OptOut)).all()
        events = s.scalars(select(AuditEvent)).all()
    assert len(rows) == 1 and HEX64.match(rows[0].pseudonym) and nir not in rows[0].pseudonym
    assert all(nir not in e.details and nir not in e.target for e in events)
    assert all(rows[0].pseudonym not in e.details for e in events)


@pytest.mark.parametrize("bad", ["", "123", "1840375123456", "184037512345691", "x84037512345690"])
def test_invalid_optout_identifiers_are_refused(hub, bad: str) -> None:
    with pytest.raises(optout.OptOutError), hub.transaction() as s:
        optout.add(s, hub.keys, bad, actor="desk")
    with hub.sessions() as s:
        assert optout.count(s) == 0


def test_csv_tables_are_ingested_like_parquet(hub, extract_copy: Path) -> None:
    """Real extracts often arrive as semicolon-separated CSV: same validation, same result."""
    import pyarrow.csv as pacsv

    for name in ("IR_IMB_R", "HDH_PV_CAS"):
        parquet = extract_copy / f"{name}.parquet"
        table = pq.read_table(parquet)
        pacsv.write_csv(
            table,
            extract_copy / f"{name}.csv",
            pacsv.WriteOptions(delimiter=";", quoting_style="needed"),
        )
        parquet.unlink()
    version = ingest(hub, extract_copy, "snds", actor="tester")
    folder = hub.data_dir.dataset_version_dir("snds", version.label)
    imb = read_table(folder / "IR_IMB_R.parquet", snds_schemas.load_schema("IR_IMB_R"))
    assert imb.num_rows == version.manifest["tables"]["IR_IMB_R"]["rows"] > 0
    assert all(HEX64.match(v) for v in imb["BEN_NIR_PSA"].to_pylist())


def test_csv_error_names_the_line(hub, extract_copy: Path) -> None:
    path = extract_copy / "IR_IMB_R.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(pq.read_table(extract_copy / "IR_IMB_R.parquet"), path)
    (extract_copy / "IR_IMB_R.parquet").unlink()
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index('"IMB_ALD_DTD"')] = '"2021-02-30"'
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError) as err:
        ingest(hub, extract_copy, "snds", actor="tester")
    assert "IR_IMB_R.csv" in str(err.value) and "row 2" in str(err.value)
    assert "IMB_ALD_DTD" in str(err.value)
    _assert_nothing_published(hub)
