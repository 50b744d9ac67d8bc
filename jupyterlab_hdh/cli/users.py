"""``hdh user ...``: local accounts, roles, e-mail, passwords, API tokens, disabling."""

from __future__ import annotations

import sys

import click

from jupyterlab_hdh.cli.common import HdhGroup
from jupyterlab_hdh.cli.common import emit as _emit
from jupyterlab_hdh.cli_context import actor as _actor
from jupyterlab_hdh.cli_context import open_installation

# --- users ------------------------------------------------------------------------------------


@click.group(cls=HdhGroup)
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
    with open_installation(ctx).transaction() as s:
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
    with open_installation(ctx).transaction() as s:
        set_email(s, name, address, actor=_actor())
    click.echo(f"{name}: notifications " + ("in-app only" if clear else f"e-mailed to {address}"))


@user.command("token")
@click.argument("name")
@click.pass_context
def user_token(ctx: click.Context, name: str) -> None:
    """Issue an API token for NAME (printed once; only its hash is kept)."""
    from jupyterlab_hdh.governance.accounts import get_user, issue_token

    with open_installation(ctx).transaction() as s:
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
    with open_installation(ctx).transaction() as s:
        set_password(s, get_user(s, name), password, actor=_actor())
    click.echo(f"password of {name} set")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def user_list(ctx: click.Context, as_json: bool) -> None:
    """List users: name, role, e-mail, active or disabled, API tokens held."""
    from jupyterlab_hdh.governance.accounts import list_users

    with open_installation(ctx).sessions() as s:
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

    with open_installation(ctx).transaction() as s:
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

    with open_installation(ctx).transaction() as s:
        changed = set_disabled(s, name, False, actor=_actor())
    click.echo(f"{name} enabled" if changed else f"{name} was already enabled")


@user.command("revoke-tokens")
@click.argument("name")
@click.pass_context
def user_revoke_tokens(ctx: click.Context, name: str) -> None:
    """Revoke every control-plane API token of NAME (`hdh user token NAME` issues a new one)."""
    from jupyterlab_hdh.governance.accounts import revoke_tokens

    with open_installation(ctx).transaction() as s:
        count = revoke_tokens(s, name, actor=_actor())
    click.echo(f"{count} API token{'' if count == 1 else 's'} of {name} revoked")
