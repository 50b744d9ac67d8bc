"""The data side's commands on bad input: one clear line, nothing half-written, nothing lost.

``hdh data synth`` writes all or nothing (a Ctrl-C leaves no partial extract),
``--store-url`` and ``--data-dir`` are checked before use, ``hdh data ingest``
refuses an extract without persons and audits every refusal (CLI and API),
``hdh optout add`` takes every line of its standard input, and the data
dictionary shows the text format a CSV extract must use for each column.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.data.optout import check_raw_identifier
from jupyterlab_hdh.governance.accounts import create_user, issue_token
from tests.waiting import wait_for


def _one_line_error(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    error = [line for line in lines if line.startswith("Error:")]
    assert len(error) == 1, result.output
    return error[0]


SYNTH_SCRIPT = "from jupyterlab_hdh.cli import main; main()"


def _synth(out: Path, *more: str) -> Result:
    return CliRunner().invoke(
        main,
        ["data", "synth", "--patients", "30", "--seed", "3", "--out", str(out), "--quiet", *more],
    )


# --- hdh data synth: where it writes ------------------------------------------------------------


def test_synth_under_a_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("not a folder")
    error = _one_line_error(_synth(tmp_path / "f" / "sub"))
    assert "f/sub" in error and "not a directory" in error.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_synth_into_an_existing_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("not a folder")
    error = _one_line_error(_synth(tmp_path / "f"), exit_code=2)
    assert "is a file" in error
    assert (tmp_path / "f").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_synth_into_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        error = _one_line_error(_synth(locked / "x"))
        assert "permission denied" in error.lower()
        assert not any(locked.iterdir())
    finally:
        locked.chmod(0o700)


def test_synth_on_a_read_only_filesystem_is_one_line(tmp_path: Path) -> None:
    """A read-only mount (stops root too), in a private mount namespace."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mount = f'mount --bind "{ro}" "{ro}" && mount -o remount,ro,bind "{ro}" && exec "$0" "$@"'
    if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no user namespaces here to mount a read-only folder")
    proc = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", mount, sys.executable, "-c", SYNTH_SCRIPT]
        + ["data", "synth", "--patients", "5", "--out", str(ro / "x"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"Error: cannot write the extract to {ro / 'x'}: Read-only file system"
    ]
    assert not any(ro.iterdir())


def test_synth_into_an_empty_existing_folder_fills_it(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    result = _synth(tmp_path / "x")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "extract.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"], "a temporary folder was left"


def test_ctrl_c_during_synth_leaves_no_partial_extract(tmp_path: Path) -> None:
    """A Ctrl-C while the tables are written: no target folder, no temporary one; rerun works."""
    out = tmp_path / "x"
    proc = subprocess.Popen(
        [sys.executable, "-c", SYNTH_SCRIPT, "data", "synth", "--patients", "2000000"]
        + ["--seed", "1", "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def writing() -> bool:
            return any(
                p.is_dir() and any(p.glob("*.parquet")) for p in tmp_path.iterdir() if p != out
            )

        wait_for(writing, "synth to start writing in a temporary folder")
        assert not out.exists(), "the target folder exists before the extract is complete"
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "Traceback" not in stderr, stderr
    assert list(tmp_path.iterdir()) == [], "an interrupted synth left files"
    result = _synth(out)
    assert result.exit_code == 0, result.output
    assert (out / "extract.json").is_file()


# --- --store-url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("nosuchdb://host/x", "the store is SQLite or PostgreSQL"),
        ("mysql://u@host/x", "the store is SQLite or PostgreSQL"),
        ("postgresql+nosuchdriver://u@host/x", "no postgresql driver"),
    ],
)
def test_a_bad_store_url_is_a_usage_error(tmp_path: Path, url: str, message: str) -> None:
    for command in (["init"], ["data", "list"]):
        result = CliRunner().invoke(
            main, ["--data-dir", str(tmp_path / "hdh"), "--store-url", url, *command]
        )
        error = _one_line_error(result, exit_code=2)
        assert "--store-url" in error and message in error
    assert not (tmp_path / "hdh").exists()


def test_a_data_dir_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("not a folder")
    for command in (["init"], ["data", "list"]):
        result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "f" / "sub"), *command])
        error = _one_line_error(result, exit_code=2)
        assert "--data-dir" in error and f"{tmp_path / 'f'} is a file" in error
    result = CliRunner().invoke(main, ["init"], env={"HDH_DATA_DIR": str(tmp_path / "f" / "x")})
    assert "$HDH_DATA_DIR" in _one_line_error(result, exit_code=2)
    assert (tmp_path / "f").read_text() == "not a folder"


def test_an_unreachable_sqlite_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'f' / 'hdh.sqlite'}"
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "hdh"), "--store-url", url, "init"]
    )
    error = _one_line_error(result)
    assert "cannot reach the store" in error and "unable to open database file" in error
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_bad_store_url_from_the_environment_names_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path / "hdh"), "data", "list"],
        env={"HDH_STORE_URL": "not a url"},
    )
    error = _one_line_error(result, exit_code=2)
    assert "HDH_STORE_URL" in error and "not a database URL" in error


def test_a_store_url_password_is_never_echoed(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path / "hdh"), "--store-url", "nosuchdb://u:s3cret@h/x", "init"],
    )
    _one_line_error(result, exit_code=2)
    assert "s3cret" not in result.output


def test_postgres_spelling_reaches_the_server(tmp_path: Path) -> None:
    """``postgres://`` (Heroku's spelling) means PostgreSQL: no server here, a connection error."""
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path / "hdh")]
        + ["--store-url", "postgres://hdh:s3cret@127.0.0.1:1/hdh", "data", "list"],
    )
    error = _one_line_error(result)
    assert "cannot reach the store" in error and "s3cret" not in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgres_spelling_works_end_to_end(tmp_path: Path, store_url: str) -> None:
    spelled = "postgres://" + store_url.split("://", 1)[1]
    base = ["--data-dir", str(tmp_path / "hdh"), "--store-url", spelled]
    for command in (["init"], ["data", "list"], ["audit", "verify"]):
        result = CliRunner().invoke(main, [*base, *command])
        assert result.exit_code == 0, result.output


# --- hdh data ingest: refusals are audited; an extract without persons is refused ------------


@pytest.fixture
def hdh(tmp_path: Path, store_url: str):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "hdh"), "--store-url", store_url]

    def run(*args: str, input: str | None = None, ok: bool = True) -> Result:
        result = runner.invoke(main, [*base, *args], input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run("init")
    return run


def _failed_ingestions(hdh) -> list[dict]:  # type: ignore[no-untyped-def]
    out = hdh("audit", "log", "--json", "--action", "dataset.ingest_failed").output
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _nothing_published(hdh) -> None:  # type: ignore[no-untyped-def]
    assert "no dataset yet" in hdh("data", "list").output


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "NOT_A_TABLE.csv").write_text("a,b\n1,2\n"), "not a known table"),
        (lambda d: (d / "IR_BEN_R.parquet").unlink(), "has no IR_BEN_R"),
        (lambda d: (d / "notes.txt").write_text("hello"), "unsupported file type"),
    ],
    ids=["extra-table", "no-IR_BEN_R", "extra-file"],
)
def test_refusals_before_validation_are_audited(hdh, extract_copy: Path, damage, message) -> None:  # type: ignore[no-untyped-def]
    damage(extract_copy)
    error = _one_line_error(hdh("data", "ingest", str(extract_copy), "--dataset", "snds", ok=False))
    assert message in error
    _nothing_published(hdh)
    failed = _failed_ingestions(hdh)
    assert len(failed) == 1, failed
    assert failed[0]["target"] == "dataset:snds"
    assert message in failed[0]["details"]["error"]
    assert "intact" in hdh("audit", "verify").output


def test_an_invalid_dataset_name_is_audited_without_the_name_as_target(
    hdh, raw_extract: Path
) -> None:
    result = hdh("data", "ingest", str(raw_extract), "--dataset", "../x", ok=False)
    assert "path separator" in _one_line_error(result)
    (failed,) = _failed_ingestions(hdh)
    assert failed["target"] == "dataset:?" and "'../x'" in failed["details"]["error"]


def test_an_extract_already_ingested_is_audited(hdh, raw_extract: Path) -> None:
    hdh("data", "ingest", str(raw_extract), "--dataset", "snds")
    result = hdh("data", "ingest", str(raw_extract), "--dataset", "snds", ok=False)
    assert "already ingested" in _one_line_error(result)
    (failed,) = _failed_ingestions(hdh)
    assert "already ingested" in failed["details"]["error"]


def test_an_extract_without_persons_is_refused_and_audited(
    hdh, raw_extract: Path, tmp_path: Path
) -> None:
    """What an interrupted export leaves: every table present, no row, no extract.json."""
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in raw_extract.glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.slice(0, 0), partial / path.name)
    error = _one_line_error(hdh("data", "ingest", str(partial), "--dataset", "snds", ok=False))
    assert "no persons" in error and "IR_BEN_R" in error
    _nothing_published(hdh)
    (failed,) = _failed_ingestions(hdh)
    assert "no persons" in failed["details"]["error"]


# --- hdh optout add: every line of standard input ---------------------------------------------


def _nirs(raw_extract: Path, n: int) -> list[str]:
    values = pq.read_table(raw_extract / "IR_BEN_R.parquet")["BEN_IDT_ANO"].to_pylist()
    return sorted({check_raw_identifier(v) for v in values})[:n]


def test_optout_add_takes_every_line(hdh, raw_extract: Path) -> None:
    a, b, c = _nirs(raw_extract, 3)
    out = hdh("optout", "add", input=f"{a}\n{b}\n\n  {c}  \n{a}\n").output
    assert hdh("optout", "count").output.strip() == "3"
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == ["line 1", "line 2", "line 4", "line 5"]
    assert "registered" in lines[0] and "already" not in lines[0]
    assert "already registered" in lines[3]
    assert "3 registered, 1 already registered" in out
    assert not any(nir in out for nir in (a, b, c)), "identifiers are never echoed"
    again = hdh("optout", "add", input=f"{b}\n{c}\n").output
    assert "0 registered, 2 already registered" in again
    assert hdh("optout", "count").output.strip() == "3"


def test_optout_add_with_an_invalid_line_registers_nothing(hdh, raw_extract: Path) -> None:
    a, b = _nirs(raw_extract, 2)
    result = hdh("optout", "add", input=f"{a}\n12345\n{b}\n", ok=False)
    error = _one_line_error(result)
    assert "line 2" in error and "not a valid NIR-like identifier" in error
    assert "nothing was registered" in error
    assert hdh("optout", "count").output.strip() == "0"


def test_optout_add_with_empty_input_is_refused(hdh) -> None:
    error = _one_line_error(hdh("optout", "add", input="\n \n", ok=False))
    assert "no identifier" in error
    assert hdh("optout", "count").output.strip() == "0"


def test_optout_add_one_line_keeps_its_message(hdh, raw_extract: Path) -> None:
    (a,) = _nirs(raw_extract, 1)
    out = hdh("optout", "add", input=a + "\n").output
    assert out.startswith("opt-out #1 registered")


# --- hdh catalogue dictionary: the text format each column expects ------------------------------


def test_dictionary_shows_each_columns_csv_format(hdh, raw_extract: Path) -> None:
    hdh("data", "ingest", str(raw_extract), "--dataset", "snds")
    pmsi_c = sorted(p.stem for p in raw_extract.glob("T_MCO*C.parquet"))[0]
    rows = {
        r["variable"]: r
        for r in csv.DictReader(io.StringIO(hdh("catalogue", "dictionary", "snds", pmsi_c).output))
    }
    assert rows["ENT_DAT"]["csv_format"].startswith("DDMMYYYY")
    assert rows["EXE_SOI_DTD"]["csv_format"].startswith("DDMONYYYY:hh:mm:ss")
    assert "01MAR2021:00:00:00" in rows["EXE_SOI_DTD"]["csv_format"]
    assert rows["SOR_MOI"]["csv_format"].startswith("month number")
    assert "1" in rows["NIR_RET"]["csv_format"] and "0" in rows["NIR_RET"]["csv_format"]
    assert "empty = missing" in rows["NIR_RET"]["csv_format"]
    as_json = json.loads(hdh("catalogue", "dictionary", "snds", pmsi_c, "--json").output)
    columns = {c["name"]: c for c in as_json["columns"]}
    assert columns["ENT_DAT"]["csv_format"] == rows["ENT_DAT"]["csv_format"]
    ben = {
        r["variable"]: r
        for r in csv.DictReader(
            io.StringIO(hdh("catalogue", "dictionary", "snds", "IR_BEN_R").output)
        )
    }
    assert ben["BEN_NAI_ANN"]["csv_format"].startswith("YYYY")


# --- the same over the REST API ---------------------------------------------------------------


def test_api_refusal_before_validation_is_audited_and_tables_show_csv_format(
    hub, raw_extract: Path
) -> None:
    shutil.copytree(raw_extract, hub.data_dir.incoming / "good")
    shutil.copytree(raw_extract, hub.data_dir.incoming / "bad")
    (hub.data_dir.incoming / "bad" / "IR_BEN_R.parquet").unlink()
    with hub.transaction() as s:
        admin = issue_token(s, create_user(s, "adm", "admin", actor="test"), actor="test")
        ctl = issue_token(s, create_user(s, "ctl", "data_controller", actor="test"), actor="test")
    with TestClient(create_app(hub.data_dir)) as client:
        r = client.post(
            "/api/datasets/snds/versions",
            json={"source": "bad"},
            headers={"Authorization": f"Bearer {ctl}"},
        )
        assert r.status_code == 422 and "has no IR_BEN_R" in r.json()["detail"]
        events = client.get(
            "/api/audit/events", headers={"Authorization": f"Bearer {admin}"}
        ).json()
        failed = [e for e in events if e["action"] == "dataset.ingest_failed"]
        assert len(failed) == 1 and failed[0]["actor"] == "ctl"
        assert "has no IR_BEN_R" in failed[0]["details"]["error"]
        r = client.post(
            "/api/datasets/snds/versions",
            json={"source": "good"},
            headers={"Authorization": f"Bearer {ctl}"},
        )
        assert r.status_code == 201, r.text
        table = client.get("/api/catalogue/datasets/snds/versions/v1/tables/IR_BEN_R").json()
    columns = {c["name"]: c for c in table["columns"]}
    assert columns["BEN_NAI_MOI"]["csv_format"].startswith("month number")
    assert columns["BEN_TOP_CNS"]["csv_format"].startswith("true: ")
