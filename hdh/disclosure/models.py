"""Model checks by static inspection: a model file is never unpickled or loaded here.

Pickle-based files (``.pkl``, ``.joblib``, ``.sav``) are decompressed within a size bound and
their opcodes scanned with ``pickletools`` (parsing, no execution) for the classes they name;
ONNX and skops files are scanned for operator and class names. Instance-based models (nearest
neighbours, support vector machines, kernel methods, Gaussian processes...) embed training
records and are flagged ``instance-based-model``. A pickle naming anything outside the
scientific-Python allow-list (``os.system``, ``builtins.eval``...) is ``unsafe-pickle``: a
reviewer must never be asked to load it. Membership-inference risk comes from a SACRO-ML report
among the supporting files; without one the model goes to review (``model-risk``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickletools
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from .config import CheckConfig
from .evidence import ModelRiskReport
from .report import Flag
from .tables import FlagSink

INSTANCE_BASED = (
    "KNeighborsClassifier",
    "KNeighborsRegressor",
    "RadiusNeighborsClassifier",
    "RadiusNeighborsRegressor",
    "NearestNeighbors",
    "KNeighborsTransformer",
    "RadiusNeighborsTransformer",
    "KernelDensity",
    "LocalOutlierFactor",
    "SVC",
    "SVR",
    "NuSVC",
    "NuSVR",
    "OneClassSVM",
    "GaussianProcessClassifier",
    "GaussianProcessRegressor",
    "KernelRidge",
    "LabelPropagation",
    "LabelSpreading",
    "DBSCAN",
    "OPTICS",
    "KDTree",
    "BallTree",
    "SVMClassifier",
    "SVMRegressor",  # the last two: ONNX-ML operators
)
_SAFE_MODULES = (
    "sklearn",
    "numpy",
    "scipy",
    "xgboost",
    "lightgbm",
    "catboost",
    "joblib",
    "statsmodels",
    "pandas",
    "collections",
    "copyreg",
    "_codecs",
    "datetime",
    "decimal",
    "threadpoolctl",
)
_SAFE_BUILTINS = {
    "set",
    "frozenset",
    "slice",
    "complex",
    "bytearray",
    "range",
    "object",
    "int",
    "float",
    "str",
    "bytes",
    "list",
    "dict",
    "tuple",
    "bool",
}
_NAME_RE = re.compile(
    rb"(?<![A-Za-z0-9_])(" + b"|".join(n.encode() for n in INSTANCE_BASED) + rb")(?![A-Za-z0-9_])"
)


def _decompressed(data: bytes, limit: int) -> bytes:
    """Joblib may compress with zlib, gzip, bz2 or lzma: inflate at most ``limit`` bytes."""
    if data[:2] in (b"x\x9c", b"x\x01", b"x\xda", b"x^"):
        d = zlib.decompressobj()
        return d.decompress(data, limit)
    openers = {b"\x1f\x8b": gzip.GzipFile, b"BZ": bz2.BZ2File, b"\xfd7": lzma.LZMAFile}
    for magic, opener in openers.items():
        if data.startswith(magic):
            try:
                with opener(io.BytesIO(data)) as f:  # type: ignore[operator]
                    return bytes(f.read(limit))
            except (OSError, EOFError, lzma.LZMAError):
                return data
    return data


def pickle_globals(data: bytes) -> tuple[list[str], bool]:
    """The ``module.name`` globals a pickle stream references, and whether parsing finished.

    Tracks the strings pushed (and memoised) before STACK_GLOBAL; never executes anything.
    """
    found: list[str] = []
    strings: list[str] = []
    memo: dict[int, str] = {}
    complete = True
    it: Iterator = pickletools.genops(io.BytesIO(data))
    try:
        for op, arg, _ in it:
            name = op.name
            if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(str(arg))
            elif name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                memo[int(arg)] = strings[-1]
            elif name == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET") and int(arg) in memo:
                strings.append(memo[int(arg)])
            elif name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            if name == "STOP":
                break
    except Exception:  # noqa: BLE001 - malformed or joblib raw array bytes after the stream
        complete = False
    return found, complete


def _unsafe(name: str) -> bool:
    module = name.split(".", 1)[0]
    if module in ("builtins", "__builtin__"):
        return name.split(".")[-1] not in _SAFE_BUILTINS
    return module not in _SAFE_MODULES


def _skops_classes(path: Path, limit: int) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("schema.json")
        if info.file_size > limit:
            raise ValueError("schema.json is too large")
        doc = json.loads(zf.read("schema.json"))
    out: list[str] = []

    def walk(node: object, depth: int) -> None:
        if depth > 200:
            return
        if isinstance(node, dict):
            if isinstance(node.get("__class__"), str):
                out.append(f"{node.get('__module__', '')}.{node['__class__']}")
            for v in node.values():
                walk(v, depth + 1)
        elif isinstance(node, list):
            for v in node:
                walk(v, depth + 1)

    walk(doc, 0)
    return out


def check_model(
    path: Path,
    name: str,
    ext: str,
    config: CheckConfig,
    sink: FlagSink,
    reports: list[ModelRiskReport],
) -> None:
    data = path.read_bytes()
    classes: list[str] = []
    if ext == "skops":
        try:
            classes = _skops_classes(path, config.max_evidence_bytes)
        except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as exc:
            sink.add(Flag("unreadable", f"not a readable skops file: {exc}"))
            return
    elif ext == "onnx":
        classes = [m.decode() for m in set(_NAME_RE.findall(data))]
    else:
        raw = _decompressed(data, config.max_model_bytes)
        classes, complete = pickle_globals(raw)
        if not classes and not complete:
            sink.add(Flag("unreadable", "not a pickle stream the checks can parse"))
            return
        classes += [m.decode() for m in set(_NAME_RE.findall(raw))]
        unsafe = sorted({c for c in classes if "." in c and _unsafe(c)})
        if unsafe:
            sink.add(
                Flag(
                    "unsafe-pickle",
                    "pickle references code outside the scientific"
                    " Python allow-list: " + ", ".join(unsafe[:10]) + " (never load it)",
                    {"globals": unsafe[:50]},
                )
            )
    instance = sorted({c.rsplit(".", 1)[-1] for c in classes} & set(INSTANCE_BASED))
    if instance:
        sink.add(
            Flag(
                "instance-based-model",
                "instance-based model stores training records: " + ", ".join(instance),
                {"classes": instance},
                severity=config.instance_based_status,
            )
        )
    _check_risk(reports, config, sink)


def _check_risk(reports: list[ModelRiskReport], config: CheckConfig, sink: FlagSink) -> None:
    if not reports:
        sink.add(
            Flag(
                "model-risk",
                "no SACRO-ML membership-inference report among the supporting files",
                {},
                severity="review",
            )
        )
        return
    seen = False
    for report in reports:
        for m in report.attacks:
            attack, auc, tpr = m.attack, m.auc, m.tpr
            if auc is None and tpr is None:
                continue
            seen = True
            loc = {"report": report.name, "attack": attack}
            if m.significant and (auc is None or auc <= config.model_max_auc):
                sink.add(
                    Flag(
                        "model-risk",
                        f"{attack}: SACRO-ML finds the membership-inference AUC significantly"
                        " above chance",
                        loc,
                        severity="review",
                    )
                )
            if auc is not None and auc > config.model_max_auc:
                sink.add(
                    Flag(
                        "model-risk",
                        f"{attack}: membership-inference AUC {auc:.3f}"
                        f" above {config.model_max_auc}",
                        loc,
                    )
                )
            if tpr is not None and tpr > config.model_max_tpr_at_low_fpr:
                sink.add(
                    Flag(
                        "model-risk",
                        f"{attack}: {config.model_tpr_metric} {tpr:.3f}"
                        f" above {config.model_max_tpr_at_low_fpr}",
                        loc,
                    )
                )
    if not seen:
        sink.add(
            Flag("model-risk", "SACRO-ML report holds no AUC or TPR metric", {}, severity="review")
        )
