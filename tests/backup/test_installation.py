"""``hdh backup`` and ``hdh restore``: a whole installation, round trip to the other store.

An installation filled through its real interfaces (ingestion of a synthetic extract, a
project and its permit, an export request through review and release, an opt-out, an
archived workspace, settings, a signed checkpoint) is backed up with the CLI, restored with
the CLI into a fresh data directory on the other backend (SQLite -> PostgreSQL and back),
and everything a user sees through the API is compared, with the same API tokens (they are
in the store). Then a sandbox starts on the restored installation and reads its data.
Altered backups are refused, naming what changed; interrupted ones are never used."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.audit import verify as verify_chain
from jupyterlab_hdh.backup import installation as bi
from jupyterlab_hdh.backup.manifest import IncompleteBackup
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.governance import accounts, retention
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.ingestion import ingest
from jupyterlab_hdh.paths import RESTORE_MARKER, DataDir
from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE
from jupyterlab_hdh.store.db import StoreError
from jupyterlab_hdh.store.models import AuditEvent, User
from tests.egress import airlock as al
from tests.waiting import wait_for

PASSPHRASE = "correct horse battery staple"


def _cli(*args: str, data_dir: Path, store_url: str | None = None, **kw: Any) -> Any:
    argv = ["--data-dir", str(data_dir)]
    if store_url is not None:
        argv += ["--store-url", store_url]
    return CliRunner().invoke(main, [*argv, *args], **kw)


@pytest.fixture
def filled(hub: Any, raw_extract: Path) -> dict[str, Any]:
    """``hub`` filled through its real interfaces; the API tokens of admin and alice."""
    ws = al.setup(hub)
    ingest(hub, raw_extract, "snds", actor="test")
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "study",
            members=["alice", "bob"],
            datasets=["snds/v1"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=al.DAN,
        )
        tokens = {
            "admin": accounts.issue_token(
                s, accounts.create_user(s, "root", "admin", actor="test"), actor="test"
            ),
            "alice": accounts.issue_token(s, accounts.get_user(s, "alice"), actor="test"),
            "rita": accounts.issue_token(s, accounts.get_user(s, "rita"), actor="test"),
        }
    al.write(ws, "results/table.csv")
    al.write(ws, "analysis.py", "print('hello')\n")
    (ws / "data").symlink_to("/data/snds/v1")  # a researcher's shortcut to the mounted data
    rid = al.draft(hub, ("results/table.csv", "output"), ("analysis.py", "code"))
    al.submit(hub, rid)
    al.vote_all(hub, rid)
    with hub.transaction() as s:
        m.approve(s, rid, actor=al.CORA)
    assert rel.release(hub, rid, actor=al.RITA)
    r = _cli("optout", "add", "184037512345690", data_dir=hub.data_dir.root,
             store_url=hub.data_dir.store_url)  # fmt: skip
    assert r.exit_code == 0, r.output
    # a project whose permit ended: its workspace archived read-only
    other = hub.data_dir.workspace("other")
    al.write(other, "notes.txt", "kept for the retention period\n")
    with hub.transaction() as s:
        permit = pj.grant_permit(
            s, "other", members=["mallory"], datasets=["snds/v1"],
            expires_at=datetime.now(UTC) + timedelta(days=1), actor=al.DAN,
        )  # fmt: skip
        pj.revoke_permit(s, permit.id, reason="study stopped", actor=al.DAN)
    with hub.transaction() as s:
        assert [o.action for o in retention.sweep(s, hub.data_dir)] == ["archived"]
    (hub.data_dir.root / "governance.toml").write_text("[retention]\ndays = 30\n")
    # secret files of the data directory, as `hdh up` and an operator leave them
    (hub.data_dir.root / "demo-credentials.json").write_text('{"alice": {"password": "pw"}}')
    (hub.data_dir.root / "demo-credentials.json").chmod(0o600)
    (hub.data_dir.root / "smtp.toml").write_text('[smtp]\npassword = "mail-secret"\n')
    return {"tokens": tokens, "request": rid}


#: what a user sees, through the API, as admin and as alice (paths with ids filled in)
VIEWS = (
    "/api/catalogue/datasets",
    "/api/catalogue/datasets/snds",
    "/api/projects",
    "/api/permits",
    "/api/egress/requests",
    "/api/egress/requests/{request}",
    "/api/egress/notifications",
    "/api/applications",
    "/api/audit/verify",
    "/api/register",
)


def _seen(
    data_dir: DataDir, tokens: dict[str, str], request: int, original: Path
) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with TestClient(create_app(data_dir)) as client:
        for who in ("admin", "alice"):
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            for path in VIEWS:
                r = client.get(path.format(request=request), headers=headers)
                seen[f"{who} {path}"] = (r.status_code, r.json())
            r = client.get("/api/audit/events", params={"limit": 1000}, headers=headers)
            seen[f"{who} audit"] = (r.status_code, r.json())
        released = client.get(
            f"/api/egress/requests/{request}/files",
            headers={"Authorization": f"Bearer {tokens['alice']}"},
        )
        seen["released files"] = (released.status_code, released.json())
    # where the data directory is differs, nothing else may (the audit log keeps the
    # original's, as it was written)
    text = json.dumps(seen).replace(str(original), "<data dir>")
    return dict(json.loads(text.replace(str(data_dir.root), "<data dir>")))


#: what an operator sees through the CLI
CLI_VIEWS = (
    ("project", "list"),
    ("permit", "list"),
    ("application", "list"),
    ("user", "list"),
    ("optout", "count"),
    ("data", "list"),
    ("egress", "list", "--as", "bob"),
    ("workspace", "list"),
)


def _cli_seen(data_dir: DataDir, original: Path) -> dict[str, str]:
    seen = {}
    for args in CLI_VIEWS:
        r = _cli(*args, data_dir=data_dir.root, store_url=data_dir.store_url_override)
        assert r.exit_code == 0, (args, r.output)
        seen[" ".join(args)] = r.output.replace(str(original), "<data dir>").replace(
            str(data_dir.root), "<data dir>"
        )
    return seen


def _backup(hub: Any, out: Path, tmp_path: Path) -> Any:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    return _cli(
        "backup", "--out", str(out), "--passphrase-file", str(secret),
        data_dir=hub.data_dir.root, store_url=hub.data_dir.store_url,
    )  # fmt: skip


def _restore(src: Path, target: DataDir, **kw: Any) -> Any:
    env = {"HDH_BACKUP_PASSPHRASE": kw.pop("passphrase", PASSPHRASE)}
    return _cli("restore", str(src), data_dir=target.root, store_url=target.store_url_override,
                env=env, **kw)  # fmt: skip


def _without_new_events(seen: dict[str, Any], last: int) -> dict[str, Any]:
    """The views, the audit log cut at the original's last event (the restore adds one)."""
    out = dict(seen)
    for key, (status, body) in seen.items():
        if key.endswith(" audit") and status == 200:
            events = body["events"] if isinstance(body, dict) else body
            kept = [e for e in events if e["seq"] <= last]
            out[key] = (status, {**body, "events": kept} if isinstance(body, dict) else kept)
        if key.endswith("/api/audit/verify") and status == 200:
            out[key] = (status, {"ok": body["ok"]})  # how many events it checked differs
    return out


def _differences(a: Any, b: Any, at: str = "") -> list[str]:
    """Where two JSON-like values differ, as paths (the first 20)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{at}.{k}: only one side" for k in sorted(set(a) ^ set(b), key=str)]
        for k in sorted(set(a) & set(b) - {"generated_at"}, key=str):  # when it was asked
            out += _differences(a[k], b[k], f"{at}.{k}")
        return out[:20]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _differences(x, y, f"{at}[{i}]")][:20]  # fmt: skip
    return [] if a == b or _same_moment(a, b) else [f"{at}: {a!r} != {b!r}"]


def _same_moment(a: Any, b: Any) -> bool:
    """Two ISO times of the same instant: SQLite hands back naive UTC times where PostgreSQL
    gives them with their offset (the API shows each as its store gives it)."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    try:
        x, y = datetime.fromisoformat(a), datetime.fromisoformat(b)
    except ValueError:
        return False
    return x.replace(tzinfo=x.tzinfo or UTC) == y.replace(tzinfo=y.tzinfo or UTC)


def test_a_whole_installation_round_trips_to_the_other_store(
    hub: Any, filled: dict[str, Any], other_store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "backup"
    r = _backup(hub, out, tmp_path)
    assert r.exit_code == 0, r.output
    assert "audit: signed a checkpoint" in r.output
    before = _seen(hub.data_dir, filled["tokens"], filled["request"], hub.data_dir.root)
    before_cli = _cli_seen(hub.data_dir, hub.data_dir.root)

    # nothing secret in clear: the keys and secret files are sealed
    keys = {p.name: p.read_bytes() for p in hub.data_dir.keys.iterdir()}
    keys.update({"smtp password": b"mail-secret", "demo password": b'"pw"'})
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".tar":
            blob = path.read_bytes()
            for name, key in keys.items():
                assert key not in blob, f"{name} in clear in {path}"
    assert (out / "catalogue.jsonld").is_file() and (out / "audit" / "checkpoint.json").is_file()
    assert sorted(p.name for p in (out / "workspaces").iterdir()) == [
        "archive-markers.tar", "other.tar", "study.tar",
    ]  # fmt: skip

    target = DataDir(tmp_path / "restored", other_store_url)
    r = _restore(out, target)
    assert r.exit_code == 0, r.output
    assert "the audit log matches the checkpoint" in r.output
    assert not (target.root / RESTORE_MARKER).exists()

    restored = open_installation(target)
    try:
        with restored.sessions() as s:
            events = s.query(AuditEvent).order_by(AuditEvent.seq).all()
            assert events[-1].action == "installation.restore"
            last_original = events[-2].seq
        after = _seen(target, filled["tokens"], filled["request"], hub.data_dir.root)
        was, now = (_without_new_events(x, last_original) for x in (before, after))
        assert _differences(was, now) == []
        assert _cli_seen(target, hub.data_dir.root) == before_cli
        # the files: workspaces with their modes (the archive still read-only), the outbox
        notes = target.workspace("other") / "notes.txt"
        assert notes.read_text() == "kept for the retention period\n"
        assert not os.stat(notes).st_mode & 0o222
        assert retention.verify(target, "other") == []
        assert (target.workspace("study") / "results" / "table.csv").is_file()
        assert os.readlink(target.workspace("study") / "data") == "/data/snds/v1"
        version = target.dataset_version_dir("snds", "v1")
        assert stat.S_IMODE(version.stat().st_mode) == 0o550  # as ingestion leaves it
        assert {stat.S_IMODE(f.stat().st_mode) for f in version.iterdir()} == {0o440}
        released = [f for f in target.outbox.rglob("*") if f.is_file()]
        assert released and {stat.S_IMODE(f.stat().st_mode) for f in released} == {0o440}
        assert (target.root / "governance.toml").read_text() == "[retention]\ndays = 30\n"
        for secret in ("demo-credentials.json", "smtp.toml"):
            assert (target.root / secret).read_bytes() == (hub.data_dir.root / secret).read_bytes()
            assert stat.S_IMODE((target.root / secret).stat().st_mode) == 0o600
        assert restored.keys.fingerprint() == hub.keys.fingerprint()
        r = _cli("audit", "verify", data_dir=target.root, store_url=target.store_url_override)
        assert r.exit_code == 0, r.output
        _a_sandbox_reads_the_restored_data(restored)
    finally:
        restored.close()


def _a_sandbox_reads_the_restored_data(inst: Any) -> None:
    from jupyterlab_hdh.hub.plan import project_plan
    from jupyterlab_hdh.sandbox import Sandbox, SandboxSpec, bwrap_problem, runtime_dir_for

    if bwrap_problem() is not None:
        pytest.skip(f"no sandbox on this machine: {bwrap_problem()}")
    plan = project_plan(inst, "alice", "study")
    root = inst.data_dir.root
    spec = SandboxSpec(
        project="study",
        user="alice",
        workspace=inst.data_dir.workspace("study"),
        runtime_dir=runtime_dir_for(root / "sandboxes", "study", "alice"),
        mounts=plan.mounts,
        protected=(root,),
        secrets=(inst.data_dir.keys,),
        host=plan.host_identity(HOST_ID_BASE) if os.geteuid() == 0 else None,
    )
    with Sandbox(spec, start_timeout=60) as sb:
        result = sb.client(timeout=60).execute(
            "import glob, pyarrow.parquet as pq\n"
            "files = sorted(glob.glob('/data/snds/v1/*.parquet'))\n"
            "print(len(files), sum(pq.read_metadata(f).num_rows for f in files) > 0)\n"
            "print(open('/workspace/results/table.csv').read().splitlines()[0])\n"
        )
    lines = result.stdout.splitlines()
    assert int(lines[0].split()[0]) > 0 and lines[0].split()[1] == "True", result
    assert lines[1] == "group,count"


def test_a_backup_taken_while_people_work_is_one_consistent_moment(
    hub: Any, tmp_path: Path
) -> None:
    """Accounts are made the whole time the backup runs (each with its audit event, in one
    transaction): the restored store holds exactly the accounts of its audit log, and its
    log verifies against the backup's checkpoint."""
    import threading

    stop = threading.Event()
    made: list[str] = []

    def work() -> None:
        while not stop.is_set():
            with hub.transaction() as s:
                name = f"u{len(made)}"
                accounts.create_user(s, name, "researcher", actor="test")
            made.append(name)

    hub.data_dir.workspace("busy").mkdir(parents=True)
    worker = threading.Thread(target=work)
    worker.start()
    try:
        wait_for(lambda: len(made) >= 3, "accounts being made")
        bi.backup(hub, tmp_path / "backup", PASSPHRASE, actor="test")
        wait_for(lambda: len(made) >= 6, "accounts made after the backup")
    finally:
        stop.set()
        worker.join()
    target = DataDir(tmp_path / "restored")
    restored = bi.restore(tmp_path / "backup", target, PASSPHRASE, actor="test")
    try:
        with restored.sessions() as s:
            users = {u.name for u in s.query(User).filter(User.name.like("u%"))}
            logged = {
                e.target.split(":", 1)[1]
                for e in s.query(AuditEvent).filter_by(action="user.create")
                if e.target.split(":", 1)[1].startswith("u")
            }
        assert users == logged and 3 <= len(users) < len(made)
    finally:
        restored.close()


def test_an_altered_backup_is_refused_naming_what_changed(
    hub: Any, filled: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "backup"
    assert _backup(hub, out, tmp_path).exit_code == 0
    target = DataDir(tmp_path / "restored")
    for damage, says in (
        (lambda b: _edit(b / "store" / "permits.jsonl"), "store/permits.jsonl"),
        (lambda b: (b / "workspaces" / "study.tar").unlink(), "workspaces/study.tar"),
        (lambda b: (b / "files" / "extra.txt").write_text("x"), "files/extra.txt"),
    ):
        copy = tmp_path / "copy"
        shutil.copytree(out, copy)
        damage(copy)
        r = _restore(copy, target)
        assert r.exit_code != 0 and says in r.output, r.output
        assert "Traceback" not in r.output
        assert not target.root.exists()  # nothing written
        shutil.rmtree(copy)
    r = _restore(out, target, passphrase="not the passphrase")
    assert r.exit_code != 0 and "passphrase" in r.output and not target.root.exists()


def test_files_and_manifest_rewritten_together_are_caught_by_the_signature(
    hub: Any, filled: dict[str, Any], tmp_path: Path
) -> None:
    """Someone without the passphrase rewrites a table and the whole manifest to match."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from jupyterlab_hdh.backup import manifest as mf

    out = tmp_path / "backup"
    assert _backup(hub, out, tmp_path).exit_code == 0
    target = DataDir(tmp_path / "restored")
    intruder = Ed25519PrivateKey.generate()
    for sign, says in (
        (None, "has no signed manifest"),
        (lambda digest: bi._sign(intruder, digest), "not signed by the audit key"),
    ):
        copy = tmp_path / "copy"
        shutil.copytree(out, copy)
        _edit(copy / "store" / "permits.jsonl")
        (copy / "manifest.json").unlink()
        (copy / mf.INCOMPLETE).write_text("")
        mf.finish(copy, sign=sign)
        mf.verify(copy)  # every file matches the rewritten manifest
        r = _restore(copy, target)
        assert r.exit_code != 0 and says in r.output, r.output
        assert not target.root.exists()
        shutil.rmtree(copy)


def _edit(path: Path) -> None:
    text = path.read_text()
    path.write_text(text.replace("study", "stuDy", 1))


def test_an_interrupted_backup_is_never_restored(hub: Any, tmp_path: Path) -> None:
    out = tmp_path / "backup"
    real = bi._tar_folder

    def killed(src: Path, dest: Path) -> None:
        raise KeyboardInterrupt  # the operator's ^C, half way

    hub.data_dir.workspace("study").mkdir(parents=True)
    bi._tar_folder = killed  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            bi.backup(hub, out, PASSPHRASE, actor="test")
    finally:
        bi._tar_folder = real  # type: ignore[assignment]
    assert (out / "INCOMPLETE").is_file() and not (out / "manifest.json").exists()
    with pytest.raises(IncompleteBackup):
        bi.restore(out, DataDir(tmp_path / "restored"), PASSPHRASE, actor="test")
    assert not (tmp_path / "restored").exists()


def _killed(*_a: Any, **_k: Any) -> None:
    raise KeyboardInterrupt  # the operator's ^C, or any exception half way


def test_a_restore_killed_before_its_end_leaves_its_own_folder_empty(
    hub: Any, filled: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the store a SQLite file of the data directory, everything is made beside the
    target and one rename puts it in place."""
    out = tmp_path / "backup"
    assert _backup(hub, out, tmp_path).exit_code == 0
    target = DataDir(tmp_path / "restored")
    for where in ("_assemble", "_load", "_finish"):
        with monkeypatch.context() as m:
            m.setattr(bi, where, _killed)
            with pytest.raises(KeyboardInterrupt):
                bi.restore(out, target, PASSPHRASE, actor="test")
        assert not target.root.exists(), where
    r = _restore(out, target)
    assert r.exit_code == 0, r.output
    assert not (tmp_path / ".restored.restoring").exists()


def test_a_restore_killed_beside_postgresql_is_marked_and_completes_when_run_again(
    hub: Any,
    filled: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    from tests.conftest import _create_pg_database

    out = tmp_path / "backup"
    assert _backup(hub, out, tmp_path).exit_code == 0
    target = DataDir(tmp_path / "restored", _create_pg_database(request.getfixturevalue(
        "postgres_server")))  # fmt: skip

    with monkeypatch.context() as m:  # killed after the files, before the store
        m.setattr(bi.store_dump, "load", _killed)
        with pytest.raises(KeyboardInterrupt):
            bi.restore(out, target, PASSPHRASE, actor="test")
    assert (target.root / RESTORE_MARKER).is_file()
    with pytest.raises(StoreError, match="run `hdh restore` again"):
        open_installation(target)
    r = _cli("catalogue", "show", "snds", data_dir=target.root, store_url=target.store_url_override)
    assert r.exit_code != 0 and "run `hdh restore` again" in r.output

    with monkeypatch.context() as m:  # killed after the store, before the marker went
        m.setattr(bi, "_finish", _killed)
        with pytest.raises(KeyboardInterrupt):
            bi.restore(out, target, PASSPHRASE, actor="test")
    with pytest.raises(StoreError):
        open_installation(target)

    r = _restore(out, target)
    assert r.exit_code == 0, r.output
    assert "interrupted restore" in r.output
    inst = open_installation(target)
    try:
        with inst.sessions() as s:
            assert pj.get_project(s, "study").title == "study"
            restores = s.query(AuditEvent).filter_by(action="installation.restore").count()
            assert restores == 1
    finally:
        inst.close()


CHILD = """
import sys
from jupyterlab_hdh.audit import verify as verify_chain
from jupyterlab_hdh.cli import main
sys.exit(main(["--data-dir", sys.argv[1], "restore", sys.argv[2]]))
"""


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_restore_killed_9_while_it_works_leaves_the_target_empty_or_complete(
    hub: Any, filled: dict[str, Any], tmp_path: Path
) -> None:
    """A real SIGKILL, as soon as the restore has begun writing (whatever it is doing then)."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "backup"
    assert _backup(hub, out, tmp_path).exit_code == 0
    target = DataDir(tmp_path / "restored")
    partial = tmp_path / ".restored.restoring"
    env = {**os.environ, "HDH_BACKUP_PASSPHRASE": PASSPHRASE}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target.root), str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for(lambda: partial.exists() or child.poll() is not None, "the restore begun", 120)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    if target.root.exists():  # it had finished: complete
        open_installation(target).close()
    else:
        r = _restore(out, target)
        assert r.exit_code == 0, r.output
    inst = open_installation(target)
    try:
        with inst.sessions() as s:
            assert verify_chain(s).ok
    finally:
        inst.close()


def test_a_restore_goes_only_into_an_empty_installation(hub: Any, tmp_path: Path) -> None:
    out = tmp_path / "backup"
    assert _backup(hub, out, tmp_path).exit_code == 0
    r = _restore(out, hub.data_dir)  # the installation it came from
    assert r.exit_code != 0 and "not empty" in r.output
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes").write_text("mine")
    r = _restore(out, DataDir(used))
    assert r.exit_code != 0 and "not empty" in r.output
    assert (used / "notes").read_text() == "mine" and len(list(used.iterdir())) == 1


def _tar_with(path: Path, entries: list[tuple[str, str | None]]) -> Path:
    """A tar of ``(name, link target)`` entries (a regular file when the target is None)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, target in entries:
            info = tarfile.TarInfo(name)
            if target is None:
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
    return path


def test_a_workspace_archive_never_writes_through_a_link(tmp_path: Path) -> None:
    """Links come back as they were, whatever they point to, but nothing is ever written
    through one, nor outside the workspaces folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "workspaces"
    dest.mkdir()
    ok = _tar_with(tmp_path / "ok.tar", [("w/f", None), ("w/data", "/data/snds/v1")])
    bi._untar(ok, dest)
    assert os.readlink(dest / "w" / "data") == "/data/snds/v1"
    for entries in (
        [("v/evil", str(outside)), ("v/evil/pwn", "anything")],  # a link through a link
        [("u/evil", None), ("u/evil", str(outside))],  # a file, then a link in its place
    ):
        with pytest.raises(bi.RestoreError):
            bi._untar(_tar_with(tmp_path / "bad.tar", entries), dest)
        assert list(outside.iterdir()) == []
    with pytest.raises(Exception, match="outside"):  # tarfile's own filter, for files
        bi._untar(_tar_with(tmp_path / "up.tar", [("../escape", None)]), dest)
    assert not (tmp_path / "escape").exists()


def test_a_file_swapped_for_a_link_while_it_is_archived_brings_nothing_of_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox still stopping swaps a workspace file for a link to a host file between the
    backup's look at it and its read: the host file's content never enters the archive."""
    import tarfile

    secret = tmp_path / "host-secret.pem"
    secret.write_text("HOST PRIVATE KEY")
    ws = tmp_path / "study"
    (ws / "results").mkdir(parents=True)
    (ws / "results" / "table.csv").write_text("a,1\n")
    real = bi.open_entry

    def racing(path: Path, dir_fd: int | None) -> int | None:
        if path.name == "table.csv":
            path.unlink()
            path.symlink_to(secret)
        return real(path, dir_fd)

    monkeypatch.setattr(bi, "open_entry", racing)
    bi._tar_folder(ws, tmp_path / "study.tar")
    with tarfile.open(tmp_path / "study.tar") as tar:
        names = tar.getnames()
        contents = b"".join(
            tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isreg()  # type: ignore[union-attr]
        )
    assert b"HOST PRIVATE KEY" not in contents
    assert names == ["study", "study/results"]  # the swapped file is left out
