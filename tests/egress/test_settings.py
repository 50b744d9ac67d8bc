"""The installation's airlock.toml: thresholds and limits in force at submit and add time,
and clear refusals of a bad file (on both store backends where a request is involved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress.errors import LimitExceeded
from jupyterlab_hdh.egress.settings import AirlockConfigError, load_settings
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import AuditEvent
from tests.egress.airlock import ALICE, draft, setup, write


def _status(hub: Any, request_id: int, author: Any = ALICE) -> str:
    with hub.transaction() as s:
        m.submit(s, hub.data_dir, request_id, actor=author)
    with hub.sessions() as s:
        view = m.get_request(s, request_id, actor=author, provenance=False)
        return str(view["files"][0]["check_status"])


def test_the_threshold_in_airlock_toml_is_the_one_applied(hub: Any) -> None:
    ws = setup(hub)
    write(ws, "t.csv", "group,count\na,10\nb,15\n")  # 10: safe at ACRO's default (count < 10)
    first = draft(hub, ("t.csv", "output"))
    assert _status(hub, first) == "pass"
    (hub.data_dir.root / "airlock.toml").write_text("[checks]\nsafe_threshold = 11\n")
    second = draft(hub, ("t.csv", "output"))
    assert _status(hub, second) == "fail"


def test_the_file_limits_in_airlock_toml_are_enforced(hub: Any) -> None:
    ws = setup(hub)
    write(ws, "a.csv")
    write(ws, "b.csv")
    (hub.data_dir.root / "airlock.toml").write_text("[limits]\nmax_files = 1\n")
    rid = draft(hub, ("a.csv", "output"))
    with hub.sessions() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(LimitExceeded), hub.transaction() as s:
        m.add_file(s, hub.data_dir, rid, "b.csv", role="output", actor=ALICE)
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[checks]\nsafe_threshold = 'ten'\n", "safe_threshold"),
        ("[checks]\nno_such_rule = 1\n", "unknown key 'no_such_rule'"),
        ("[limits]\nmax_files = 0\n", "limits.max_files must be a positive integer"),
        ("[limits]\nmax_file_bytes = true\n", "limits.max_file_bytes"),
        ("[limits]\nmax_tables = 3\n", "unknown key limits.max_tables"),
        ("[check]\nsafe_threshold = 5\n", "unknown table(s) check"),
        ("checks = 3\n", "[checks] must be a table"),
        ("[checks\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_its_key(tmp_path: Path, text: str, message: str) -> None:
    data_dir = DataDir.resolve(tmp_path)
    (tmp_path / "airlock.toml").write_text(text)
    with pytest.raises(AirlockConfigError) as caught:
        load_settings(data_dir)
    assert message in str(caught.value) and "airlock.toml" in str(caught.value)


def test_no_file_means_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(DataDir.resolve(tmp_path))
    assert settings.checks.safe_threshold == 10 and settings.limits.max_files == 50
