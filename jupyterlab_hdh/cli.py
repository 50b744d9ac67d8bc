"""The ``hdh`` command: every operation of the platform from a terminal.

Owns argument parsing and turning domain errors into one clear line on
stderr (exit status 1) — never a stack trace. All commands work on one data
directory (``--data-dir`` or ``HDH_DATA_DIR``, default ``~/.hdh``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from jupyterlab_hdh import __version__
from jupyterlab_hdh.cli_context import actor as _actor
from jupyterlab_hdh.cli_context import data_dir as _data_dir
from jupyterlab_hdh.cli_context import open_hub as _hub
from jupyterlab_hdh.paths import DataDir

DEMO_DATASET = "demo-snds"
DEMO_USERS = (
    ("admin", "admin"),
    ("controller", "data_controller"),
    ("alice", "researcher"),
    ("bob", "reviewer"),
    ("carol", "committee"),
)
DEMO_PROJECT = "demo"


def _known_errors() -> tuple[type[BaseException], ...]:
    """Errors printed as one line (``Error: ...``), not a traceback: HDH's error vocabulary."""
    from jupyterlab_hdh.errors import HdhError

    return (HdhError,)


class HdhGroup(click.Group):
    """A group whose commands report domain errors as one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _known_errors() as exc:
            raise click.ClickException(str(exc)) from None


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(cls=HdhGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (store, keys, datasets, outbox). Default: $HDH_DATA_DIR or ~/.hdh",
)
@click.option(
    "--store-url",
    default=None,
    help="SQLAlchemy URL of the store (default: SQLite in the data directory; or $HDH_STORE_URL)",
)
@click.version_option(__version__, prog_name="hdh")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, store_url: str | None) -> None:
    """HDH, the open Health Data Hub."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = DataDir.resolve(data_dir, store_url)
    root = ctx.obj["data_dir"].root
    blocking = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():  # a file where a folder must go
        what = f"{blocking} is a file, not a folder"
        if data_dir is not None:
            raise click.BadParameter(what, param_hint="'--data-dir'")
        raise click.UsageError(f"$HDH_DATA_DIR: {what}")
    if ctx.obj["data_dir"].store_url_override is not None:  # checked before any command uses it
        from jupyterlab_hdh.store.db import StoreError, sqlalchemy_url

        try:
            sqlalchemy_url(ctx.obj["data_dir"].store_url_override)
        except StoreError as exc:
            if store_url:
                raise click.BadParameter(str(exc), param_hint="'--store-url'") from None
            raise click.UsageError(f"$HDH_STORE_URL: {exc}") from None


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create (or upgrade) the data directory, the keys and the store."""
    from jupyterlab_hdh.context import init_hub

    hub, done = init_hub(_data_dir(ctx), actor=_actor())
    hub.close()
    for line in done or ["already initialised: nothing to do"]:
        click.echo(line)
    click.echo(f"data directory: {_data_dir(ctx).root}")


# --- data -------------------------------------------------------------------------------------


@main.group(cls=HdhGroup)
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
        _hub(ctx),
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
    from jupyterlab_hdh.governance import projects
    from jupyterlab_hdh.ingestion import reapply_optout as run

    hub = _hub(ctx)
    for name, outcome in run(hub, actor=_actor(), dataset=dataset, progress=_say):
        click.echo(f"{name}: {outcome}")
    with hub.transaction() as s:
        moved = projects.follow_optout_versions(s, actor=projects.Actor.administrator(_actor()))
    for old_id, new_id, what in moved:
        click.echo(f"permit #{old_id}: " + (f"re-issued as #{new_id}, {what}" if new_id else what))


@data.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_datasets(ctx: click.Context, as_json: bool) -> None:
    """List datasets and their current versions."""
    from jupyterlab_hdh.catalogue import manager

    with _hub(ctx).sessions() as s:
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

    removed = run(_hub(ctx))
    click.echo("\n".join(f"removed {p}" for p in removed) or "nothing to recover")


# --- opt-out ----------------------------------------------------------------------------------


@main.group(cls=HdhGroup)
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
    hub = _hub(ctx)
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

    with _hub(ctx).sessions() as s:
        click.echo(register.count(s))


# --- catalogue --------------------------------------------------------------------------------


@main.group(cls=HdhGroup)
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

    with _hub(ctx).sessions() as s:
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

    with _hub(ctx).sessions() as s:
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

    with _hub(ctx).sessions() as s:
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

    with _hub(ctx).sessions() as s:
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


# --- audit ------------------------------------------------------------------------------------


@main.group(cls=HdhGroup)
def audit() -> None:
    """Read and verify the audit log."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Recompute the hash chain; report the first broken link (exit status 1)."""
    from jupyterlab_hdh.audit import verify

    with _hub(ctx).sessions() as s:
        result = verify(s)
    if result.ok:
        click.echo(f"audit log intact: {result.checked} events verified")
    else:
        raise click.ClickException(
            f"audit log broken at event {result.broken_seq}: {result.reason}"
            f" ({result.checked} events before it verified)"
        )


def _moment(end: bool) -> Any:
    def convert(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        from jupyterlab_hdh.audit.query import parse_moment

        if value is None:
            return None
        try:
            return parse_moment(value, end=end)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


@audit.command("log")
@click.option("--user", help="Only events by, or about, this user")
@click.option("--project", help="Only events about this project (its members, sandboxes…)")
@click.option(
    "--action",
    "actions",
    multiple=True,
    help="Only this action (user.disable) or family (permit: every permit.*); repeatable",
)
@click.option(
    "--since", callback=_moment(False), help="From this ISO date or time (UTC unless offset)"
)
@click.option(
    "--until",
    callback=_moment(True),
    help="Up to this ISO date (the whole day) or time (UTC unless offset)",
)
@click.option(
    "--after", type=click.IntRange(0), default=0, help="Only events after this sequence number"
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--oldest-first", is_flag=True, help="In chain order (the oldest first)")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line")
@click.pass_context
def audit_log(
    ctx: click.Context,
    user: str | None,
    project: str | None,
    actions: tuple[str, ...],
    since: str | None,
    until: str | None,
    after: int,
    limit: int,
    oldest_first: bool,
    as_json: bool,
) -> None:
    """Print audit events, the newest first, one per line (filters combine)."""
    from jupyterlab_hdh.audit import query

    if since is not None and until is not None and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    where = query.AuditFilter(user, project, actions, since, until, after)
    with _hub(ctx).sessions() as s:
        found = query.events(s, where, limit=limit, newest_first=not oldest_first)
        total = query.count(s, where) if len(found) == limit else len(found)
    for e in found:
        if as_json:
            click.echo(json.dumps(query.as_dict(e), ensure_ascii=False))
        else:
            details = "" if e.details == "{}" else " " + e.details
            if len(details) > 160:  # the whole event: --json
                details = details[:159] + "…"
            click.echo(f"#{e.seq} {e.ts[:19]}Z {e.actor} {e.action} {e.target}{details}")
    if not found:
        _say("no event matches")
    elif total > len(found):
        which = "oldest" if oldest_first else "newest"
        _say(f"showing the {len(found)} {which} of {total} events; --limit N to see more")


# --- users ------------------------------------------------------------------------------------


@main.group(cls=HdhGroup)
def user() -> None:
    """Users, roles and API tokens."""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["researcher", "reviewer", "committee", "data_controller", "admin"]),
    required=True,
)
@click.option("--email", help="Where the airlock's notifications are e-mailed")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, email: str | None) -> None:
    """Create a user with a role."""
    from jupyterlab_hdh.governance.accounts import check_email, create_user, set_email

    if email is not None:
        check_email(email)  # before anything is created
    with _hub(ctx).transaction() as s:
        create_user(s, name, role, actor=_actor())
        if email is not None:
            set_email(s, name, email, actor=_actor())
    click.echo(f"user {name} ({role}) created")


@user.command("email")
@click.argument("name")
@click.argument("address", required=False)
@click.option("--clear", is_flag=True, help="Forget the address (notifications stay in-app)")
@click.pass_context
def user_email(ctx: click.Context, name: str, address: str | None, clear: bool) -> None:
    """Set the address NAME's notifications are e-mailed to (or --clear it)."""
    from jupyterlab_hdh.governance.accounts import set_email

    if clear == (address is not None):
        raise click.UsageError("give an ADDRESS or --clear")
    with _hub(ctx).transaction() as s:
        set_email(s, name, address, actor=_actor())
    click.echo(f"{name}: notifications " + ("in-app only" if clear else f"e-mailed to {address}"))


@user.command("token")
@click.argument("name")
@click.pass_context
def user_token(ctx: click.Context, name: str) -> None:
    """Issue an API token for NAME (printed once; only its hash is kept)."""
    from jupyterlab_hdh.governance.accounts import get_user, issue_token

    with _hub(ctx).transaction() as s:
        token = issue_token(s, get_user(s, name), actor=_actor())
    click.echo(token)


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin (one line)")
@click.pass_context
def user_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set NAME's password for the hub's login form (only a scrypt hash is kept)."""
    from jupyterlab_hdh.governance.accounts import get_user, set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    with _hub(ctx).transaction() as s:
        set_password(s, get_user(s, name), password, actor=_actor())
    click.echo(f"password of {name} set")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def user_list(ctx: click.Context, as_json: bool) -> None:
    """List users: name, role, e-mail, active or disabled, API tokens held."""
    from jupyterlab_hdh.governance.accounts import list_users

    with _hub(ctx).sessions() as s:
        users = list_users(s)
    if as_json:
        _emit(users)
        return
    if not users:
        click.echo("no user yet: `hdh user add NAME --role ROLE`")
        return
    rows = [("NAME", "ROLE", "E-MAIL", "STATE", "TOKENS")] + [
        (u["name"], u["role"], u["email"] or "-", "disabled" if u["disabled"] else "active")
        + (str(u["tokens"]),)
        for u in users
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4])


@user.command("disable")
@click.argument("name")
@click.pass_context
def user_disable(ctx: click.Context, name: str) -> None:
    """Disable NAME: no more hub login nor API token use (both kept for `hdh user enable`)."""
    from jupyterlab_hdh.governance.accounts import set_disabled

    with _hub(ctx).transaction() as s:
        changed = set_disabled(s, name, True, actor=_actor())
    click.echo(
        f"{name} disabled: the hub's login, {name}'s API tokens and projects are refused"
        " (an open hub session ends within 5 minutes, a running sandbox at the hub's next poll)"
        if changed
        else f"{name} was already disabled"
    )


@user.command("enable")
@click.argument("name")
@click.pass_context
def user_enable(ctx: click.Context, name: str) -> None:
    """Enable NAME again after `hdh user disable`."""
    from jupyterlab_hdh.governance.accounts import set_disabled

    with _hub(ctx).transaction() as s:
        changed = set_disabled(s, name, False, actor=_actor())
    click.echo(f"{name} enabled" if changed else f"{name} was already enabled")


@user.command("revoke-tokens")
@click.argument("name")
@click.pass_context
def user_revoke_tokens(ctx: click.Context, name: str) -> None:
    """Revoke every control-plane API token of NAME (`hdh user token NAME` issues a new one)."""
    from jupyterlab_hdh.governance.accounts import revoke_tokens

    with _hub(ctx).transaction() as s:
        count = revoke_tokens(s, name, actor=_actor())
    click.echo(f"{count} API token{'' if count == 1 else 's'} of {name} revoked")


@main.command("token")
@click.argument("name")
@click.option(
    "--expires-in",
    type=click.IntRange(60, 366 * 86400),
    default=86400,
    show_default=True,
    help="Seconds the token is valid",
)
@click.pass_context
def hub_token(ctx: click.Context, name: str, expires_in: int) -> None:
    """Print a JupyterHub API token for NAME (the hub started by `hdh up` must be running)."""
    import httpx

    from jupyterlab_hdh.governance.accounts import get_user
    from jupyterlab_hdh.hub.config import HubConfigError, hub_api

    with _hub(ctx).sessions() as s:
        get_user(s, name)  # an HDH account, or a one-line error
    try:
        api, token = hub_api(_data_dir(ctx).root)
    except HubConfigError as exc:
        raise click.ClickException(str(exc)) from None
    headers = {"Authorization": f"token {token}"}
    try:
        with httpx.Client(base_url=api, headers=headers, timeout=30) as c:
            if c.get(f"/users/{name}").status_code == 404:
                c.post(f"/users/{name}").raise_for_status()
            r = c.post(
                f"/users/{name}/tokens",
                json={"note": f"hdh token ({_actor()})", "expires_in": expires_in},
            )
            r.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise click.ClickException(
            f"the hub refused: {exc.response.status_code} {exc.response.text[:200]}"
        ) from None
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the hub at {api} does not answer ({exc}): is `hdh up` running?"
        ) from None
    click.echo(r.json()["token"])


# --- projects and permits ---------------------------------------------------------------------
#
# The CLI is the operator's console: it acts as an administrator (audit actor ``cli:<login>``,
# role ``admin``). Whoever can run it can read the store and the keys anyway. The API is where
# roles are enforced per person, by bearer token.


def _admin() -> Any:
    from jupyterlab_hdh.governance.projects import Actor

    return Actor.administrator(_actor())


def _parse_expiry(expires: str | None, days: int | None) -> Any:
    from datetime import UTC, date, datetime, timedelta

    if (expires is None) == (days is None):
        raise click.UsageError("give exactly one of --expires DATE and --days N")
    if days is not None:
        return datetime.now(UTC) + timedelta(days=days)
    assert expires is not None
    try:
        if len(expires) == 10:  # a date: valid through that day (UTC)
            day = date.fromisoformat(expires)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        moment = datetime.fromisoformat(expires)
    except ValueError:
        raise click.BadParameter(
            "write a date (2027-01-31) or a date-time with its offset (2027-01-31T18:00+01:00)",
            param_hint="--expires",
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            "a date-time needs its UTC offset (…+01:00 or …Z)", param_hint="--expires"
        )
    return moment


@main.group(cls=HdhGroup)
def project() -> None:
    """Research projects and their members (acts as an administrator)."""


@project.command("create")
@click.argument("slug")
@click.option("--title", required=True, help="Short title (public register)")
@click.option("--purpose", required=True, help="Purpose of the processing (public register)")
@click.pass_context
def project_create(ctx: click.Context, slug: str, title: str, purpose: str) -> None:
    """Create project SLUG (lowercase letters, digits, '-'; the sandbox's name)."""
    from jupyterlab_hdh.governance import projects

    with _hub(ctx).transaction() as s:
        projects.create_project(s, slug, title=title, purpose=purpose, actor=_admin())
    click.echo(f"project {slug} created")


@project.command("add-member")
@click.argument("slug")
@click.argument("user_name", metavar="USER")
@click.option("--role", type=click.Choice(["member", "lead"]), default="member", show_default=True)
@click.pass_context
def project_add_member(ctx: click.Context, slug: str, user_name: str, role: str) -> None:
    """Add researcher USER to project SLUG."""
    from jupyterlab_hdh.governance import projects

    with _hub(ctx).transaction() as s:
        projects.add_member(s, slug, user_name, role=role, actor=_admin())
    click.echo(f"{user_name} added to {slug} as {role}")


@project.command("remove-member")
@click.argument("slug")
@click.argument("user_name", metavar="USER")
@click.pass_context
def project_remove_member(ctx: click.Context, slug: str, user_name: str) -> None:
    """Remove USER from project SLUG (their access ends at once)."""
    from jupyterlab_hdh.governance import projects

    with _hub(ctx).transaction() as s:
        projects.remove_member(s, slug, user_name, actor=_admin())
    click.echo(f"{user_name} removed from {slug}")


@project.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def project_list(ctx: click.Context, as_json: bool) -> None:
    """List projects, their members and the status of their latest permit."""
    from jupyterlab_hdh.governance import projects

    hub = _hub(ctx)
    with hub.sessions() as s:
        views = [projects.project_view(s, p, hub.data_dir) for p in projects.projects_of(s)]
    if as_json:
        _emit(views)
        return
    if not views:
        click.echo("no project yet: `hdh project create SLUG --title … --purpose …`")
    for v in views:
        permit = v["permits"][-1] if v["permits"] else None
        state = f"permit #{permit['id']} {permit['status']}" if permit else "no permit"
        members = ",".join(m["user"] for m in v["members"]) or "-"
        click.echo(f"{v['slug']}\t{state}\t{members}\t{v['title']}")


@project.command("show")
@click.argument("slug")
@click.pass_context
def project_show(ctx: click.Context, slug: str) -> None:
    """Print a project, its members, permits and mounts as JSON."""
    from jupyterlab_hdh.governance import projects

    hub = _hub(ctx)
    with hub.sessions() as s:
        _emit(projects.project_view(s, projects.get_project(s, slug), hub.data_dir))


@main.group(cls=HdhGroup)
def permit() -> None:
    """Permits: members + dataset versions + expiry (acts as an administrator)."""


@permit.command("grant")
@click.argument("slug")
@click.option("--member", "members", multiple=True, required=True, help="Repeatable")
@click.option(
    "--dataset", "datasets", multiple=True, required=True, help="NAME or NAME/vN; repeatable"
)
@click.option("--expires", help="Last day (UTC) it is valid, or a date-time with offset")
@click.option("--days", type=click.IntRange(1, 3660), help="Valid for N days from now")
@click.pass_context
def permit_grant(
    ctx: click.Context,
    slug: str,
    members: tuple[str, ...],
    datasets: tuple[str, ...],
    expires: str | None,
    days: int | None,
) -> None:
    """Grant a permit on project SLUG; it supersedes the project's active permit."""
    from jupyterlab_hdh.governance import projects

    expires_at = _parse_expiry(expires, days)
    hub = _hub(ctx)
    with hub.transaction() as s:
        granted = projects.grant_permit(
            s,
            slug,
            members=list(members),
            datasets=list(datasets),
            expires_at=expires_at,
            actor=_admin(),
        )
        view = projects.permit_view(granted, hub.data_dir)
    mounted = ", ".join(f"{m['dataset']}/{m['version']}" for m in view["mounts"])
    click.echo(
        f"permit #{view['id']} granted on {slug} to {', '.join(view['members'])}"
        f" for {mounted} until {view['expires_at']}"
    )


@permit.command("revoke")
@click.argument("permit_id", type=click.IntRange(1))
@click.option("--reason", required=True)
@click.pass_context
def permit_revoke(ctx: click.Context, permit_id: int, reason: str) -> None:
    """Revoke permit PERMIT_ID now (its sandboxes must stop)."""
    from jupyterlab_hdh.governance import projects

    with _hub(ctx).transaction() as s:
        projects.revoke_permit(s, permit_id, reason=reason, actor=_admin())
    click.echo(f"permit #{permit_id} revoked")


@permit.command("list")
@click.option("--project", "slug", default=None, help="Only this project's permits")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def permit_list(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List permits with their status, members and datasets."""
    from jupyterlab_hdh.governance import projects

    hub = _hub(ctx)
    with hub.sessions() as s:
        only = projects.get_project(s, slug) if slug is not None else None
        views = [projects.permit_view(p, hub.data_dir) for p in projects.permits(s, only)]
    if as_json:
        _emit(views)
        return
    if not views:
        click.echo("no permit yet")
    for v in views:
        mounted = ",".join(f"{m['dataset']}/{m['version']}" for m in v["mounts"])
        click.echo(
            f"#{v['id']}\t{v['project']}\t{v['status']}\tuntil {v['expires_at']}"
            f"\t{','.join(v['members'])}\t{mounted}"
        )


@permit.command("check")
@click.argument("user_name", metavar="USER")
@click.argument("slug")
@click.pass_context
def permit_check(ctx: click.Context, user_name: str, slug: str) -> None:
    """May USER open project SLUG now? Prints the mounts, or the reason (exit status 1)."""
    from jupyterlab_hdh.governance import projects

    hub = _hub(ctx)
    with hub.sessions() as s:
        granted = projects.active_permit(s, user_name, slug)
        view = projects.permit_view(granted, hub.data_dir)
    click.echo(f"{user_name} may open {slug}: permit #{view['id']} until {view['expires_at']}")
    for m in view["mounts"]:
        click.echo(f"{m['dataset']}/{m['version']}\t{m['path']}")


# --- servers ----------------------------------------------------------------------------------


def _serve(data_dir: DataDir, host: str, port: int) -> None:
    """Run the API; as the hub's ``hdh`` service (``hdh up``) also its web pages and bridge."""
    import uvicorn

    from jupyterlab_hdh.api.app import create_app
    from jupyterlab_hdh.api.browser import HubBrowserAuth
    from jupyterlab_hdh.api.pages import HubServers
    from jupyterlab_hdh.egress.settings import AirlockConfigError, load_settings

    try:
        load_settings(data_dir)  # a bad airlock.toml stops the start, with its reason
    except AirlockConfigError as exc:
        raise click.ClickException(str(exc)) from None
    base_url = f"http://{host}:{port}"
    token_file = os.environ.get("HDH_BRIDGE_TOKEN_FILE")
    app = create_app(
        data_dir,
        base_url=base_url,
        bridge_token=Path(token_file).read_text().strip() if token_file else None,
        browser_auth=HubBrowserAuth.from_env(),
        hub_servers=HubServers.from_env(),
    )
    click.echo(
        f"HDH control plane: {base_url}/api/docs  (catalogue: {base_url}/api/catalogue/datasets)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="The port `hdh up` gives the control plane (its hub is on 8000)",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Start the control-plane REST API on an initialised data directory."""
    from jupyterlab_hdh.context import open_hub

    open_hub(_data_dir(ctx)).close()  # fail early and clearly if not initialised
    _serve(_data_dir(ctx), host, port)


def _memory_size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """``4G``, ``512M``, ``1.5G``, ``1073741824`` or ``0`` → bytes (None: the default)."""
    from jupyterlab_hdh.units import parse_size

    if value is None:
        return None
    try:
        nbytes = parse_size(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a size: write e.g. 4G, 512M or 0 (no limit)"
        ) from None
    if 0 < nbytes < 256 * 2**20:
        raise click.BadParameter(f"{value!r} is too small for a sandbox: give at least 256M")
    return nbytes


def _demo_project(hub: Any) -> None:
    """A demo project led by alice, with a one-year permit on the demo dataset (created once)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from jupyterlab_hdh.governance import projects
    from jupyterlab_hdh.store.models import Project

    controller = projects.Actor("controller", "data_controller")
    with hub.sessions() as s:
        if s.scalar(select(Project).where(Project.slug == DEMO_PROJECT)) is not None:
            return
    with hub.transaction() as s:
        projects.create_project(
            s,
            DEMO_PROJECT,
            title="Projet de démonstration",
            purpose="Explorer l'extrait SNDS synthétique de démonstration.",
            actor=controller,
        )
        projects.add_member(s, DEMO_PROJECT, "alice", role="lead", actor=controller)
    with hub.transaction() as s:
        projects.grant_permit(
            s,
            DEMO_PROJECT,
            members=["alice"],
            datasets=[DEMO_DATASET],
            expires_at=datetime.now(UTC) + timedelta(days=365),
            actor=controller,
        )


def _demo_credentials(hub: Any) -> dict[str, dict[str, str]]:
    """Demo users, their API tokens and hub passwords, created once, kept (0600) in the data dir.

    A data directory made before local accounts existed gets passwords on its next start.
    """
    import secrets

    from jupyterlab_hdh.governance.accounts import create_user, get_user, issue_token, set_password

    path = hub.data_dir.root / "demo-credentials.json"
    creds: dict[str, dict[str, str]] = {}
    if path.exists():
        creds = json.loads(path.read_text("utf-8"))
    changed = False
    with hub.transaction() as s:
        for name, role in DEMO_USERS:
            if name not in creds:
                user_row = create_user(s, name, role, actor="hdh-up")
                creds[name] = {"role": role, "token": issue_token(s, user_row, actor="hdh-up")}
                changed = True
            if "password" not in creds[name]:
                creds[name]["password"] = secrets.token_urlsafe(9)
                set_password(s, get_user(s, name), creds[name]["password"], actor="hdh-up")
                changed = True
    if changed:  # after the commit: the file never names a password the store lacks
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f, indent=1)
        os.replace(tmp, path)
    return creds


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--patients",
    type=click.IntRange(10, 1_000_000),
    default=2000,
    show_default=True,
    help="Size of the demo extract",
)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the control-plane REST API [default: PORT+1]",
)
@click.option(
    "--poll-interval",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds between the hub's checks of running sandboxes (permit still active?)",
)
@click.option(
    "--memory-limit",
    callback=_memory_size,
    default=None,
    metavar="SIZE",
    help="Memory of each sandbox, e.g. 4G or 512M; 0: no limit"
    " [default: half the host's memory, at most 8G]",
)
@click.option(
    "--cpu-limit",
    type=click.FloatRange(0, 1024),
    default=None,
    help="CPU cores each sandbox may use; 0: no limit [default: all cores]",
)
@click.pass_context
def up(
    ctx: click.Context,
    host: str,
    port: int,
    patients: int,
    seed: int,
    api_port: int | None,
    poll_interval: int,
    memory_limit: int | None,
    cpu_limit: float | None,
) -> None:
    """Set up everything on first run (store, keys, demo data, demo users) and start the hub.

    The hub (JupyterHub, configurable-http-proxy, the guard, one bubblewrap sandbox per
    project and person) listens on PORT; the control-plane REST API on --api-port.
    State persists in the data directory; running it again starts from there. Ctrl-C
    stops everything.
    """
    from sqlalchemy import select

    from jupyterlab_hdh.context import init_hub
    from jupyterlab_hdh.data.synth import generate
    from jupyterlab_hdh.ingestion import DatasetDescription, recover
    from jupyterlab_hdh.ingestion import ingest as run_ingest
    from jupyterlab_hdh.store.models import Dataset

    data_dir = _data_dir(ctx)
    from jupyterlab_hdh.guard.display import DisplayConfigError, DisplaySettings

    try:
        DisplaySettings.load(data_dir.root)  # a bad guard.toml stops the start, with its reason
    except DisplayConfigError as exc:
        raise click.ClickException(str(exc)) from None
    hub, done = init_hub(data_dir, actor="hdh-up")
    for line in done:
        _say(line)
    for p in recover(hub):
        _say(f"removed leftover {p}")
    with hub.sessions() as s:
        have_demo = s.scalar(select(Dataset).where(Dataset.name == DEMO_DATASET)) is not None
    if not have_demo:
        raw = data_dir.incoming / f"{DEMO_DATASET}-raw-{seed}-{patients}"
        if not (raw / "extract.json").exists():
            if raw.exists():
                from jupyterlab_hdh.ingestion import remove_tree

                remove_tree(raw)
            _say(f"generating a synthetic extract of {patients:,} patients (raw identifiers)")
            generate(raw, patients=patients, seed=seed, raw=True, progress=True)
        run_ingest(
            hub,
            raw,
            DEMO_DATASET,
            actor="hdh-up",
            progress=_say,
            description=DatasetDescription(
                title="Démonstration : extrait SNDS synthétique",
                description="Extrait synthétique au format SNDS (DCIR, PMSI MCO, ALD,"
                " causes de décès,"
                " pharmacovigilance, télésurveillance) : parcours cohérents, aucune donnée réelle.",
                synthetic=True,
                keywords=["SNDS", "DCIR", "PMSI", "synthétique", "démonstration"],
            ),
        )
    creds = _demo_credentials(hub)
    _demo_project(hub)
    hub.close()
    from jupyterlab_hdh.hub.run import run_embedded_hub

    click.echo("Demo accounts (hub login: NAME + PASSWORD; control-plane API: Bearer TOKEN):")
    for name, c in creds.items():
        click.echo(f"  {name:<11} {c['role']:<16} {c['password']:<14} {c['token']}")
    code = run_embedded_hub(
        data_dir,
        host=host,
        port=port,
        api_port=api_port or port + 1,
        poll_interval=poll_interval,
        memory_limit=memory_limit,
        cpu_limit=cpu_limit,
        say=_say,
        echo=click.echo,
    )
    if code:
        sys.exit(code)


# --- the airlock: `hdh egress ...` (jupyterlab_hdh/egress/cli.py) --------------------------------
from jupyterlab_hdh.egress.cli import egress as _egress  # noqa: E402

main.add_command(_egress)

# --- the guarded display: `hdh guard ...` (jupyterlab_hdh/guard/cli.py) ---------------------------
from jupyterlab_hdh.guard.cli import guard as _guard  # noqa: E402

main.add_command(_guard)


if __name__ == "__main__":  # pragma: no cover
    main()
