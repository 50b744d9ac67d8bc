"""The local sandbox: one bubblewrap-isolated Jupyter server per project and person.

Owns nothing itself; re-exports the public API of its modules:

* :mod:`.spec` — :class:`SandboxSpec`, :class:`DatasetMount`, :func:`bwrap_argv`
  (the pure, testable command line and its bind table);
* :mod:`.process` — :class:`Sandbox` (start / wait ready / stop, one-at-a-time lock);
* :mod:`.limits` — CPU and memory limits (cgroup when writable, else ``RLIMIT_AS``);
* :mod:`.client` — :class:`SandboxClient` (REST + kernel websocket over the Unix socket);
* :mod:`.errors` — the :class:`SandboxError` hierarchy.

Importing this package imports no Jupyter or Tornado code.
"""

from jupyterlab_hdh.sandbox.client import ExecResult, SandboxClient, connect_unix
from jupyterlab_hdh.sandbox.errors import (
    SandboxBusyError,
    SandboxClientError,
    SandboxConfigError,
    SandboxError,
    SandboxStartError,
    SandboxUnavailableError,
)
from jupyterlab_hdh.sandbox.limits import AppliedLimits
from jupyterlab_hdh.sandbox.process import Sandbox, bwrap_problem
from jupyterlab_hdh.sandbox.spec import (
    DatasetMount,
    HostIdentity,
    SandboxSpec,
    bwrap_argv,
    runtime_dir_for,
    server_argv,
)

__all__ = [
    "AppliedLimits",
    "DatasetMount",
    "ExecResult",
    "HostIdentity",
    "Sandbox",
    "SandboxBusyError",
    "SandboxClient",
    "SandboxClientError",
    "SandboxConfigError",
    "SandboxError",
    "SandboxSpec",
    "SandboxStartError",
    "SandboxUnavailableError",
    "bwrap_argv",
    "bwrap_problem",
    "connect_unix",
    "runtime_dir_for",
    "server_argv",
]
