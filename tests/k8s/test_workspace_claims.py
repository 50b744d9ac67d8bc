"""The retention of workspace claims on Kubernetes (``k8s.workspaces``, ``hdh k8s workspace``).

The Jobs are real manifests, validated against Kubernetes' schema and the restricted Pod
Security Standard; the API server is the stand-in of ``fake_api``, which runs each Job's
container command for real on a local folder standing for the claim. The control plane's
side (marker, audit, spawner, CLI) is the real one."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from click.testing import CliRunner
from kubernetes_asyncio import config

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance import retention as rt
from jupyterlab_hdh.hub.spawner import SpawnRefused
from jupyterlab_hdh.k8s import workspace_job, workspaces
from jupyterlab_hdh.k8s.pod import workspace_claim
from jupyterlab_hdh.k8s.project import project_namespace
from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE
from jupyterlab_hdh.store.models import AuditEvent
from tests.governance.conftest import CONTROLLER
from tests.k8s.fake_api import FakeKubeApi, fake_kube_api, pod
from tests.k8s.pod_security import restricted_violations
from tests.k8s.test_pod_manifests import _pod

SLUG = "cohort-2027"
NS = project_namespace(SLUG)


def _writable(p: Path) -> bool:
    return bool(os.lstat(p).st_mode & 0o222)


@pytest.fixture
def claims(cluster_world, tmp_path: Path) -> Iterator[tuple[Any, FakeKubeApi, Path]]:
    """cluster_world with a workspace claim per project (a local folder), and cohort-2027's
    permit revoked: its claim holds a notebook, a folder, and a link to a file outside."""
    hub = cluster_world
    with fake_kube_api(tmp_path) as api:
        for slug in (SLUG, "notes-only"):
            folder = tmp_path / "claims" / slug
            folder.mkdir(parents=True)
            api.add_claim(project_namespace(slug), workspace_claim(slug), folder)
        ws = tmp_path / "claims" / SLUG
        (ws / "results").mkdir()
        (ws / "analysis.ipynb").write_text("{}")
        (ws / "results" / "table.csv").write_text("a,1\n")
        (tmp_path / "outside.txt").write_text("not the project's")
        (ws / "link").symlink_to(tmp_path / "outside.txt")
        with hub.transaction() as s:
            (permit,) = pj.permits(s, pj.get_project(s, SLUG))
            pj.revoke_permit(s, permit.id, reason="study stopped", actor=CONTROLLER)
        yield hub, api, ws


def _sweep(hub: Any, api: FakeKubeApi) -> list[tuple[str, str]]:
    async def run() -> list[workspaces.ClaimOutcome]:
        client = await config.new_client_from_config(config_file=str(api.kubeconfig))
        try:
            return await workspaces.sweep(hub, workspaces.ClaimJobs(client, poll_s=0.01))
        finally:
            await client.close()

    done = asyncio.run(run())
    return [(o.project, o.action) for o in done]


def _cli(api: FakeKubeApi, hub: Any, *args: str) -> Any:
    argv = ["--data-dir", str(hub.data_dir.root), "k8s", "workspace", *args]
    return CliRunner().invoke(main, [*argv, "--kubeconfig", str(api.kubeconfig)])


def _events(hub: Any, action: str) -> list[dict[str, Any]]:
    with hub.sessions() as s:
        rows = s.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.seq).all()
        return [json.loads(r.details) for r in rows]


def test_the_job_is_valid_restricted_and_runs_as_the_projects_own_uid(cluster_world) -> None:
    with cluster_world.sessions() as s:
        pid = pj.get_project(s, SLUG).id
    job = workspaces.workspace_job(SLUG, pid, "archive")
    kubernetes_validate.validate(job, "1.33", strict=True)
    assert job["metadata"]["namespace"] == NS
    spec = job["spec"]["template"]["spec"]
    assert restricted_violations({"spec": spec}) == {}
    assert spec["securityContext"]["runAsUser"] == HOST_ID_BASE + pid  # the files' owner
    assert spec["securityContext"]["fsGroup"] == HOST_ID_BASE + pid  # as its sandboxes
    assert spec["automountServiceAccountToken"] is False
    assert spec["volumes"] == [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim(SLUG)}}
    ]
    (container,) = spec["containers"]
    assert container["command"][-3:] == [
        "jupyterlab_hdh.k8s.workspace_job",
        "archive",
        "/workspace",
    ]
    # not a sandbox: none of the project's policies lets it reach anything
    assert job["spec"]["template"]["metadata"]["labels"]["hdh.io/role"] == "workspace-retention"
    assert job["spec"]["backoffLimit"] == 0


def test_an_ended_permit_archives_the_claim_once_its_pods_are_gone(claims) -> None:
    hub, api, ws = claims
    api.pods.append(pod("alice", SLUG, "10.0.0.7", deleting=True))  # still stopping
    assert _sweep(hub, api) == [(SLUG, "waiting")]
    assert api.posted_jobs == [] and rt.archive_of(hub.data_dir, SLUG) is None
    assert _writable(ws / "analysis.ipynb")

    api.pods.clear()
    assert _sweep(hub, api) == [(SLUG, "archived")]
    (job,) = api.posted_jobs
    kubernetes_validate.validate(job, "1.33", strict=True)
    assert api.jobs == {}  # deleted once read
    for p in (ws, ws / "results", ws / "analysis.ipynb", ws / "results" / "table.csv"):
        assert not _writable(p), p
    assert _writable(ws.parent.parent / "outside.txt")  # never through the link
    marker = rt.archive_of(hub.data_dir, SLUG)
    assert marker is not None and marker["claim"] == workspace_claim(SLUG)
    assert marker["files"] == 2 and "revoked" in marker["reason"]
    kept = (ws / ".hdh-archive" / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["path"] for line in kept) == [
        "analysis.ipynb",
        "link",
        "results/table.csv",
    ]
    (event,) = _events(hub, "workspace.archive")
    assert event["manifest_sha256"] == marker["manifest_sha256"]
    assert event["claim"] == workspace_claim(SLUG)
    meta = api.claims[(NS, workspace_claim(SLUG))]["metadata"]
    assert meta["labels"]["hdh.io/kept-until"] == marker["until"][:10]
    assert json.loads(meta["annotations"]["hdh.io/archive"]) == marker

    assert _sweep(hub, api) == []  # idempotent
    with hub.transaction() as s:  # the control plane's own sweep leaves a claim alone
        assert rt.sweep(s, hub.data_dir) == []
    listed = CliRunner().invoke(main, ["--data-dir", str(hub.data_dir.root), "workspace", "list"])
    assert f"Kubernetes claim {workspace_claim(SLUG)}" in listed.output
    local = CliRunner().invoke(
        main, ["--data-dir", str(hub.data_dir.root), "workspace", "verify", SLUG]
    )
    assert local.exit_code != 0 and f"hdh k8s workspace verify {SLUG}" in local.output


def test_verify_names_what_changed_and_a_rewritten_manifest(claims) -> None:
    hub, api, ws = claims
    assert _sweep(hub, api) == [(SLUG, "archived")]
    r = _cli(api, hub, "verify", SLUG)
    assert r.exit_code == 0, r.output
    assert "as it was archived" in r.output

    table = ws / "results" / "table.csv"
    table.chmod(0o644)
    table.write_text("a,2\n")
    r = _cli(api, hub, "verify", SLUG)
    assert r.exit_code == 1 and "changed: results/table.csv" in r.output

    # someone rewrites the kept manifest to match: the recorded digest still tells
    redo = workspace_job.manifest(ws, skip={workspace_job.KEPT})[0]
    kept = ws / ".hdh-archive" / "manifest.jsonl"
    (ws / ".hdh-archive").chmod(0o755)
    kept.chmod(0o644)
    kept.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in redo))
    r = _cli(api, hub, "verify", SLUG)
    assert r.exit_code == 1
    assert "the manifest kept in the claim is not the one recorded" in r.output
    assert "changed:" not in r.output


def test_a_renewal_reopens_the_claim_and_servers_wait_until_then(claims) -> None:
    hub, api, ws = claims
    assert _sweep(hub, api) == [(SLUG, "archived")]
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            SLUG,
            members=["alice"],
            datasets=["snds/v2"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=CONTROLLER,
        )
    with pytest.raises(SpawnRefused) as refused:
        _pod(hub, "alice", SLUG)
    assert refused.value.status_code == 503
    assert "reopened for the new permit" in refused.value.jupyterhub_message

    assert _sweep(hub, api) == [(SLUG, "reopened")]
    assert _writable(ws / "analysis.ipynb") and _writable(ws / "results")
    assert not (ws / ".hdh-archive").exists()
    assert rt.archive_of(hub.data_dir, SLUG) is None
    meta = api.claims[(NS, workspace_claim(SLUG))]["metadata"]
    assert "hdh.io/kept-until" not in meta["labels"] and "hdh.io/archive" not in meta["annotations"]
    assert [e["reason"] for e in _events(hub, "workspace.reopen")] == ["an active permit again"]
    assert _pod(hub, "alice", SLUG)["kind"] == "Pod"  # no longer refused


def test_the_claim_is_purged_only_after_its_retention_and_audited_first(claims) -> None:
    hub, api, ws = claims
    assert _sweep(hub, api) == [(SLUG, "archived")]
    r = _cli(api, hub, "purge", SLUG)
    assert r.exit_code == 1 and "not purged before" in r.output
    assert (NS, workspace_claim(SLUG)) in api.claims and ws.is_dir()

    # an archive made with a retention of 0 days is due at once
    with hub.transaction() as s:
        rt.release(s, hub.data_dir, SLUG, actor="test", reason="again")
    (hub.data_dir.root / rt.CONFIG_FILE).write_text("[retention]\ndays = 0\n")
    api.claims[(NS, workspace_claim(SLUG))]["metadata"]["labels"].clear()
    assert _sweep(hub, api) == [(SLUG, "archived")]
    assert _sweep(hub, api) == [(SLUG, "due")]
    local = CliRunner().invoke(
        main, ["--data-dir", str(hub.data_dir.root), "workspace", "purge", SLUG]
    )
    assert local.exit_code != 0 and f"hdh k8s workspace purge {SLUG}" in local.output
    assert ws.is_dir()

    r = _cli(api, hub, "purge", SLUG)
    assert r.exit_code == 0, r.output
    assert (NS, workspace_claim(SLUG)) not in api.claims and not ws.exists()
    assert rt.archive_of(hub.data_dir, SLUG) is None
    (event,) = _events(hub, "workspace.purge")
    assert event["claim"] == workspace_claim(SLUG)
    assert _sweep(hub, api) == []  # no claim any more: nothing to archive


def test_a_failing_job_records_nothing_and_the_sweep_goes_on(claims, tmp_path: Path) -> None:
    hub, api, ws = claims
    notes = tmp_path / "claims" / "notes-only"
    (notes / "n.txt").write_text("x")
    with hub.transaction() as s:
        (permit,) = pj.permits(s, pj.get_project(s, "notes-only"))
        pj.revoke_permit(s, permit.id, reason="done", actor=CONTROLLER)
    ws.rename(tmp_path / "elsewhere")  # the claim's volume is not what the Job finds
    r = _cli(api, hub, "sweep")
    assert r.exit_code == 1
    assert f"{SLUG}\tfailed\tarchive of the workspace of {SLUG} failed" in r.output
    assert "is not the workspace claim's folder" in r.output
    assert "notes-only\tarchived" in r.output  # the others go on
    assert rt.archive_of(hub.data_dir, SLUG) is None
    assert [e["project"] for e in _events(hub, "workspace.archive")] == ["notes-only"]
    assert api.jobs == {}


def _as_owner(uid: int, folder: Path, action: str) -> dict[str, Any]:
    """``workspace_job``'s action run as ``uid`` (not root), in a child process: the files'
    owner, as the Job runs; the child starts in the folder (it cannot walk to it)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read)
            os.chdir(folder)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = {
                "archive": workspace_job.archive,
                "verify": workspace_job.verify,
                "reopen": workspace_job.reopen,
            }[action]
            os.write(write, json.dumps(out(Path("."))).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as fh:
        text = fh.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return dict(json.loads(text))


@pytest.mark.skipif(os.geteuid() != 0, reason="changes owners")
def test_as_the_owner_the_job_reads_what_they_hid_and_names_what_is_not_theirs(
    tmp_path: Path,
) -> None:
    """The claim's root as a volume with fsGroup leaves it (root's, the project's group,
    setgid, group-writable); the project's files, one made by root."""
    uid = HOST_ID_BASE + 7
    ws = tmp_path / "claim"
    (ws / "hidden").mkdir(parents=True)
    (ws / "hidden" / "secret.csv").write_text("x,1\n")
    (ws / "mine.txt").write_text("m")
    (ws / "roots.txt").write_text("r")  # made by someone else (root): not the Job's to change
    os.chown(ws, 0, uid)
    ws.chmod(0o2775)
    for p in (ws / "hidden", ws / "hidden" / "secret.csv", ws / "mine.txt"):
        os.chown(p, uid, uid)
    (ws / "hidden" / "secret.csv").chmod(0o200)  # the owner took read away
    (ws / "hidden").chmod(0o300)  # and listing
    result = _as_owner(uid, ws, "archive")
    assert result["files"] == 3  # the hidden file is in the manifest
    assert result["not_read_only"] == {"paths": [".", "roots.txt"], "count": 2}
    for p in (ws / "hidden", ws / "hidden" / "secret.csv", ws / "mine.txt"):
        assert not stat.S_IMODE(os.lstat(p).st_mode) & 0o222, p
    assert _as_owner(uid, ws, "verify")["changes"] == {"paths": [], "count": 0}
    reopened = _as_owner(uid, ws, "reopen")
    assert reopened["not_writable"] == {"paths": [], "count": 0}  # root's root kept its w
    assert stat.S_IMODE(os.lstat(ws / "mine.txt").st_mode) & 0o200
    assert not (ws / workspace_job.KEPT).exists()
