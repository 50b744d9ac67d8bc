"""docs/airlock.md shows what the commands do: its sample ``hdh egress check`` session is
run and compared, and every ``hdh egress`` command line it shows names a command and options
that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click

from jupyterlab_hdh.cli.egress import egress

DOC = Path(__file__).parents[2] / "docs" / "airlock.md"
MARKER = (
    "<!-- the commands and output below are run and compared by"
    " tests/egress/test_airlock_doc.py -->"
)


def _checked_block() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    assert MARKER in text
    block = text.split(MARKER, 1)[1].split("```console\n", 1)[1].split("\n```", 1)[0]
    return block.splitlines()


def test_sample_check_session_is_what_the_command_prints(tmp_path: Path) -> None:
    """``$ cat FILE`` lines give the files (their shown content); the other commands run in
    one shell, in order, and together print exactly the lines the doc shows."""
    lines = _checked_block()
    commands: list[str] = []
    expected: list[str] = []
    for k, line in enumerate(lines):
        if not line.startswith("$ "):
            expected.append(line)
            continue
        commands.append(line[2:])
        if line.startswith("$ cat "):
            content = []
            for following in lines[k + 1 :]:
                if following.startswith("$ "):
                    break
                content.append(following)
            path = tmp_path / line[len("$ cat ") :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(content) + "\n", encoding="utf-8")
    assert any(c.startswith("hdh egress check") for c in commands)
    env = {k: v for k, v in os.environ.items() if k != "HDH_DATA_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(DOC.parents[1]), env.get("PYTHONPATH", "")])
    hdh = f'hdh() {{ "{sys.executable}" -m jupyterlab_hdh.cli "$@"; }}'  # this interpreter's
    done = subprocess.run(
        ["bash", "-c", "\n".join([hdh, *commands])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stderr == ""
    assert done.stdout.splitlines() == expected


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in p.opts}


def test_every_egress_command_line_shown_exists() -> None:
    ctx = click.Context(egress)
    text = DOC.read_text(encoding="utf-8").replace("\\\n", " ")  # continued lines
    shown = re.findall(r"^\$ hdh egress (.+?)$", text, re.MULTILINE)
    assert len(shown) >= 15
    for line in shown:
        words = line.split("#", 1)[0]
        command = egress.get_command(ctx, words.split()[0])
        assert command is not None, line
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", words):
            assert option in _options(command), (option, line)
