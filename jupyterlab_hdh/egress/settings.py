"""The airlock's configuration of one installation: ``<data dir>/airlock.toml``.

Owns reading the thresholds of the automated checks (table ``[checks]``, the
keys of :class:`~jupyterlab_hdh.egress.checks.CheckConfig`: ``safe_threshold``,
``safe_nk_n``, ``safe_nk_k``, ``safe_pratio_p``, …) and the snapshot limits
(table ``[limits]``: ``max_file_bytes``, ``max_request_bytes``, ``max_files``).
No file: the defaults (ACRO's thresholds; 100 MB per file, 500 MB and 50 files
per request). An unknown key, a wrong type or a non-positive limit is an error
that names the file and the key; the control plane refuses to start on it
(``hdh serve``), and ``hdh egress config`` prints what is in force.

Example::

    [checks]
    safe_threshold = 11      # counts below 11 are disclosive (CNIL-style rule)

    [limits]
    max_files = 20
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyterlab_hdh.egress.checks import CheckConfig, CheckError
from jupyterlab_hdh.egress.snapshot import DEFAULT_LIMITS, Limits
from jupyterlab_hdh.paths import DataDir

FILE_NAME = "airlock.toml"


class AirlockConfigError(ValueError):
    """``airlock.toml`` is unreadable or holds a bad value (the message names it)."""


@dataclass(frozen=True)
class AirlockSettings:
    checks: CheckConfig = field(default_factory=CheckConfig)
    limits: Limits = DEFAULT_LIMITS

    def to_dict(self) -> dict[str, Any]:
        return {"checks": self.checks.to_dict(), "limits": dataclasses.asdict(self.limits)}


def config_path(data_dir: DataDir) -> Path:
    return data_dir.root / FILE_NAME


def _limits(values: Any, source: str) -> Limits:
    if not isinstance(values, dict):
        raise AirlockConfigError(f"{source}: [limits] must be a table")
    known = {f.name for f in dataclasses.fields(Limits)}
    out: dict[str, int] = {}
    for key, value in values.items():
        if key not in known:
            raise AirlockConfigError(
                f"{source}: unknown key limits.{key} (known: {', '.join(sorted(known))})"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AirlockConfigError(f"{source}: limits.{key} must be a positive integer")
        out[key] = value
    return dataclasses.replace(DEFAULT_LIMITS, **out)


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
    return AirlockSettings(checks, _limits(data.get("limits", {}), source))
