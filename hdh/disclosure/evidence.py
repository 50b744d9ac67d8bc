"""Per-cell evidence for output tables, and model-risk reports, read from supporting files.

A finished table does not carry the contributions that dominance (nk, p-ratio) needs, so the
gate reads evidence produced beside it in the sandbox:

* ACRO's ``results.json`` (written by ``ACRO.finalise``): per output a status, the flagged
  cells per check and any exception; matched to an output file by name (same folder first) and,
  when ACRO's ``checksums/<file>.txt`` is among the inputs, by sha256.
* our ``<table>.sdc.json`` sidecar (``aggregate.write_table``): per-cell statistics bound to the
  table's sha256; the gate recomputes every verdict with *its own* configuration and checks
  that the table's values are those the statistics describe.
* SACRO-ML attack reports (JSON with ``global_metrics``): membership-inference metrics.

Evidence comes from the sandbox, so it is only as trustworthy as the researcher's code:
reviewers see that code (provenance); the gate checks hashes and consistency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .aggregate import AGGFUNCS, SIDECAR_FORMAT, SIDECAR_SUFFIX, CellEvidence, cell_verdicts
from .config import CheckConfig, CheckError
from .report import CheckInput, Flag
from .tables import FlagSink, Layout, Table, cell_location

#: ACRO check names (1.x ontology and 0.4 legacy) -> our rule names
ACRO_RULES = {
    "MinimumThresholdCheck": "threshold",
    "NKCheck": "nk-rule",
    "PPercentCheck": "p-ratio",
    "PresenceOfZeroCheck": "zeros",
    "MinimumDoFCheck": "dof",
    "MissingCheck": "missing",
    "threshold": "threshold",
    "p-ratio": "p-ratio",
    "nk-rule": "nk-rule",
    "all-values-are-same": "all-values-are-same",
    "negative": "negative",
    "missing": "missing",
}
_ACRO_ALWAYS_PASS = {"RequiredZeroCheck", "PresenceOfLinkedTableCheck"}


def is_evidence_name(name: str) -> bool:
    """JSON files (ACRO results, sidecars, SACRO-ML reports) and ACRO checksum files."""
    p = PurePosixPath(name)
    return p.suffix.lower() == ".json" or (p.parent.name == "checksums" and p.suffix == ".txt")


@dataclass(frozen=True)
class RiskMetrics:
    """One attack of a SACRO-ML report: its worst AUC and TPR at low FPR over repetitions."""

    attack: str
    auc: float | None
    tpr: float | None
    significant: bool  # SACRO-ML's own test: AUC significantly above chance


@dataclass
class ModelRiskReport:
    """The membership-inference attacks of one SACRO-ML report."""

    name: str
    attacks: list[RiskMetrics]


class TableEvidence:
    kind = ""
    source = ""

    def apply(self, table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
        raise NotImplementedError


class MismatchEvidence(TableEvidence):
    def __init__(self, kind: str, source: str, message: str) -> None:
        self.kind, self.source, self.message = kind, source, message

    def apply(self, table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
        sink.add(
            Flag("evidence-mismatch", f"{self.source}: {self.message}", {"evidence": self.source})
        )


class SidecarEvidence(TableEvidence):
    kind = "sdc-sidecar"

    def __init__(self, source: str, doc: dict[str, Any]) -> None:
        self.source, self.doc = source, doc

    def _evidence(self) -> CellEvidence:
        d, cells = self.doc, self.doc["cells"]

        def arr(key: str) -> np.ndarray:
            # numpy reads JSON null (None) as NaN in a float array; strings are a ValueError
            return np.array(cells[key], dtype=float)

        count = np.array(cells["count"], dtype=np.int64)
        if count.ndim != 2:
            raise ValueError("cells.count is not a rows x columns array")
        ev = CellEvidence(
            aggfunc=str(d["aggfunc"]),
            index=list(d["index"]),
            columns=list(d["columns"]),
            row_labels=[],
            col_labels=[],
            nk_n=int(d["nk_n"]),
            count=count,
            n_valid=np.array(cells["n_valid"], dtype=np.int64),
            total=arr("sum"),
            top1=arr("top1"),
            top2_sum=arr("top2_sum"),
            topn_sum=arr("topn_sum"),
            n_negative=np.array(cells["n_negative"], dtype=np.int64),
        )
        for a in (ev.n_valid, ev.total, ev.top1, ev.top2_sum, ev.topn_sum, ev.n_negative):
            if a.shape != count.shape:
                raise ValueError("cell arrays differ in shape")
        if ev.aggfunc not in AGGFUNCS:
            raise ValueError(f"unknown aggfunc {ev.aggfunc!r}")
        return ev

    def apply(self, table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
        def mismatch(msg: str, loc: dict[str, Any] | None = None) -> None:
            sink.add(
                Flag(
                    "evidence-mismatch",
                    f"{self.source}: {msg}",
                    {"evidence": self.source, **(loc or {})},
                )
            )

        try:
            ev = self._evidence()
            value_names = [str(v) for v in self.doc["value_columns"]]
        except (KeyError, TypeError, ValueError) as exc:
            mismatch(f"malformed sidecar ({exc})")
            return
        n_labels = len(ev.index)
        if table.columns != [*ev.index, *value_names] or table.data.shape[0] != ev.count.shape[0]:
            mismatch("the table's columns or rows are not those the evidence describes")
            return
        # the table's values must be those the statistics give
        vals = lay.numbers.to_numpy()[:, n_labels:]
        blank = lay.suppressed.to_numpy()[:, n_labels:]
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = {
                "count": ev.count.astype(float),
                "sum": np.where(ev.count > 0, ev.total, np.nan),
                "mean": np.where(ev.n_valid > 0, ev.total / ev.n_valid, np.nan),
                "max": ev.top1,
            }.get(ev.aggfunc)
        if expected is not None:
            both = ~blank & ~np.isnan(expected)
            bad = both & ~np.isclose(vals, expected, rtol=1e-9, atol=1e-9, equal_nan=False)
            bad |= ~blank & np.isnan(expected) & ~np.isnan(vals)
            if bad.any():
                i, k = (int(x) for x in np.argwhere(bad)[0])
                mismatch(
                    f"{int(bad.sum())} cell(s) differ from the evidence",
                    cell_location(table, lay, i, n_labels + k),
                )
                return
        try:
            verdicts = cell_verdicts(ev, config)
        except CheckError as exc:
            sink.add(Flag("no-evidence", f"{self.source}: {exc}", {}, severity="review"))
            return
        for key, mask in verdicts.items():
            severity, rule = ("review", key[7:]) if key.startswith("review:") else ("fail", key)

            def make(i: int, k: int, rule: str = rule, severity: str = severity) -> Flag:
                loc = cell_location(table, lay, i, n_labels + k)
                return Flag(rule, _message(rule, ev, i, k, config), loc, severity)

            sink.add_cells(rule, np.argwhere(mask & ~blank), make, severity)


def _message(rule: str, ev: CellEvidence, i: int, k: int, config: CheckConfig) -> str:
    n = int(ev.count[i, k])
    if rule == "threshold":
        return f"cell built from {n} record(s), below the threshold {config.safe_threshold}"
    if rule == "zeros":
        return "empty cell (zeros are disclosive in this configuration)"
    if rule == "dof":
        return f"{n - 1} degree(s) of freedom, below {config.safe_dof_threshold}"
    if rule == "nk-rule":
        if ev.n_negative[i, k]:
            return "negative values: dominance undefined, review the cell"
        share = ev.topn_sum[i, k] / ev.total[i, k] if ev.total[i, k] else float("nan")
        return (
            f"the {ev.nk_n} largest contributors make {share:.0%} of the cell"
            f" (limit {config.safe_nk_k:.0%})"
        )
    if rule == "p-ratio":
        if ev.n_negative[i, k]:
            return "negative values: p-ratio undefined, review the cell"
        return (
            f"the others than the two largest contributors sum to less than"
            f" {config.safe_pratio_p:.0%} of the largest"
        )
    return rule


class AcroEvidence(TableEvidence):
    kind = "acro"

    def __init__(self, source: str, uid: str, entry: dict[str, Any], sdc: dict[str, Any]) -> None:
        self.source, self.uid, self.entry, self.sdc = source, uid, entry, sdc

    def apply(self, table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
        status = str(self.entry.get("status", "review")).lower()
        exception = self.entry.get("exception") or ""
        note = f" (ACRO exception requested: {str(exception)[:200]})" if exception else ""
        if status == "pass":
            return
        severity = "fail" if status == "fail" else "review"
        cells = self.sdc.get("cells") if isinstance(self.sdc, dict) else None
        added = 0
        if isinstance(cells, dict):
            n_labels = len(lay.label_cols)
            for check, where in cells.items():
                if check in _ACRO_ALWAYS_PASS or not isinstance(where, list):
                    continue
                rule = ACRO_RULES.get(check, f"acro-{check}")
                for pos in where:
                    if not (
                        isinstance(pos, list)
                        and len(pos) == 2
                        and all(isinstance(x, int) for x in pos)
                    ):
                        continue
                    r, c = pos
                    loc: dict[str, Any] = {"acro_output": self.uid, "acro_cell": [r, c]}
                    if 0 <= r < table.data.shape[0] and 0 <= n_labels + c < len(table.columns):
                        loc.update(cell_location(table, lay, r, n_labels + c))
                    sink.add(Flag(rule, f"ACRO {check} flagged this cell{note}", loc, severity))
                    added += 1
        if not added:
            summary = str(self.entry.get("summary", ""))[:300]
            sink.add(
                Flag(
                    "acro",
                    f"ACRO status {status}: {summary}{note}",
                    {"acro_output": self.uid},
                    severity,
                )
            )


@dataclass
class EvidenceBundle:
    sidecars: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    acro: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = field(
        default_factory=list
    )  # (results name, uid, entry, file name, sdc)
    checksums: dict[str, str] = field(default_factory=dict)  # "dir/name" -> sha256
    model_reports: list[ModelRiskReport] = field(default_factory=list)
    n_models: int = 0
    problems: dict[str, str] = field(default_factory=dict)

    def for_table(self, name: str, sha: str) -> TableEvidence | None:
        side = self.sidecars.get(name)
        if side is not None:
            source, doc = side
            if doc.get("table_sha256") != sha:
                return MismatchEvidence(
                    "sdc-sidecar", source, "sha256 differs: the table changed after its evidence"
                )
            return SidecarEvidence(source, doc)
        p = PurePosixPath(name)
        cands = [a for a in self.acro if a[3] == p.name]
        same_dir = [a for a in cands if PurePosixPath(a[0]).parent == p.parent]
        cands = same_dir or cands
        if not cands:
            return None
        checked = []
        for a in cands:
            known = self.checksums.get(str(PurePosixPath(a[0]).parent / "checksums" / p.name))
            if known is not None and known != sha:
                continue
            checked.append((a, known is not None))
        if not checked:
            return MismatchEvidence(
                "acro", cands[0][0], "ACRO's checksum differs: the file changed after ACRO"
            )
        verified = [a for a, ok in checked if ok]
        pick = verified or [a for a, _ in checked]
        if len(pick) > 1:
            return MismatchEvidence(
                "acro", pick[0][0], f"{len(pick)} ACRO outputs are named {p.name!r}: ambiguous"
            )
        results_name, uid, entry, _, sdc = pick[0]
        return AcroEvidence(results_name, uid, entry, sdc)

    def model_reports_for(self, name: str) -> list[ModelRiskReport]:
        stem = PurePosixPath(name).stem.lower()
        named = [
            r for r in self.model_reports if PurePosixPath(r.name).name.lower().startswith(stem)
        ]
        if named or self.n_models != 1:
            return named
        return list(self.model_reports)


def _find_metrics(doc: dict[str, Any], tpr_metric: str) -> list[RiskMetrics]:
    """The attacks of a SACRO-ML ``report.json`` (sacroml 2: one entry per attack run,
    ``{metadata: {attack_name, global_metrics}, attack_experiment_logger:
    {attack_instance_logger: {instance_N: {AUC, TPR@…%, …}}}}``): per attack, the highest
    AUC and ``tpr_metric`` over its repetitions, and whether SACRO-ML found the AUC
    significantly above chance."""
    found: list[RiskMetrics] = []
    for key, entry in doc.items():
        if not isinstance(entry, dict):
            continue
        logger = entry.get("attack_experiment_logger")
        instances = logger.get("attack_instance_logger") if isinstance(logger, dict) else None
        if not isinstance(instances, dict):
            continue
        meta = entry.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        gm = meta.get("global_metrics")
        gm = gm if isinstance(gm, dict) else {}
        runs = [i for i in instances.values() if isinstance(i, dict)]
        aucs = [a for a in (_number(i.get("AUC")) for i in runs) if a is not None]
        tprs = [t for t in (_number(i.get(tpr_metric)) for i in runs) if t is not None]
        significant = str(gm.get("AUC_sig", "")).startswith("Significant") or bool(
            (_number(gm.get("n_sig_auc_p_vals_corrected")) or 0) > 0
        )
        found.append(
            RiskMetrics(
                str(meta.get("attack_name") or key),
                max(aucs) if aucs else None,
                max(tprs) if tprs else None,
                significant,
            )
        )
    return found


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def collect(
    readable: Sequence[tuple[int, CheckInput]], hashes: dict[int, str], config: CheckConfig
) -> EvidenceBundle:
    """Read every evidence file among the inputs (never raises on a malformed one)."""
    bundle = EvidenceBundle()
    for _, item in readable:
        if PurePosixPath(item.name).suffix.lower() in {"." + t for t in config.model_types}:
            bundle.n_models += 1
    for _, item in readable:
        if not is_evidence_name(item.name):
            continue
        try:
            _collect_one(item, bundle, config)
        except Exception as exc:  # noqa: BLE001 - hostile evidence must not stop the gate
            bundle.problems[item.name] = f"evidence cannot be read: {type(exc).__name__}"
    return bundle


def _collect_one(item: CheckInput, bundle: EvidenceBundle, config: CheckConfig) -> None:
    p = PurePosixPath(item.name)
    if not is_evidence_name(item.name):
        return
    if p.suffix == ".txt":
        text = Path(item.path).read_bytes()[:200].decode("ascii", "replace").strip()
        bundle.checksums[str(p.parent / p.stem)] = text.lower()
        return
    try:
        doc = json.loads(Path(item.path).read_bytes())
    except (ValueError, OSError, RecursionError) as exc:
        bundle.problems[item.name] = f"evidence JSON cannot be parsed: {exc}"[:300]
        return
    if not isinstance(doc, dict):
        return
    if item.name.endswith(SIDECAR_SUFFIX) and doc.get("format") == SIDECAR_FORMAT:
        bundle.sidecars[item.name[: -len(SIDECAR_SUFFIX)]] = (item.name, doc)
    elif isinstance(doc.get("results"), dict) and ("version" in doc or "tool" in doc):
        for uid, entry in doc["results"].items():
            if not isinstance(entry, dict):
                return
            for f in entry.get("files") or []:
                if isinstance(f, dict) and isinstance(f.get("name"), str):
                    bundle.acro.append(
                        (
                            item.name,
                            str(uid),
                            entry,
                            PurePosixPath(f["name"]).name,
                            f.get("sdc") or {},
                        )
                    )
    else:
        attacks = _find_metrics(doc, config.model_tpr_metric)
        if attacks:
            bundle.model_reports.append(ModelRiskReport(item.name, attacks))
