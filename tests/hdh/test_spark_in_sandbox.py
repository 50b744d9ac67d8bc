"""Spark in a real bubblewrap sandbox: ``hdh.spark()`` starts a JVM in the kernel's sandbox
(loopback only, read-only root, a memory limit), ``hdh.read(..., engine="spark")`` reads the
``/data`` mounts with pushdown, and a Spark job reaches nothing beyond the sandbox's loopback.

One sandbox, one kernel and one Spark session for the module (a JVM takes seconds to start).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdh import _spark
from jupyterlab_hdh.sandbox import Sandbox
from jupyterlab_hdh.sandbox.client import SandboxClient
from tests.sandbox.conftest import bwrap_problem, make_site

pytest.importorskip("pyspark", reason="pyspark is not installed in this environment")

MEMORY = 3 * 2**30  # the sandbox's limit: the JVM must start under it, whatever enforces it


@pytest.fixture(scope="module")
def spark_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxClient, str]]:
    if bwrap_problem() is not None:
        pytest.skip(f"no sandbox on this machine: {bwrap_problem()}")
    try:
        _spark.java_home()
    except Exception as exc:
        pytest.skip(str(exc))
    site = make_site(tmp_path_factory.mktemp("site"))
    folder = site.dataset("ds_a", "v1")
    pq.write_table(
        pa.table({"id": [1, 2, 3, 4], "n": [10, 20, 30, 40]}), folder / "ER_PRS_F.parquet"
    )
    for yy, rows in (("21", 2), ("22", 3)):
        pq.write_table(pa.table({"k": list(range(rows))}), folder / f"T_MCO{yy}B.parquet")
    spec = site.spec("p1", "alice", [("ds_a", "v1")], memory_limit=MEMORY)
    with Sandbox(spec, start_timeout=60) as sb:
        client = sb.client(timeout=120)
        kid = client.start_kernel()
        try:
            run((client, kid), "import json, hdh\nspark = hdh.spark()\nprint('{}')")
            yield client, kid
        finally:
            client.shutdown_kernel(kid)


def run(kc: tuple[SandboxClient, str], code: str) -> Any:
    client, kid = kc
    r = client.execute(code, kernel_id=kid)
    assert r.error is None, (r.error, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_session_is_local_on_loopback_without_ui(
    spark_kernel: tuple[SandboxClient, str],
) -> None:
    out = run(
        spark_kernel,
        "conf = dict(spark.sparkContext.getConf().getAll())\n"
        "jvm = spark.sparkContext._jvm\n"
        "print(json.dumps({'conf': {k: conf.get(k) for k in ('spark.master', 'spark.driver.host',"
        " 'spark.driver.bindAddress', 'spark.ui.enabled', 'spark.local.dir',"
        " 'spark.driver.memory')},"
        " 'heap': jvm.java.lang.Runtime.getRuntime().maxMemory(),"
        " 'java': jvm.java.lang.System.getProperty('java.home'),"
        " 'tmp': jvm.java.lang.System.getProperty('java.io.tmpdir'),"
        " 'same': hdh.spark() is spark}))",
    )
    conf = out["conf"]
    assert conf["spark.master"] == "local[*]" and conf["spark.ui.enabled"] == "false"
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.local.dir"].startswith("/tmp/") and out["tmp"].startswith("/tmp/")
    assert conf["spark.driver.memory"] == f"{MEMORY // 3 // 2**20}m"  # from the sandbox's limit
    assert 0.7 * MEMORY / 3 < out["heap"] <= MEMORY / 3, out["heap"]
    assert out["java"].startswith("/usr/lib/jvm/") and out["same"] is True


def test_read_with_spark_gives_the_rows_with_pushdown(
    spark_kernel: tuple[SandboxClient, str],
) -> None:
    out = run(
        spark_kernel,
        "df = hdh.read('ds_a.ER_PRS_F', engine='spark', columns=['n'], filters=[('id', '>', 1)])\n"
        "plan = df._jdf.queryExecution().executedPlan().toString()\n"
        "years = hdh.read('ds_a.T_MCOaaB', engine='spark').groupBy('year').count()\n"
        "one = hdh.read('ds_a.T_MCOaaB', engine='spark', filters=[('year', '==', 2022)])\n"
        "print(json.dumps({'n': sorted(r.n for r in df.collect()), 'plan': plan,\n"
        "  'years': sorted([r['year'], r['count']] for r in years.collect()),\n"
        "  'k': sorted(r.k for r in one.collect()), 'type': type(df).__module__}))",
    )
    assert out["n"] == [20, 30, 40] and out["type"].startswith("pyspark.sql")
    assert "PushedFilters: [IsNotNull(id), GreaterThan(id,1)]" in out["plan"], out["plan"]
    assert "ReadSchema: struct<id:bigint,n:bigint>" in out["plan"], out["plan"]
    assert out["years"] == [[2021, 2], [2022, 3]] and out["k"] == [0, 1, 2]


@pytest.fixture
def host_listener() -> Iterator[tuple[list[str], int, list[str]]]:
    """A TCP server on every host address: (the host's addresses, its port, who connected)."""
    server = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - every address, on purpose
    port = server.getsockname()[1]
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            seen.append(peer[0])
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    addresses = ["127.0.0.1"] + sorted(
        a.address
        for found in psutil.net_if_addrs().values()
        for a in found
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    )
    # the listener works: the host reaches it on each address (so a refusal below is the
    # sandbox's doing)
    for address in addresses:
        socket.create_connection((address, port), timeout=2).close()
    deadline = threading.Event()
    while len(seen) < len(addresses) and not deadline.wait(0.05):
        pass
    seen.clear()
    try:
        yield addresses, port, seen
    finally:
        server.close()


def test_a_spark_job_reaches_nothing_beyond_the_sandbox_loopback(
    spark_kernel: tuple[SandboxClient, str], host_listener: tuple[list[str], int, list[str]]
) -> None:
    addresses, port, seen = host_listener
    out = run(
        spark_kernel,
        f"targets = {[*addresses, '1.1.1.1']!r}\n"
        f"port = {port}\n"
        "jvm = spark.sparkContext._jvm\n"
        "res = {}\n"
        "for ip in targets:\n"
        "    try:\n"  # the driver's JVM
        "        s = jvm.java.net.Socket()\n"
        "        s.connect(jvm.java.net.InetSocketAddress(ip, port), 2000)\n"
        "        res['jvm ' + ip] = 'connected'\n"
        "    except Exception as e:\n"
        "        res['jvm ' + ip] = e.java_exception.toString()\n"
        "    try:\n"  # the driver's JVM fetching a URL
        "        jvm.java.net.URL(f'http://{ip}:{port}/x').openStream()\n"
        "        res['url ' + ip] = 'connected'\n"
        "    except Exception as e:\n"
        "        res['url ' + ip] = e.java_exception.toString()\n"
        "def probe(_, targets=targets, port=port):\n"  # a task in a Python worker
        "    import socket\n"
        "    out = []\n"
        "    for ip in targets:\n"
        "        try:\n"
        "            socket.create_connection((ip, port), timeout=2).close()\n"
        "            out.append((ip, 'connected'))\n"
        "        except OSError as e:\n"
        "            out.append((ip, f'{type(e).__name__}: {e}'))\n"
        "    return out\n"
        "for ip, r in spark.sparkContext.parallelize([0], 1).flatMap(probe).collect():\n"
        "    res['task ' + ip] = r\n"
        "print(json.dumps(res))",
    )
    assert len(out) == 3 * (len(addresses) + 1), out
    refused = ("Connection refused", "Network is unreachable")
    assert all(any(r in v for r in refused) for v in out.values()), out
    assert seen == [], seen  # nothing reached the host's listener
