"""The result types of the disclosure checks: inputs, flags and per-file reports.

A :class:`FileReport`'s status is derived from its flags: any flag of severity ``fail`` makes
the file ``fail``; otherwise any ``review`` flag makes it ``review``; otherwise ``pass``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("output", "supporting", "code")
KINDS = ("table", "figure", "model", "code", "other")
STATUSES = ("pass", "fail", "review")


@dataclass(frozen=True)
class CheckInput:
    """One file to check: a regular file, its user-visible name and its role in the request."""

    path: Path
    name: str
    role: str = "output"


@dataclass(frozen=True)
class Flag:
    """One finding: the rule that fired, one line for the reviewer and where it fired."""

    rule: str
    message: str
    location: dict[str, Any] = field(default_factory=dict)
    severity: str = "fail"  # "fail" | "review"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "location": self.location,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class FileReport:
    """The verdict on one file."""

    name: str
    role: str
    kind: str
    status: str
    flags: list[Flag]
    summary: str
    sha256: str = ""
    evidence: str = ""  # "acro" | "sdc-sidecar" | "" (what per-cell evidence was used)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "status": self.status,
            "summary": self.summary,
            "sha256": self.sha256,
            "evidence": self.evidence,
            "flags": [f.to_dict() for f in self.flags],
        }


def status_of(flags: list[Flag]) -> str:
    """``fail`` if any flag fails, else ``review`` if any asks for review, else ``pass``."""
    if any(f.severity == "fail" for f in flags):
        return "fail"
    if flags:
        return "review"
    return "pass"


def summarise(flags: list[Flag], kind: str) -> str:
    """One line: the count of flags per rule."""
    if not flags:
        return f"{kind}: no disclosure risk found by the automated checks"
    counts: dict[str, int] = {}
    for f in flags:
        counts[f.rule] = counts.get(f.rule, 0) + 1
    parts = ", ".join(f"{rule} x{n}" for rule, n in counts.items())
    return f"{kind}: {len(flags)} flag(s): {parts}"
