"""HDH's error vocabulary: every domain error is an :class:`HdhError`.

Owns the base class the edges map: an ``HdhError`` carries a one-line message (``str(exc)``,
what the CLI prints after ``Error:``), the HTTP status the API answers with
(``http_status``), the API's wording of the message (:meth:`HdhError.detail`, by default the
same line) and any extra fields of the API's error body (:meth:`HdhError.extra`, e.g. a
permit refusal's ``reason``). The API has one exception handler for it (``api/app.py``) and
the CLI one (``cli.HdhGroup``); domain code raises these before changing anything.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HdhError(Exception):
    """Base class: something asked of HDH cannot be done, said in one line."""

    http_status: ClassVar[int] = 400

    def detail(self) -> str:
        """The message of the API's error body (the CLI prints ``str(self)``)."""
        return str(self)

    def extra(self) -> dict[str, Any]:
        """Fields added to the API's error body beside ``detail``."""
        return {}
