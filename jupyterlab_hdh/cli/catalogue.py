"""``hdh catalogue ...``: search, dataset summaries, data dictionaries, the DCAT export."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from jupyterlab_hdh.cli.common import HdhGroup
from jupyterlab_hdh.cli.common import emit as _emit
from jupyterlab_hdh.cli.common import say as _say
from jupyterlab_hdh.cli_context import open_installation

# --- catalogue --------------------------------------------------------------------------------


@click.group(cls=HdhGroup)
def catalogue() -> None:
    """Browse and export the catalogue."""


@catalogue.command("search")
@click.argument("query")
@click.option(
    "--limit", type=click.IntRange(1, 200), default=20, show_default=True, help="Hits per page"
)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def catalogue_search(ctx: click.Context, query: str, limit: int, page: int, as_json: bool) -> None:
    """Full-text search across datasets, tables and variables, the best first, page by page."""
    import shlex

    from jupyterlab_hdh.catalogue.manager import records
    from jupyterlab_hdh.catalogue.search import SearchIndex

    with open_installation(ctx).sessions() as s:
        index = SearchIndex(records(s))
    try:
        found = index.page(query, limit, (page - 1) * limit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="QUERY") from None
    if page > 1 and not found.hits and found.total:
        pages = -(-found.total // limit)
        raise click.BadParameter(
            f"page {page} is past the last: {found.total} matches make {pages}"
            f" page{'s' if pages > 1 else ''} of {limit}",
            param_hint="--page",
        )
    if as_json:
        _emit([asdict(h) for h in found.hits])
    elif not found.hits:
        click.echo(f"no match for {query!r}")
    else:
        for h in found.hits:
            where = ".".join(p for p in (f"{h.dataset}/{h.version}", h.table, h.variable) if p)
            click.echo(f"{h.kind:<8} {where:<45} {h.snippet}")
    if found.total > len(found.hits):
        note = f"showing {found.offset + 1}–{found.offset + len(found.hits)} of {found.total}"
        if found.more:
            again = ["hdh", "catalogue", "search", query]
            again += [*(["--limit", str(limit)] if limit != 20 else []), "--page", str(page + 1)]
            note += f"; next: {shlex.join(again)}"
        click.echo(note, err=as_json)  # --json: stdout stays one JSON document


def _record_summary(record: Any, versions: list[dict[str, Any]]) -> list[str]:
    """A dataset version's record in a screenful: what ``hdh catalogue show`` prints."""
    import textwrap

    lines = [f"{record.name} {record.version} — {record.title}"]
    lines += textwrap.wrap(record.description, 100) or [""]
    facts = [f"access rights: {record.access_rights}"]
    facts.append("synthetic data" if record.synthetic else "real data")
    facts.append(f"publisher: {record.publisher.name} <{record.publisher.email}>")
    lines += ["", " · ".join(facts)]
    if record.temporal_start or record.temporal_end:
        lines.append(f"coverage: {record.temporal_start or '?'} to {record.temporal_end or '?'}")
    if record.population:
        lines.append(f"population: {record.population}")
    size = [f"{len(record.tables)} tables"]
    if record.records is not None:
        size.append(f"{record.records:,} records")
    if record.individuals is not None:
        size.append(f"{record.individuals:,} individuals")
    lines.append("size: " + ", ".join(size))
    if record.quality is not None:
        lines.append(
            f"quality checks: {record.quality.passed} passed, {record.quality.failed} failed"
        )
    if record.keywords:
        lines.append("keywords: " + ", ".join(record.keywords))
    lines.append("versions: " + ", ".join(f"{v['version']} ({v['status']})" for v in versions))
    lines += ["", f"tables ({len(record.tables)}):"]
    width = max((len(t.name) for t in record.tables), default=0)
    for t in record.tables:
        rows = "? rows" if t.rows is None else f"{t.rows:,} row{'' if t.rows == 1 else 's'}"
        lines.append(
            f"  {t.name:<{width}}  {rows:>14}  {len(t.columns):>3} columns  {t.title}".rstrip()
        )
    lines += [
        "",
        f"the full record: hdh catalogue show {record.name} --json;"
        f" a table's columns: hdh catalogue dictionary {record.name} TABLE",
    ]
    return lines


@catalogue.command("show")
@click.argument("name")
@click.option("--version", default=None, help="v1, v2… (default: current)")
@click.option("--json", "as_json", is_flag=True, help="The whole catalogue record as JSON")
@click.pass_context
def catalogue_show(ctx: click.Context, name: str, version: str | None, as_json: bool) -> None:
    """Summarise a dataset's catalogue record (--json: the whole record)."""
    from jupyterlab_hdh.catalogue import manager

    with open_installation(ctx).sessions() as s:
        record = manager.get_record(s, name, version)
        versions = manager.versions(s, name)
    if as_json:
        _emit(record.model_dump(mode="json"))
        return
    for line in _record_summary(record, versions):
        click.echo(line)


@catalogue.command("dictionary")
@click.argument("name")
@click.argument("table")
@click.option("--version", default=None)
@click.option("--json", "as_json", is_flag=True, help="The table's record as JSON")
@click.pass_context
def catalogue_dictionary(
    ctx: click.Context, name: str, table: str, version: str | None, as_json: bool
) -> None:
    """Print a table's data dictionary as CSV (csv_format: how a CSV file writes each column)."""
    from jupyterlab_hdh.catalogue import manager
    from jupyterlab_hdh.catalogue.dictionary import dictionary_csv

    with open_installation(ctx).sessions() as s:
        record = manager.get_record(s, name, version)
    try:
        found = record.table(table)
    except KeyError:
        raise click.ClickException(f"{name} {record.version} has no table {table!r}") from None
    if as_json:
        _emit(found.model_dump(mode="json"))
    else:
        click.echo(dictionary_csv(found), nl=False)


@catalogue.command("export-dcat")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout)",
)
@click.option(
    "--base-url",
    default="http://127.0.0.1:8001",
    show_default=True,
    help="Public base URL of the catalogue: the control plane's (`hdh serve`; `hdh up` runs it"
    " on its PORT+1), which serves every link of the export",
)
@click.option(
    "--validate/--no-validate",
    default=False,
    help="Check the export against the DCAT-AP 3.0.1 SHACL shapes",
)
@click.pass_context
def export_dcat(ctx: click.Context, out: Path | None, base_url: str, validate: bool) -> None:
    """Export the catalogue as DCAT-AP JSON-LD."""
    from jupyterlab_hdh.catalogue.dcat import validate_dcat
    from jupyterlab_hdh.catalogue.manager import Catalogue

    with open_installation(ctx).sessions() as s:
        doc = Catalogue().dcat(s, base_url)
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    if validate:
        conforms, report = validate_dcat(doc)
        if not conforms:
            raise click.ClickException(f"the export does not conform to DCAT-AP 3.0.1:\n{report}")
        _say("conforms to DCAT-AP 3.0.1 (SHACL)")
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", "utf-8")
        _say(f"wrote {out}")
