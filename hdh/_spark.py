"""``hdh.spark()``: one Spark session per kernel, configured for the sandbox it runs in.

Owns the Java runtime's discovery, the session's configuration and its memory. A sandbox
has a network namespace with loopback only, a read-only root, ``/tmp`` as scratch, and a
memory limit (a cgroup, else ``RLIMIT_AS`` on each process); the session fits them:

* the driver binds to ``127.0.0.1`` and advertises it (the sandbox has no resolvable host
  name), with no web UI and no progress bars; the master is ``HDH_SPARK_MASTER`` when set,
  else ``local[*]`` in the kernel's own JVM;
* on Kubernetes (``HDH_SPARK_MASTER=spark://IP:7077``, the standalone master and workers that
  the hub made, images/spark/entrypoint.sh) the driver advertises the pod's address
  (``HDH_POD_IP``) on fixed ports, the only ones the project's NetworkPolicies open
  (``HDH_SPARK_DRIVER_PORT``, 7078; ``HDH_SPARK_BLOCK_MANAGER_PORT``, 7079, the executors'
  too), authenticates with the server's secret (``_SPARK_AUTH_SECRET``, read by Spark from
  the environment, never copied into the configuration) and encrypts RPC with it; the
  executors' size (``HDH_SPARK_EXECUTOR_CORES``, ``HDH_SPARK_EXECUTOR_MEMORY``) and Python
  (``HDH_SPARK_EXECUTOR_PYTHON``) are the hub's;
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
#: a standalone session's ports (the driver's RPC and every block manager's), which the
#: project's NetworkPolicies open between its Spark pods with the master's 7077 and the
#: workers' 7080
DRIVER_PORT = "7078"
BLOCK_MANAGER_PORT = "7079"
#: where every Spark process of a standalone session reads the server's shared secret
AUTH_SECRET_ENV = "_SPARK_AUTH_SECRET"  # noqa: S105 (a variable name)
AUTH_SECRET_PLACEHOLDER = f"(read from {AUTH_SECRET_ENV})"


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


def settings(
    scratch: Path, heap: int | None, master: str, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The session's configuration (pure: tested without a JVM); ``env``, the process's
    environment, is read for a standalone master only."""
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
    elif master.startswith("spark://"):
        conf |= standalone_settings(env or {})
        # the executors' folders are their workers'; Spark warns of that when this is set,
        # and the driver's own go under java.io.tmpdir, the same scratch
        del conf["spark.local.dir"]
    if heap is not None:
        conf["spark.driver.memory"] = f"{heap // 2**20}m"
    return conf


def standalone_settings(env: Mapping[str, str]) -> dict[str, str]:
    """A driver's settings for a standalone master (``spark://``), from the environment the
    hub gives the pod."""
    pod_ip = env.get("HDH_POD_IP", "")
    conf = {
        "spark.driver.host": pod_ip or "127.0.0.1",
        "spark.driver.bindAddress": "0.0.0.0" if pod_ip else "127.0.0.1",  # noqa: S104 (a pod)
        "spark.driver.port": env.get("HDH_SPARK_DRIVER_PORT") or DRIVER_PORT,
        # the executors' block managers too (one executor per worker pod)
        "spark.blockManager.port": env.get("HDH_SPARK_BLOCK_MANAGER_PORT") or BLOCK_MANAGER_PORT,
    }
    if env.get(AUTH_SECRET_ENV):
        conf |= {
            "spark.authenticate": "true",
            # Spark's driver refuses to start for a standalone master unless this key is
            # set, then reads the secret from _SPARK_AUTH_SECRET first (SecurityManager
            # .getSecretKey): the key holds a placeholder, never the secret
            "spark.authenticate.secret": AUTH_SECRET_PLACEHOLDER,
            "spark.network.crypto.enabled": "true",
            "spark.network.crypto.saslFallback": "false",
        }
    if env.get("HDH_SPARK_EXECUTOR_CORES"):
        conf["spark.executor.cores"] = env["HDH_SPARK_EXECUTOR_CORES"]
    if env.get("HDH_SPARK_EXECUTOR_MEMORY"):
        conf["spark.executor.memory"] = env["HDH_SPARK_EXECUTOR_MEMORY"]
    if env.get("HDH_SPARK_EXECUTOR_PYTHON"):
        conf["spark.pyspark.python"] = env["HDH_SPARK_EXECUTOR_PYTHON"]
    return conf


def launch_env(master: str, env: Mapping[str, str]) -> dict[str, str]:
    """The variables the driver's JVM (and PySpark) read at launch, set over ``env``: a
    literal address (no host name to resolve: the pod's for a standalone master), and few
    malloc arenas (each reserves 64 MiB of address space under RLIMIT_AS). PySpark sends its
    own ``PYSPARK_PYTHON`` to the executors as the Python to run (``spark.pyspark.python``
    does not reach them from a running driver)."""
    pod_ip = env.get("HDH_POD_IP", "")
    out: dict[str, str] = {}
    if master.startswith("spark://") and pod_ip:
        out |= {"SPARK_LOCAL_IP": pod_ip, "SPARK_LOCAL_HOSTNAME": pod_ip}
    if master.startswith("spark://") and env.get("HDH_SPARK_EXECUTOR_PYTHON"):
        out["PYSPARK_PYTHON"] = env["HDH_SPARK_EXECUTOR_PYTHON"]
    defaults = {
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
        "MALLOC_ARENA_MAX": "2",
    }
    for key, value in defaults.items():
        if key not in out and key not in env:
            out[key] = value
    return out


def session(config: Mapping[str, str] | None = None) -> Any:
    """The kernel's Spark session (created on first call; ``config`` adds or overrides
    settings of a new session)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and not config:
        return active
    os.environ["JAVA_HOME"] = str(java_home())
    master = os.environ.get("HDH_SPARK_MASTER", "local[*]")
    os.environ.update(launch_env(master, os.environ))
    scratch = Path(tempfile.gettempdir()) / f"hdh-spark-{os.getuid()}"
    scratch.mkdir(mode=0o700, exist_ok=True)
    conf = settings(scratch, heap_bytes(memory_limit()), master, os.environ)
    conf |= dict(config or {})
    builder = SparkSession.builder.appName(f"hdh-{os.environ.get('HDH_PROJECT', 'notebook')}")
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
