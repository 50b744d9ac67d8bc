"""The sandbox boundary as a rule of the code: each in-sandbox entry point, imported in a fresh
interpreter, loads nothing of the host side (store, governance, airlock manager, hub, guard,
API, SQLAlchemy, Alembic, key handling). ``lint-imports`` checks the static imports; this
checks what really gets loaded, parent packages and function-level imports included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: what a sandbox's server and kernels import from HDH: the server extension and contents
#: manager the server is started with, the notebook library and its parts
ENTRY_POINTS = (
    "hdh",
    "hdh.airlock",
    "hdh.jupyter",
    "hdh.jupyter.contents",
    "hdh.cohort",
    "hdh.disclosure",  # the disclosure-aware writer of the template notebooks, and the checks
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


def test_the_template_notebooks_import_nothing_of_the_host_side() -> None:
    # a sandbox needs only ``import hdh``: the templates' writer is hdh.disclosure
    notebooks = sorted((Path(__file__).parents[2] / "hdh/templates/notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "jupyterlab_hdh" not in code, f"{path.name} imports the host side"
