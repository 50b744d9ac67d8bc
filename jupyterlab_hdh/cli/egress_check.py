"""``hdh egress check FILE...``: the automated disclosure checks, offline, as JSON.

The thresholds are those of ``--config FILE`` if given, else those of the installation when a
data directory is named (``hdh --data-dir D`` or ``HDH_DATA_DIR``: the ``[checks]`` table of
``D/airlock.toml``, as the airlock applies them to a submitted request), else, in a sandbox,
the installation's through the API bridge (the same ``[checks]``), else the defaults.

Exit codes (:data:`EXIT_CODES`): 0 every file passes, 1 a file fails, 2 usage error (click's),
3 bad input (missing file, bad configuration, no such data directory), 4 a file needs review
(and none fails).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from hdh.disclosure.config import CheckConfig, CheckError
from hdh.disclosure.gate import check_files
from hdh.disclosure.report import CheckInput

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_REVIEW = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_PASS: "every file passes",
    EXIT_FAIL: "a file fails",
    EXIT_USAGE: "usage error",
    EXIT_BAD_INPUT: "bad input (missing file, bad configuration, no such data directory)",
    EXIT_REVIEW: "a file needs review and none fails",
}
_EXIT_HELP = "\b\nExit codes:\n" + "\n".join(f"  {k} {v}" for k, v in EXIT_CODES.items())


def _installation_checks() -> CheckConfig | None:
    """In a sandbox: the installation's thresholds, through the API bridge (None elsewhere)."""
    from hdh import _bridge

    answer = _bridge.get("/api/bridge/egress/checks")
    if not isinstance(answer, dict) or not isinstance(answer.get("checks"), dict):
        return None
    return CheckConfig.from_dict(answer["checks"], source="the installation's checks (bridge)")


def _config(ctx: click.Context, config_path: Path | None) -> CheckConfig:
    """``--config``, else the named installation's ``[checks]``, else (in a sandbox) the
    installation's through the API bridge, else the defaults."""
    from jupyterlab_hdh.paths import DATA_DIR_ENV, DataDir

    if config_path is not None:
        return CheckConfig.load(config_path)
    root = ctx.find_root()
    if root.params.get("data_dir") is None and not os.environ.get(DATA_DIR_ENV):
        return _installation_checks() or CheckConfig()
    obj = root.obj if isinstance(root.obj, dict) else {}
    data_dir = obj.get("data_dir") or DataDir.resolve()
    if not data_dir.root.is_dir():
        raise CheckError(f"no data directory {data_dir.root}")
    from jupyterlab_hdh.egress.settings import AirlockConfigError, load_settings

    try:
        return load_settings(data_dir).checks
    except AirlockConfigError as exc:
        raise CheckError(str(exc)) from None


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML file of thresholds (see docs/egress-checks.md); default: the [checks] of"
    " <data dir>/airlock.toml when hdh is given --data-dir or HDH_DATA_DIR; in a sandbox the"
    " installation's (through the API bridge); else the defaults.",
)
@click.option(
    "--role",
    type=click.Choice(["output", "supporting"]),
    default="output",
    show_default=True,
    help="Role of the FILES (add evidence with --supporting).",
)
@click.option(
    "--supporting",
    "supporting",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A supporting file (ACRO results.json, .sdc.json, counts, SACRO-ML report).",
)
@click.option(
    "--earlier",
    "earlier",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A table this project released earlier (differencing check).",
)
@click.pass_context
def check_command(
    ctx: click.Context,
    files: tuple[Path, ...],
    config_path: Path | None,
    role: str,
    supporting: tuple[Path, ...],
    earlier: tuple[Path, ...],
) -> None:
    try:
        config = _config(ctx, config_path)
        for p in (*files, *supporting, *earlier):
            if not p.is_file():
                raise CheckError(f"{p}: no such regular file")
    except CheckError as exc:
        click.echo(json.dumps({"error": str(exc)}), err=True)
        sys.exit(EXIT_BAD_INPUT)
    inputs = [CheckInput(p, str(p), role) for p in files]
    inputs += [CheckInput(p, str(p), "supporting") for p in supporting]
    reports = check_files(
        inputs, config=config, earlier_releases=[CheckInput(p, str(p), "output") for p in earlier]
    )
    statuses = {r.status for r in reports}
    overall = "fail" if "fail" in statuses else "review" if "review" in statuses else "pass"
    click.echo(
        json.dumps(
            {"status": overall, "files": [r.to_dict() for r in reports]},
            indent=2,
            ensure_ascii=False,
        )
    )
    sys.exit({"pass": EXIT_PASS, "fail": EXIT_FAIL, "review": EXIT_REVIEW}[overall])


check_command.help = (
    "Run the disclosure checks on FILE... and print one JSON report per file.\n\n" + _EXIT_HELP
)
