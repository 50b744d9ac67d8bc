"""``hdh.spark()`` and ``engine="spark"`` on the host: the session's settings, the heap from
the memory limits, Java found (or a one-line error), pushdown into the Parquet scan, and the
sandbox's side (Java's configuration and a loopback ``/etc/hosts`` bound in). The real
sandbox is tests/hdh/test_spark_in_sandbox.py."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hdh
from hdh import _spark
from jupyterlab_hdh.sandbox.spec import HOSTS_TEXT, bwrap_argv, sandbox_env
from tests.sandbox.conftest import make_site

GiB = 2**30


def test_the_settings_keep_spark_on_loopback_in_scratch_without_ui(tmp_path: Path) -> None:
    conf = _spark.settings(tmp_path, GiB, "local[*]")
    assert conf["spark.master"] == "local[*]" and conf["spark.ui.enabled"] == "false"
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.local.dir"] == str(tmp_path / "local")
    assert conf["spark.sql.warehouse.dir"] == str(tmp_path / "warehouse")
    assert f"-Djava.io.tmpdir={tmp_path} " in conf["spark.driver.extraJavaOptions"]
    assert conf["spark.driver.memory"] == "1024m"
    # a cluster (HDH_SPARK_MASTER) chooses its own addresses; no limit known: Spark's default
    cluster = _spark.settings(tmp_path, None, "k8s://https://kubernetes.default.svc")
    assert "spark.driver.host" not in cluster and "spark.driver.memory" not in cluster


def test_a_standalone_master_gets_the_pods_address_ports_and_secret(tmp_path: Path) -> None:
    """``HDH_SPARK_MASTER=spark://...``: the hub's master and workers (Kubernetes)."""
    secret = "s3cr3t-value"
    env = {
        "HDH_POD_IP": "10.1.2.3",
        "_SPARK_AUTH_SECRET": secret,
        "HDH_SPARK_EXECUTOR_CORES": "4",
        "HDH_SPARK_EXECUTOR_MEMORY": "6g",
        "HDH_SPARK_EXECUTOR_PYTHON": "/opt/hdh/venv/bin/python",
    }
    conf = _spark.settings(tmp_path, GiB, "spark://10.1.2.9:7077", env)
    assert conf["spark.master"] == "spark://10.1.2.9:7077"
    assert conf["spark.driver.host"] == "10.1.2.3"
    assert conf["spark.driver.bindAddress"] == "0.0.0.0"  # noqa: S104 (a pod's interfaces)
    assert conf["spark.driver.port"] == "7078" and conf["spark.blockManager.port"] == "7079"
    assert conf["spark.authenticate"] == conf["spark.network.crypto.enabled"] == "true"
    assert conf["spark.authenticate.secret"] == _spark.AUTH_SECRET_PLACEHOLDER
    assert not [k for k, v in conf.items() if secret in v]  # never in the configuration
    assert conf["spark.executor.cores"] == "4" and conf["spark.executor.memory"] == "6g"
    assert conf["spark.pyspark.python"] == "/opt/hdh/venv/bin/python"
    assert conf["spark.ui.enabled"] == "false" and conf["spark.driver.memory"] == "1024m"
    assert "spark.local.dir" not in conf  # the workers' (Spark warns when it is set)
    assert f"-Djava.io.tmpdir={tmp_path} " in conf["spark.driver.extraJavaOptions"]
    # no pod address, other ports, no secret, Spark's executor defaults
    env = {"HDH_SPARK_DRIVER_PORT": "17078", "HDH_SPARK_BLOCK_MANAGER_PORT": "17079"}
    bare = _spark.settings(tmp_path, None, "spark://127.0.0.1:7077", env)
    assert bare["spark.driver.host"] == bare["spark.driver.bindAddress"] == "127.0.0.1"
    assert bare["spark.driver.port"] == "17078" and bare["spark.blockManager.port"] == "17079"
    assert not {k for k in bare if k.startswith(("spark.authenticate", "spark.network"))}
    assert not {"spark.executor.cores", "spark.executor.memory", "spark.pyspark.python"} & set(bare)
    # local mode ignores the pod's environment
    assert _spark.settings(tmp_path, GiB, "local[*]", {**env, "HDH_POD_IP": "10.1.2.3"}) == (
        _spark.settings(tmp_path, GiB, "local[*]")
    )


def test_the_drivers_launch_environment_follows_the_pod() -> None:
    pod = {"HDH_POD_IP": "10.1.2.3", "HDH_SPARK_EXECUTOR_PYTHON": "/opt/hdh/venv/bin/python"}
    assert _spark.launch_env("spark://10.1.2.9:7077", {**pod, "SPARK_LOCAL_IP": "127.0.0.1"}) == {
        "SPARK_LOCAL_IP": "10.1.2.3",
        "SPARK_LOCAL_HOSTNAME": "10.1.2.3",
        "PYSPARK_PYTHON": "/opt/hdh/venv/bin/python",  # what PySpark tells the executors
        "MALLOC_ARENA_MAX": "2",
    }
    loopback = {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOCAL_HOSTNAME": "127.0.0.1"}
    assert _spark.launch_env("local[*]", pod) == {**loopback, "MALLOC_ARENA_MAX": "2"}
    assert _spark.launch_env("spark://127.0.0.1:7077", {}) == {**loopback, "MALLOC_ARENA_MAX": "2"}
    # what the process already has stays (as before: defaults only)
    assert _spark.launch_env("local[*]", {"SPARK_LOCAL_IP": "::1", "MALLOC_ARENA_MAX": "4"}) == {
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1"
    }


def test_the_heap_is_a_third_of_the_least_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _spark.heap_bytes(3 * GiB) == GiB and _spark.heap_bytes(None) is None
    assert _spark.heap_bytes(300 * 2**20) == _spark.MIN_HEAP
    monkeypatch.setenv("HDH_MEMORY_LIMIT", str(4 * GiB))
    assert _spark.memory_limit() == min(
        4 * GiB, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    )
    monkeypatch.setattr(_spark.resource, "getrlimit", lambda _: (2 * GiB, 2 * GiB))
    assert _spark.memory_limit() == 2 * GiB


def _fake_java(root: Path, config: bool) -> Path:
    home = root / "java-17-openjdk-amd64"
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    if config:
        (home / "lib" / "jvm.cfg").write_text("-server KNOWN\n")
    return home


def test_java_is_found_and_its_absence_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(_spark, "JVM_ROOT", tmp_path / "jvm")
    with pytest.raises(hdh.EngineUnavailable, match="no Java runtime; install Java 17") as e:
        _spark.java_home()
    assert "\n" not in str(e.value)
    # Debian's layout with /etc/java-17-openjdk not visible (lib/jvm.cfg links into it)
    home = _fake_java(tmp_path / "jvm", config=False)
    with pytest.raises(hdh.EngineUnavailable, match="lacks its configuration"):
        _spark.java_home()
    (home / "lib" / "jvm.cfg").write_text("-server KNOWN\n")
    assert _spark.java_home() == home
    other = _fake_java(tmp_path / "other", config=True)
    monkeypatch.setenv("JAVA_HOME", str(other))
    assert _spark.java_home() == other  # JAVA_HOME first


def test_read_without_java_says_so_in_one_line(data_root: Path, tmp_path: Path) -> None:
    """In a fresh interpreter (this one may hold a session already)."""
    code = (
        "import sys, hdh, hdh._spark as s\n"
        "from pathlib import Path\n"
        f"s.JVM_ROOT = Path({str(tmp_path)!r})\n"
        "try:\n"
        "    hdh.read('demo-snds.IR_BEN_R', engine='spark')\n"
        "except hdh.EngineUnavailable as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PATH": str(tmp_path), "JAVA_HOME": str(tmp_path / "none")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.strip() == (
        "engine 'spark' cannot start here: no Java runtime; install Java 17 "
        "(Debian: openjdk-17-jre-headless)"
    ), out


@pytest.fixture(scope="module")
def session() -> object:
    pytest.importorskip("pyspark", reason="pyspark is not installed in this environment")
    try:
        _spark.java_home()
    except hdh.EngineUnavailable as exc:
        pytest.skip(str(exc))
    return hdh.spark()


def test_spark_pushes_projection_and_filters_into_the_scan(
    session: object, data_root: Path
) -> None:
    df = hdh.read(
        "demo-snds.ER_PRS_F",
        engine="spark",
        columns=["BEN_NIR_PSA"],
        filters=[("EXE_SOI_DTD", "<", dt.date(2021, 2, 1))],
    )
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "PushedFilters: [IsNotNull(EXE_SOI_DTD), LessThan(EXE_SOI_DTD,2021-02-01)]" in plan
    assert "ReadSchema: struct<BEN_NIR_PSA:string,EXE_SOI_DTD:date>" in plan, plan
    assert df.count() == 31 and df.columns == ["BEN_NIR_PSA"]
    assert hdh.spark() is session  # one session per kernel
    tuned = hdh.spark({"spark.sql.shuffle.partitions": "3"})
    assert tuned.conf.get("spark.sql.shuffle.partitions") == "3"


def test_the_sandbox_sees_java_and_resolves_its_loopback_names(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    spec = site.spec("p1", "alice", [], memory_limit=2 * GiB)
    argv = bwrap_argv(spec)
    pairs = {(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--ro-bind"}
    for etc in sorted(Path("/etc").glob("java-*-openjdk")):
        assert (str(etc), str(etc)) in pairs  # read-only, as /usr/lib/jvm under /usr
    assert (str(spec.host_etc_dir / "hosts"), "/etc/hosts") in pairs
    assert (str(spec.host_etc_dir / "nsswitch.conf"), "/etc/nsswitch.conf") in pairs
    assert HOSTS_TEXT.startswith("127.0.0.1\tlocalhost hdh-sandbox\n")
    assert sandbox_env(spec)["HDH_MEMORY_LIMIT"] == str(2 * GiB)
