"""``hdh template list`` / ``hdh template run``: the template studies (:mod:`hdh.templates`).

Runs where the data is: a sandbox terminal, or any machine with ``HDH_DATA_ROOT`` set. In a
sandbox, ``run`` then opens a draft export request with the study's tables.
"""

from __future__ import annotations

from pathlib import Path

import click

from jupyterlab_hdh.cli.common import HdhGroup, emit, say


@click.group(cls=HdhGroup)
def template() -> None:
    """Template studies: parameterised notebooks run with papermill."""


@template.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text")
def template_list(as_json: bool) -> None:
    """The templates, their description and parameters (with defaults)."""
    from hdh import templates

    found = templates.templates()
    if as_json:
        emit(
            [
                {
                    "name": t.name,
                    "title": t.title,
                    "description": t.description,
                    "parameters": {
                        p.name: {"type": p.type, "default": p.default, "help": p.help}
                        for p in t.parameters.values()
                    },
                }
                for t in found
            ]
        )
        return
    for t in found:
        click.echo(f"{t.name}: {t.title}")
        if t.description:
            click.echo(f"    {t.description}")
        for p in t.parameters.values():
            click.echo(f"    -p {p.name} ({p.type}, default {p.default})  {p.help}".rstrip())


@template.command("run")
@click.argument("name")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="A new folder for the executed notebook, report.html, headline.json and tables",
)
@click.option(
    "-p",
    "--parameter",
    "params",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="A parameter of the template (see hdh template list); repeat for several",
)
@click.option(
    "--export/--no-export",
    default=None,
    help="Open a draft export request with the outputs (default: when in a sandbox)",
)
def template_run(
    name: str, output: Path, params: tuple[tuple[str, str], ...], export: bool | None
) -> None:
    """Run template NAME into the new folder OUTPUT; print its headline numbers as JSON."""
    from hdh import templates

    given = dict(params)
    if len(given) != len(params):
        raise click.UsageError("a parameter is given twice")
    say(f"running template {name} into {output} ...")
    result = templates.run(name, output, given, export=export, progress=False)
    say(
        f"wrote {result.notebook.name}, {result.report.name}, headline.json and "
        f"{len(result.tables)} table(s) into {result.output}"
    )
    if result.request_id is not None:
        say(f"opened draft export request #{result.request_id} with the tables")
    emit(result.headline)
