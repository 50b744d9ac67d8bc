"""The retention of workspace claims on Kubernetes: archived when a project's permit ends.

On one machine the control plane archives a project's workspace folder itself
(:mod:`jupyterlab_hdh.governance.retention`). On Kubernetes the workspace is a claim of
the project's namespace that only a pod of that namespace can mount, so ``hdh k8s
workspace sweep`` (the CronJob ``hdh-retention`` of ``k8s/system/retention.yaml``, with
the control plane's store and data directory) runs, for each project whose workspace must
change, a Job in the project's namespace (:func:`workspace_job`): as the project's uid, no
network, no token, the claim at ``/workspace``, it runs
:mod:`jupyterlab_hdh.k8s.workspace_job` and its last log line is the result.

* a project with no active permit any more, once none of its pods is left: ``archive``
  (read-only, manifest kept in the claim); the control plane records and audits the
  manifest's digest (``workspace.archive``, marker ``workspaces/.archive/<slug>.json``
  with the claim's name) and labels the claim with the date it is kept until;
* a project with an active permit again (a renewal): ``reopen``, audited; until then its
  servers are refused (``ProjectKubeSpawner``);
* past the retention period: ``due``; ``hdh k8s workspace purge SLUG`` audits the purge,
  then deletes the claim (what becomes of the files is the storage class's reclaim
  policy: ``Delete`` for them to go).

``hdh k8s workspace verify SLUG`` compares the claim's files with the kept manifest, and
that manifest with the digest the control plane recorded. Nothing here runs in a sandbox.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from aiohttp import ClientError
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from jupyterlab_hdh.context import Installation
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance import retention
from jupyterlab_hdh.k8s.pod import (
    IMAGE_PYTHON_PREFIX,
    LABEL_PREFIX,
    workspace_claim,
)
from jupyterlab_hdh.k8s.profiles import BASE_IMAGE
from jupyterlab_hdh.k8s.project import PROJECT, ROLE, project_job, project_namespace
from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE, HostIdentity

MOUNT = "/workspace"
JOB_ROLE = "workspace-retention"
#: the claim's label: the day (UTC) its archive is kept until
KEPT_UNTIL_LABEL = f"{LABEL_PREFIX}kept-until"
#: the claim's annotation: the archive's marker, as the control plane recorded it
ARCHIVE_ANNOTATION = f"{LABEL_PREFIX}archive"
#: a project's pods that may still write to its workspace
WRITERS = ("sandbox", "spark-executor")


class ClaimError(HdhError):
    """A workspace claim's Job failed, timed out, or answered what it should not."""


def workspace_job(
    slug: str,
    project_id: int,
    action: str,
    *,
    image: str = BASE_IMAGE,
    host_id_base: int = HOST_ID_BASE,
    deadline_s: int = 3600,
) -> dict[str, Any]:
    """The Job that runs ``action`` (archive | reopen | verify) on project ``slug``'s
    workspace claim, as the project's own uid (the owner of its files)."""
    host = HostIdentity.for_project(project_id, host_id_base)
    return project_job(
        slug,
        {"generateName": f"hdh-workspace-{action}-"},
        {ROLE: JOB_ROLE, PROJECT: slug},
        {
            "name": "workspace",
            "image": image,
            "command": [
                f"{IMAGE_PYTHON_PREFIX}/bin/python",
                "-m",
                "jupyterlab_hdh.k8s.workspace_job",
                action,
                MOUNT,
            ],
            "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
            "volumeMounts": [{"name": "workspace", "mountPath": MOUNT}],
        },
        run_as=(host.uid, host.gid),
        fs_group=host.gid,  # as the project's sandboxes mount the claim
        volumes=[
            {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim(slug)}}
        ],
        activeDeadlineSeconds=deadline_s,
        ttlSecondsAfterFinished=3600,  # the sweep deletes it; this if the sweep died
    )


class ClaimJobs:
    """The Kubernetes side of the retention: claims, the project's pods, and the Jobs."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        image: str = BASE_IMAGE,
        host_id_base: int = HOST_ID_BASE,
        deadline_s: int = 3600,
        poll_s: float = 2.0,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.image = image
        self.host_id_base = host_id_base
        self.deadline_s = deadline_s
        self.poll_s = poll_s

    async def claim(self, slug: str) -> Any | None:
        """The project's workspace claim, or None when there is none (never provisioned,
        or purged)."""
        try:
            return await self.core.read_namespaced_persistent_volume_claim(
                workspace_claim(slug), project_namespace(slug)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def _pods(self, ns: str, selector: str) -> list[dict[str, Any]]:
        # the JSON as it is: a pod's model object refuses what a real API server may omit
        resp: Any = await self.core.list_namespaced_pod(
            ns, label_selector=selector, _preload_content=False
        )
        items = json.loads(await resp.read()).get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    async def writers(self, slug: str) -> list[str]:
        """The project's pods that may still write to its workspace (stopping or not)."""
        pods = await self._pods(project_namespace(slug), f"{PROJECT}={slug}")
        return sorted(
            str(p["metadata"]["name"])
            for p in pods
            if (p["metadata"].get("labels") or {}).get(ROLE) in WRITERS
        )

    async def run(self, slug: str, project_id: int, action: str) -> dict[str, Any]:
        """Run ``action``'s Job to its end and answer its result (its last log line);
        ``ClaimError`` when it fails, runs past its deadline or answers no result."""
        ns = project_namespace(slug)
        job = workspace_job(
            slug, project_id, action, image=self.image, host_id_base=self.host_id_base,
            deadline_s=self.deadline_s,
        )  # fmt: skip
        made = await self.batch.create_namespaced_job(ns, cast(Any, job))  # a manifest dict
        name = made.metadata.name
        try:
            status = await self._finished(ns, name)
            log = await self._log(ns, name)
        finally:
            await self.batch.delete_namespaced_job(name, ns, propagation_policy="Background")
        result = _result(log)
        if status != "succeeded" or result is None or "error" in result:
            why = (result or {}).get("error") or _tail(log) or f"the Job {status}"
            raise ClaimError(f"{action} of the workspace of {slug} failed (Job {name}): {why}")
        return result

    async def _finished(self, ns: str, name: str) -> str:
        until = time.monotonic() + self.deadline_s + 120  # the Job's own deadline, then ours
        while True:
            job = await self.batch.read_namespaced_job(name, ns)  # jobs: get, no /status
            st = job.status
            if st is not None and st.succeeded:
                return "succeeded"
            if st is not None and st.failed:
                return "failed"
            if time.monotonic() > until:
                return "did not finish in time"
            await asyncio.sleep(self.poll_s)

    async def _log(self, ns: str, job: str) -> str:
        pods = await self._pods(ns, f"job-name={job}")
        if not pods:
            return ""
        try:  # the text as it is: the client would decode a log line that is JSON
            resp: Any = await self.core.read_namespaced_pod_log(
                pods[0]["metadata"]["name"], ns, container="workspace", _preload_content=False
            )
            return (await resp.read()).decode("utf-8", "replace")
        except ApiException:
            return ""

    async def mark(self, slug: str, marker: dict[str, Any] | None) -> None:
        """Label (and annotate) the claim with its archive, or take both away."""
        until = marker["until"][:10] if marker is not None else None
        body = {
            "metadata": {
                "labels": {KEPT_UNTIL_LABEL: until},
                "annotations": {
                    ARCHIVE_ANNOTATION: json.dumps(marker, sort_keys=True) if marker else None
                },
            }
        }
        await self.core.patch_namespaced_persistent_volume_claim(
            workspace_claim(slug), project_namespace(slug), body
        )

    async def delete_claim(self, slug: str) -> None:
        try:
            await self.core.delete_namespaced_persistent_volume_claim(
                workspace_claim(slug), project_namespace(slug)
            )
        except ApiException as exc:
            if exc.status != 404:
                raise


def _result(log: str) -> dict[str, Any] | None:
    for line in reversed(log.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None
    return None


def _tail(log: str) -> str:
    return " / ".join(log.strip().splitlines()[-3:])


@dataclass(frozen=True)
class ClaimOutcome:
    project: str
    action: str  # archived | reopened | due | waiting | failed
    detail: str


async def sweep(
    inst: Installation,
    jobs: ClaimJobs,
    *,
    actor: str = "hdh:retention",
    now: datetime | None = None,
) -> list[ClaimOutcome]:
    """Archive the claims of projects whose permit ended, reopen renewed ones, say which
    are due. One project's failure is said and the others go on; idempotent."""
    at = pj.moment(now)
    settings = retention.RetentionSettings.load(inst.data_dir)
    with inst.sessions() as s:
        steps = retention.steps(s, inst.data_dir, claims=True, now=at)
    outcomes = []
    for step in steps:
        try:
            outcome = await _do(inst, jobs, step, actor=actor, at=at, settings=settings)
        except ClaimError as exc:
            outcome = ClaimOutcome(step.project, "failed", str(exc))
        except ApiException as exc:
            outcome = ClaimOutcome(
                step.project, "failed", f"the Kubernetes API answered {exc.status} {exc.reason}"
            )
        except (ClientError, OSError, TimeoutError) as exc:
            outcome = ClaimOutcome(
                step.project, "failed", f"the Kubernetes API did not answer: {exc}"
            )
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


async def _do(
    inst: Installation,
    jobs: ClaimJobs,
    step: retention.Step,
    *,
    actor: str,
    at: datetime,
    settings: retention.RetentionSettings,
) -> ClaimOutcome | None:
    slug = step.project
    if step.action == "due":
        return ClaimOutcome(slug, "due", step.reason)
    if step.action == "reopen":
        if await jobs.claim(slug) is not None:
            await jobs.run(slug, step.project_id, "reopen")
            await jobs.mark(slug, None)
        with inst.transaction() as s:
            retention.release(s, inst.data_dir, slug, actor=actor, reason=step.reason)
        return ClaimOutcome(slug, "reopened", step.reason)
    if await jobs.claim(slug) is None:
        return None  # no workspace on this cluster: nothing to archive
    writers = await jobs.writers(slug)
    if writers:  # stopped by the hub's poll and the guard; archived at a later sweep
        return ClaimOutcome(slug, "waiting", f"its pods are still there: {', '.join(writers)}")
    result = await jobs.run(slug, step.project_id, "archive")
    summary = {k: result[k] for k in ("files", "bytes", "manifest_sha256")}
    left = result.get("not_read_only") or {}
    if left.get("count"):
        summary["not_read_only"] = left
    with inst.transaction() as s:
        marker = retention.keep(
            s, inst.data_dir, slug, summary=summary, actor=actor, reason=step.reason, now=at,
            settings=settings, claim=workspace_claim(slug),
        )  # fmt: skip
    await jobs.mark(slug, marker)
    return ClaimOutcome(slug, "archived", f"until {marker['until']}: {step.reason}")


def _archived(inst: Installation, slug: str) -> dict[str, Any]:
    marker = retention.archive_of(inst.data_dir, slug)
    if marker is None or not retention.on_claim(marker):
        raise retention.RetentionError(f"the workspace claim of {slug!r} is not archived")
    return marker


def _project_id(inst: Installation, slug: str) -> int:
    with inst.sessions() as s:
        return int(pj.get_project(s, slug).id)


async def verify(inst: Installation, jobs: ClaimJobs, slug: str) -> list[str]:
    """What changed in an archived claim since it was archived (empty: nothing): its files
    against the manifest kept in it, and that manifest against the recorded digest."""
    marker = _archived(inst, slug)
    result = await jobs.run(slug, _project_id(inst, slug), "verify")
    changes: list[str] = []
    if result.get("kept_sha256") != marker["manifest_sha256"]:
        recorded = marker["archived_at"]
        changes.append(f"the manifest kept in the claim is not the one recorded on {recorded}")
    named = result.get("changes") or {}
    changes += [str(c) for c in named.get("paths", [])]
    more = int(named.get("count", 0)) - len(named.get("paths", []))
    if more > 0:
        changes.append(f"... and {more} more")
    return changes


async def purge(
    inst: Installation,
    jobs: ClaimJobs,
    slug: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Audit the purge of an archived claim past its retention, then delete the claim."""
    with inst.transaction() as s:
        marker = retention.purge(s, inst.data_dir, slug, actor=actor, now=now, claim=True)
    await jobs.delete_claim(slug)
    retention.forget(inst.data_dir, slug)
    return marker
