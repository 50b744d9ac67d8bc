"""``ProjectKubeSpawner``: a project's sandbox as a pod, for JupyterHub on Kubernetes.

A KubeSpawner whose pod comes from the same plan as the embedded sandbox
(:func:`~jupyterlab_hdh.hub.plan.project_plan`: the active permit and its dataset
versions) through :func:`~jupyterlab_hdh.k8s.pod.pod_plan`. Named server = project slug;
the unnamed server is refused as locally; the person chooses a compute profile among the
configured ones (``user_options["profile"]``, default ``default_profile``). The pod's
environment is the sandbox's and nothing of JupyterHub's (no API token enters a sandbox),
and its command is the sandbox's server with no JupyterHub arguments. ``poll()`` re-checks
the permit as locally, and stops the pod when it no longer lets the person in.

The guard stays in the path: once the pod is ready, ``start`` answers the guard's URL
(``guard_url``), never the pod's, so the proxy sends every request of the server to the
guard, which finds the pod through the Kubernetes API (:mod:`jupyterlab_hdh.k8s.guard`).
The pod's way to the control plane is the guard's API bridge, whose address the hub
resolves at each spawn (``bridge_url``; the pod itself has no DNS).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Bool, Dict, Integer, List, Unicode

from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.hub.plan import project_plan
from jupyterlab_hdh.hub.spawner import SpawnRefused
from jupyterlab_hdh.hub.store import hdh_store, in_thread
from jupyterlab_hdh.k8s.pod import IMAGE_PYTHON_PREFIX, PodPlan, pod_plan
from jupyterlab_hdh.k8s.profiles import (
    DEFAULT_PROFILES,
    ComputeProfile,
    ProfileError,
    parse_profiles,
    profile_named,
)
from jupyterlab_hdh.k8s.project import POLICY_VERSION, PROVISIONED_LABEL, project_namespace
from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE, WORKSPACE, SandboxSpec


class ProjectKubeSpawner(KubeSpawner):  # type: ignore[misc]
    """Spawn the project's sandbox as a pod (named server = project slug)."""

    data_dir = Unicode(help="The HDH data directory of the control plane's store").tag(config=True)
    host_id_base = Integer(
        HOST_ID_BASE,
        help="Project <id>'s pods run as uid/gid base + id; the base is the data group",
    ).tag(config=True)
    profiles = List(
        Dict(),
        help="Compute profiles (name, display_name, image, cpu_limit, cpu_guarantee, mem_limit,"
        " mem_guarantee, gpus, node_selector, tolerations, spark); empty: the defaults",
    ).tag(config=True)
    default_profile = Unicode("cpu", help="The profile of a spawn that names none").tag(config=True)
    guard_url = Unicode(
        help="The guard's URL (hdh-guard's port 8000): the proxy routes every project server"
        " to it, never to the pod"
    ).tag(config=True)
    bridge_url = Unicode(
        "",
        help="The guard's API bridge (hdh-guard's port 8090); its host is resolved by the hub"
        " at each spawn, since a pod has no DNS (empty: sandboxes reach no control plane)",
    ).tag(config=True)

    _hdh_env: dict[str, str] | None = None

    enable_user_namespaces = Bool(
        True, help="Each project's pods run in its own namespace hdh-p-<slug> (always)"
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.project:
            self.namespace = project_namespace(self.project)

    @property
    def project(self) -> str:
        return str(self.name or "")

    async def _ensure_namespace(self) -> None:
        """Check the project's namespace was provisioned with HDH's policies (never create
        it: a namespace without them would be a sandbox with the network open)."""
        slug, ns = self.project, self.namespace
        how = f"an operator provisions it with `hdh k8s project {slug} | kubectl apply -f -`"
        try:
            found = await asyncio.wait_for(
                self.api.read_namespace(ns), self.k8s_api_request_timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                raise SpawnRefused(
                    f"project {slug} has no namespace {ns} on this cluster: {how}", 503
                ) from None
            raise
        labels = (found.metadata.labels or {}) if found.metadata is not None else {}
        version = labels.get(PROVISIONED_LABEL)
        if version != POLICY_VERSION:
            made = f"policies v{version}" if version else "not by HDH"
            raise SpawnRefused(
                f"namespace {ns} of project {slug} was provisioned {made}, not with this"
                f" HDH's policies v{POLICY_VERSION}: {how}",
                503,
            )

    def compute_profiles(self) -> tuple[ComputeProfile, ...]:
        return parse_profiles(self.profiles) if self.profiles else DEFAULT_PROFILES

    def chosen_profile(self) -> ComputeProfile:
        name = str((self.user_options or {}).get("profile") or self.default_profile)
        try:
            return profile_named(self.compute_profiles(), name)
        except ProfileError as exc:
            raise SpawnRefused(str(exc), 400) from None

    def bridge_address(self) -> str:
        """``bridge_url`` with its host as an address (``SpawnRefused`` when it has none)."""
        if not self.bridge_url:
            return ""
        parts = urlsplit(self.bridge_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise SpawnRefused(
                f"the hub is misconfigured: bridge_url {self.bridge_url!r} is not"
                " http://<host>:<port>",
                500,
            )
        try:
            found = socket.getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise SpawnRefused(
                f"the guard's API bridge {parts.hostname} cannot be resolved: {exc}", 503
            ) from None
        ip = str(found[0][4][0])
        return f"http://{f'[{ip}]' if ':' in ip else ip}:{parts.port}"

    def hdh_pod_plan(self) -> PodPlan:
        """The pod of this user's server of this project (``SpawnRefused``: why not)."""
        if not self.project:
            raise SpawnRefused(
                "HDH has no default server: each project is its own server."
                f" Open /hub/spawn/{self.user.name}/<project> (the project's slug)"
            )
        profile = self.chosen_profile()
        try:
            plan = project_plan(hdh_store(self.data_dir), str(self.user.name), self.project)
        except projects.PermitError as exc:
            raise SpawnRefused(
                f"{self.user.name} may not open project {self.project}: {exc}"
            ) from None
        spec = SandboxSpec(
            project=self.project,
            user=str(self.user.name),
            workspace=Path(WORKSPACE),  # a claim in the pod, not a host folder
            runtime_dir=Path("/nonexistent"),  # no supervisor folder on Kubernetes
            mounts=plan.mounts,
            base_url=self.server.base_url if self.server is not None else "",
            python_prefix=Path(IMAGE_PYTHON_PREFIX),
            python_base_prefix=Path(IMAGE_PYTHON_PREFIX),
            host=plan.host_identity(self.host_id_base),
        )
        return pod_plan(spec, profile, self.bridge_address())

    async def get_pod_manifest(self) -> Any:
        plan = await in_thread(self.hdh_pod_plan)
        plan.apply(self)
        # hdh.spark() sizes the JVM's heap from the limit, in bytes as KubeSpawner read it
        self._hdh_env = {**plan.env, "HDH_MEMORY_LIMIT": str(int(self.mem_limit))}
        return await super().get_pod_manifest()

    async def _start(self) -> str:
        """Start the pod (KubeSpawner waits until it is ready), then answer the guard's URL:
        the proxy sends this server's traffic to the guard, which finds the pod itself."""
        if not self.guard_url:
            raise SpawnRefused(
                "the hub is misconfigured: ProjectKubeSpawner.guard_url is not set", 500
            )
        await super()._start()
        return str(self.guard_url)

    def get_env(self) -> dict[str, str]:
        """The sandbox's environment only: no JupyterHub token or URL enters the pod."""
        return dict(self._hdh_env or {})

    def get_args(self) -> list[str]:
        return []  # the command is the sandbox's server, whole (pod.pod_command)

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None or not self.project:
            return status  # type: ignore[no-any-return]

        def problem() -> str | None:
            with hdh_store(self.data_dir).sessions() as s:
                return projects.access_problem(s, str(self.user.name), self.project)

        reason = await in_thread(problem)
        if reason is not None:
            self.log.warning("stopping %s's pod of %s: %s", self.user.name, self.project, reason)
            await self.stop()
            return 1
        return None
