"""Typed errors of the airlock workflow, each with the HTTP status the API maps it to.

Owns the error vocabulary of ``egress`` (manager, snapshot, release): a caller
catches :class:`EgressError` and answers ``exc.http_status`` with ``str(exc)``.
Every error is raised before anything is changed (or inside the transaction
that is then rolled back).
"""

from __future__ import annotations

from jupyterlab_hdh.errors import HdhError


class EgressError(HdhError):
    """Base class: something the caller asked for cannot be done."""

    http_status = 400


class NotFound(EgressError, LookupError):
    """No such request, file, notification or released file (or not visible to this actor)."""

    http_status = 404


class NotAllowed(EgressError, PermissionError):
    """The actor may not do this (wrong role, reviewing their own project's request...)."""

    http_status = 403


class WrongState(EgressError):
    """The request is not in a state where this step is allowed (the transition table)."""

    http_status = 409


class GateBlocked(EgressError):
    """Approval blocked: a failing check without a recorded exception, or missing votes."""

    http_status = 409


class InvalidFile(EgressError, ValueError):
    """The workspace entry is not a regular file inside the workspace, or the input is bad."""

    http_status = 422


class LimitExceeded(EgressError):
    """A file, or the request, is over the configured size or count limit."""

    http_status = 413
