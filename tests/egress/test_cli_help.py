"""``hdh egress``'s help says who each command's ``--as`` is; an unknown or disabled ``--as``
user is a one-line error that points to a command that exists."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.cli.egress import egress
from jupyterlab_hdh.governance import accounts
from tests.egress import airlock

#: who ``--as`` is, in each command's help
AS_HELP = {
    "submit": "The request's author, a member of the project",
    "list": "See the requests as this user (default: the operator, who sees them all)",
    "show": "See the request as this user (default: the operator)",
    "vote": "A reviewer of the request",
    "approve": "A reviewer of the request",
    "return": "A reviewer of the request",
    "reject": "A reviewer of the request",
    "withdraw": "The request's author",
    "comment": "A member of the project or a reviewer of the request",
    "release": "A reviewer of the request (default: the operator)",
    "download": "A member of the project",
    "notifications": "Whose notifications",
}


def test_every_as_option_says_who_it_is() -> None:
    ctx = click.Context(egress)
    seen = {}
    for name in egress.list_commands(ctx):
        command = egress.get_command(ctx, name)
        assert command is not None
        for param in command.params:
            if isinstance(param, click.Option) and "--as" in param.opts:
                seen[name] = param.help
    assert seen == AS_HELP
    out = " ".join(CliRunner().invoke(main, ["egress", "withdraw", "--help"]).output.split())
    assert "--as USER The request's author [required]" in out
    assert "--reason TEXT Why (recorded with the request)" in out
    out = CliRunner().invoke(main, ["egress", "approve", "--help"]).output
    assert "--reason" not in out  # an approval takes no reason (it was silently ignored)


@pytest.fixture
def cli(hub: Any, store_url: str) -> Any:
    airlock.setup(hub)
    base = ["--data-dir", str(hub.data_dir.root), "--store-url", store_url]

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, [*base, *args])

    return run


def test_unknown_as_user_points_to_user_list(cli: Any) -> None:
    refused = cli("egress", "show", "1", "--as", "nobody")
    assert refused.exit_code == 1
    assert refused.output == "Error: no user 'nobody' (see `hdh user list`)\n"
    # the command it points to exists, and lists the users one could act as
    listed = cli("user", "list")
    assert listed.exit_code == 0 and "alice" in listed.output and "nobody" not in listed.output


def test_disabled_as_user_is_refused(cli: Any, hub: Any) -> None:
    with hub.transaction() as s:
        accounts.set_disabled(s, "alice", True, actor="test")
    refused = cli("egress", "list", "--as", "alice")
    assert refused.exit_code == 1
    assert refused.output == "Error: user 'alice' is disabled (see `hdh user enable`)\n"
