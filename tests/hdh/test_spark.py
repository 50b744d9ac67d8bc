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
