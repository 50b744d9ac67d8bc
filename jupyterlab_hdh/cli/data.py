"""``hdh data ...`` and ``hdh optout ...``: synthetic extracts, ingestion, the opt-out register."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from jupyterlab_hdh.cli.common import HdhGroup
from jupyterlab_hdh.cli.common import emit as _emit
from jupyterlab_hdh.cli.common import say as _say
from jupyterlab_hdh.cli_context import actor as _actor
from jupyterlab_hdh.cli_context import open_installation

# --- data -------------------------------------------------------------------------------------


@click.group(cls=HdhGroup)
def data() -> None:
    """Generate, ingest and list datasets."""


@data.command()
@click.option(
    "--patients", type=click.IntRange(1, 50_000_000), required=True, help="Number of patients"
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same bytes)"
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (must be empty or absent)",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Emit direct identifiers (NIR-like, birth date, sex) for ingestion to pseudonymise",
)
@click.option("--start-year", type=click.IntRange(2010, 2030), default=2019, show_default=True)
@click.option("--end-year", type=click.IntRange(2010, 2030), default=2023, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar")
def synth(
    patients: int, seed: int, out: Path, raw: bool, start_year: int, end_year: int, quiet: bool
) -> None:
    """Generate a synthetic SNDS-shaped extract as Parquet files."""
    from jupyterlab_hdh.data.synth import generate

    if end_year < start_year:
        raise click.BadParameter("--end-year is before --start-year")
    try:
        manifest = generate(
            out,
            patients=patients,
            seed=seed,
            raw=raw,
            start_year=start_year,
            end_year=end_year,
            progress=not quiet,
        )
    except ValueError as exc:  # refused arguments or a non-empty output folder
        raise click.ClickException(str(exc)) from None
    rows = sum(t["rows"] for t in manifest["tables"].values())
    click.echo(f"wrote {len(manifest['tables'])} tables, {rows:,} rows to {out}")


@data.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="Dataset name (lowercase letters, digits, - and _)")
@click.option(
    "--identifiers",
    type=click.Choice(["auto", "raw", "pseudonymised"]),
    default="auto",
    show_default=True,
    help="Identifier columns hold direct identifiers (raw) or source pseudonyms;"
    " auto reads extract.json",
)
@click.option("--title")
@click.option("--description")
@click.option("--controller", help="Data controller's name")
@click.option("--contact", help="Data controller's contact e-mail")
@click.option("--population", help="Population covered, in words")
@click.option(
    "--synthetic/--real",
    default=None,
    help="Declare the data synthetic or real (default: from extract.json)",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    source: Path,
    dataset: str,
    identifiers: str,
    synthetic: bool | None,
    **text: str | None,
) -> None:
    """Validate, pseudonymise and publish SOURCE as the next version of a dataset."""
    from jupyterlab_hdh.ingestion import DatasetDescription
    from jupyterlab_hdh.ingestion import ingest as run_ingest

    desc = DatasetDescription(synthetic=synthetic)
    for key, value in text.items():
        if value is not None:
            setattr(desc, key, value)
    version = run_ingest(
        open_installation(ctx),
        source,
        dataset,
        actor=_actor(),
        description=desc,
        identifiers=identifiers,
        progress=_say,
    )
    summary = version.quality.get("summary", {})
    click.echo(
        f"{dataset} {version.label}: {version.record['records']:,} records,"
        f" {version.record['individuals']:,} individuals;"
        f" quality: {summary.get('passed', 0)} passed,"
        f" {summary.get('failed', 0)} failed"
    )


@data.command("reapply-optout")
@click.option("--dataset", default=None, help="Only this dataset (default: all current datasets)")
@click.pass_context
def reapply_optout(ctx: click.Context, dataset: str | None) -> None:
    """Issue new versions without the persons who opted out since."""
    from jupyterlab_hdh import linkage
    from jupyterlab_hdh.governance import projects
    from jupyterlab_hdh.ingestion import reapply_optout as run

    hub = open_installation(ctx)
    for name, outcome in run(hub, actor=_actor(), dataset=dataset, progress=_say):
        click.echo(f"{name}: {outcome}")
    with hub.transaction() as s:
        moved = projects.follow_optout_versions(s, actor=projects.Actor.administrator(_actor()))
        carried = linkage.follow(
            s, hub.data_dir, moved, actor=projects.Actor.administrator(_actor())
        )
    for old_id, new_id, what in moved:
        click.echo(f"permit #{old_id}: " + (f"re-issued as #{new_id}, {what}" if new_id else what))
    for new_id, name in carried:
        click.echo(f"permit #{new_id}: linked table {name} carried, without those who objected")


@data.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_datasets(ctx: click.Context, as_json: bool) -> None:
    """List datasets and their current versions."""
    from jupyterlab_hdh.catalogue import manager

    with open_installation(ctx).sessions() as s:
        records = manager.records(s)
    if as_json:
        _emit([r.model_dump(mode="json", exclude={"tables"}) for r in records])
        return
    if not records:
        click.echo("no dataset yet: `hdh data ingest SOURCE --dataset NAME`")
    for r in records:
        click.echo(
            f"{r.name} {r.version}\t{r.records:,} records\t{r.individuals:,} individuals\t{r.title}"
        )


@data.command()
@click.pass_context
def recover(ctx: click.Context) -> None:
    """Remove leftovers of an interrupted ingestion (staging folders, unrecorded versions)."""
    from jupyterlab_hdh.ingestion import recover as run

    removed = run(open_installation(ctx))
    click.echo("\n".join(f"removed {p}" for p in removed) or "nothing to recover")


# --- opt-out ----------------------------------------------------------------------------------


@click.group(cls=HdhGroup)
def optout() -> None:
    """The opt-out register (objections to data reuse)."""


@optout.command("add")
@click.argument("identifier", required=False)
@click.pass_context
def optout_add(ctx: click.Context, identifier: str | None) -> None:
    """Register IDENTIFIER's objection; only its pseudonym is stored.

    Without IDENTIFIER (or with -), identifiers are read from standard input,
    one per line (blank lines skipped), so that they stay out of the shell
    history and the process list. Each line is reported (never echoed); if any
    line is invalid, none is registered.
    """
    from jupyterlab_hdh.data import optout as register

    if identifier not in (None, "-"):
        lines = [(0, identifier or "")]
    elif sys.stdin.isatty():
        lines = [(0, click.prompt("Identifier", hide_input=True))]
    else:
        lines = [(n, text) for n, text in enumerate(sys.stdin, 1) if text.strip()]
        if not lines:
            raise click.ClickException("no identifier on standard input: nothing was registered")
    if len(lines) > 1:  # every line is checked before anything is written
        for n, text in lines:
            try:
                register.check_raw_identifier(text)
            except register.OptOutError as exc:
                raise click.ClickException(f"line {n}: {exc}; nothing was registered") from None
    hub = open_installation(ctx)
    with hub.transaction() as s:
        outcomes = [(n, *register.add(s, hub.keys, text, actor=_actor())) for n, text in lines]
    hint = "run `hdh data reapply-optout` to remove {} from existing datasets"
    if len(outcomes) == 1:
        _n, reg_id, added = outcomes[0]
        state = "registered" if added else "was already registered"
        click.echo(f"opt-out #{reg_id} {state}; " + hint.format("this person"))
        return
    for n, reg_id, added in outcomes:
        state = "registered" if added else "was already registered"
        click.echo(f"line {n}: opt-out #{reg_id} {state}")
    new = sum(added for _n, _id, added in outcomes)
    click.echo(
        f"{new} registered, {len(outcomes) - new} already registered; "
        + hint.format("these persons")
    )


@optout.command("count")
@click.pass_context
def optout_count(ctx: click.Context) -> None:
    """How many objections the register holds."""
    from jupyterlab_hdh.data import optout as register

    with open_installation(ctx).sessions() as s:
        click.echo(register.count(s))
