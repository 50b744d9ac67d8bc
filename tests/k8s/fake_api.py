"""A stand-in for the one Kubernetes API call the guard makes: listing a namespace's pods.

No API server runs here, so this small Tornado app answers ``GET
/api/v1/namespaces/<ns>/pods`` as the real one does for what the guard sends (equality
label selectors, the ``status.podIP`` field selector, a ``PodList`` of JSON objects), or a
chosen error status. The guard's own code, kubernetes_asyncio's client and its kubeconfig
loading are the real ones. ``pod()`` builds a pod as ``ProjectKubeSpawner`` marks it.
"""

from __future__ import annotations

import asyncio
import json
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
    app = web.Application([(r"/api/v1/namespaces/([^/]+)/pods", _Pods, {"api": api})])
    with serving(app, port):
        yield api
