"""The sandbox boundary as a rule of the code: each in-sandbox entry point, imported in a fresh
interpreter, loads nothing of the host side (store, governance, airlock manager, hub, guard,
API, SQLAlchemy, Alembic, key handling). ``lint-imports`` checks the static imports; this
checks what really gets loaded, parent packages and function-level imports included."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: what a sandbox's server and kernels import from HDH: the server extension and contents
#: manager the server is started with, the notebook library and its parts
ENTRY_POINTS = (
    "hdh",
    "hdh.airlock",
    "hdh.jupyter",
    "hdh.jupyter.contents",
    "hdh.cohort",
    "jupyterlab_hdh.egress.client",  # the airlock's old name, kept for old notebooks
)
#: top-level distributions of the host side
FORBIDDEN = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "jupyterhub", "psycopg")
#: HDH's host-side packages (the old airlock name needs jupyterlab_hdh and its egress package,
#: which import nothing)
HOST = ("jupyterlab_hdh.",)
ALLOWED_HOST = ("jupyterlab_hdh", "jupyterlab_hdh.egress", "jupyterlab_hdh.egress.client")

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_an_in_sandbox_entry_point_loads_nothing_of_the_host_side(entry: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, entry], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    bad += [m for m in loaded if m == "jupyterlab_hdh" or m.startswith(HOST)]
    bad = [m for m in bad if m not in ALLOWED_HOST]
    assert bad == [], f"{entry} loads host-side modules: {bad}"


def test_the_writer_the_template_notebooks_import_loads_no_host_service() -> None:
    # the templates write their tables with the airlock's disclosure-aware writer: pure
    # numpy/pandas code beside the automated checks, which must stay free of the services
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "jupyterlab_hdh.egress.checks"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    pure = ("jupyterlab_hdh.egress.checks", "jupyterlab_hdh.data.snds_schemas")
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    bad += [
        m
        for m in loaded
        if m.startswith(HOST) and not m.startswith(pure) and m not in ALLOWED_HOST
        and m not in ("jupyterlab_hdh.data", "jupyterlab_hdh.data.schemas")
    ]  # fmt: skip
    assert bad == [], f"the template notebooks' writer loads host-side modules: {bad}"
