"""The answers of the code audit view (``/api/projects/{slug}/audit/code``, ``/api/audit/code``
and the sandbox's ``/api/bridge/audit/code``): the audited code, event by event, with the
state of the hash chain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CodeKind = Literal["cell", "terminal", "save", "template"]


class ChainStatusOut(BaseModel):
    """The whole log's hash chain, recomputed now."""

    ok: bool
    #: events checked, from the first: the chain is verified up to this sequence number
    verified_to: int
    #: the first broken event (None: the chain is intact)
    broken_seq: int | None = None
    reason: str = ""


class CodeEventOut(BaseModel):
    """One piece of audited code: who, when, what kind, where, and the code itself."""

    seq: int
    ts: str
    user: str
    project: str | None
    kind: CodeKind
    #: the notebook or file: a saved file's path, the notebook (or console) a cell ran in as
    #: the guard learnt it from the sessions API (None: unknown), a template copy's notebook
    notebook: str | None = None
    kernel: str | None = None
    terminal: str | None = None
    #: the cell's code, the terminal line, a saved file's summary (its content is not
    #: stored in the log: its size and SHA-256 are) or a template copy's
    code: str
    sha256: str | None = None
    #: the chain is intact up to this event (False: at or after the first broken link)
    verified: bool


class CodeAuditOut(BaseModel):
    """A page of audited code, newest first, and the chain's state."""

    project: str | None
    events: list[CodeEventOut]
    #: pass as ``cursor`` for the next (older) page; None: this is the last page
    next_cursor: int | None = None
    chain: ChainStatusOut
    limit: int = Field(ge=1)
