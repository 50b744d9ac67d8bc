"""``hdh project ...`` and ``hdh permit ...``: projects, members and data-access permits."""

from __future__ import annotations

from typing import Any

import click

from jupyterlab_hdh.cli.common import HdhGroup, profile_option
from jupyterlab_hdh.cli.common import admin as _admin
from jupyterlab_hdh.cli.common import emit as _emit
from jupyterlab_hdh.cli_context import open_installation

# --- projects and permits ---------------------------------------------------------------------
#
# The CLI is the operator's console: it acts as an administrator (``common.admin``).


def _parse_expiry(expires: str | None, days: int | None, *, required: bool = True) -> Any:
    from datetime import UTC, date, datetime, timedelta

    if not required and expires is None and days is None:
        return None
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


@click.group(cls=HdhGroup)
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

    with open_installation(ctx).transaction() as s:
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

    with open_installation(ctx).transaction() as s:
        projects.add_member(s, slug, user_name, role=role, actor=_admin())
    click.echo(f"{user_name} added to {slug} as {role}")


@project.command("remove-member")
@click.argument("slug")
@click.argument("user_name", metavar="USER")
@click.pass_context
def project_remove_member(ctx: click.Context, slug: str, user_name: str) -> None:
    """Remove USER from project SLUG (their access ends at once)."""
    from jupyterlab_hdh.governance import projects

    with open_installation(ctx).transaction() as s:
        projects.remove_member(s, slug, user_name, actor=_admin())
    click.echo(f"{user_name} removed from {slug}")


@project.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def project_list(ctx: click.Context, as_json: bool) -> None:
    """List projects, their members and the status of their latest permit."""
    from jupyterlab_hdh.governance import projects

    hub = open_installation(ctx)
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

    hub = open_installation(ctx)
    with hub.sessions() as s:
        _emit(projects.project_view(s, projects.get_project(s, slug), hub.data_dir))


@click.group(cls=HdhGroup)
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
@profile_option("The compute profile its sandboxes run with (default: the installation's)")
@click.pass_context
def permit_grant(
    ctx: click.Context,
    slug: str,
    members: tuple[str, ...],
    datasets: tuple[str, ...],
    expires: str | None,
    days: int | None,
    profile: str | None,
) -> None:
    """Grant a permit on project SLUG; it supersedes the project's active permit."""
    from jupyterlab_hdh.governance import projects

    expires_at = _parse_expiry(expires, days)
    hub = open_installation(ctx)
    with hub.transaction() as s:
        granted = projects.grant_permit(
            s,
            slug,
            members=list(members),
            datasets=list(datasets),
            expires_at=expires_at,
            actor=_admin(),
            compute_profile=profile,
        )
        view = projects.permit_view(granted, hub.data_dir)
    mounted = ", ".join(f"{m['dataset']}/{m['version']}" for m in view["mounts"])
    click.echo(
        f"permit #{view['id']} granted on {slug} to {', '.join(view['members'])}"
        f" for {mounted} until {view['expires_at']}"
    )


@permit.command("amend")
@click.argument("permit_id", type=click.IntRange(1))
@click.option("--add-member", "add_members", multiple=True, help="A project member; repeatable")
@click.option("--remove-member", "remove_members", multiple=True, help="Repeatable")
@click.option("--add-dataset", "add_datasets", multiple=True, help="NAME or NAME/vN; repeatable")
@click.option(
    "--remove-dataset",
    "remove_datasets",
    multiple=True,
    help="NAME (every version of it) or NAME/vN; repeatable",
)
@click.option("--expires", help="A new last day (UTC), or a date-time with offset")
@click.option("--days", type=click.IntRange(1, 3660), help="Valid for N days from now")
@profile_option("The compute profile its sandboxes run with from now on")
@click.pass_context
def permit_amend(
    ctx: click.Context,
    permit_id: int,
    add_members: tuple[str, ...],
    remove_members: tuple[str, ...],
    add_datasets: tuple[str, ...],
    remove_datasets: tuple[str, ...],
    expires: str | None,
    days: int | None,
    profile: str | None,
) -> None:
    """Change active permit PERMIT_ID in place: members, dataset versions, expiry, profile.

    What it adds counts from each person's next spawn; what it takes away (a member, an
    earlier expiry) at once. Nothing changes unless every change is valid."""
    from jupyterlab_hdh.governance import projects

    change = projects.Amendment(
        add_members=add_members,
        remove_members=remove_members,
        add_datasets=add_datasets,
        remove_datasets=remove_datasets,
        expires_at=_parse_expiry(expires, days, required=False),
        compute_profile=profile,
    )
    hub = open_installation(ctx)
    with hub.transaction() as s:
        amended = projects.amend_permit(s, permit_id, change, actor=_admin())
        view = projects.permit_view(amended, hub.data_dir)
    granted = ", ".join(f"{m['dataset']}/{m['version']}" for m in view["datasets"])
    click.echo(
        f"permit #{permit_id} of {view['project']} amended: {', '.join(view['members'])}"
        f" for {granted} until {view['expires_at']}"
    )


@permit.command("revoke")
@click.argument("permit_id", type=click.IntRange(1))
@click.option("--reason", required=True)
@click.pass_context
def permit_revoke(ctx: click.Context, permit_id: int, reason: str) -> None:
    """Revoke permit PERMIT_ID now (its sandboxes must stop)."""
    from jupyterlab_hdh.governance import projects

    with open_installation(ctx).transaction() as s:
        projects.revoke_permit(s, permit_id, reason=reason, actor=_admin())
    click.echo(f"permit #{permit_id} revoked")


@permit.command("list")
@click.option("--project", "slug", default=None, help="Only this project's permits")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def permit_list(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List permits with their status, members and datasets."""
    from jupyterlab_hdh.governance import projects

    hub = open_installation(ctx)
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

    hub = open_installation(ctx)
    with hub.sessions() as s:
        granted = projects.active_permit(s, user_name, slug)
        view = projects.permit_view(granted, hub.data_dir)
    click.echo(f"{user_name} may open {slug}: permit #{view['id']} until {view['expires_at']}")
    for m in view["mounts"]:
        click.echo(f"{m['dataset']}/{m['version']}\t{m['path']}")
