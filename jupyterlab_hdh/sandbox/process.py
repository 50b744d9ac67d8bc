"""Running a sandbox: start, readiness, stop, one at a time per (project, person).

Owns the lifecycle of one bubblewrap process tree: the runtime folder
(lock, log, synthetic ``etc/``, ``sock/``), the exclusive ``flock`` that makes
a second concurrent start raise :class:`SandboxBusyError`, the limits, the
readiness wait on ``GET <base_url>api/status`` over the socket, and a stop
that leaves no process behind. A later JupyterHub Spawner wraps this class.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO

from jupyterlab_hdh.sandbox import seccomp
from jupyterlab_hdh.sandbox.client import SandboxClient
from jupyterlab_hdh.sandbox.errors import (
    SandboxBusyError,
    SandboxClientError,
    SandboxConfigError,
    SandboxError,
    SandboxStartError,
    SandboxUnavailableError,
)
from jupyterlab_hdh.sandbox.limits import AppliedLimits, prepare_limits
from jupyterlab_hdh.sandbox.ownership import give_tree, share_with_group
from jupyterlab_hdh.sandbox.spec import (
    HOSTS_TEXT,
    NSSWITCH_TEXT,
    SandboxSpec,
    bwrap_argv,
    group_text,
    page_config_text,
    passwd_text,
)


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailableError(
            "bubblewrap (bwrap) is not installed on this host: install the 'bubblewrap' package"
        )
    return path


SETPRIV = "/usr/bin/setpriv"


def check_identity(spec: SandboxSpec) -> None:
    """Refuse a sandbox that would run as the host's root, or as a uid we cannot become."""
    root = os.geteuid() == 0
    if root and spec.host is None:
        raise SandboxConfigError(
            "refusing to run a sandbox as the host's root: a root supervisor must give"
            " the sandbox an unprivileged host identity (SandboxSpec.host)"
        )
    if not root and spec.host is not None:
        raise SandboxConfigError(
            "only a root supervisor can run a sandbox as another host user"
            f" (uid {spec.host.uid}); run it without SandboxSpec.host"
        )
    if spec.host is None:
        return
    if not os.access(SETPRIV, os.X_OK):
        raise SandboxUnavailableError(
            f"{SETPRIV} is missing: install util-linux, which runs a sandbox as its own uid"
        )
    taken = _host_name_of(spec.host.uid, *spec.host.groups)
    if taken:
        raise SandboxConfigError(
            f"the sandbox's host ids are already used on this host ({taken}):"
            " choose another SandboxSpawner.host_id_base (projects) or review_id_base"
            " (reviewers' workspaces)"
        )


def _host_name_of(uid: int, *gids: int) -> str:
    """Which of these ids the host's own users or groups hold ('' if none)."""
    import grp
    import pwd

    held = []
    with contextlib.suppress(KeyError):
        held.append(f"uid {uid} is user {pwd.getpwuid(uid).pw_name}")
    for g in gids:
        with contextlib.suppress(KeyError):
            held.append(f"gid {g} is group {grp.getgrgid(g).gr_name}")
    return ", ".join(held)


def bwrap_problem() -> str | None:
    """Why bwrap cannot make a sandbox here (``None`` if it can): for skips and health checks."""
    try:
        bwrap = find_bwrap()
    except SandboxUnavailableError as e:
        return str(e)
    argv = [bwrap, "--unshare-all", "--uid", "1000", "--gid", "1000", "--ro-bind", "/", "/"]
    r = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"bwrap cannot create namespaces here: {r.stderr.strip()}"
    return None


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." - comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (host pids), parents before children."""
    kids = _children_map()
    out: list[int] = []
    todo = list(kids.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).strip()
    except OSError:
        return ""


class Sandbox:
    """One project's Jupyter server for one person, in bubblewrap.

    ``start()`` returns once the server answers on its socket; ``stop()`` is
    idempotent. Use as a context manager to stop on exit.
    """

    def __init__(
        self,
        spec: SandboxSpec,
        *,
        start_timeout: float = 60.0,
        stop_grace: float = 5.0,
        bwrap: str | None = None,
    ) -> None:
        self.spec = spec
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._bwrap = bwrap
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._log: IO[bytes] | None = None
        self.limits = AppliedLimits()
        self.seccomp = "seccomp: not started"
        self.started_at: float | None = None

    # -- public -------------------------------------------------------------

    @property
    def socket_path(self) -> Path:
        return self.spec.socket_path

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Host pid of the outer bwrap process."""
        return self._proc.pid if self._proc is not None else None

    def client(self, timeout: float = 30.0) -> SandboxClient:
        return SandboxClient(self.socket_path, self.spec.base_url, timeout)

    def start(self) -> None:
        """Start the sandbox and wait until its server answers; raise a SandboxError if not."""
        if self.alive:
            raise SandboxBusyError(f"sandbox {self.spec.name} is already running")
        self._teardown()  # a previous run that died on its own: release what it held
        bwrap = self._bwrap or find_bwrap()
        self.spec.check_paths()  # before creating anything
        check_identity(self.spec)
        self._acquire_lock()
        try:
            self._prepare_runtime()
            self.limits = prepare_limits(
                self.spec.name, self.spec.memory_limit, self.spec.cpu_limit
            )
            self._log = self.spec.log_path.open("wb")
            os.chmod(self.spec.log_path, 0o600)
            filter_fd = seccomp.program_fd()
            self.seccomp = seccomp.describe()
            try:
                self._proc = subprocess.Popen(
                    bwrap_argv(self.spec, bwrap=bwrap, seccomp_fd=filter_fd),
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    pass_fds=(filter_fd,) if filter_fd is not None else (),
                    preexec_fn=self.limits.preexec(),  # in the child: join cgroups / setrlimit
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                )
            except (OSError, subprocess.SubprocessError) as e:
                raise SandboxStartError(f"the sandbox could not be launched: {e}") from None
            finally:
                if filter_fd is not None:
                    os.close(filter_fd)
            self.started_at = time.monotonic()
            self._wait_ready()
        except BaseException:
            self._teardown()
            raise

    def stop(self) -> None:
        """SIGTERM the server (then SIGKILL the whole tree after the grace period)."""
        self._teardown()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------

    def _acquire_lock(self) -> None:
        rt = self.spec.runtime_dir
        rt.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(rt, 0o700)
        fd = os.open(
            self.spec.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SandboxBusyError(
                f"a sandbox for project {self.spec.project} and user {self.spec.user}"
                " is already running"
            ) from None
        self._lock_fd = fd

    def _prepare_runtime(self) -> None:
        spec = self.spec
        if not spec.workspace.exists():
            spec.workspace.mkdir(parents=True, mode=0o700)
        etc = spec.host_etc_dir
        etc.mkdir(exist_ok=True, mode=0o700)
        for name, text in (
            ("passwd", passwd_text(spec)),
            ("group", group_text(spec)),
            ("page_config.json", page_config_text()),
            ("hosts", HOSTS_TEXT),
            ("nsswitch.conf", NSSWITCH_TEXT),
        ):
            (etc / name).write_text(text)
            os.chmod(etc / name, 0o644)  # bound read-only; the folder itself stays 0700
        self._remove_socket()  # a stale one: we hold the lock, nobody else serves it
        spec.host_sock_dir.mkdir(mode=0o700)
        # the hub's API bridge serves bridge/api.sock (hub/bridge.py); it may already be there
        spec.host_bridge_dir.mkdir(mode=0o700, exist_ok=True)
        if spec.host_bridge_dir.is_symlink() or not spec.host_bridge_dir.is_dir():
            raise SandboxStartError(f"{spec.host_bridge_dir} is not a plain folder")
        # owner-only, or (own host uid) root:<project gid>: the group may reach api.sock
        # (hub/bridge.py sets the socket's own mode), never change the folder
        if spec.host is None:
            os.chmod(spec.host_bridge_dir, 0o700)
        else:
            os.chown(spec.host_bridge_dir, 0, spec.host.gid)
            os.chmod(spec.host_bridge_dir, 0o750)  # noqa: S103 - root:<project gid>, bound ro
        self._prepare_lab_dir()
        if spec.host is not None:
            self._give_to_host_identity()

    def _prepare_lab_dir(self) -> None:
        """``<runtime>/lab``: JupyterLab's settings and workspaces, kept across restarts."""
        lab = self.spec.host_lab_dir
        if lab.is_symlink() or (lab.exists() and not lab.is_dir()):
            raise SandboxStartError(f"{lab} is not a plain folder")
        lab.mkdir(mode=0o700, exist_ok=True)
        os.chmod(lab, 0o700)

    def _give_to_host_identity(self) -> None:
        """Under a root supervisor: what the sandbox's own uid must write or read."""
        spec, host = self.spec, self.spec.host
        assert host is not None
        give_tree(spec.workspace, host.uid, host.gid)
        give_tree(spec.host_lab_dir, host.uid, host.gid)
        os.chown(spec.host_sock_dir, host.uid, host.gid)  # the server creates its socket there
        if host.data_gid is None:
            return  # a sandbox without the data group mounts no dataset (SandboxSpec)
        for m in spec.mounts:
            share_with_group(m.host_path.resolve(), host.data_gid)

    def _remove_socket(self) -> None:
        """Remove ``sock/`` and whatever the sandbox left there (files, links, folders)."""
        # rmtree never follows a symlink the sandbox may have planted there
        shutil.rmtree(self.spec.host_sock_dir, ignore_errors=True)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        client = self.client(timeout=2.0)
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise SandboxStartError(
                    f"the sandbox's Jupyter server exited (code {code}) before answering."
                    f" Last lines of its log:\n{_tail(self.spec.log_path)}"
                )
            if os.path.lexists(self.socket_path):
                try:
                    client.status(timeout=2.0)
                    return
                except SandboxClientError:
                    pass
            if time.monotonic() > deadline:
                raise SandboxStartError(
                    f"the sandbox's Jupyter server did not answer within {self.start_timeout:g} s."
                    f" Last lines of its log:\n{_tail(self.spec.log_path)}"
                )
            time.sleep(0.05)

    def _teardown(self) -> None:
        if self._lock_fd is None:
            return  # never started (or already stopped): nothing here is ours
        proc = self._proc
        if proc is not None:
            try:
                if proc.poll() is None:
                    self._terminate(proc)
            finally:
                self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._remove_socket()
        self.limits.release()
        os.close(self._lock_fd)  # releases the flock
        self._lock_fd = None

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        # bwrap forwards no signal: ask the processes inside (the Jupyter server,
        # its kernels) to stop first so they clean up. bwrap's own processes are
        # left alone: SIGTERM to the sandbox's init would kill everything at once.
        for pid in descendants(proc.pid):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm != "bwrap":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(self.stop_grace)
            return
        except subprocess.TimeoutExpired:
            pass
        # Still there: kill the outer bwrap (our unreaped child, so its pid and
        # group are still ours); --die-with-parent then kills the sandbox's
        # init, and with it the whole pid namespace.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired as e:  # pragma: no cover - kernel-level trouble
            raise SandboxError(f"sandbox {self.spec.name} did not stop") from e
