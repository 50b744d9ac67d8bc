"""What every ``hdh`` command shares: the installation it works on and who it acts as.

Owns the command line's context, used by every command group of the ``cli`` package: the data
directory chosen by ``hdh --data-dir`` (in ``ctx.obj``), the installation opened once per
command and closed with it, and the actor name the audit log records (``cli:<login>``).
"""

from __future__ import annotations

import getpass
import os
from typing import Any

import click

from jupyterlab_hdh.paths import DataDir


def actor() -> str:
    """``cli:<login>``: who the audit log says ran the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return f"cli:uid{os.getuid()}"


def data_dir(ctx: click.Context) -> DataDir:
    return ctx.find_root().obj["data_dir"]


def open_installation(ctx: click.Context) -> Any:
    """The installation of this command (opened on first use, closed when it ends)."""
    from jupyterlab_hdh.context import open_installation as open_installation

    obj = ctx.find_root().obj
    if "hub" not in obj:
        obj["hub"] = open_installation(data_dir(ctx))
        ctx.find_root().call_on_close(obj["hub"].close)
    return obj["hub"]
