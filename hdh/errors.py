"""The errors of HDH's notebook library: each says in one line what went wrong and what to do.

Every error a researcher can meet from ``hdh.read``, ``hdh.sql``, ``hdh.datasets`` and
``hdh.tables`` is an :class:`HDHError` (a ``ValueError`` for bad arguments, a
``LookupError`` for something not found, a ``RuntimeError`` for what the sandbox lacks), so
``except hdh.HDHError`` catches them all and ``str(exc)`` is the message to show.
"""

from __future__ import annotations


class HDHError(Exception):
    """Base class: a one-line message meant for the person at the notebook."""


class DatasetNotMounted(HDHError, LookupError):  # noqa: N818 - reads as a sentence
    """The dataset (or the version asked for) is not mounted in this sandbox."""


class DatasetNotPermitted(DatasetNotMounted):  # noqa: N818
    """The project's permit does not grant this dataset (or this version)."""


class UnknownTable(HDHError, LookupError):  # noqa: N818
    """The dataset version has no such table."""


class UnknownColumn(HDHError, LookupError):  # noqa: N818
    """A column named in ``columns`` or ``filters`` is not in the table."""


class BadArgument(HDHError, ValueError):  # noqa: N818
    """An argument has the wrong form (a table name, a filter, a year, an engine name)."""


class EngineUnavailable(HDHError, RuntimeError):  # noqa: N818
    """The engine asked for is not installed in this sandbox (or has no GPU to run on)."""
