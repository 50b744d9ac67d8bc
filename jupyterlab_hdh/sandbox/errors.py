"""Exceptions of the local sandbox: one hierarchy, messages fit to show a user.

Owns the error vocabulary of :mod:`jupyterlab_hdh.sandbox`. Every failure the
spawner or the guard may meet is a :class:`SandboxError`; its message is a
plain sentence (no stack trace, no host secret) that can be shown as is.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class: anything that went wrong with a sandbox."""


class SandboxConfigError(SandboxError, ValueError):
    """The sandbox specification is invalid (bad name, missing mount, forbidden path)."""


class SandboxUnavailableError(SandboxError):
    """This host cannot run sandboxes (no bubblewrap, or no user namespaces)."""


class SandboxBusyError(SandboxError):
    """A sandbox for the same project and person is already running."""


class SandboxStartError(SandboxError):
    """The sandbox's Jupyter server died or did not answer in time."""


class SandboxClientError(SandboxError):
    """A request to a sandbox's Jupyter server failed."""
