"""The guard: the trusted reverse proxy between the hub proxy and every sandbox.

``policy`` decides (pure), ``proxy`` forwards HTTP and websockets to a
sandbox's Unix socket, ``audit`` parses and records code, terminal input and
saves, ``auth`` identifies users with JupyterHub OAuth, ``app`` assembles it.
"""

from jupyterlab_hdh.guard.app import make_guard_app
from jupyterlab_hdh.guard.audit import AuditEvent, AuditSink, MemoryAuditSink, StoreAuditSink
from jupyterlab_hdh.guard.policy import Decision, GuardConfig, decide

__all__ = [
    "AuditEvent",
    "AuditSink",
    "Decision",
    "GuardConfig",
    "MemoryAuditSink",
    "StoreAuditSink",
    "decide",
    "make_guard_app",
]
