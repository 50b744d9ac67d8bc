"""The airlock's configuration of one installation: ``<data dir>/airlock.toml``.

Owns reading the thresholds of the automated checks (table ``[checks]``, the
keys of :class:`~hdh.disclosure.CheckConfig`: ``safe_threshold``,
``safe_nk_n``, ``safe_nk_k``, ``safe_pratio_p``, …) and the snapshot limits
(table ``[limits]``: ``max_file_bytes``, ``max_request_bytes``, ``max_files``)
and the daily quotas of a project (also in ``[limits]``: ``max_requests_per_day``,
``max_file_additions_per_day``, each over the last 24 hours). No file: the
defaults (ACRO's thresholds; 100 MB per file, 500 MB and 50 files per request;
20 new requests and 200 file additions or replacements per project and day).
An unknown key, a wrong type or a non-positive limit is an error that names
the file and the key; the control plane refuses to start on it
(``hdh serve``), and ``hdh egress config`` prints what is in force.

Example::

    [checks]
    safe_threshold = 11      # counts below 11 are disclosive (CNIL-style rule)

    [limits]
    max_files = 20
    max_requests_per_day = 5
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdh.disclosure import CheckConfig, CheckError
from jupyterlab_hdh.egress.snapshot import DEFAULT_LIMITS, Limits
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.paths import DataDir

FILE_NAME = "airlock.toml"


class AirlockConfigError(HdhError, ValueError):
    """``airlock.toml`` is unreadable or holds a bad value (the message names it)."""

    http_status = 503

    def detail(self) -> str:
        return f"the airlock is misconfigured: {self}"


@dataclass(frozen=True)
class Quotas:
    """How much a project may ask of the airlock per day (the last 24 hours, any member).

    Every request and every file added (or replaced) puts text a sandbox wrote (a title,
    a file's path, context and controls) in front of people outside the sandbox; the
    quotas bound how much of it a project can push out a day, however it is split."""

    max_requests_per_day: int = 20
    max_file_additions_per_day: int = 200


DEFAULT_QUOTAS = Quotas()


@dataclass(frozen=True)
class AirlockSettings:
    checks: CheckConfig = field(default_factory=CheckConfig)
    limits: Limits = DEFAULT_LIMITS
    quotas: Quotas = DEFAULT_QUOTAS

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks.to_dict(),
            "limits": {**dataclasses.asdict(self.limits), **dataclasses.asdict(self.quotas)},
        }


def config_path(data_dir: DataDir) -> Path:
    return data_dir.root / FILE_NAME


def _limits(values: Any, source: str) -> tuple[Limits, Quotas]:
    if not isinstance(values, dict):
        raise AirlockConfigError(f"{source}: [limits] must be a table")
    sizes = {f.name for f in dataclasses.fields(Limits)}
    known = sizes | {f.name for f in dataclasses.fields(Quotas)}
    out: dict[str, int] = {}
    for key, value in values.items():
        if key not in known:
            raise AirlockConfigError(
                f"{source}: unknown key limits.{key} (known: {', '.join(sorted(known))})"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AirlockConfigError(f"{source}: limits.{key} must be a positive integer")
        out[key] = value
    return (
        dataclasses.replace(DEFAULT_LIMITS, **{k: v for k, v in out.items() if k in sizes}),
        dataclasses.replace(DEFAULT_QUOTAS, **{k: v for k, v in out.items() if k not in sizes}),
    )


def load_settings(data_dir: DataDir) -> AirlockSettings:
    """The settings in force for ``data_dir`` (defaults where the file says nothing)."""
    path = config_path(data_dir)
    if not path.exists():
        return AirlockSettings()
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AirlockConfigError(f"{source}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AirlockConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"checks", "limits"}
    if unknown:
        raise AirlockConfigError(
            f"{source}: unknown table(s) {', '.join(sorted(unknown))} (known: checks, limits)"
        )
    checks_data = data.get("checks", {})
    if not isinstance(checks_data, dict):
        raise AirlockConfigError(f"{source}: [checks] must be a table")
    try:
        checks = CheckConfig.from_dict(checks_data, source=f"{source} [checks]")
    except CheckError as exc:
        raise AirlockConfigError(str(exc)) from None
    limits, quotas = _limits(data.get("limits", {}), source)
    return AirlockSettings(checks, limits, quotas)
