"""Configuration of the automated disclosure checks: every threshold in one frozen dataclass.

The defaults are ACRO's (``acro/default.yaml``: threshold 10, nk n=2 k=0.9, p-ratio 0.10,
zeros disclosive, DoF 10) plus our own limits for hostile files, the figure allow-list, the
identifier-column patterns and the model-risk thresholds. ``CheckConfig.load`` reads a TOML
file; an unknown key or a value of the wrong type is a :class:`CheckError`, never ignored.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdh._identifiers import IDENTIFIER_FIELDS


class CheckError(Exception):
    """Bad input to the checks (configuration, figure to strip...): a clear one-line message."""


def _snds_identifiers() -> tuple[str, ...]:
    names = {n for fields in IDENTIFIER_FIELDS.values() for n in fields}
    return tuple(sorted(names | {"NIR", "BEN_NIR", "BEN_NIR_PSA", "BEN_NIR_ANO"}))


@dataclass(frozen=True)
class CheckConfig:
    """All thresholds of the disclosure checks (see docs/egress-checks.md for each rule)."""

    # ACRO's risk appetite (same names and defaults as acro/default.yaml)
    safe_threshold: int = 10
    safe_nk_n: int = 2
    safe_nk_k: float = 0.9
    safe_pratio_p: float = 0.10
    zeros_are_disclosive: bool = True
    safe_dof_threshold: int = 10
    # hostile-file limits
    max_file_bytes: int = 16 * 1024 * 1024
    max_cells: int = 1_000_000
    max_xlsx_uncompressed_bytes: int = 128 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_model_bytes: int = 512 * 1024 * 1024
    max_figure_pixels: int = 40_000_000
    max_evidence_bytes: int = 256 * 1024 * 1024  # ACRO results.json, .sdc.json, SACRO-ML
    max_flags_per_rule: int = 100  # per file; the rest are counted in one summary flag
    # file types (lower-case extensions without the dot)
    table_types: tuple[str, ...] = ("csv", "parquet", "xlsx")
    figure_types: tuple[str, ...] = ("png", "jpeg")
    model_types: tuple[str, ...] = ("pkl", "pickle", "joblib", "sav", "onnx", "skops")
    code_types: tuple[str, ...] = ("py", "ipynb", "r", "sql", "sas", "do", "txt", "md", "json")
    # identifiers: exact column names (case-insensitive) and regular expressions
    identifier_columns: tuple[str, ...] = field(default_factory=_snds_identifiers)
    identifier_column_patterns: tuple[str, ...] = (
        r"(^|_)NIR($|_)",
        r"pseudo",
        r"^(patient|person|beneficiary|individual|beneficiaire|individu)_?id$",
        r"^id_?(patient|person|beneficiary|individual|beneficiaire|individu)$",
        r"(^|_)IDT(_|$)",
    )
    # a cell holding one of these is a suppressed (redacted) value
    suppression_markers: tuple[str, ...] = (
        "",
        "*",
        "**",
        "c",
        "x",
        "-",
        "..",
        "na",
        "n/a",
        "nan",
        "redacted",
        "[redacted]",
        "suppressed",
        "<5",
        "<10",
        "s",
    )
    # row/column labels naming a margin (case-insensitive, whole label)
    total_labels: tuple[str, ...] = ("total", "totals", "all", "ensemble", "overall", "tous")
    # integer columns above this are treated as magnitudes, not counts
    max_plausible_count: int = 100_000_000
    # model membership-inference risk (SACRO-ML report, global_metrics)
    model_max_auc: float = 0.65
    model_max_tpr_at_low_fpr: float = 0.10
    model_tpr_metric: str = "TPR@0.1%"  # a key of SACRO-ML's per-attack metrics
    instance_based_status: str = "fail"

    def __post_init__(self) -> None:
        for name in (
            "safe_threshold",
            "safe_nk_n",
            "safe_dof_threshold",
            "max_file_bytes",
            "max_cells",
            "max_xlsx_uncompressed_bytes",
            "max_model_bytes",
            "max_figure_pixels",
            "max_plausible_count",
        ):
            if getattr(self, name) < 1:
                raise CheckError(f"config: {name} must be at least 1")
        for name in ("safe_nk_k", "safe_pratio_p"):
            if not 0 < getattr(self, name) <= 1:
                raise CheckError(f"config: {name} must be in (0, 1]")
        if self.instance_based_status not in ("fail", "review"):
            raise CheckError("config: instance_based_status must be 'fail' or 'review'")
        for pattern in self.identifier_column_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CheckError(f"config: bad identifier pattern {pattern!r}: {exc}") from exc

    @classmethod
    def load(cls, path: Path | None) -> CheckConfig:
        """The configuration in TOML file ``path`` over the defaults (``None``: the defaults).

        Keys sit at the top level or under a ``[checks]`` table; unknown keys, wrong types and
        unreadable files raise :class:`CheckError`.
        """
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckError(f"config {path}: cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise CheckError(f"config {path}: not valid TOML: {exc}") from exc
        if set(data) == {"checks"} and isinstance(data["checks"], dict):
            data = data["checks"]
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> CheckConfig:
        """Build from a mapping of overrides, type-checked against the defaults."""
        defaults = cls()
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise CheckError(
                    f"{source}: unknown key {key!r} (known: {', '.join(sorted(known))})"
                )
            default = getattr(defaults, key)
            values[key] = _coerce(key, value, default, source)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every setting (tuples as lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    def bad(expected: str) -> CheckError:
        return CheckError(f"{source}: {key} must be {expected}, not {value!r}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    raise bad(type(default).__name__)  # pragma: no cover - every field has a handled type
