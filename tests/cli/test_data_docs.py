"""docs/data.md shows what the commands do: every command line of its ``bash`` blocks runs.

The blocks are run in the order the document gives them (generate, ingest,
opt-out, catalogue, audit) on a fresh data directory, with a small extract and
the document's paths moved under a temporary folder; each must succeed, without
a stack trace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from jupyterlab_hdh.data.optout import check_raw_identifier

DOC = Path(__file__).parents[2] / "docs" / "data.md"


def _command_lines() -> list[str]:
    """Each command of the ``bash`` blocks: continuations joined, trailing comments removed."""
    text = DOC.read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:
                commands.append(line)
    return commands


def test_every_command_names_an_hdh_command_without_placeholders() -> None:
    commands = _command_lines()
    assert len(commands) >= 15
    for command in commands:
        assert "hdh " in command, command
        assert "[" not in command and "…" not in command, f"not runnable as shown: {command}"


def test_every_command_it_shows_runs(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    work = tmp_path / "work"
    work.mkdir()
    commands = [
        c.replace("/data/incoming", str(incoming)).replace("--patients 100000", "--patients 300")
        for c in _command_lines()
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("HDH_DATA_DIR", "HDH_STORE_URL")}
    env["HDH_DATA_DIR"] = str(tmp_path / "hdh")
    env["PYTHONPATH"] = os.pathsep.join([str(DOC.parents[1]), env.get("PYTHONPATH", "")])
    hdh = f'hdh() {{ "{sys.executable}" -m jupyterlab_hdh.cli "$@"; }}'  # this interpreter's
    for command in commands:
        if "objections.txt" in command:  # two people of the extract generated above
            beneficiaries = pq.read_table(incoming / "snds-2024" / "IR_BEN_R.parquet")
            nirs = sorted(
                {check_raw_identifier(v) for v in beneficiaries["BEN_IDT_ANO"].to_pylist()}
            )
            (work / "objections.txt").write_text(f"{nirs[0]}\n{nirs[1]}\n")
        done = subprocess.run(
            ["bash", "-c", f"{hdh}\nset -o pipefail\n{command}"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr, command
        if command.startswith("hdh data reapply-optout"):
            assert "issued without 2 opted-out person(s)" in done.stdout, done.stdout
    assert (work / "catalogue.jsonld").is_file()
