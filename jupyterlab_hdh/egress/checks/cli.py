"""``hdh egress check FILE...``: the automated disclosure checks, offline, as JSON.

Exit code: 0 every file passes, 1 any file fails, 2 any file needs review (and none fails),
3 bad input (missing file, bad configuration).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import CheckConfig, CheckError
from .gate import check_files
from .report import CheckInput

EXIT_PASS, EXIT_FAIL, EXIT_REVIEW, EXIT_BAD_INPUT = 0, 1, 2, 3


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML file of thresholds (see docs/egress-checks.md).",
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
def check_command(
    files: tuple[Path, ...],
    config_path: Path | None,
    role: str,
    supporting: tuple[Path, ...],
    earlier: tuple[Path, ...],
) -> None:
    """Run the disclosure checks on FILE... and print one JSON report per file."""
    try:
        config = CheckConfig.load(config_path)
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
