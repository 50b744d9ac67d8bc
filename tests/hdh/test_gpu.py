"""The GPU paths on a real GPU: ``hdh.read(engine="cudf")``, ``cudf.pandas`` under an
unchanged notebook, and ``mi-pathway`` computed on cuDF frames against DuckDB SQL.

Marked ``gpu`` and skipped where cuDF or a GPU is missing (CI); the cohort toolkit's cases
also run on cuDF there (``test_cohort.py``'s ``cudf`` engine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hdh
from bench.study_sql import connect as sql_connection
from bench.study_sql import headline as sql_headline
from hdh.studies import mi_pathway

from .gpu import cudf_or_skip

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]


def test_cudf_reads_a_gpu_frame_with_the_rows_pandas_reads(data_root: Path) -> None:
    cudf = cudf_or_skip()
    args = {
        "columns": ["BEN_NIR_PSA", "PRS_ACT_QTE", "PRS_PAI_MNT"],
        "filters": [("PRS_NAT_REF", "==", 1111), ("BEN_NIR_PSA", "in", ["a", "c"])],
    }
    gpu = hdh.read("demo-snds.ER_PRS_F", engine="cudf", **args)
    assert isinstance(gpu, cudf.DataFrame)
    cpu = hdh.read("demo-snds.ER_PRS_F", engine="pandas", **args)
    key = ["BEN_NIR_PSA", "PRS_ACT_QTE", "PRS_PAI_MNT"]
    got = gpu.to_pandas().sort_values(key).reset_index(drop=True)
    want = cpu.sort_values(key).reset_index(drop=True)
    assert got.astype(object).values.tolist() == want.astype(object).values.tolist()
    assert len(got) == len(want) > 0


def test_cudf_reads_a_yearly_table_over_its_years(data_root: Path) -> None:
    cudf_or_skip()
    gpu = hdh.read("demo-snds.T_MCOaaB", engine="cudf", columns=["RSA_NUM", "DGN_PAL", "year"])
    assert sorted(gpu.columns) == ["DGN_PAL", "RSA_NUM", "year"]
    rows = sorted(zip(*(gpu[c].to_arrow().to_pylist() for c in ("year", "DGN_PAL")), strict=True))
    assert rows == [(2021, "I210"), (2021, "J18"), (2022, "I21"), (2022, "I219"), (2022, "I50")]
    only = hdh.read("demo-snds.T_MCOaaB", engine="cudf", years=2022, columns=["DGN_PAL"])
    assert sorted(only["DGN_PAL"].to_arrow().to_pylist()) == ["I21", "I219", "I50"]


def test_cudf_pandas_runs_an_unchanged_pandas_notebook_on_the_gpu(data_root: Path) -> None:
    cudf_or_skip()
    code = (
        "import json, cudf.pandas\n"
        "cudf.pandas.install()\n"
        "import pandas as pd, hdh\n"
        "df = hdh.read('demo-snds.ER_PRS_F', columns=['BEN_NIR_PSA', 'PRS_PAI_MNT'])\n"
        "out = df.groupby('BEN_NIR_PSA')['PRS_PAI_MNT'].sum().sort_index()\n"
        "print(json.dumps({'proxy': cudf.pandas.is_proxy_object(out),\n"
        "                  'sums': {k: float(v) for k, v in out.items()}}))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    plain = pd.read_parquet(data_root / "demo-snds/v2/ER_PRS_F.parquet")
    want = plain.groupby("BEN_NIR_PSA")["PRS_PAI_MNT"].sum()
    assert got["proxy"] is True
    assert got["sums"] == pytest.approx({k: float(v) for k, v in want.items()})


def test_mi_pathway_on_cudf_gives_the_numbers_of_duckdb_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cudf_or_skip()
    pytest.importorskip("duckdb")
    from jupyterlab_hdh.data.synth import generate

    folder = tmp_path / "data" / "synth" / "v1"
    generate(folder, 3000, 7, progress=False)
    monkeypatch.setenv("HDH_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    got = mi_pathway.headline(mi_pathway.read_tables("synth", engine="cudf"))

    want = sql_headline(sql_connection(folder))
    assert got["n"] == want.pop("n") > 0
    assert got["counts"] == want
