"""``import hdh`` in a real bubblewrap sandbox: the notebook library reads the read-only
``/data`` mounts from a kernel, on every engine installed, and refuses what is not mounted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyterlab_hdh.sandbox import Sandbox
from jupyterlab_hdh.sandbox.client import SandboxClient
from tests.sandbox.conftest import bwrap_problem, make_site


@pytest.fixture(scope="module")
def kernel_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxClient, str]]:
    if bwrap_problem() is not None:
        pytest.skip(f"no sandbox on this machine: {bwrap_problem()}")
    site = make_site(tmp_path_factory.mktemp("site"))
    folder = site.dataset("ds_a", "v1")
    pq.write_table(
        pa.table({"id": [1, 2, 3, 4], "n": [10, 20, 30, 40]}), folder / "ER_PRS_F.parquet"
    )
    for yy, rows in (("21", 2), ("22", 3)):
        pq.write_table(pa.table({"k": list(range(rows))}), folder / f"T_MCO{yy}B.parquet")
    spec = site.spec("p1", "alice", [("ds_a", "v1")])
    with Sandbox(spec, start_timeout=60) as sb:
        client = sb.client(timeout=60)
        kid = client.start_kernel()
        try:
            yield client, kid
        finally:
            client.shutdown_kernel(kid)


def run(kc: tuple[SandboxClient, str], code: str) -> Any:
    client, kid = kc
    r = client.execute(code, kernel_id=kid)
    assert r.error is None, (r.error, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_kernel_reads_the_mounted_tables(kernel_client: tuple[SandboxClient, str]) -> None:
    out = run(
        kernel_client,
        "import json, hdh\n"
        "df = hdh.read('ds_a.ER_PRS_F', columns=['n'], filters=[('id', '>', 1)])\n"
        "rel = hdh.read('ds_a.ER_PRS_F', engine='duckdb', filters=[('id', 'in', [1, 4])])\n"
        "years = hdh.sql('SELECT year, count(*) FROM ds_a.T_MCOaaB GROUP BY 1 ORDER BY 1')\n"
        "ds = hdh.datasets()\n"
        "print(json.dumps({'n': [int(x) for x in df['n']], 'duck': len(rel.df()),\n"
        "  'years': [list(r) for r in years.fetchall()],\n"
        "  'mounted': ds[['dataset', 'version']].values.tolist(),\n"
        "  'root': str(hdh._mounts.data_root())}))",
    )
    assert out["n"] == [20, 30, 40] and out["duck"] == 2
    assert out["years"] == [[2021, 2], [2022, 3]]
    assert out["mounted"] == [["ds_a", "v1"]] and out["root"] == "/data"


def test_what_is_not_mounted_is_refused_in_one_line(
    kernel_client: tuple[SandboxClient, str],
) -> None:
    out = run(
        kernel_client,
        "import json, hdh\n"
        "errs = []\n"
        "for call in (lambda: hdh.read('ds_b.part-0'), lambda: hdh.read('ds_a.X', version='v2')):\n"
        "    try:\n"
        "        call()\n"
        "    except hdh.HDHError as e:\n"
        "        errs.append([type(e).__name__, str(e)])\n"
        "print(json.dumps(errs))",
    )
    assert [e[0] for e in out] == ["DatasetNotMounted", "DatasetNotMounted"], out
    assert "mounted: ds_a" in out[0][1] and "mounted: v1" in out[1][1]
    assert all("\n" not in e[1] for e in out)


def test_the_sandbox_sees_the_library_and_not_the_host_secrets(
    kernel_client: tuple[SandboxClient, str], tmp_path: Path
) -> None:
    out = run(
        kernel_client,
        "import json, sys, hdh\n"
        "host = ('sqlalchemy', 'jupyterlab_hdh.store', 'jupyterlab_hdh.governance',"
        " 'jupyterlab_hdh.guard')\n"
        "print(json.dumps({'file': hdh.__file__,"
        " 'host': sorted(m for m in sys.modules if m.startswith(host))}))",
    )
    assert out["file"].endswith("hdh/__init__.py") and out["host"] == []
