"""A stand-in for the Kubernetes API calls the guard and the retention sweep make.

No API server runs here, so this small Tornado app answers ``GET
/api/v1/namespaces/<ns>/pods`` as the real one does for what the guard sends (equality
label selectors, the ``status.podIP`` field selector, a ``PodList`` of JSON objects), or a
chosen error status; and, for ``k8s.workspaces``, a claim's get/patch/delete and a Job's
create/status/delete and its pod's log: a Job "runs" its container's command for real on
this machine, the claim's local folder standing for the mounted claim. The guard's and
the sweep's own code, kubernetes_asyncio's client and its kubeconfig loading are the real
ones. ``pod()`` builds a pod as ``ProjectKubeSpawner`` marks it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado import httpserver, web

from jupyterlab_hdh.hub.config import free_port
from jupyterlab_hdh.k8s.pod import USER_ANNOTATION
from jupyterlab_hdh.k8s.project import PROJECT, ROLE, project_namespace

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "http://127.0.0.1:{port}"}}
users:
- name: guard
  user: {{token: guard-service-account-token}}
contexts:
- name: fake
  context: {{cluster: fake, user: guard}}
current-context: fake
"""


def pod(
    user: str,
    project: str,
    ip: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    role: str = "sandbox",
    deleting: bool = False,
    uid: str | None = None,
    token: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"jupyter-{user}--{project}",
        "namespace": project_namespace(project),
        "uid": uid or str(uuid.uuid4()),
        "labels": {ROLE: role, PROJECT: project},
        "annotations": {USER_ANNOTATION: user},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-05T03:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": "notebook", "env": [{"name": "JUPYTER_TOKEN", "value": token}]}]
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "containerStatuses": [{"name": "notebook", "ready": ready}],
        },
    }


def _matches(p: dict[str, Any], labels: str, fields: str) -> bool:
    have = p["metadata"].get("labels") or {}
    for term in filter(None, labels.split(",")):
        k, _, v = term.partition("=")
        if have.get(k) != v:
            return False
    for term in filter(None, fields.split(",")):
        k, _, v = term.partition("=")
        if k != "status.podIP":
            raise ValueError(f"field selector {k} is not supported here")
        if p["status"].get("podIP") != v:
            return False
    return True


@dataclass
class FakeKubeApi:
    port: int
    kubeconfig: Path
    pods: list[dict[str, Any]] = field(default_factory=list)
    #: answer every request with this status (403: no RoleBinding, 500…); 0: answer
    refuse: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    #: claims by (namespace, name): their object, and the local folder standing for them
    claims: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    claim_dirs: dict[tuple[str, str], Path] = field(default_factory=dict)
    #: Jobs as posted (every one, in order) and those still there, by (namespace, name)
    posted_jobs: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)

    def add_claim(self, namespace: str, name: str, folder: Path) -> None:
        self.claims[(namespace, name)] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "labels": {}, "annotations": {}},
            "spec": {"accessModes": ["ReadWriteMany"]},
        }
        self.claim_dirs[(namespace, name)] = folder


class _Pods(web.RequestHandler):
    def initialize(self, api: FakeKubeApi) -> None:
        self.api = api

    def get(self, namespace: str) -> None:
        api = self.api
        labels = self.get_query_argument("labelSelector", "")
        fields = self.get_query_argument("fieldSelector", "")
        api.requests.append(
            {
                "namespace": namespace,
                "labels": labels,
                "fields": fields,
                "authorization": self.request.headers.get("Authorization", ""),
            }
        )
        if api.refuse:
            self.set_status(api.refuse)
            self.finish({"kind": "Status", "code": api.refuse, "message": "refused"})
            return
        items = [
            p
            for p in list(api.pods)
            if p["metadata"]["namespace"] == namespace and _matches(p, labels, fields)
        ]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"kind": "PodList", "apiVersion": "v1", "items": items}))


def _run_job(api: FakeKubeApi, ns: str, job: dict[str, Any]) -> tuple[bool, str]:
    """What the Job's pod does, for real on this machine: its container's command with this
    Python, each claim mounted where the pod mounts it (the claim's local folder)."""
    pod_spec = job["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    where = {
        m["mountPath"]: v["persistentVolumeClaim"]["claimName"]
        for m in container.get("volumeMounts", [])
        for v in pod_spec.get("volumes", [])
        if v["name"] == m["name"] and "persistentVolumeClaim" in v
    }
    argv = [sys.executable, *container["command"][1:]]
    for i, arg in enumerate(argv):
        if arg in where:
            folder = api.claim_dirs.get((ns, where[arg]))
            if folder is None:
                return False, f"claim {where[arg]} not found"
            argv[i] = str(folder)
    env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    return done.returncode == 0, done.stdout + done.stderr


class _Jobs(web.RequestHandler):
    def initialize(self, api: FakeKubeApi) -> None:
        self.api = api

    def post(self, ns: str) -> None:
        job = json.loads(self.request.body)
        self.api.posted_jobs.append(job)
        name = job["metadata"].get("name") or job["metadata"]["generateName"] + uuid.uuid4().hex[:5]
        job["metadata"]["name"] = name
        ok, log = _run_job(self.api, ns, job)
        job["status"] = {"succeeded": 1} if ok else {"failed": 1}
        pod_name = f"{name}-pod"
        self.api.jobs[(ns, name)] = job
        self.api.logs[(ns, pod_name)] = log
        self.api.pods.append(
            {
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "uid": str(uuid.uuid4()),
                    "labels": {**job["spec"]["template"]["metadata"]["labels"], "job-name": name},
                },
                "spec": job["spec"]["template"]["spec"],
                "status": {"phase": "Succeeded" if ok else "Failed"},
            }
        )
        self.set_status(201)
        self.finish(job)


class _Job(web.RequestHandler):
    def initialize(self, api: FakeKubeApi) -> None:
        self.api = api

    def get(self, ns: str, name: str) -> None:
        job = self.api.jobs.get((ns, name))
        if job is None:
            self.set_status(404)
            self.finish({"kind": "Status", "code": 404, "message": "not found"})
            return
        self.finish(job)

    def delete(self, ns: str, name: str) -> None:
        self.api.jobs.pop((ns, name), None)
        self.api.pods[:] = [
            p for p in self.api.pods if (p["metadata"].get("labels") or {}).get("job-name") != name
        ]
        self.finish({"kind": "Status", "status": "Success"})


class _Log(web.RequestHandler):
    def initialize(self, api: FakeKubeApi) -> None:
        self.api = api

    def get(self, ns: str, pod_name: str) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish(self.api.logs.get((ns, pod_name), ""))


class _Claim(web.RequestHandler):
    def initialize(self, api: FakeKubeApi) -> None:
        self.api = api

    def _found(self, ns: str, name: str) -> dict[str, Any] | None:
        claim = self.api.claims.get((ns, name))
        if claim is None:
            self.set_status(404)
            self.finish({"kind": "Status", "code": 404, "message": "not found"})
        return claim

    def get(self, ns: str, name: str) -> None:
        claim = self._found(ns, name)
        if claim is not None:
            self.finish(claim)

    def patch(self, ns: str, name: str) -> None:
        claim = self._found(ns, name)
        if claim is None:
            return
        meta = json.loads(self.request.body).get("metadata", {})
        for key in ("labels", "annotations"):  # a merge patch: null takes a key away
            for k, v in (meta.get(key) or {}).items():
                if v is None:
                    claim["metadata"][key].pop(k, None)
                else:
                    claim["metadata"][key][k] = v
        self.finish(claim)

    def delete(self, ns: str, name: str) -> None:
        claim = self._found(ns, name)
        if claim is not None:
            del self.api.claims[(ns, name)]
            folder = self.api.claim_dirs.pop((ns, name))
            shutil.rmtree(folder)  # as a reclaim policy of Delete
            self.finish(claim)


@contextmanager
def serving(app: web.Application, port: int) -> Iterator[None]:
    """``app`` on ``127.0.0.1:port`` in its own thread and loop, for the block's duration."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = httpserver.HTTPServer(app)
        server.listen(port, "127.0.0.1")
        holder["server"] = server
        loop.call_soon(ready.set)
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield
    finally:

        def stop() -> None:
            holder["server"].stop()
            loop.stop()

        loop.call_soon_threadsafe(stop)
        t.join(10)


@contextmanager
def fake_kube_api(tmp: Path) -> Iterator[FakeKubeApi]:
    port = free_port()
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=port))
    api = FakeKubeApi(port, kubeconfig)
    app = web.Application(
        [
            (r"/api/v1/namespaces/([^/]+)/pods", _Pods, {"api": api}),
            (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", _Log, {"api": api}),
            (r"/api/v1/namespaces/([^/]+)/persistentvolumeclaims/([^/]+)", _Claim, {"api": api}),
            (r"/apis/batch/v1/namespaces/([^/]+)/jobs", _Jobs, {"api": api}),
            (r"/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)(?:/status)?", _Job, {"api": api}),
        ]
    )
    with serving(app, port):
        yield api
