"""``hdh linkage ...``: link a study's own cohort to the hub's pseudonyms, for one permit.

``run`` reads the cohort file (study subject numbers and NIR), writes the linked table for
the permit's sandboxes (``/data/linkage/<name>.parquet``), prints the match report and
deletes the file; ``list`` shows the linkages done. See :mod:`jupyterlab_hdh.linkage`.
"""

from __future__ import annotations

from pathlib import Path

import click

from jupyterlab_hdh.cli.common import HdhGroup
from jupyterlab_hdh.cli.common import admin as _admin
from jupyterlab_hdh.cli.common import emit as _emit
from jupyterlab_hdh.cli_context import open_installation


@click.group(cls=HdhGroup)
def linkage() -> None:
    """Link a study's cohort (subject numbers + NIR) to the hub's pseudonyms."""


@linkage.command("run")
@click.option("--permit", "permit_id", type=int, required=True, help="The active permit")
@click.option("--name", required=True, help="The linked table's name (<name>.parquet)")
@click.option(
    "--file",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The cohort CSV (UTF-8); deleted once linked",
)
@click.option("--id-column", default="nir", show_default=True, help="The NIR column")
@click.option(
    "--subject-column", default="subject", show_default=True, help="The subject number column"
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def run(
    ctx: click.Context,
    permit_id: int,
    name: str,
    source: Path,
    id_column: str,
    subject_column: str,
    as_json: bool,
) -> None:
    """Link the cohort FILE for permit N: its sandboxes see /data/linkage/NAME.parquet.

    Every line is checked first: any error (line and column named) links nothing and keeps
    the file. Once the link is recorded, the file (the direct identifiers) is deleted."""
    from jupyterlab_hdh.linkage import describe, run_linkage

    hub = open_installation(ctx)
    with hub.transaction() as s:
        report = run_linkage(
            s,
            hub.data_dir,
            permit_id,
            name,
            source,
            keys=hub.keys,
            actor=_admin(),
            id_column=id_column,
            subject_column=subject_column,
        )
    if as_json:
        _emit(
            {
                "id": report.id,
                "permit": report.permit,
                "project": report.project,
                "name": report.name,
                "table": str(report.table),
                "input_sha256": report.input_sha256,
                **report.as_json(),
                "source_deleted": report.source_deleted,
            }
        )
    else:
        click.echo(
            f"linkage #{report.id} {report.name!r} for permit #{report.permit}"
            f" (project {report.project}), against {', '.join(report.datasets)}"
        )
        click.echo(f"{'quality':<12}{'rows':>8}{'matched':>9}{'rate':>9}")
        for quality, rows, matched, rate in describe(report.classes):
            click.echo(f"{quality:<12}{rows:>8}{matched:>9}{rate:>9.1%}")
        click.echo(f"{'total':<12}{report.rows:>8}{report.matched:>9}{report.match_rate:>9.1%}")
        click.echo(
            f"the project's sandboxes of permit #{report.permit} read it at"
            f" /data/linkage/{report.name}.parquet (subject, pseudonym, quality; no identifier)"
        )
    if report.source_deleted:
        click.echo(f"{report.source} (the direct identifiers) was deleted", err=as_json)
    else:
        raise click.ClickException(
            f"linked, but {report.source} could not be deleted ({report.source_error}):"
            " delete it yourself, it holds direct identifiers"
        )


@linkage.command("list")
@click.option("--permit", "permit_id", type=int, default=None, help="Only this permit's")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_linkages(ctx: click.Context, permit_id: int | None, as_json: bool) -> None:
    """The linkages done (all, or one permit's)."""
    from jupyterlab_hdh.linkage import linkage_view, linkages

    hub = open_installation(ctx)
    with hub.sessions() as s:
        views = [linkage_view(e, hub.data_dir) for e in linkages(s, permit_id)]
    if as_json:
        _emit(views)
        return
    if not views:
        click.echo("no linkage yet: `hdh linkage run --permit N --name NAME --file COHORT.csv`")
    for v in views:
        rate = v["report"].get("match_rate", 0.0)
        click.echo(
            f"#{v['id']}\tpermit #{v['permit']} ({v['project']})\t{v['name']}\t"
            f"{v['matched']}/{v['rows']} matched ({rate:.1%})\t{v['created_at']} by"
            f" {v['created_by']}"
        )
