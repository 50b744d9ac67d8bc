"""``hdh.spark()``: one Spark session per kernel, configured for the sandbox it runs in.

Owns the Java runtime's discovery, the session's configuration and its memory. A sandbox
has a network namespace with loopback only, a read-only root, ``/tmp`` as scratch, and a
memory limit (a cgroup, else ``RLIMIT_AS`` on each process); the session fits them:

* the driver binds to ``127.0.0.1`` and advertises it (the sandbox has no resolvable host
  name), with no web UI and no progress bars; the master is ``HDH_SPARK_MASTER`` when set
  (a cluster later), else ``local[*]`` in the kernel's own JVM;
* scratch (shuffle, spills, the SQL warehouse, Java's temporary files) under the temporary
  folder, never the workspace;
* the JVM's heap a third of the memory limit (``HDH_MEMORY_LIMIT``, set by the sandbox, the
  ``RLIMIT_AS`` or the machine's memory, whichever is least), with small code-cache and
  class-space reservations so that an address-space limit leaves room for them;
* Java from ``JAVA_HOME`` if it works, else ``java`` on ``PATH``, else Debian's
  ``/usr/lib/jvm/java-17-openjdk-*`` (``/usr/bin/java`` is a link through ``/etc/alternatives``,
  which a sandbox does not see); none: :class:`hdh.EngineUnavailable` in one line.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdh.errors import EngineUnavailable

#: where Debian installs Java runtimes (``openjdk-17-jre-headless``)
JVM_ROOT = Path("/usr/lib/jvm")
#: the Java versions Spark 4 runs on, preferred first
JAVA_VERSIONS = ("17", "21")
MIN_HEAP = 256 * 2**20
INSTALL_HINT = "install Java 17 (Debian: openjdk-17-jre-headless)"


def java_home() -> Path:
    """The Java runtime Spark's JVM will run on; :class:`EngineUnavailable` when none works."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")  # None for a link whose target is not visible
    if on_path:
        candidates.append(Path(on_path).resolve().parent.parent)
    for version in JAVA_VERSIONS:
        candidates.extend(sorted(JVM_ROOT.glob(f"java-{version}-openjdk-*")))
    incomplete = None
    for home in candidates:
        if not os.access(home / "bin" / "java", os.X_OK):
            continue
        if not (home / "lib" / "jvm.cfg").exists():  # Debian links it into /etc/java-*
            incomplete = home
            continue
        return home
    if incomplete is not None:
        raise EngineUnavailable(
            f"engine 'spark' cannot start here: the Java runtime in {incomplete} lacks its "
            "configuration (lib/jvm.cfg; on Debian under /etc/java-17-openjdk)"
        )
    raise EngineUnavailable(f"engine 'spark' cannot start here: no Java runtime; {INSTALL_HINT}")


def memory_limit() -> int | None:
    """The least of the sandbox's memory limit, the address-space limit and the machine's
    memory, in bytes (None when none is known)."""
    limits = []
    declared = os.environ.get("HDH_MEMORY_LIMIT", "")
    if declared.isdigit():
        limits.append(int(declared))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    with contextlib.suppress(ValueError, OSError):  # every Linux has both
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return min(limits) if limits else None


def heap_bytes(limit: int | None) -> int | None:
    """The driver's heap: a third of ``limit`` (the kernel and the JVM's own memory share the
    rest), at least 256 MiB; None leaves Spark's default."""
    return None if limit is None else max(MIN_HEAP, limit // 3)


def settings(scratch: Path, heap: int | None, master: str) -> dict[str, str]:
    """The session's configuration (pure: tested without a JVM)."""
    java_opts = (
        f"-Djava.io.tmpdir={scratch} -XX:ReservedCodeCacheSize=128m "
        "-XX:CompressedClassSpaceSize=256m -XX:+ExitOnOutOfMemoryError"
    )
    conf = {
        "spark.master": master,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.local.dir": str(scratch / "local"),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.driver.extraJavaOptions": java_opts,
        "spark.log.level": "WARN",
    }
    if master.startswith("local"):
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    if heap is not None:
        conf["spark.driver.memory"] = f"{heap // 2**20}m"
    return conf


def session(config: Mapping[str, str] | None = None) -> Any:
    """The kernel's Spark session (created on first call; ``config`` adds or overrides
    settings of a new session)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and not config:
        return active
    os.environ["JAVA_HOME"] = str(java_home())
    # the JVM reads these at launch: a literal address (no host name to resolve), and few
    # malloc arenas (each reserves 64 MiB of address space under RLIMIT_AS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("SPARK_LOCAL_HOSTNAME", "127.0.0.1")
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    scratch = Path(tempfile.gettempdir()) / f"hdh-spark-{os.getuid()}"
    scratch.mkdir(mode=0o700, exist_ok=True)
    master = os.environ.get("HDH_SPARK_MASTER", "local[*]")
    conf = settings(scratch, heap_bytes(memory_limit()), master)
    conf |= dict(config or {})
    builder = SparkSession.builder.appName(f"hdh-{os.environ.get('HDH_PROJECT', 'notebook')}")
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
