"""Every Python example of ``docs/notebook-library.md`` runs as shown, in order, in one
namespace (as cells of one notebook), on a synthetic extract mounted as ``demo-snds`` v1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jupyterlab_hdh.data.synth import generate

DOC = Path(__file__).resolve().parents[2] / "docs" / "notebook-library.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_shows_examples() -> None:
    assert len(python_blocks()) >= 5


def test_every_example_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    generate(root / "demo-snds" / "v1", 300, 11, progress=False)
    monkeypatch.setenv("HDH_DATA_ROOT", str(root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "none.sock"))
    namespace: dict[str, object] = {}
    for i, block in enumerate(python_blocks(), 1):
        try:
            exec(compile(block, f"{DOC.name} example {i}", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # pragma: no cover - the failure message
            pytest.fail(f"example {i} of {DOC.name} fails: {type(exc).__name__}: {exc}\n{block}")
