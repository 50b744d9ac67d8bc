"""What a sandbox is: its specification and the exact bubblewrap command line.

Owns :class:`SandboxSpec` (one project, one person), its validation, and the
pure functions :func:`bwrap_argv`, :func:`server_argv` and :func:`sandbox_env`
that turn it into a command. Nothing here starts a process or touches the
disk beyond ``stat`` calls, so every security property of the command line is
unit-testable.

Layout inside the sandbox (everything else of the host is absent):

=========================  ==========  ===============================================
path in the sandbox        mode        what / why
=========================  ==========  ===============================================
``/`` (tmpfs)              rw, empty   bwrap's fresh root; only the binds below exist
``/usr`` ``/bin`` …        ro          the OS userland (``/bin`` etc. are symlinks into
                                       ``/usr`` on merged-usr hosts, recreated as such)
``/etc/ld.so.*``           ro          the dynamic loader's cache/config (pyenv builds
                                       link system libraries)
``/etc/localtime``         ro          time zone, harmless
``/etc/java-*-openjdk``    ro          Java's configuration (``jvm.cfg``, security), for
                                       Spark's JVM (the runtime: ``/usr/lib/jvm``)
``/etc/R``                 ro          R's configuration, for the R kernel (R, its
                                       libraries, the ``ir`` kernelspec: ``/usr``)
``/etc/alternatives``      ro          Debian's links into ``/usr`` (R's BLAS, LAPACK)
``/etc/hosts``             ro          synthetic: ``localhost`` and the host name are
``/etc/nsswitch.conf``                 127.0.0.1, names from files only (no DNS; PySpark
                                       and Spark's JVM resolve them)
``/etc/passwd|group``      ro          synthetic: uid/gid 1000 = ``jovyan``, written by
                                       :class:`~jupyterlab_hdh.sandbox.process.Sandbox`
                                       into ``<runtime>/etc`` (outside ``/sock``)
``sys.base_prefix``        ro          the interpreter (here under ``/root/.pyenv``; only
                                       that version folder, never ``/root``)
``sys.prefix``             ro          the virtual environment (Jupyter, ipykernel, …)
package sources            ro          ``jupyterlab_hdh/`` and ``hdh/`` only, when installed
                                       editable outside the venv (never the checkout)
``/data/<ds>/<version>``   ro          each permitted dataset version, nothing else
``/workspace``             rw          the project workspace (root_dir of the server)
``/sock``                  rw          ``<runtime>/sock``: holds only ``jupyter.sock``
``/bridge``                ro          ``<runtime>/bridge``: the hub's API bridge socket
                                       ``api.sock`` (connectable, not replaceable)
``/home/jovyan`` ``/tmp``  rw tmpfs    HOME and scratch, gone when the sandbox stops
``/opt/jupyter/config``    ro, empty   ``JUPYTER_CONFIG_DIR``, ``JUPYTER_DATA_DIR``: the
``/opt/jupyter/data``                  kernel cannot add kernelspecs, lab extensions or
                                       server configuration (only the read-only venv
                                       and system paths count)
``/opt/jupyter/ipython``   rw tmpfs    ``IPYTHONDIR`` (kernel profiles); its ``kernels/``
                                       (a kernelspec folder of the server) ro, empty
``/opt/jupyter/lab``       rw          ``<runtime>/lab``: JupyterLab's user settings and
                                       workspaces of this project and person (the
                                       language chosen, the layout), kept across restarts
``/proc`` ``/dev``         fresh       the sandbox's own pid namespace; minimal /dev
=========================  ==========  ===============================================

Never bound: ``/run``, ``/var/run`` (docker.sock, D-Bus), ``/root``, ``/home``,
the HDH data directory (keys, store, outbox), other workspaces, other datasets.
New pid, ipc, uts, cgroup and network namespaces: the network namespace holds
only a loopback interface, so no network at all.

Who the sandbox is on the host depends on who supervises it:

* an unprivileged supervisor (the hub run as a normal user): ``--unshare-all``
  adds a user namespace where the sandbox is uid 1000, mapped to the
  supervisor's own uid;
* a root supervisor (``hdh up`` as root, the usual server case): a user
  namespace would map the sandbox to host root, so there is none. bwrap, as
  root, builds the mounts (it can reach binds under ``/root`` or a 0700 data
  directory) and keeps only CAP_DAC_OVERRIDE/SETUID/SETGID/SETPCAP (to enter
  the 0700 workspace and change identity); ``setpriv`` then runs
  the server as the project's own unprivileged host uid (:class:`HostIdentity`,
  ``200000 + project id``; the data group ``200000`` may read dataset versions),
  with every capability set (bounding included) emptied and ``no_new_privs``.
  The workspace belongs to that uid; nothing else of the host does. A reviewer's
  workspace (the hub's ``review`` server: no dataset) runs as ``300000 + user id``
  with no supplementary group at all (:meth:`HostIdentity.for_reviewer`).
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jupyterlab_hdh.sandbox.errors import SandboxConfigError

SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_USER = "jovyan"
SANDBOX_HOME = "/home/jovyan"
WORKSPACE = "/workspace"
DATA_ROOT = "/data"
#: where a permit's linked cohort tables are mounted read-only (``jupyterlab_hdh.linkage``)
LINKAGE_ROOT = f"{DATA_ROOT}/linkage"
SOCK_DIR = "/sock"
SOCK_NAME = "jupyter.sock"
SOCK_PATH = f"{SOCK_DIR}/{SOCK_NAME}"
# The API bridge (hub/bridge.py): a socket the hub serves, bound read-only into the sandbox.
BRIDGE_DIR = "/bridge"
BRIDGE_SOCK_NAME = "api.sock"
BRIDGE_SOCK_PATH = f"{BRIDGE_DIR}/{BRIDGE_SOCK_NAME}"
# Paths INSIDE the sandbox: private tmpfs mounts, not the host's shared /tmp.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_VAR_TMP = "/var/tmp"  # noqa: S108
# Jupyter's per-user folders: empty and read-only (folders of the root tmpfs,
# remounted read-only), so nothing the kernel writes is loaded as a kernelspec, a lab
# extension, page or server config, nor served by a static route.
JUPYTER_RO_ROOT = "/opt/jupyter"  # "/opt" is not bound from the host: the root tmpfs
JUPYTER_CONFIG_DIR = f"{JUPYTER_RO_ROOT}/config"
JUPYTER_DATA_DIR = f"{JUPYTER_RO_ROOT}/data"
IPYTHON_DIR = f"{JUPYTER_RO_ROOT}/ipython"  # a writable tmpfs, see bwrap_argv
IPYTHON_KERNELS_DIR = f"{IPYTHON_DIR}/kernels"  # ... whose kernels/ is read-only
# What JupyterLab and the server must still write (in HOME, a tmpfs): user settings,
# workspaces (read back through the guard as small JSON only), the notebook notary.
# the person's own, kept across restarts (``<runtime>/lab``): the language they chose, the
# theme, the layout
LAB_STATE_DIR = f"{JUPYTER_RO_ROOT}/lab"
LAB_USER_SETTINGS_DIR = f"{LAB_STATE_DIR}/user-settings"
LAB_WORKSPACES_DIR = f"{LAB_STATE_DIR}/workspaces"
NOTARY_DIR = SANDBOX_HOME

# Project slugs never contain "--", so "<project>--<user>" names one pair only.
PROJECT_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # dataset and version names
BASE_URL_RE = re.compile(r"^/(?:[A-Za-z0-9._@~%-]+/)*$")

# Environment variables a caller may add (everything else is refused).
EXTRA_ENV_ALLOWED = re.compile(
    r"^(?:HDH_[A-Z0-9_]+|TZ|LC_ALL|LC_[A-Z]+|OMP_NUM_THREADS|MKL_NUM_THREADS|"
    r"OPENBLAS_NUM_THREADS|POLARS_MAX_THREADS|NUMBA_NUM_THREADS)$"
)
RESERVED_ENV = frozenset({"HDH_PROJECT", "HDH_USER"})

# Host paths that no bind may be, or contain.
FORBIDDEN_HOST_ROOTS = ("/", "/run", "/var/run", "/root", "/home", "/proc", "/sys", "/dev", "/etc")
# Host paths that no bind may even lie below (sockets, kernel interfaces).
FORBIDDEN_HOST_TREES = ("/run", "/var/run", "/proc", "/sys", "/dev")

# The OS userland: bound read-only (or recreated as a symlink when the host's is one).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
#: Host configuration folders bound read-only where present: Java's (Debian links the
#: JRE's ``lib/jvm.cfg`` and ``conf/security`` into it), for Spark's JVM (``hdh.spark()``).
SYSTEM_ETC_GLOBS = ("/etc/java-*-openjdk",)
#: R's configuration (``/usr/lib/R/etc/*`` are links into it), for the R kernel (IRkernel);
#: R itself, its libraries and the ``ir`` kernelspec are under ``/usr``. Debian's
#: alternatives: links into ``/usr`` such as ``libblas.so.3``, which R loads.
SYSTEM_ETC_DIRS = ("/etc/R", "/etc/alternatives")


#: Host ids of sandboxes under a root supervisor: project ``<id>`` runs as uid/gid
#: ``HOST_ID_BASE + id``; ``HOST_ID_BASE`` itself is the group that reads dataset versions.
HOST_ID_BASE = 200000
#: A reviewer's workspace (no project, no dataset) runs as uid/gid ``REVIEW_ID_BASE +
#: user id``, without the data group.
REVIEW_ID_BASE = 300000
#: How many projects (and users) each base holds: ``base + id`` for ``1 <= id < ID_RANGE``,
#: so that the two ranges, and the data group (the project base itself), never meet.
ID_RANGE = 100000
MAX_HOST_ID = 2**31 - 2


def check_id_bases(project_base: int, review_base: int) -> None:
    """The project and review-workspace id ranges must not overlap (a reviewer would
    otherwise own a project's files, or hold the data group)."""
    if abs(review_base - project_base) < ID_RANGE:
        raise SandboxConfigError(
            f"the review workspaces' ids ({review_base} + user id) overlap the projects'"
            f" ({project_base} + project id): set the bases at least {ID_RANGE} apart"
        )


def _id_in_range(what: str, value: int) -> None:
    if not 1 <= value < ID_RANGE:
        raise SandboxConfigError(f"invalid {what} id: {value!r} (1 to {ID_RANGE - 1})")


@dataclass(frozen=True)
class HostIdentity:
    """The unprivileged host uid/gid a sandbox runs as when its supervisor is root.

    ``data_gid``: the supplementary group that reads dataset versions, or None for a
    sandbox that mounts none (a reviewer's workspace): it then has no supplementary group.
    """

    uid: int
    gid: int
    data_gid: int | None

    @classmethod
    def for_project(cls, project_id: int, base: int = HOST_ID_BASE) -> HostIdentity:
        """``base + project_id`` for the project; ``base`` is the data group."""
        _id_in_range("project", project_id)
        return cls(base + project_id, base + project_id, base)

    @classmethod
    def for_reviewer(cls, user_id: int, base: int = REVIEW_ID_BASE) -> HostIdentity:
        """``base + user_id`` for a reviewer's own workspace: no project's ids, no data group."""
        _id_in_range("user", user_id)
        return cls(base + user_id, base + user_id, None)

    @property
    def groups(self) -> tuple[int, ...]:
        """Every host group the sandbox is in: its own, and the data group if it has one."""
        return (self.gid,) if self.data_gid is None else (self.gid, self.data_gid)

    def check(self) -> None:
        ids = [("uid", self.uid), ("gid", self.gid)]
        if self.data_gid is not None:
            ids.append(("data gid", self.data_gid))
        for label, value in ids:
            if not isinstance(value, int) or not 0 < value <= MAX_HOST_ID:
                raise SandboxConfigError(f"invalid sandbox host {label}: {value!r} (never root)")
        if self.data_gid == self.gid:
            raise SandboxConfigError("the data group must differ from the project's group")


@dataclass(frozen=True)
class DatasetMount:
    """One permitted dataset version, bound read-only at ``/data/<dataset>/<version>``."""

    dataset: str
    version: str
    host_path: Path

    @property
    def target(self) -> str:
        return f"{DATA_ROOT}/{self.dataset}/{self.version}"


#: The packages a sandbox imports from HDH's source: the host side's server extension and
#: contents manager (``jupyterlab_hdh``), and the notebook library researchers import (``hdh``).
SANDBOX_PACKAGES = ("jupyterlab_hdh", "hdh")


def _package_source_dirs() -> tuple[Path, ...]:
    """The folders of :data:`SANDBOX_PACKAGES` that live outside ``sys.prefix`` (an editable
    install): each is bound read-only, never the whole checkout."""
    import importlib.util

    prefix = Path(sys.prefix).resolve()
    out = []
    for name in SANDBOX_PACKAGES:
        found = importlib.util.find_spec(name)
        if found is None or not found.submodule_search_locations:
            continue
        pkg = Path(next(iter(found.submodule_search_locations))).resolve()
        if not pkg.is_relative_to(prefix):
            out.append(pkg)
    return tuple(out)


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to run one project's Jupyter server for one person.

    ``runtime_dir`` is a host folder private to this (project, person), e.g.
    ``<data-dir>/sandboxes/<project>--<user>/`` (see :func:`runtime_dir_for`):
    it holds the lock file, the server log, the synthetic ``etc/passwd`` and
    ``sock/``, the only part bound into the sandbox (at ``/sock``).
    ``protected`` lists host paths no bind may equal or contain (pass the HDH
    data directory); ``secrets`` host paths no bind may equal, contain or lie
    under (pass its ``keys/``). ``memory_limit`` is in bytes,
    ``cpu_limit`` in cores; both are applied where the host allows (see
    :mod:`jupyterlab_hdh.sandbox.limits`). ``host``: the unprivileged host
    identity to run as; required (and only possible) when the supervisor is root.
    ``linkage``: the host folder of the permit's linked cohort tables, bound read-only at
    :data:`LINKAGE_ROOT` (None: none).
    """

    project: str
    user: str
    workspace: Path
    runtime_dir: Path
    mounts: tuple[DatasetMount, ...] = ()
    base_url: str = ""
    memory_limit: int | None = None
    cpu_limit: float | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    protected: tuple[Path, ...] = ()
    secrets: tuple[Path, ...] = ()
    python_prefix: Path = field(default_factory=lambda: Path(sys.prefix))
    python_base_prefix: Path = field(default_factory=lambda: Path(sys.base_prefix))
    package_sources: tuple[Path, ...] = field(default_factory=_package_source_dirs)
    host: HostIdentity | None = None
    linkage: Path | None = None

    def __post_init__(self) -> None:
        # Normalise so callers may pass str/list; the dataclass stays frozen.
        object.__setattr__(self, "workspace", Path(self.workspace))
        if self.linkage is not None:
            object.__setattr__(self, "linkage", Path(self.linkage))
        object.__setattr__(self, "runtime_dir", Path(self.runtime_dir))
        object.__setattr__(
            self,
            "mounts",
            tuple(
                m if isinstance(m, DatasetMount) else DatasetMount(m[0], m[1], Path(m[2]))
                for m in self.mounts
            ),
        )
        object.__setattr__(self, "protected", tuple(Path(p) for p in self.protected))
        object.__setattr__(self, "secrets", tuple(Path(p) for p in self.secrets))
        object.__setattr__(self, "extra_env", dict(self.extra_env))
        if not self.base_url:
            object.__setattr__(self, "base_url", f"/user/{self.user}/{self.project}/")
        self.check_names()

    # -- validation ---------------------------------------------------------

    def check_names(self) -> None:
        """Validate names and values (pure; no disk access)."""
        if not PROJECT_RE.match(self.project):
            raise SandboxConfigError(f"invalid project slug: {self.project!r}")
        if not USER_RE.match(self.user):
            raise SandboxConfigError(f"invalid user name: {self.user!r}")
        if not BASE_URL_RE.match(self.base_url) or "/../" in self.base_url:
            raise SandboxConfigError(f"invalid base_url (must be /…/): {self.base_url!r}")
        seen: set[tuple[str, str]] = set()
        for m in self.mounts:
            for kind, value in (("dataset", m.dataset), ("version", m.version)):
                if not NAME_RE.match(value):
                    raise SandboxConfigError(f"invalid {kind} name: {value!r}")
            if (m.dataset, m.version) in seen:
                raise SandboxConfigError(f"dataset version mounted twice: {m.target}")
            seen.add((m.dataset, m.version))
            if self.linkage is not None and f"{DATA_ROOT}/{m.dataset}" == LINKAGE_ROOT:
                raise SandboxConfigError(f"a dataset named {m.dataset!r} hides {LINKAGE_ROOT}")
        for key, value in self.extra_env.items():
            if not EXTRA_ENV_ALLOWED.match(key) or key in RESERVED_ENV:
                raise SandboxConfigError(f"environment variable not allowed: {key!r}")
            if "\0" in value:
                raise SandboxConfigError(f"invalid value for environment variable {key!r}")
        if self.memory_limit is not None and self.memory_limit < 64 * 2**20:
            raise SandboxConfigError("memory_limit below 64 MiB")
        if self.cpu_limit is not None and self.cpu_limit <= 0:
            raise SandboxConfigError("cpu_limit must be positive")
        if self.host is not None:
            self.host.check()
            if self.host.data_gid is None and (self.mounts or self.linkage is not None):
                raise SandboxConfigError("a sandbox without the data group mounts no dataset")

    def check_paths(self) -> None:
        """Validate host paths: mounts exist, nothing forbidden is bound.

        Called by :meth:`Sandbox.start` before anything is created or launched,
        so a bad spec leaves no half-started sandbox.
        """
        for m in self.mounts:
            if not m.host_path.is_absolute():
                raise SandboxConfigError(f"dataset path must be absolute: {m.target}")
            if not m.host_path.is_dir():
                raise SandboxConfigError(
                    f"dataset {m.dataset} version {m.version} is not available on this host"
                )
        if self.linkage is not None and not (self.linkage.is_absolute() and self.linkage.is_dir()):
            raise SandboxConfigError("the permit's linked tables are not available on this host")
        if not self.workspace.is_absolute():
            raise SandboxConfigError("workspace path must be absolute")
        if not self.runtime_dir.is_absolute():
            raise SandboxConfigError("runtime directory must be absolute")
        runtime = self.runtime_dir.resolve()
        guarded = [Path(p) for p in FORBIDDEN_HOST_ROOTS]
        guarded += [p.resolve() for p in (*self.protected, *self.secrets)]
        trees = [Path(p) for p in FORBIDDEN_HOST_TREES] + [p.resolve() for p in self.secrets]
        for label, path in (
            [("workspace", self.workspace)]
            + [(f"dataset {m.target}", m.host_path) for m in self.mounts]
            + ([(LINKAGE_ROOT, self.linkage)] if self.linkage is not None else [])
        ):
            real = path.resolve()
            for g in guarded:
                if g.is_relative_to(real):
                    raise SandboxConfigError(f"{label} would expose a protected host path")
            for t in trees:
                if real.is_relative_to(t):
                    raise SandboxConfigError(f"{label} lies in a protected host path")
            if runtime.is_relative_to(real) or real.is_relative_to(runtime):
                raise SandboxConfigError(f"{label} overlaps the sandbox runtime directory")

    # -- derived paths ------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.project}--{self.user}"

    @property
    def host_sock_dir(self) -> Path:
        return self.runtime_dir / "sock"

    @property
    def socket_path(self) -> Path:
        return self.host_sock_dir / SOCK_NAME

    @property
    def host_lab_dir(self) -> Path:
        """``<runtime>/lab``, bound read-write at ``/opt/jupyter/lab``: JupyterLab's user
        settings and workspaces of this (project, person), kept across restarts."""
        return self.runtime_dir / "lab"

    @property
    def host_bridge_dir(self) -> Path:
        """``<runtime>/bridge``, bound read-only at ``/bridge``: the hub serves ``api.sock``."""
        return self.runtime_dir / "bridge"

    @property
    def bridge_socket_path(self) -> Path:
        return self.host_bridge_dir / BRIDGE_SOCK_NAME

    @property
    def host_etc_dir(self) -> Path:
        return self.runtime_dir / "etc"

    @property
    def lock_path(self) -> Path:
        return self.runtime_dir / "lock"

    @property
    def log_path(self) -> Path:
        return self.runtime_dir / "server.log"

    @property
    def python(self) -> str:
        """The venv interpreter (same path inside and outside the sandbox)."""
        return str(self.python_prefix / "bin" / "python")


def runtime_dir_for(sandboxes_root: Path, project: str, user: str) -> Path:
    """``<sandboxes_root>/<project>--<user>``, e.g. under ``<data-dir>/sandboxes``."""
    return Path(sandboxes_root) / f"{project}--{user}"


def sandbox_ids(spec: SandboxSpec) -> tuple[int, int]:
    """The uid and gid the sandbox's processes see as their own."""
    if spec.host is None:
        return SANDBOX_UID, SANDBOX_GID
    return spec.host.uid, spec.host.gid


def passwd_text(spec: SandboxSpec) -> str:
    uid, gid = sandbox_ids(spec)
    return (
        f"{SANDBOX_USER}:x:{uid}:{gid}:HDH sandbox user:{SANDBOX_HOME}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )


#: JupyterLab plugins that download, export or copy out, disabled and locked in
#: every sandbox (security anchors §2). This is the UX layer only: the guard
#: refuses the routes behind them whatever the page asks.
LAB_LOCKED_PLUGINS = (
    "@jupyterlab/docmanager-extension:download",
    "@jupyterlab/filebrowser-extension:download",
    "@jupyterlab/docmanager-extension:open-browser-tab",
    "@jupyterlab/filebrowser-extension:open-browser-tab",
    "@jupyterlab/notebook-extension:export",
    "@jupyterlab/notebook-extension:copy-output",
    "@jupyterlab/extensionmanager-extension:plugin",
    # printing a notebook or output is a copy out through the browser (to PDF)
    "@jupyterlab/apputils-extension:print",
    # a "shareable link" to a sandbox file leads nowhere outside it
    "@jupyterlab/filebrowser-extension:share-file",
    # asks nbconvert for its export formats, which the guard refuses
    "@jupyterlab/notebook-extension:update-raw-mimetype",
)
#: Frontend plugins whose server side is switched off in the sandbox (jupyter_lsp is not
#: enabled) or that need the network, disabled too so the page asks for nothing it cannot have.
LAB_DISABLED_PLUGINS = (
    "@jupyterlab/lsp-extension:plugin",
    "@jupyterlab/lsp-extension:feature",
    "@jupyterlab/lsp-extension:settings",
    "@jupyterlab/lsp-extension:code-extractor-manager",
    "@jupyterlab/lsp-extension:tracker",
    "@jupyterlab/notebook-extension:language-server",
    "@jupyterlab/fileeditor-extension:language-server",
    # "get notified about official Jupyter news?": a sandbox has no network to fetch it
    "@jupyterlab/apputils-extension:announcements",
    # the debugger evaluates expressions and sets variables outside any audited cell: the
    # guard refuses its debug_request messages, and JupyterLab offers no debugger
    "@jupyterlab/debugger-extension",
)
#: The HDH JupyterLab extension (side panel), built by scripts/build-labextension.
LABEXTENSIONS_DIR = Path(__file__).resolve().parent.parent / "labextension"
#: Where JupyterLab reads a system-wide page config inside the sandbox.
LAB_PAGE_CONFIG = "/etc/jupyter/labconfig/page_config.json"


def page_config_text() -> str:
    """``page_config.json``: the plugins above disabled and locked (bound read-only)."""
    import json

    locked = dict.fromkeys(LAB_LOCKED_PLUGINS, True)
    disabled = {**locked, **dict.fromkeys(LAB_DISABLED_PLUGINS, True)}
    return json.dumps({"disabledExtensions": disabled, "lockedExtensions": locked}, indent=1) + "\n"


SANDBOX_HOSTNAME = "hdh-sandbox"
#: ``/etc/hosts``: the sandbox's names on its loopback (there is no DNS; PySpark and
#: Spark's JVM resolve ``localhost`` and the host name)
HOSTS_TEXT = f"127.0.0.1\tlocalhost {SANDBOX_HOSTNAME}\n::1\tlocalhost ip6-localhost\n"
#: ``/etc/nsswitch.conf``: names from the files above only (never a DNS query)
NSSWITCH_TEXT = "passwd: files\ngroup: files\nhosts: files\n"


def group_text(spec: SandboxSpec) -> str:
    _, gid = sandbox_ids(spec)
    data = (
        f"hdh-data:x:{spec.host.data_gid}:{SANDBOX_USER}\n"
        if spec.host is not None and spec.host.data_gid is not None
        else ""
    )
    return f"{SANDBOX_USER}:x:{gid}:\n{data}nogroup:x:65534:\n"


def _system_binds() -> list[str]:
    args: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in (*SYSTEM_ETC_FILES, *SYSTEM_ETC_DIRS):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    for pattern in SYSTEM_ETC_GLOBS:
        for found in sorted(glob.glob(pattern)):
            args += ["--ro-bind", found, found]
    return args


def _python_binds(spec: SandboxSpec) -> list[str]:
    """Read-only binds of the interpreter, the venv and an editable package source."""
    args: list[str] = []
    seen: list[Path] = []
    candidates = [spec.python_base_prefix, spec.python_prefix]
    candidates.extend(spec.package_sources)
    for p in candidates:
        p = Path(p)
        # /usr is already bound; skip paths inside what is bound already.
        if p.is_relative_to("/usr") or any(p.is_relative_to(s) for s in seen):
            continue
        seen.append(p)
        args += ["--ro-bind", str(p), str(p)]
        # the venv's python is a symlink to the base interpreter: bind its real target too
    real = Path(spec.python).resolve()
    if not real.is_relative_to("/usr") and not any(real.is_relative_to(s) for s in seen):
        args += ["--ro-bind", str(real.parent), str(real.parent)]
    return args


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The whole environment inside the sandbox (``--clearenv`` drops the rest)."""
    env = {
        "HOME": SANDBOX_HOME,
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "SHELL": "/bin/bash",
        "PATH": f"{spec.python_prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": str(spec.python_prefix),
        "JUPYTER_CONFIG_DIR": JUPYTER_CONFIG_DIR,
        "JUPYTER_DATA_DIR": JUPYTER_DATA_DIR,
        "JUPYTER_RUNTIME_DIR": f"{SANDBOX_TMP}/jupyter-runtime",
        "IPYTHONDIR": IPYTHON_DIR,
        "MPLCONFIGDIR": f"{SANDBOX_TMP}/matplotlib",
        "PYTHONNOUSERSITE": "1",
        # the R kernel: reticulate uses the venv's python, and R loads HDH's R helper
        "RETICULATE_PYTHON": spec.python,
        "HDH_PROJECT": spec.project,
        "HDH_USER": spec.user,
    }
    helper = r_helper()
    if helper is not None:
        env["R_PROFILE_USER"] = helper
    env.update(spec.extra_env)
    if spec.memory_limit is not None:  # hdh.spark() sizes the JVM's heap from it
        env["HDH_MEMORY_LIMIT"] = str(spec.memory_limit)
    return env


def r_helper() -> str | None:
    """``hdh/R/hdh.R`` (``hdh_read`` & co.), which R in the sandbox sources at start-up: it
    lies in the venv or in a package source, both bound read-only at the same path."""
    import importlib.util

    found = importlib.util.find_spec("hdh")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))).resolve() / "R" / "hdh.R"
    return str(path) if path.is_file() else None


#: the sandbox server's kernel websocket (``hdh.jupyter.websocket``: no Nagle delay over TCP)
KERNEL_WEBSOCKET_ARG = (
    "--ServerApp.kernel_websocket_connection_class="
    "hdh.jupyter.websocket.NoDelayKernelWebsocketConnection"
)


def server_argv(spec: SandboxSpec, extra: Sequence[str] = ()) -> list[str]:
    """The Jupyter server command run inside the sandbox.

    * no token: the server is reached only through the 0600 Unix socket, which
      only the guard (host side) can open; authentication happens there;
    * ``allow_remote_access``: the Host header check guards TCP servers on
      localhost against DNS rebinding; behind the guard the Host header is the
      public one, so it must pass. XSRF checks stay ON (the browser's ``_xsrf``
      cookie and header pass through the guard unchanged);
    * defense in depth (the sandbox is untrusted, the guard enforces): no
      ``/files/`` handler, no trash, no hidden files, read-only extension
      manager, no jupyter-lsp, no news or update checks (no network anyway).
      Terminals stay on: the guard audits them;
    * Jupyter's config and data folders are read-only (:func:`sandbox_env`):
      JupyterLab's user settings and workspaces and the notebook notary are
      given folders in HOME.
    """
    return [
        spec.python,
        "-m",
        "jupyter_server",
        f"--ServerApp.sock={SOCK_PATH}",
        "--ServerApp.sock_mode=0600",
        f"--ServerApp.base_url={spec.base_url}",
        f"--ServerApp.root_dir={WORKSPACE}",
        "--ServerApp.default_url=/lab",  # the hub's spawn page lands in JupyterLab
        "--ServerApp.open_browser=False",
        "--IdentityProvider.token=",
        "--ServerApp.allow_remote_access=True",
        "--ServerApp.terminals_enabled=True",
        "--ServerApp.contents_manager_class=hdh.jupyter.contents.ConfinedContentsManager",
        # kernel messages leave at once over TCP (a pod's server behind the guard)
        KERNEL_WEBSOCKET_ARG,
        "--ContentsManager.files_handler_class=None",
        "--ContentsManager.allow_hidden=False",
        "--FileContentsManager.delete_to_trash=False",
        "--LabApp.extension_manager=readonly",
        # language servers are not needed and widen the attack surface (anchors §1 #11)
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
        # HDH's own thin /hdh routes (mounted datasets, later the panels' API)
        "--ServerApp.jpserver_extensions=hdh.jupyter=True",
        f"--LabApp.extra_labextensions_path={LABEXTENSIONS_DIR}",
        f"--LabApp.user_settings_dir={LAB_USER_SETTINGS_DIR}",
        f"--LabApp.workspaces_dir={LAB_WORKSPACES_DIR}",
        f"--NotebookNotary.data_dir={NOTARY_DIR}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *extra,
    ]


def bwrap_argv(
    spec: SandboxSpec,
    command: Sequence[str] | None = None,
    bwrap: str = "bwrap",
    seccomp_fd: int | None = None,
) -> list[str]:
    """The full ``bwrap … -- <command>`` argv (default command: :func:`server_argv`).

    ``seccomp_fd``: an inherited descriptor holding the seccomp filter
    (``sandbox/seccomp.py``), loaded by bwrap just before it runs the command.

    Pure apart from ``stat``-ing the host's ``/bin``-style symlinks. Order
    matters: bwrap applies the options left to right, so the tmpfs mounts come
    before the binds placed under them.
    """
    args = [
        bwrap,
        *_identity_args(spec),
        "--die-with-parent",  # the sandbox dies with its supervisor
        "--new-session",  # setsid: no TIOCSTI injection into the caller's terminal
        "--clearenv",  # nothing of the host environment leaks in
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        "--hostname",
        SANDBOX_HOSTNAME,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # scratch and HOME: world-writable (sticky) tmpfs, as the sandbox user need
        # not be the one bwrap creates folders as (see the module's docstring)
        "--perms",
        "01777",
        "--tmpfs",
        SANDBOX_TMP,
        "--tmpfs",
        "/home",
        "--perms",
        "01777",
        "--tmpfs",
        SANDBOX_HOME,
        "--dir",
        SANDBOX_VAR_TMP,
        "--perms",
        "0755",
        "--dir",
        DATA_ROOT,
        "--perms",
        "0755",
        "--dir",
        "/opt",
        "--perms",
        "0755",
        "--dir",
        JUPYTER_RO_ROOT,
    ]
    for folder in (JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR):
        args += ["--perms", "0555", "--dir", folder]
    args += [
        # jupyter_core's IPython-3 migration check opens this marker read-write, and
        # would otherwise try to create it in the read-only config folder
        "--symlink",
        "/dev/null",
        f"{JUPYTER_CONFIG_DIR}/migrated",
        # IPYTHONDIR: the kernels' profiles (writable), a mount point so it cannot be
        # renamed away; its kernels/ folder, which jupyter_client adds to the server's
        # kernelspec search path, an empty read-only mount (a read-only IPYTHONDIR
        # would make IPython fall back to a temporary folder the kernel can write)
        "--perms",
        "01777",
        "--tmpfs",
        IPYTHON_DIR,
        "--perms",
        "0555",
        "--tmpfs",
        IPYTHON_KERNELS_DIR,  # remounted read-only with the root, below
    ]
    binds = [
        *_system_binds(),
        "--ro-bind",
        str(spec.host_etc_dir / "passwd"),
        "/etc/passwd",
        "--ro-bind",
        str(spec.host_etc_dir / "group"),
        "/etc/group",
        "--ro-bind",
        str(spec.host_etc_dir / "hosts"),
        "/etc/hosts",
        "--ro-bind",
        str(spec.host_etc_dir / "nsswitch.conf"),
        "/etc/nsswitch.conf",
        "--ro-bind",
        str(spec.host_etc_dir / "page_config.json"),
        LAB_PAGE_CONFIG,
        *_python_binds(spec),
    ]
    for m in spec.mounts:
        binds += ["--ro-bind", str(m.host_path.resolve()), m.target]
    if spec.linkage is not None:
        binds += ["--ro-bind", str(spec.linkage.resolve()), LINKAGE_ROOT]
    binds += [
        "--bind",
        str(spec.workspace.resolve()),
        WORKSPACE,
        "--bind",
        str(spec.host_sock_dir.resolve()),
        SOCK_DIR,
        # read-only: the sandbox may connect to api.sock but never replace or add anything
        "--ro-bind",
        str(spec.host_bridge_dir.resolve()),
        BRIDGE_DIR,
        # JupyterLab's user settings and workspaces of this project and person
        "--bind",
        str(spec.host_lab_dir.resolve()),
        LAB_STATE_DIR,
    ]
    args += [*_parent_dirs(binds), *binds]
    args += [
        # the root tmpfs and the folders bwrap created in it: read-only from now on
        "--remount-ro",
        "/",
        "--remount-ro",
        IPYTHON_KERNELS_DIR,
        "--chdir",
        WORKSPACE,
    ]
    for key, value in sandbox_env(spec).items():
        args += ["--setenv", key, value]
    args += ["--", *_drop_to_host_identity(spec)]
    args += command if command is not None else server_argv(spec)
    return args


def _parent_dirs(binds: Sequence[str]) -> list[str]:
    """``--perms 0755 --dir`` for every folder above a bind target, parents first.

    bwrap would create them itself, but owned by whoever it runs as and, as
    root, mode 0700: a sandbox running as its own uid could not walk to its binds.
    """
    targets: list[str] = []
    i = 0
    while i < len(binds):
        op = binds[i]
        if op in ("--ro-bind", "--bind", "--symlink"):
            targets.append(binds[i + 2])
            i += 3
        else:  # pragma: no cover - binds hold only the three options above
            raise ValueError(f"unexpected bwrap option among binds: {op}")
    bound = set(targets)
    parents: list[str] = []
    for t in targets:
        for parent in reversed(Path(t).parents):
            p = str(parent)
            if p == "/" or p in parents:
                continue
            if any(p == b or p.startswith(b.rstrip("/") + "/") for b in bound):
                break  # lies in a bind: the host folder's own mode applies
            parents.append(p)
    out: list[str] = []
    for p in parents:
        out += ["--perms", "0755", "--dir", p]
    return out


#: What bwrap keeps under a root supervisor, for ``setpriv`` (which empties every set).
ROOT_SUPERVISOR_CAPS = ("CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")

#: The namespaces of every sandbox; a user namespace is added only when the
#: supervisor is unprivileged (a root supervisor's would map the sandbox to root).
NAMESPACES = (
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup",
)


def _identity_args(spec: SandboxSpec) -> list[str]:
    if spec.host is None:
        # a user namespace too: uid 1000 inside maps to the supervisor's own uid
        userns = ["--unshare-all", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
        return [*userns, "--cap-drop", "ALL"]
    # bwrap runs as root: it keeps only what setpriv needs to become the project's uid,
    # and to enter the workspace (0700, the project's) before that
    return [*NAMESPACES, "--cap-drop", "ALL"] + [
        a for cap in ROOT_SUPERVISOR_CAPS for a in ("--cap-add", cap)
    ]


def _drop_to_host_identity(spec: SandboxSpec) -> list[str]:
    """``setpriv … --`` run first inside the sandbox under a root supervisor (else nothing)."""
    if spec.host is None:
        return []
    h = spec.host
    return [
        "/usr/bin/setpriv",
        f"--reuid={h.uid}",
        f"--regid={h.gid}",
        # the data group, or none at all (a reviewer's workspace reads no dataset)
        f"--groups={h.data_gid}" if h.data_gid is not None else "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
