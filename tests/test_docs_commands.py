"""Every ``hdh …`` command that README.md and docs/*.md show in a code block works as shown.

Each document's commands run in order, as a reader would type them, in a fresh
data directory (SQLite) and working folder: every line of ``bash`` blocks, the
``$ `` lines of ``console`` blocks, only the synopses (below) of untyped
blocks. A trailing ``\\`` continues a line; ``echo X | hdh …`` feeds X on
standard input; in ``hdh … | kubectl …`` only hdh's part runs. Each must end
with the status the document implies (0 unless listed in ``EXIT``) and never
with a traceback.

A *synopsis* — a line with ``[optional]`` parts, ``a|b`` alternatives, ``…``
or a placeholder such as ``FILE`` — cannot run; its command must exist and
know every option it names (checked against its ``--help``).

What a test cannot run is listed in ``CANNOT_RUN`` with the reason, and what
it needs first (data, files, users a running hub would have made) is made
by the rules below: keep them few and explicit.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands a test cannot run, and why ("…": every command that starts so; else exactly it).
CANNOT_RUN = {
    "hdh up …": "starts the hub and serves until Ctrl-C (tests/cli/test_up.py starts it);"
    " its demo users and project are made instead",
    "hdh serve …": "serves the API until stopped (tests/api test its app)",
    "hdh token …": "asks the running hub for a token (tests/hub/test_embedded_hub.py)",
    # airlock.md's reference list, after its walkthrough approved and released request 12
    "hdh egress approve 12 --as rita": "request 12 is already approved (by raj, above)",
    "hdh egress return …": "an alternative ending of request 12, released above"
    " (tests/egress/test_cli.py returns one)",
    "hdh egress reject …": "likewise (tests/egress/test_workflow.py rejects one)",
    "hdh egress withdraw …": "likewise (tests/egress/test_cli.py withdraws one)",
    "hdh egress release 12": "request 12 is already released (by raj, above)",
    "hdh k8s workspace …": "needs a cluster's API (tests/k8s/test_workspace_claims.py runs"
    " it against a stand-in API server that runs each Job's command for real)",
    "hdh template run …": "runs where the data is mounted (a sandbox, or HDH_DATA_ROOT):"
    " tests/hdh/test_templates.py runs it, also in a real sandbox",
}

#: Rewrites applied to every command before it runs: sizes that take minutes made small
#: (the same code runs), absolute example folders moved into the test's own folder.
REWRITE = [
    (r"--patients \d+", "--patients 300"),
    (r"(?<![\w/.])/tmp/", "{tmp}/"),
    (r"(?<![\w/.])/data/incoming/", "{tmp}/incoming/"),
]

#: What a document assumes was done before its first command.
BEFORE = {
    # a researcher of project `study` (with a permit) and two reviewers; request 12 of the
    # walkthrough is the one submitted here (see REWRITE)
    "airlock.md": [
        "hdh init",
        "hdh data synth --patients 300 --seed 7 --out /tmp/extract --raw",
        "hdh data ingest /tmp/extract --dataset snds",
        "hdh user add alice --role researcher",
        "hdh user add rita --role reviewer",
        "hdh user add raj --role reviewer",
        "hdh project create study --title 'Table 2' --purpose 'Admissions by region'",
        "hdh project add-member study alice",
        "hdh permit grant study --member alice --dataset snds --days 30",
        "hdh egress submit outputs/table2.csv --supporting outputs/table2_counts.csv"
        " --code analysis.ipynb --as alice --project study --title 'Table 2'",
    ],
}

#: Rewrites of one document's commands.
REWRITE_IN = {"airlock.md": [(r"^(hdh egress [\w-]+ )12\b", r"\g<1>1")]}

#: Standard input of commands that prompt.
INPUT = {"hdh user passwd alice": "alice-password\nalice-password\n"}

TABLE2 = "region,sex,count\nNord,F,40\nNord,M,4\nSud,F,55\nSud,M,38\n"
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
#: Files the examples name, made in the working folder (and the workspace of project
#: `study`) before a document's commands run.
FILES = {
    "table.csv": "group,count\nA,30\nB,230\n",
    "counts.csv": "group,count\nA,30\nB,230\n",
    "outputs/table2.csv": TABLE2,
    "outputs/table2_counts.csv": TABLE2,
    "analysis.ipynb": NOTEBOOK,
}

#: Expected exit status when not 0.
EXIT = {
    # the walkthrough's output holds a count of 4: the check fails it, as the doc shows
    "hdh egress check outputs/table2.csv …": 1,
    # no SMTP server in a test: a one-line "e-mail is off" (tests/egress/test_notify.py mails)
    "hdh egress send-mail …": 1,
}

PLACEHOLDERS = {"FILE", "NAME", "USER", "REASON", "PATH", "SLUG", "ROLE", "TABLE", "REQUEST_ID"}


@dataclass(frozen=True)
class Shown:
    doc: str
    line: int
    text: str  # as shown, continuation lines joined
    stdin: str | None = None

    @property
    def args(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def synopsis(self) -> bool:
        return any(re.search(r"[\[\]|…]|\.\.\.|^<.*>$", a) or a in PLACEHOLDERS for a in self.args)

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def shown(doc: Path) -> list[Shown]:
    """The ``hdh`` commands of ``doc``'s bash and console code blocks, in order."""
    found: list[Shown] = []
    lines = doc.read_text("utf-8").splitlines()
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, 1):
        if raw.startswith("```"):
            fence = None if fence is not None else (raw[3:].strip() or "text")
            continue
        if fence not in ("bash", "sh", "shell", "console", "text"):
            continue
        text = raw.strip()
        if fence == "text" and not (text.startswith("hdh ") and Shown("", 0, text).synopsis):
            continue  # untyped blocks: output and diagrams, but usage lines are checked
        if pending is not None:
            start, text = pending[0], pending[1] + " " + text
        elif fence == "console":
            if not text.startswith("$ "):
                continue
            start, text = number, text[2:]
        else:
            start = number
        if text.endswith("\\"):
            pending = (start, text[:-1].rstrip())
            continue
        pending = None
        piped = re.match(r"echo (\S+) \| (hdh\b.*)", text)
        if piped:
            found.append(Shown(doc.name, start, piped.group(2), piped.group(1) + "\n"))
        elif re.match(r"hdh\b", text):
            # `hdh … | kubectl apply -f -`: hdh's part runs; the other program is not here
            into = re.match(r"(hdh\b.*?)\s+\|\s+(?:kubectl|jq|head|less|tee)\b", text)
            found.append(Shown(doc.name, start, into.group(1) if into else text))
    return found


def _is(cmd: Shown, pattern: str) -> bool:
    """``cmd`` is ``pattern`` (words compared), or starts with it if it ends with "…"."""
    words = shlex.split(pattern.removesuffix("…"))
    return cmd.args[: len(words)] == words if pattern.endswith("…") else cmd.args == words


def _why_not(cmd: Shown) -> str | None:
    return next((why for pattern, why in CANNOT_RUN.items() if _is(cmd, pattern)), None)


def _make_demo_users_and_project(runner: CliRunner, env: dict[str, str]) -> None:
    """What ``hdh up`` sets up before it starts the hub: the demo users and project."""
    from jupyterlab_hdh.cli import demo
    from jupyterlab_hdh.context import open_installation
    from jupyterlab_hdh.paths import DataDir

    hub = open_installation(DataDir.resolve(Path(env["HDH_DATA_DIR"])))
    try:
        demo._demo_credentials(hub)
        demo._demo_project(hub)
    finally:
        hub.close()


def _check_synopsis(runner: CliRunner, cmd: Shown) -> None:
    path: list[str] = []
    command: click.Command = main
    for word in cmd.args[1:]:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            break
        path.append(word)
        command = sub
    assert path, f"{cmd}: no such command"
    result = runner.invoke(main, [*path, "--help"])
    assert result.exit_code == 0, f"{cmd}: {result.output}"
    for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", cmd.text):
        assert option in result.output, f"{cmd}: `hdh {' '.join(path)}` has no {option}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_shown_works_as_shown(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = shown(doc)
    if not commands:
        pytest.skip(f"{doc.name} shows no hdh command")
    work = tmp_path / "work"
    monkeypatch.chdir(tmp_path)
    for folder in (work, tmp_path / "hdh" / "workspaces" / "study"):
        for name, content in FILES.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content, "utf-8")
    monkeypatch.chdir(work)
    env = {"HDH_DATA_DIR": str(tmp_path / "hdh"), "HDH_STORE_URL": ""}
    runner = CliRunner()
    failures: list[str] = []
    before = [Shown(f"BEFORE[{doc.name!r}]", 0, c) for c in BEFORE.get(doc.name, [])]
    for cmd in before + commands:
        if cmd.synopsis:
            try:
                _check_synopsis(runner, cmd)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
            continue
        if _why_not(cmd) is not None:
            if cmd.args[:2] == ["hdh", "up"]:
                _make_demo_users_and_project(runner, env)
            continue
        text = cmd.text
        for pattern, replacement in REWRITE + REWRITE_IN.get(doc.name, []):
            text = re.sub(pattern, replacement.replace("{tmp}", str(tmp_path)), text)
        args = shlex.split(text, comments=True)[1:]
        stdin = cmd.stdin if cmd.stdin is not None else INPUT.get(cmd.text.split("#")[0].strip())
        result = runner.invoke(main, args, input=stdin, env=env)
        expected = next((code for pattern, code in EXIT.items() if _is(cmd, pattern)), 0)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        if crashed or "Traceback" in result.output or result.exit_code != expected:
            why = repr(result.exception) if crashed else result.output.strip()[-300:]
            failures.append(f"{cmd} → exit {result.exit_code} (expected {expected}): {why}")
    assert not failures, "\n".join(failures)


def test_every_document_is_read() -> None:
    """The extraction itself: the README's block, continuation lines, piped input."""
    readme = shown(ROOT / "README.md")
    assert any(c.text.startswith("hdh data ingest") for c in readme)
    assert any(c.stdin for c in readme)  # echo … | hdh optout add
    data = {c.text for c in shown(ROOT / "docs" / "data.md")}
    assert any(t.startswith("hdh data ingest") and "--contact" in t for t in data)
    assert all(_why_not(Shown("x", 1, c.removesuffix("…") + " x")) for c in CANNOT_RUN if "…" in c)
