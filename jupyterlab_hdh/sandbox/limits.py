"""CPU and memory limits of a sandbox, with whatever this host allows.

Owns the choice of mechanism and its cleanup. In order of preference:

1. a child cgroup (v2 ``memory.max``/``cpu.max``, else v1
   ``memory.limit_in_bytes``/``cpu.cfs_quota_us``) created under the
   supervisor's own cgroup, when that folder is writable and the controller is
   there: it covers the whole sandbox (server, kernels, terminals) together;
2. else ``RLIMIT_AS`` set in the child before ``exec`` (memory only): it
   limits each process of the sandbox separately, not their sum.

bubblewrap itself manages no cgroups (a production host would rather wrap the
command in ``systemd-run --scope -p MemoryMax=…``). :class:`AppliedLimits`
says what was applied, so the spawner can log it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


@dataclass
class AppliedLimits:
    """What limits a sandbox runs under, and how to undo them."""

    memory: str = "none"  # "cgroup v2", "cgroup v1", "rlimit-as", "none"
    cpu: str = "none"  # "cgroup v2", "cgroup v1", "none"
    cgroup_dirs: list[Path] = field(default_factory=list)
    rlimit_as: int | None = None

    def preexec(self) -> Callable[[], None] | None:
        """A ``preexec_fn`` that joins the cgroups and sets the rlimit (runs in the child)."""
        if not self.cgroup_dirs and self.rlimit_as is None:
            return None
        procs = [str(d / "cgroup.procs") for d in self.cgroup_dirs]
        rlimit = self.rlimit_as

        def _apply() -> None:  # pragma: no cover - runs in the forked child
            pid = str(os.getpid()).encode()
            for p in procs:
                fd = os.open(p, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            if rlimit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (rlimit, rlimit))

        return _apply

    def release(self, timeout: float = 2.0) -> None:
        """Remove the cgroups (once their processes are gone)."""
        deadline = time.monotonic() + timeout
        for d in self.cgroup_dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        self.cgroup_dirs = []

    def describe(self) -> str:
        return f"memory: {self.memory}, cpu: {self.cpu}"


def _own_cgroups() -> tuple[str | None, dict[str, str]]:
    """(v2 path, {v1 controller: path}) of the current process."""
    v2: str | None = None
    v1: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None, {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        for c in controllers.split(","):
            if c:
                v1[c] = path
    return v2, v1


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _make_child(parent: Path, name: str) -> Path | None:
    child = parent / name
    try:
        child.mkdir(exist_ok=True)
    except OSError:
        return None
    return child


def _try_v2(name: str, memory: int | None, cpus: float | None, out: AppliedLimits) -> None:
    v2, _ = _own_cgroups()
    if v2 is None:
        return
    base = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() else CGROUP_ROOT / "unified"
    parent = base / v2.lstrip("/")
    try:
        available = (parent / "cgroup.subtree_control").read_text().split()
    except OSError:
        return
    wanted = [c for c, v in (("memory", memory), ("cpu", cpus)) if v is not None]
    if not any(c in available for c in wanted):
        return
    child = _make_child(parent, name)
    if child is None:
        return
    used = False
    if memory is not None and "memory" in available and _write(child / "memory.max", str(memory)):
        _write(child / "memory.swap.max", "0")
        out.memory, used = "cgroup v2", True
    if cpus is not None and "cpu" in available:
        quota = max(1000, int(cpus * CPU_PERIOD_US))
        if _write(child / "cpu.max", f"{quota} {CPU_PERIOD_US}"):
            out.cpu, used = "cgroup v2", True
    if used:
        out.cgroup_dirs.append(child)
    else:
        with contextlib.suppress(OSError):
            child.rmdir()


def _try_v1(name: str, memory: int | None, cpus: float | None, out: AppliedLimits) -> None:
    _, v1 = _own_cgroups()
    if memory is not None and out.memory == "none" and "memory" in v1:
        child = _make_child(CGROUP_ROOT / "memory" / v1["memory"].lstrip("/"), name)
        if child is not None:
            if _write(child / "memory.limit_in_bytes", str(memory)):
                _write(child / "memory.memsw.limit_in_bytes", str(memory))
                out.memory = "cgroup v1"
                out.cgroup_dirs.append(child)
            else:
                with contextlib.suppress(OSError):
                    child.rmdir()
    if cpus is not None and out.cpu == "none" and "cpu" in v1:
        mount = CGROUP_ROOT / "cpu"
        if not mount.exists():
            mount = CGROUP_ROOT / "cpu,cpuacct"
        child = _make_child(mount / v1["cpu"].lstrip("/"), name)
        if child is not None:
            quota = max(1000, int(cpus * CPU_PERIOD_US))
            if _write(child / "cpu.cfs_period_us", str(CPU_PERIOD_US)) and _write(
                child / "cpu.cfs_quota_us", str(quota)
            ):
                out.cpu = "cgroup v1"
                out.cgroup_dirs.append(child)
            else:
                with contextlib.suppress(OSError):
                    child.rmdir()


def prepare_limits(name: str, memory: int | None, cpus: float | None) -> AppliedLimits:
    """Create the cgroups for sandbox ``name`` (or plan the rlimit) before it starts."""
    out = AppliedLimits()
    if memory is None and cpus is None:
        return out
    cg_name = f"hdh-sandbox-{name}"
    _try_v2(cg_name, memory, cpus, out)
    _try_v1(cg_name, memory, cpus, out)
    if memory is not None and out.memory == "none":
        out.memory, out.rlimit_as = "rlimit-as", memory
    return out
