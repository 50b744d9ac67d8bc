"""The demo installation of ``hdh up``: its dataset, accounts and project, in one place."""

from __future__ import annotations

import json
import os
from typing import Any

DEMO_DATASET = "demo-snds"
DEMO_USERS = (
    ("admin", "admin"),
    ("controller", "data_controller"),
    ("alice", "researcher"),
    ("bob", "reviewer"),
    ("carol", "committee"),
)
DEMO_PROJECT = "demo"


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
