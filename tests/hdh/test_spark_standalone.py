"""A Spark session on a standalone master and worker, as on Kubernetes (the hub makes them
from the hdh-spark image; the driver is the project's pod): the REAL images/spark/entrypoint.sh
``master`` and ``worker`` run here as local processes on free loopback ports, with the
shared secret in ``_SPARK_AUTH_SECRET`` and RPC encryption on. A driver made by
``hdh._spark.session()`` (in a fresh interpreter: a JVM reads its environment once) reads
Parquet and aggregates it on the worker's executor; a driver with another secret is refused
at its first connection to the master.

One master and one worker (one core, one executor) for the module; every process started is
killed, with its children (the executors), whatever the outcome."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hdh
from hdh import _spark

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "images" / "spark" / "entrypoint.sh"
#: generous for JVMs on a busy two-core machine; every wait ends as soon as its condition holds
DEADLINE_S = 120.0


def _free_ports(n: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def _wait_for(what: str, check: Callable[[], Any], logs: list[Path], alive: list[Any]) -> Any:
    """``check()``'s first true value, polled until DEADLINE_S; fails early, with the logs,
    when a process it depends on has exited."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = check()
        if value:
            return value
        dead = [p.args for p in alive if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            why = f"exited: {dead}" if dead else f"not within {DEADLINE_S:.0f} s"
            pytest.fail(
                f"{what}: {why}\n" + "\n".join(f"--- {p}\n{_tail(p)}" for p in logs),
                pytrace=False,
            )
        time.sleep(0.2)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The process and its group (a worker's executors and their Python workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # the group's last members
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Cluster:
    root: Path
    secret: str
    master_port: int
    master_ui: int
    worker_tmp: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def state(self) -> dict[str, Any]:
        """The master's JSON status (workers, applications)."""
        try:
            url = f"http://127.0.0.1:{self.master_ui}/json/"
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback)
                return json.load(resp)  # type: ignore[no-any-return]
        except OSError:
            return {}

    def start(self, role: str, **env: str) -> None:
        tmp = self.root / role
        tmp.mkdir()
        log = self.root / f"{role}.log"
        with log.open("wb") as out:
            self.procs.append(
                subprocess.Popen(  # noqa: S603 (the image's entrypoint)
                    [str(ENTRYPOINT), role],
                    env={**self.env, "TMPDIR": str(tmp), **env},
                    cwd=tmp,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self.logs.append(log)

    def driver(self, name: str, code: str, **env: str) -> subprocess.Popen[bytes]:
        """A fresh interpreter running ``code`` with the driver's environment (a pod's)."""
        tmp = self.root / name
        tmp.mkdir()
        log = self.root / f"{name}.log"
        driver_port, block_manager_port = _free_ports(2)
        inherited = {  # no Spark nor HDH setting of this process (a session may run here)
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SPARK_", "PYSPARK_", "_SPARK_", "HDH_"))
        }
        denv = {
            **inherited,
            "TMPDIR": str(tmp),
            "HDH_POD_IP": "127.0.0.1",
            "HDH_SPARK_MASTER": self.master_url,
            "HDH_SPARK_DRIVER_PORT": str(driver_port),
            "HDH_SPARK_BLOCK_MANAGER_PORT": str(block_manager_port),
            "HDH_SPARK_EXECUTOR_MEMORY": "512m",
            "HDH_SPARK_EXECUTOR_PYTHON": sys.executable,
            "HDH_PROJECT": name,
            "HDH_MEMORY_LIMIT": str(3 * 2**30),
            "_SPARK_AUTH_SECRET": self.secret,
            **env,
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 (this interpreter)
                [sys.executable, "-c", code],
                env=denv,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed in this environment")
    try:
        java = _spark.java_home()
    except hdh.EngineUnavailable as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("standalone")
    master_port, master_ui, worker_port, worker_ui = _free_ports(4)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "JAVA_HOME": str(java),
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_DAEMON_MEMORY": "256m",
        "HDH_POD_IP": "127.0.0.1",
        "_SPARK_AUTH_SECRET": secrets.token_urlsafe(32),
    }
    c = Cluster(root, env["_SPARK_AUTH_SECRET"], master_port, master_ui, root / "worker", env)
    try:
        c.start("master", HDH_SPARK_PORT=str(master_port), HDH_SPARK_WEBUI_PORT=str(master_ui))
        c.start(
            "worker",
            HDH_SPARK_PORT=str(worker_port),
            HDH_SPARK_WEBUI_PORT=str(worker_ui),
            HDH_SPARK_MASTER_URL=c.master_url,
            HDH_SPARK_CORES="1",
            HDH_SPARK_MEMORY="768m",
        )
        _wait_for(
            "the worker registers with the master",
            lambda: c.state().get("aliveworkers") == 1,
            c.logs,
            c.procs,
        )
        yield c
    finally:
        for proc in reversed(c.procs):
            _kill_group(proc)


DRIVER = """
import json, os, sys
from hdh import _spark

def where(_):
    import os, sys
    yield os.getcwd(), sys.executable

spark = _spark.session()
sc = spark.sparkContext
df = spark.read.parquet({parquet!r})
rows = df.groupBy("g").agg({{"v": "sum", "*": "count"}}).collect()
print(json.dumps({{
    "sums": {{r["g"]: [r["sum(v)"], r["count(1)"]] for r in rows}},
    "master": sc.master,
    "app": sc.applicationId,
    "executors": sc._jsc.sc().getExecutorIds().mkString(",").split(","),
    "ran_in": sorted(set(sc.parallelize(range(4), 2).mapPartitions(where).collect())),
    "conf": dict(sc.getConf().getAll()),
}}), flush=True)
spark.stop()
"""


def test_a_session_runs_on_the_standalone_executors(cluster: Cluster, tmp_path: Path) -> None:
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"g": ["a", "b", "a", "c"] * 25, "v": list(range(100))}), parquet)
    proc = cluster.driver("good", DRIVER.format(parquet=str(parquet)))
    try:
        proc.wait(timeout=DEADLINE_S)
    finally:
        _kill_group(proc)
    log = cluster.root / "good.log"
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, _tail(log)
    out = json.loads(lines[-1])
    assert out["sums"] == {"a": [2450, 50], "b": [1225, 25], "c": [1275, 25]}
    # the standalone master's application, on its worker's executor (not local[*])
    assert out["master"] == cluster.master_url and out["app"].startswith("app-")
    assert out["executors"], out
    app_dir = cluster.worker_tmp / "spark-work" / out["app"]
    assert out["ran_in"] == [[str(app_dir / out["executors"][0]), sys.executable]]
    conf = out["conf"]
    assert conf["spark.authenticate"] == conf["spark.network.crypto.enabled"] == "true"
    assert conf["spark.authenticate.secret"] == _spark.AUTH_SECRET_PLACEHOLDER
    assert not [k for k, v in conf.items() if cluster.secret in v]  # the secret stays out
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert "WARN SparkConf" not in log.read_text()  # e.g. spark.local.dir overridden
    done = cluster.state().get("completedapps", [])
    assert [a["id"] for a in done] == [out["app"]], cluster.state()


@pytest.mark.parametrize("secret", ["not-it", ""])
def test_a_driver_without_the_secret_is_refused(cluster: Cluster, secret: str) -> None:
    """What Spark does: the driver's connection to the master is refused ("Failed to connect
    to master"; the cause logged, when the race in Spark's client lets it through, is
    "Authentication failed." with another secret and "Unknown challenge message." with none:
    the master reads its first message as a failed handshake); it retries twice, 20 s apart
    (StandaloneAppClient), then gives up and the session fails ("All masters are
    unresponsive! Giving up.", then "Cannot call methods on a stopped SparkContext"), about a
    minute later. The test waits for the refusal, never for the minute; the same driver with
    the secret registers (the test above)."""
    before = cluster.state()
    proc = cluster.driver(
        f"wrong{len(secret)}",
        "from hdh import _spark\n_spark.session()\n",
        _SPARK_AUTH_SECRET=secret,
    )
    log = cluster.root / f"wrong{len(secret)}.log"
    try:
        _wait_for(
            "the master's refusal",
            lambda: (
                f"Failed to connect to master 127.0.0.1:{cluster.master_port}"
                in log.read_text(errors="replace")
            ),
            [log],
            [proc],
        )
        after = cluster.state()
        assert after.get("activeapps") == [] and after.get("completedapps") == before.get(
            "completedapps"
        ), after
        assert proc.poll() is None  # still retrying: never registered
    finally:
        _kill_group(proc)


@pytest.mark.parametrize("role", ["master", "worker"])
def test_master_and_worker_never_run_without_the_secret(tmp_path: Path, role: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HDH_POD_IP": "127.0.0.1", "HDH_SPARK_PORT": "7077"}
    done = subprocess.run(  # noqa: S603 (the image's entrypoint)
        [str(ENTRYPOINT), role], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 64
    assert done.stderr.strip() == (
        f"hdh-spark: no _SPARK_AUTH_SECRET; a {role} never runs without authentication"
    )
