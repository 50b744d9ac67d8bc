"""The error vocabulary of backup and restore: every refusal is a :class:`BackupError`.

Owns the base class the modules of :mod:`jupyterlab_hdh.backup` derive their errors from, so
that a caller (the CLI) catches one class and prints its one-line message.
"""

from __future__ import annotations

from jupyterlab_hdh.errors import HdhError


class BackupError(HdhError):
    """A backup cannot be made, verified or restored (the message says what and why)."""
