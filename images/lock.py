#!/usr/bin/env python3
"""Write the images' pinned Python requirements (``images/requirements-*.txt``) from pyproject.toml.

Each lock is pip's own resolution, for the images' interpreter (CPython 3.12 on Linux
x86_64), of a set of roots taken from pyproject.toml, never typed by hand:

* ``base``  (images/base): ``[project] dependencies`` + the ``spark`` extra + the ``acro``
  entry of the ``dev`` extra (ACRO, the disclosure checker researchers compare with);
* ``gpu``   (images/gpu): ``dependencies`` + ``spark`` + ``gpu`` (cuDF). Without ACRO:
  acro 1.0.x requires ``pandas<=2.3.3`` and cuDF 26.10 ``pandas>=3.0``;
* ``spark`` (images/spark, the executors): the ``pyspark``, ``pandas``, ``pyarrow`` and
  ``numpy`` entries, constrained to the base lock (a UDF runs with the driver's versions);
* ``build`` (the images' builder stages only): ``[build-system] requires``, the ``build``
  entry of ``dev``, and setuptools and wheel (pyspark is published as an sdist), constrained
  to the base lock;
* ``hub``   (images/hub: the JupyterHub chart's hub, the control plane and the guard):
  ``dependencies`` + ``k8s`` (KubeSpawner) + ``chart`` (what the chart's own hub
  configuration and idle culler import, and the chart's JupyterHub line). Not constrained
  to the base lock: the chart's JupyterHub (5.x) is older than the sandboxes'.

How: ``pip --python <python3.12> install --dry-run --ignore-installed --report`` (nothing is
installed; pip fetches only the packages' metadata). Every pin is annotated with the
packages that need it (``# via``, pip-compile's format), which tests/k8s/test_images.py
walks back to pyproject.toml. Run from the repository root, with network access to PyPI:

    python images/lock.py --python /path/to/python3.12

then commit the five files (or name the ones to write: ``lock.py --python ... hub``). The
Dockerfiles install the locks with ``--no-deps`` and check the result with ``pip check``, so
nothing but the lock goes into an image.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
TARGET_PYTHON = "3.12"
SPARK_EXECUTOR = ("pyspark", "pandas", "pyarrow", "numpy")
#: locks in the order they are resolved (a later one may be constrained to an earlier one)
LOCK_NAMES = ("base", "gpu", "spark", "build", "hub")


class LockError(Exception):
    """A lock that cannot be written (the message says why)."""


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _named(entries: list[str], *names: str) -> list[str]:
    wanted = {canonicalize_name(n) for n in names}
    found = [e for e in entries if canonicalize_name(Requirement(e).name) in wanted]
    missing = wanted - {canonicalize_name(Requirement(e).name) for e in found}
    if missing:
        raise LockError(f"pyproject.toml has no entry for {sorted(missing)[0]!r}")
    return found


def roots(name: str, project: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The roots of lock ``name`` as (requirement, where in pyproject.toml) pairs."""
    data = project if project is not None else pyproject()
    deps: list[str] = data["project"]["dependencies"]
    extras: dict[str, list[str]] = data["project"]["optional-dependencies"]
    dep = [(d, "pyproject.toml: dependencies") for d in deps]
    spark = [(d, "pyproject.toml: extra spark") for d in extras["spark"]]
    if name == "base":
        acro = _named(extras["dev"], "acro")
        return [*dep, *spark, *((d, "pyproject.toml: extra dev") for d in acro)]
    if name == "gpu":
        return [*dep, *spark, *((d, "pyproject.toml: extra gpu") for d in extras["gpu"])]
    if name == "spark":
        picked = set(_named([d for d, _ in dep + spark], *SPARK_EXECUTOR))
        return [(d, origin) for d, origin in dep + spark if d in picked]
    if name == "build":
        return [
            *((d, "pyproject.toml: build-system") for d in data["build-system"]["requires"]),
            *((d, "pyproject.toml: extra dev") for d in _named(extras["dev"], "build")),
            ("setuptools", "images/lock.py: pyspark's sdist"),
            ("wheel", "images/lock.py: pyspark's sdist"),
        ]
    if name == "hub":
        k8s = [(d, "pyproject.toml: extra k8s") for d in extras["k8s"]]
        return [*dep, *k8s, *((d, "pyproject.toml: extra chart") for d in extras["chart"])]
    raise LockError(f"no lock named {name!r} (there are: {', '.join(LOCK_NAMES)})")


def lock_path(name: str) -> Path:
    return IMAGES / f"requirements-{name}.txt"


def resolve(python: str, reqs: list[str], constraints: list[Path]) -> dict[str, Any]:
    """pip's resolution of ``reqs`` for ``python`` (its JSON installation report)."""
    with tempfile.TemporaryDirectory() as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("".join(f"{r}\n" for r in reqs))
        report = Path(tmp) / "report.json"
        argv = [
            sys.executable, "-m", "pip", "--python", python, "install", "--dry-run",
            "--ignore-installed", "--quiet", "--report", str(report), "-r", str(req_file),
        ]  # fmt: skip
        for c in constraints:
            argv += ["-c", str(c)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            raise LockError(f"pip could not resolve: {' '.join(tail) or done.stderr[-500:]}")
        return json.loads(report.read_text())


def edges(report: dict[str, Any], root_reqs: list[str]) -> dict[str, set[str]]:
    """``{package: the packages (or '' for a root) that need it}`` for the resolved set,
    walking requires_dist from the roots with each package's active extras."""
    env = report["environment"]
    items: dict[str, Any] = {canonicalize_name(i["metadata"]["name"]): i for i in report["install"]}
    extras: dict[str, set[str]] = {}
    via: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str], str]] = []
    for r in root_reqs:
        req = Requirement(r)
        todo.append((canonicalize_name(req.name), frozenset(req.extras), ""))
    while todo:
        name, new_extras, parent = todo.pop()
        if name not in items:
            raise LockError(f"{name} is needed but pip did not resolve it")
        via.setdefault(name, set()).add(parent)
        known = extras.get(name)
        if known is not None and new_extras <= known:
            continue
        active = (known or set()) | new_extras
        extras[name] = active
        for dep in items[name]["metadata"].get("requires_dist") or []:
            req = Requirement(dep)
            if req.marker is not None and not _marker_holds(req.marker, env, active):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras), name))
    unreached = set(items) - set(via)
    if unreached:
        raise LockError(f"pip resolved {sorted(unreached)[0]} but nothing needs it")
    return via


def _marker_holds(marker: Marker, env: dict[str, str], extras: set[str]) -> bool:
    if not extras:
        return marker.evaluate({**env, "extra": ""})
    return any(marker.evaluate({**env, "extra": e}) for e in extras)


def render(name: str, report: dict[str, Any], root_pairs: list[tuple[str, str]]) -> str:
    via = edges(report, [r for r, _ in root_pairs])
    where: dict[str, set[str]] = {}
    for r, origin in root_pairs:
        where.setdefault(canonicalize_name(Requirement(r).name), set()).add(origin)
    env = report["environment"]
    lines = [
        f"# images/requirements-{name}.txt: written by images/lock.py; do not edit by hand.",
        f"# pip's resolution for CPython {env['python_full_version']} on "
        f"{env['sys_platform']} {env['platform_machine']} (see images/README.md, 'Locks').",
        "# Roots: " + "; ".join(sorted({o for _, o in root_pairs})) + ".",
    ]
    for item in sorted(report["install"], key=lambda i: canonicalize_name(i["metadata"]["name"])):
        key = canonicalize_name(item["metadata"]["name"])
        lines.append(f"{key}=={item['metadata']['version']}")
        parents = sorted(p for p in via[key] if p)
        if "" in via[key]:
            parents += sorted(where[key])
        lines.append(f"    # via {', '.join(parents)}")
    return "\n".join(lines) + "\n"


def write_lock(name: str, python: str) -> Path:
    root_pairs = roots(name)
    constraints = [lock_path("base")] if name in ("spark", "build") else []
    report = resolve(python, [r for r, _ in root_pairs], constraints)
    if report["environment"]["python_version"] != TARGET_PYTHON:
        found = report["environment"]["python_version"]
        raise LockError(f"{python} is Python {found}, the images run {TARGET_PYTHON}")
    path = lock_path(name)
    path.write_text(render(name, report, root_pairs))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python",
        default=shutil.which(f"python{TARGET_PYTHON}"),
        help=f"a Python {TARGET_PYTHON} interpreter (default: python{TARGET_PYTHON} on PATH)",
    )
    parser.add_argument("locks", nargs="*", choices=[*LOCK_NAMES, []], help="default: all")
    args = parser.parse_args(argv)
    if not args.python:
        print(f"error: no python{TARGET_PYTHON} on PATH; give --python", file=sys.stderr)
        return 2
    try:
        for name in args.locks or LOCK_NAMES:
            print(f"wrote {write_lock(name, args.python).relative_to(ROOT)}", file=sys.stderr)
    except LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
