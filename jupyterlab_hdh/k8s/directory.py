"""Where a project's sandbox pods are: the guard's view of the Kubernetes API.

On one machine the guard finds a sandbox by its Unix socket; on a cluster it asks the
Kubernetes API, read-only, for the pods of the project's namespace (``hdh-p-<slug>``):
:class:`PodDirectory`.

* :meth:`PodDirectory.server` — the address of ``user``'s running, ready sandbox of
  ``project`` (where the guard forwards that person's requests), with the pod's uid as the
  identity of the connections made to it and the server token the spawner gave the pod
  (``guard.upstream.TcpUpstream``: the pod's server answers no one without it);
* :meth:`PodDirectory.sandbox_at` — whose sandbox of ``project`` calls from an address (the
  API bridge's caller is the pod whose IP it comes from: no secret enters a sandbox).

A pod counts only when it carries HDH's sandbox label, the project's label and the
person's annotation (:data:`USER_ANNOTATION`, the exact account name), and is running and
not being deleted. Only the hub's service account and operators create pods in a project
namespace (a sandbox has no API rights at all), so these marks are the spawner's.

Found servers are remembered for ``ttl`` seconds (a page load makes dozens of requests);
a pod's address that is no longer found is forgotten at once, and the bridge's question
is never answered from memory (a pod's address may be given to the next pod).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jupyterlab_hdh.guard.upstream import TcpUpstream
from jupyterlab_hdh.k8s.pod import SERVER_PORT, SERVER_TOKEN_ENV, USER_ANNOTATION
from jupyterlab_hdh.k8s.project import PROJECT, ROLE, project_namespace

log = logging.getLogger("hdh.guard")

#: (namespace, label selector, field selector) → the pods' JSON objects
ListPods = Callable[[str, str, str], Awaitable[list[dict[str, Any]]]]


class DirectoryError(Exception):
    """The Kubernetes API could not be asked (or refused): nothing is forwarded."""


@dataclass(frozen=True)
class SandboxPod:
    """A running sandbox pod, as HDH's spawner marked it."""

    user: str
    project: str
    ip: str
    uid: str
    ready: bool
    token: str = field(default="", repr=False)


def sandbox_pod(pod: dict[str, Any]) -> SandboxPod | None:
    """The sandbox in a pod's JSON object; None unless it is a running HDH sandbox."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    user = (meta.get("annotations") or {}).get(USER_ANNOTATION)
    project = labels.get(PROJECT)
    ip = status.get("podIP")
    if (
        labels.get(ROLE) != "sandbox"
        or not user
        or not project
        or not ip
        or not meta.get("uid")
        or meta.get("deletionTimestamp")
        or status.get("phase") != "Running"
    ):
        return None
    containers = status.get("containerStatuses") or []
    ready = bool(containers) and all(c.get("ready") for c in containers)
    return SandboxPod(str(user), str(project), str(ip), str(meta["uid"]), ready, _token(pod))


def _token(pod: dict[str, Any]) -> str:
    """The server token the spawner put in the pod's environment (``SERVER_TOKEN_ENV``)."""
    for c in (pod.get("spec") or {}).get("containers") or []:
        for e in c.get("env") or []:
            if e.get("name") == SERVER_TOKEN_ENV and isinstance(e.get("value"), str):
                return str(e["value"])
    return ""


def sandbox_selector(project: str) -> str:
    return f"{ROLE}=sandbox,{PROJECT}={project}"


class PodDirectory:
    """The guard's questions about sandbox pods (see the module's docstring)."""

    def __init__(
        self,
        list_pods: ListPods,
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        port: int = SERVER_PORT,
    ) -> None:
        self._list = list_pods
        self.ttl = ttl
        self.port = port
        self._clock = clock
        self._found: dict[tuple[str, str], tuple[float, TcpUpstream]] = {}

    async def _pods(self, project: str, fields: str = "") -> list[SandboxPod]:
        items = await self._list(project_namespace(project), sandbox_selector(project), fields)
        pods = [p for p in map(sandbox_pod, items) if p is not None]
        return [p for p in pods if p.project == project]

    async def server(self, user: str, project: str) -> TcpUpstream | None:
        """Where ``user``'s sandbox of ``project`` listens (None: no running, ready one)."""
        key = (user, project)
        hit = self._found.get(key)
        if hit is not None and self._clock() - hit[0] < self.ttl:
            return hit[1]
        self._found.pop(key, None)
        try:
            pods = [p for p in await self._pods(project) if p.user == user and p.ready]
        except DirectoryError as exc:
            log.warning("cannot find %s's sandbox of %s: %s", user, project, exc)
            return None
        if len(pods) != 1:
            if pods:  # never guess between two servers of one person
                log.error("%d sandbox pods of %s for %s: none is used", len(pods), project, user)
            return None
        target = TcpUpstream(pods[0].ip, self.port, pods[0].uid, pods[0].token)
        self._found[key] = (self._clock(), target)
        return target

    async def sandbox_at(self, project: str, ip: str) -> str | None:
        """The person whose running sandbox of ``project`` has address ``ip`` (None: none)."""
        try:
            pods = await self._pods(project, f"status.podIP={ip}")
        except DirectoryError as exc:
            log.warning("cannot tell whose sandbox of %s is at %s: %s", project, ip, exc)
            return None
        pods = [p for p in pods if p.ip == ip]
        return pods[0].user if len(pods) == 1 else None


def api_pod_lister(api_client: Any, request_timeout: float = 10.0) -> ListPods:
    """``list_pods`` through a kubernetes_asyncio ``ApiClient`` (read-only: list pods)."""
    from aiohttp import ClientError
    from kubernetes_asyncio.client import CoreV1Api
    from kubernetes_asyncio.client.rest import ApiException

    core = CoreV1Api(api_client)

    async def list_pods(namespace: str, labels: str, fields: str) -> list[dict[str, Any]]:
        try:
            query: dict[str, Any] = {"label_selector": labels}
            if fields:
                query["field_selector"] = fields
            # the JSON as it is (no model objects): _preload_content=False gives the response
            resp: Any = await core.list_namespaced_pod(
                namespace, _preload_content=False, _request_timeout=request_timeout, **query
            )
            body = json.loads(await resp.read())
        except ApiException as exc:
            if exc.status == 404:
                return []
            if exc.status == 403:
                raise DirectoryError(
                    f"the guard may not list the pods of {namespace} (the project's"
                    " RoleBinding hdh-guard is missing: `hdh k8s project` makes it)"
                ) from None
            raise DirectoryError(f"the Kubernetes API answered {exc.status}") from None
        except (ClientError, OSError, TimeoutError, ValueError) as exc:
            raise DirectoryError(f"the Kubernetes API did not answer: {exc}") from None
        items = body.get("items") if isinstance(body, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    return list_pods
