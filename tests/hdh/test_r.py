"""The R helper (``hdh/R/hdh.R``): ``hdh_read``, ``hdh_sql``, ``hdh_datasets``, ``hdh_tables``.

On the host through ``Rscript`` (every conversion, quickly), then in a real bubblewrap
sandbox through the IRkernel the sandbox's JupyterLab offers, where R loads the helper at
start-up. R, IRkernel, reticulate and data.table come from Debian (``scripts/setup-env``
installs them as root); the tests skip, saying so, only where they are absent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hdh
from jupyterlab_hdh.sandbox import Sandbox
from jupyterlab_hdh.sandbox.client import SandboxClient
from jupyterlab_hdh.sandbox.spec import r_helper, sandbox_env
from tests.sandbox.conftest import bwrap_problem, make_site

HELPER = Path(hdh.__file__).parent / "R" / "hdh.R"
R_PACKAGES = ("IRkernel", "reticulate", "data.table", "jsonlite")


def r_problem() -> str | None:
    if shutil.which("Rscript") is None:
        return "R is not installed (scripts/setup-env installs r-base-core as root)"
    check = "for (p in commandArgs(TRUE)) if (!requireNamespace(p, quietly = TRUE)) cat(p, '')"
    missing = subprocess.run(
        ["Rscript", "-e", check, *R_PACKAGES], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    return f"R packages missing: {missing} (scripts/setup-env)" if missing else None


pytestmark = pytest.mark.skipif(r_problem() is not None, reason=str(r_problem()))


def write_tables(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "BEN_NIR_PSA": ["a", "", None, "NA", 'x,"y"\nz', "é€"],
                "PRS_NAT_REF": pa.array([1111, 1112, None, 1111, 1113, 1111], pa.int64()),
                "BIG": pa.array([2**40, 1, 2, None, 3, 4], pa.int64()),
                "PRS_PAI_MNT": [1.5, None, float("nan"), 1e300, 1 / 3, float("-inf")],
                "OK": [True, False, None, True, False, True],
                "EXE_SOI_DTD": [
                    dt.date(2022, 1, 1),
                    None,
                    dt.date(1900, 1, 1),
                    dt.date(2100, 12, 31),
                    dt.date(2021, 6, 30),
                    dt.date(2022, 3, 4),
                ],
                "FLT_DTE": pa.array(
                    [dt.datetime(2022, 1, 1, 12, 30, 1, 500000), None] + [None] * 4,
                    pa.timestamp("us"),
                ),
                "CAT": pa.array(["u", "v", "u", None, "v", "u"]).dictionary_encode(),
                "SMALL": pa.array([1, 2, 3, 4, 5, None], pa.int16()),
            }
        ),
        folder / "ER_PRS_F.parquet",
    )
    for yy, rows in (("21", 2), ("22", 3)):
        pq.write_table(pa.table({"k": list(range(rows))}), folder / f"T_MCO{yy}B.parquet")


# R code shared by the host and the sandbox: checks as one JSON line
CHECKS = r"""
df <- hdh_read("ds_r.ER_PRS_F")
sel <- hdh_read("ds_r.ER_PRS_F", columns = c("BEN_NIR_PSA", "EXE_SOI_DTD"),
                filters = list(list("EXE_SOI_DTD", ">=", as.Date("2022-01-01")),
                               list("PRS_NAT_REF", "in", c(1111, 1113))))
one <- hdh_read("ds_r.ER_PRS_F", columns = "OK", filters = list(list("PRS_NAT_REF", "in", 1112)))
none <- hdh_read("ds_r.ER_PRS_F", columns = c("OK", "EXE_SOI_DTD"),
                 filters = list(list("PRS_NAT_REF", "==", 9)))
yearly <- hdh_read("ds_r.T_MCOaaB")
y22 <- hdh_read("ds_r.T_MCOaaB", years = 2022)
err <- tryCatch(hdh_read("ds_r.NOPE"), error = conditionMessage)
bad <- tryCatch(hdh_read("ds_r.ER_PRS_F", filters = list(list("OK", "like", 1))),
                error = conditionMessage)
q <- hdh_sql("SELECT year, count(*) AS n FROM ds_r.T_MCOaaB WHERE year >= ? GROUP BY 1 ORDER BY 1",
             params = list(2021))
cat(jsonlite::toJSON(list(
  class = class(df), classes = lapply(df, class), nrow = nrow(df),
  s = df$BEN_NIR_PSA, s_na = is.na(df$BEN_NIR_PSA),
  i = df$PRS_NAT_REF, big = format(df$BIG, scientific = FALSE), small = df$SMALL,
  f = sprintf("%.17g", df$PRS_PAI_MNT), ok = df$OK,
  f_exact = identical(df$PRS_PAI_MNT, c(1.5, NA, NaN, 1e300, 1 / 3, -Inf)),
  d = format(df$EXE_SOI_DTD), d_na = is.na(df$EXE_SOI_DTD),
  ts = format(df$FLT_DTE, "%Y-%m-%d %H:%M:%OS3", tz = "UTC"), tz = attr(df$FLT_DTE, "tzone"),
  cat = df$CAT,
  sel = sel, sel_names = names(sel), one = I(one$OK), none = lapply(none, class),
  none_rows = nrow(none), yearly = yearly, y22 = y22, err = err, bad = bad, q = q,
  search = "hdh" %in% search()
), auto_unbox = TRUE, na = "null", digits = NA), "\n")
"""


def check(out: dict[str, Any]) -> None:
    assert out["class"] == "data.frame" and out["nrow"] == 6
    assert out["classes"] == {
        "BEN_NIR_PSA": "character",
        "PRS_NAT_REF": "integer",
        "BIG": "numeric",
        "PRS_PAI_MNT": "numeric",
        "OK": "logical",
        "EXE_SOI_DTD": "Date",
        "FLT_DTE": ["POSIXct", "POSIXt"],
        "CAT": "character",
        "SMALL": "integer",
    }
    # NA is not "", and the quotes, comma, newline and accents come back as written
    assert out["s"] == ["a", "", None, "NA", 'x,"y"\nz', "é€"]
    assert out["s_na"] == [False, False, True, False, False, False]
    assert out["i"] == [1111, 1112, None, 1111, 1113, 1111]
    assert out["big"][0].strip() == str(2**40) and out["big"][3].strip() == "NA"
    assert out["small"] == [1, 2, 3, 4, 5, None]
    assert out["f"] == [
        "1.5",
        "NA",
        "NaN",
        "1.0000000000000001e+300",
        "0.33333333333333331",
        "-Inf",
    ]
    assert out["f_exact"] is True  # every bit, NA apart from NaN
    assert out["ok"] == [True, False, None, True, False, True]
    assert out["d"] == ["2022-01-01", None, "1900-01-01", "2100-12-31", "2021-06-30", "2022-03-04"]
    assert out["d_na"] == [False, True, False, False, False, False]
    assert out["ts"][0] == "2022-01-01 12:30:01.500" and out["ts"][1] is None
    assert out["tz"] == "UTC"
    assert out["cat"] == ["u", "v", "u", None, "v", "u"]
    assert out["sel_names"] == ["BEN_NIR_PSA", "EXE_SOI_DTD"]
    assert out["sel"] == [
        {"BEN_NIR_PSA": "a", "EXE_SOI_DTD": "2022-01-01"},
        {"BEN_NIR_PSA": "NA", "EXE_SOI_DTD": "2100-12-31"},
        {"BEN_NIR_PSA": "é€", "EXE_SOI_DTD": "2022-03-04"},
    ]
    assert out["one"] == [False]
    assert out["none"] == {"OK": "logical", "EXE_SOI_DTD": "Date"} and out["none_rows"] == 0
    assert out["yearly"] == [
        {"k": 0, "year": 2021},
        {"k": 1, "year": 2021},
        {"k": 0, "year": 2022},
        {"k": 1, "year": 2022},
        {"k": 2, "year": 2022},
    ]
    assert out["y22"] == [{"k": k, "year": 2022} for k in range(3)]
    assert out["err"] == "ds_r v1 has no table 'NOPE'; tables: ER_PRS_F, T_MCO21B, T_MCO22B"
    assert "unknown filter operator 'like'" in out["bad"] and "\n" not in out["bad"]
    assert out["q"] == [{"year": 2021, "n": 2}, {"year": 2022, "n": 3}]
    assert out["search"] is True


# -- on the host, through Rscript -----------------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_tables(root / "ds_r" / "v1")
    return root


def rscript(data_root: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HDH_DATA_ROOT": str(data_root),
        "RETICULATE_PYTHON": sys.executable,
        "R_PROFILE_USER": str(HELPER),  # as in the sandbox
    }
    env.pop("HDH_API", None)
    return subprocess.run(
        ["Rscript", "-e", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_helper_converts_every_type_on_the_host(data_root: Path) -> None:
    proc = rscript(data_root, CHECKS)
    assert proc.returncode == 0, proc.stderr
    check(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_catalogue_and_sourcing_again(data_root: Path) -> None:
    code = (
        "rm(list = ls()); source(Sys.getenv('R_PROFILE_USER'))\n"
        "d <- hdh_datasets(); t <- hdh_tables('ds_r')\n"
        "cat(jsonlite::toJSON(list(d = d[c('dataset', 'version', 'mounted')], t = t,"
        " n = sum(search() == 'hdh')), auto_unbox = TRUE, na = 'null'), '\\n')"
    )
    proc = rscript(data_root, code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["d"] == [{"dataset": "ds_r", "version": "v1", "mounted": True}]
    assert [r["table"] for r in out["t"]] == ["ER_PRS_F", "T_MCO21B", "T_MCO22B", "T_MCOaaB"]
    assert out["t"][-1]["years"] == "2021, 2022" and out["n"] == 1


def test_an_error_is_one_line_without_a_traceback(data_root: Path) -> None:
    proc = rscript(data_root, 'hdh_read("nope.X")')
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("Error: dataset 'nope' is not mounted"), proc.stderr
    assert lines[1:] == ["Execution halted"] and "Traceback" not in proc.stderr
    proc = rscript(data_root, 'hdh_sql("SELEC 1")')
    assert "Error: SQL error: Parser Error: syntax error at or near" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_sandbox_gives_r_the_helper_and_the_venv_python(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    env = sandbox_env(site.spec("p1", "alice", []))
    assert env["R_PROFILE_USER"] == r_helper() == str(HELPER.resolve())
    assert env["RETICULATE_PYTHON"] == str(Path(sys.prefix) / "bin" / "python")


# -- in a real sandbox, through the IRkernel ------------------------------------------------


@pytest.fixture(scope="module")
def r_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxClient, str]]:
    if bwrap_problem() is not None:
        pytest.skip(f"no sandbox on this machine: {bwrap_problem()}")
    site = make_site(tmp_path_factory.mktemp("site"))
    write_tables(site.dataset("ds_r", "v1"))
    spec = site.spec("p1", "alice", [("ds_r", "v1")])
    with Sandbox(spec, start_timeout=60) as sb:
        client = sb.client(timeout=60)
        kid = client.start_kernel("ir")
        try:
            yield client, kid
        finally:
            client.shutdown_kernel(kid)


def test_jupyterlab_offers_the_r_kernel(r_kernel: tuple[SandboxClient, str]) -> None:
    client, _ = r_kernel
    specs = client.request("GET", "api/kernelspecs").json()["kernelspecs"]
    assert specs["ir"]["spec"]["language"] == "R"


def test_the_r_kernel_reads_the_mounted_tables(r_kernel: tuple[SandboxClient, str]) -> None:
    client, kid = r_kernel
    r = client.execute(CHECKS, kernel_id=kid, timeout=120)
    assert r.error is None, (r.error, r.stderr)
    check(json.loads(r.stdout.strip().splitlines()[-1]))


def test_an_unknown_table_stops_with_the_one_line_message(
    r_kernel: tuple[SandboxClient, str],
) -> None:
    client, kid = r_kernel
    r = client.execute('hdh_read("ds_r.NOPE")', kernel_id=kid, timeout=60)
    assert r.error is not None
    message = "ds_r v1 has no table 'NOPE'; tables: ER_PRS_F, T_MCO21B, T_MCO22B"
    assert message in r.error[1] and "\n" not in r.error[1].strip(), r.error
    assert "Traceback" not in r.error[1] + r.stderr


def test_r_runs_as_the_sandbox_user_without_network(r_kernel: tuple[SandboxClient, str]) -> None:
    client, kid = r_kernel
    r = client.execute(
        "cat(jsonlite::toJSON(list(home = Sys.getenv('HOME'), wd = getwd(),"
        " py = reticulate::py_config()$python,"
        " net = inherits(try(socketConnection('example.org', 80, timeout = 2),"
        " silent = TRUE), 'try-error')), auto_unbox = TRUE), '\\n')",
        kernel_id=kid,
        timeout=60,
    )
    assert r.error is None, (r.error, r.stderr)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {
        "home": "/home/jovyan",
        "wd": "/workspace",
        "py": str(Path(sys.prefix) / "bin" / "python"),
        "net": True,
    }
