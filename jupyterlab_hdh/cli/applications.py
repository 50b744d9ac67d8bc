"""``hdh application ...``: the single access desk from the operator's console.

The operator records what happens on paper or in a meeting: an application filed for a
researcher (``--applicant``), a committee member's opinion (``--member``, e.g. from the
minutes), a revision, a withdrawal, and the authority's decision, which issues the permit
(:mod:`jupyterlab_hdh.governance.applications` checks every rule). The CLI acts as an
administrator (``common.admin``, audit actor ``cli:<login>``); the audit says for whom.
After each step that notifies someone, the pending notifications are e-mailed (when SMTP is
configured), as ``hdh egress`` does.
"""

from __future__ import annotations

from typing import Any

import click

from jupyterlab_hdh.cli.common import HdhGroup, admin, emit, mail_pending, profile_option
from jupyterlab_hdh.cli_context import open_installation

# the domain's constants, spelled out so that ``hdh --help`` need not import it (a test ties
# them to ``governance.applications``)
KINDS = ("new", "renewal", "amendment")
STATES = ("submitted", "changes_requested", "approved", "rejected", "withdrawn")
OPINIONS = ("favourable", "unfavourable", "changes_requested")
DECISIONS = ("favourable", "unfavourable")

app_id_argument = click.argument("app_id", type=click.IntRange(1), metavar="ID")
dataset_option = click.option(
    "--dataset", "datasets", multiple=True, metavar="NAME[/vN]", help="Repeatable"
)
member_option = click.option(
    "--member", "members", multiple=True, metavar="USER", help="A researcher; repeatable"
)


@click.group(cls=HdhGroup)
def application() -> None:
    """Applications for access to data: opinions, decisions (acts as an administrator)."""


@application.command("submit")
@click.option("--kind", type=click.Choice(KINDS), default="new", show_default=True)
@click.option("--project", "slug", required=True, help="The project's slug (new or existing)")
@click.option("--applicant", required=True, metavar="USER", help="The researcher applying")
@click.option("--title", required=True)
@click.option("--purpose", required=True, help="Purpose of the processing")
@click.option("--public-interest", required=True, help="Why it is in the public interest")
@click.option("--methodology", required=True)
@dataset_option
@member_option
@click.option("--days", type=click.IntRange(1), help="Duration of the permit (not an amendment)")
@profile_option("Compute profile (default: cpu)")
@click.pass_context
def submit(
    ctx: click.Context,
    kind: str,
    slug: str,
    applicant: str,
    title: str,
    purpose: str,
    public_interest: str,
    methodology: str,
    datasets: tuple[str, ...],
    members: tuple[str, ...],
    days: int | None,
    profile: str | None,
) -> None:
    """File an application for APPLICANT: a new project, a renewal or an amendment of its
    permit (what an amendment lists is what it adds). The committee is notified."""
    from jupyterlab_hdh.governance import applications as ap

    draft = ap.Draft(
        kind=kind,
        project=slug,
        title=title,
        purpose=purpose,
        public_interest=public_interest,
        methodology=methodology,
        datasets=datasets,
        members=members,
        duration_days=days,
        compute_profile=profile,
    )
    with open_installation(ctx).transaction() as s:
        app = ap.submit(s, draft, actor=admin(), applicant=applicant)
        app_id = app.id
    mail_pending(ctx)
    click.echo(
        f"application #{app_id} ({kind}) for project {slug} submitted by {applicant};"
        " the committee is notified"
    )


@application.command("opinion")
@app_id_argument
@click.option("--member", required=True, metavar="USER", help="The committee member")
@click.option("--opinion", type=click.Choice(OPINIONS), required=True)
@click.option("--text", required=True, help="The opinion's reasons (shown to the applicant)")
@click.pass_context
def opinion(ctx: click.Context, app_id: int, member: str, opinion: str, text: str) -> None:
    """Record committee MEMBER's opinion on the current round of application ID (e.g. from a
    meeting's minutes). The applicant is notified."""
    from jupyterlab_hdh.governance import applications as ap

    with open_installation(ctx).transaction() as s:
        row = ap.give_opinion(s, app_id, opinion, text, actor=admin(), member=member)
        done_round, state = row.round, ap.get(s, app_id).state
    mail_pending(ctx)
    click.echo(
        f"{member}'s opinion on application #{app_id} (round {done_round}): {_words(opinion)};"
        f" the application is {_words(state)}"
    )


@application.command("revise")
@app_id_argument
@click.option("--title")
@click.option("--purpose")
@click.option("--public-interest")
@click.option("--methodology")
@dataset_option
@member_option
@click.option("--no-members", is_flag=True, help="The application names no member any more")
@click.option("--days", type=click.IntRange(1), help="Duration of the permit")
@profile_option("A new compute profile")
@click.option("--note", default="", help="What changed (told to the committee)")
@click.pass_context
def revise(
    ctx: click.Context,
    app_id: int,
    title: str | None,
    purpose: str | None,
    public_interest: str | None,
    methodology: str | None,
    datasets: tuple[str, ...],
    members: tuple[str, ...],
    no_members: bool,
    days: int | None,
    profile: str | None,
    note: str,
) -> None:
    """Revise application ID after the committee requested changes: a new round, submitted
    again. What is not given stays; --dataset and --member replace the lists when given."""
    from jupyterlab_hdh.governance import applications as ap

    if members and no_members:
        raise click.UsageError("give --member or --no-members, not both")
    change = ap.Revision(
        title=title,
        purpose=purpose,
        public_interest=public_interest,
        methodology=methodology,
        datasets=datasets or None,
        members=() if no_members else members or None,
        duration_days=days,
        compute_profile=profile,
        note=note,
    )
    with open_installation(ctx).transaction() as s:
        app = ap.revise(s, app_id, change, actor=admin())
        done_round = app.round
    mail_pending(ctx)
    click.echo(
        f"application #{app_id} revised: round {done_round} submitted; the committee is notified"
    )


@application.command("withdraw")
@app_id_argument
@click.pass_context
def withdraw(ctx: click.Context, app_id: int) -> None:
    """Withdraw open application ID (for its applicant)."""
    from jupyterlab_hdh.governance import applications as ap

    with open_installation(ctx).transaction() as s:
        ap.withdraw(s, app_id, actor=admin())
    click.echo(f"application #{app_id} withdrawn")


@application.command("decide")
@app_id_argument
@click.option("--decision", type=click.Choice(DECISIONS), required=True)
@click.option("--reference", required=True, help="The decision's reference (e.g. CNIL DR-…)")
@click.option("--text", default="", help="The decision's text (told to the team)")
@click.pass_context
def decide(ctx: click.Context, app_id: int, decision: str, reference: str, text: str) -> None:
    """Record the authority's decision on application ID (after an opinion of the committee):
    a favourable one issues the permit (or amends the active one) in the same step."""
    from jupyterlab_hdh.governance import applications as ap

    with open_installation(ctx).transaction() as s:
        app = ap.decide(s, app_id, decision, reference=reference, text=text, actor=admin())
        kind, slug, permit_id = app.kind, app.project_slug, app.permit_id
        reference = app.decision_reference or reference  # as recorded (stripped)
    mail_pending(ctx)
    if permit_id is None:
        click.echo(f"application #{app_id} rejected ({reference})")
        return
    issued = "amended" if kind == "amendment" else "issued"
    click.echo(
        f"application #{app_id} approved ({reference}): permit #{permit_id} {issued}"
        f" for project {slug}"
    )


@application.command("show")
@app_id_argument
@click.pass_context
def show(ctx: click.Context, app_id: int) -> None:
    """Print application ID as JSON: its content, opinions (with their authors), decision."""
    from jupyterlab_hdh.governance import applications as ap

    with open_installation(ctx).sessions() as s:
        emit(ap.view(s, app_id, admin()))


@application.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only applications in this state")
@click.option("--project", "slug", help="Only this project's applications")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_applications(
    ctx: click.Context, state: str | None, slug: str | None, as_json: bool
) -> None:
    """List applications, newest first."""
    from jupyterlab_hdh.governance import applications as ap

    with open_installation(ctx).sessions() as s:
        rows: list[dict[str, Any]] = [
            ap.summary(a) for a in ap.visible(s, admin(), state=state, project=slug)
        ]
    if as_json:
        emit(rows)
        return
    if not rows:
        click.echo("no application" + (" yet" if state is None and slug is None else ""))
    for r in rows:
        outcome = f"\t{r['decision_reference']}" if r["decision_reference"] else ""
        if r["permit"] is not None:
            outcome += f"\tpermit #{r['permit']}"
        click.echo(
            f"#{r['id']}\t{r['project']}\t{r['kind']}\t{_words(r['state'])}\tround {r['round']}"
            f"\t{r['applicant']}\t{r['title']}{outcome}"
        )


def _words(value: str) -> str:
    return value.replace("_", " ")
