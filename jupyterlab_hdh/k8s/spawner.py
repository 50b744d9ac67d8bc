"""``ProjectKubeSpawner``: a project's sandbox as a pod, for JupyterHub on Kubernetes.

A KubeSpawner whose pod comes from the same plan as the embedded sandbox
(:func:`~jupyterlab_hdh.hub.plan.project_plan`: the active permit and its dataset
versions) through :func:`~jupyterlab_hdh.k8s.pod.pod_plan`. Named server = project slug;
the unnamed server is refused as locally; the person chooses a compute profile among the
configured ones (``user_options["profile"]``, default ``default_profile``), unless the
permit names one: then that one, and no other (the access desk decides it). The pod's
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
import contextlib
import secrets
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Bool, Dict, Integer, List, Unicode

from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.hub.plan import project_plan
from jupyterlab_hdh.hub.spawner import SpawnRefused
from jupyterlab_hdh.hub.store import hdh_store, in_thread
from jupyterlab_hdh.k8s.pod import IMAGE_PYTHON_PREFIX, PodPlan, pod_plan, review_claim
from jupyterlab_hdh.k8s.profiles import (
    DEFAULT_PROFILES,
    REVIEW_PROFILE,
    ComputeProfile,
    ProfileError,
    parse_profiles,
    profile_named,
)
from jupyterlab_hdh.k8s.project import POLICY_VERSION, PROVISIONED_LABEL, project_namespace
from jupyterlab_hdh.k8s.spark import SparkCluster
from jupyterlab_hdh.sandbox.spec import (
    HOST_ID_BASE,
    REVIEW_ID_BASE,
    WORKSPACE,
    HostIdentity,
    SandboxConfigError,
    SandboxSpec,
    check_id_bases,
)


class ProjectKubeSpawner(KubeSpawner):  # type: ignore[misc]
    """Spawn the project's sandbox as a pod (named server = project slug)."""

    data_dir = Unicode(help="The HDH data directory of the control plane's store").tag(config=True)
    host_id_base = Integer(
        HOST_ID_BASE,
        help="Project <id>'s pods run as uid/gid base + id; the base is the data group",
    ).tag(config=True)
    review_id_base = Integer(
        REVIEW_ID_BASE,
        help="User <id>'s review workspace runs as uid/gid base + id, with no data group",
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

    _hdh_env: dict[str, Any] | None = None
    _spark_env: dict[str, Any] = {}  # noqa: RUF012 - replaced, never mutated
    #: this server's Spark pods (kept in the hub's state: deleted even after a hub restart)
    hdh_spark_pods: list[str] = []  # noqa: RUF012 - replaced, never mutated

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

    def chosen_profile(self, permitted: str | None = None) -> ComputeProfile:
        """The profile asked for (``user_options["profile"]``), else the one the permit names
        (``permitted``), else ``default_profile``; a permit that names one allows no other."""
        asked = (self.user_options or {}).get("profile")
        name = str(asked or permitted or self.default_profile)
        if permitted is not None and name != permitted:
            raise SpawnRefused(
                f"the permit of project {self.project} allows the compute profile"
                f" {permitted!r}, not {name!r}: its lead applies for an amendment to change it",
                403,
            )
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

    def hdh_spec(self) -> tuple[SandboxSpec, ComputeProfile]:
        """This user's sandbox of this project and its profile (``SpawnRefused``: why not)."""
        if not self.project:
            raise SpawnRefused(
                "HDH has no default server: each project is its own server."
                f" Open /hub/spawn/{self.user.name}/<project> (the project's slug)"
            )
        if self.is_review:
            return self._sandbox_spec((), self.reviewer_identity()), REVIEW_PROFILE
        try:
            plan = project_plan(hdh_store(self.data_dir), str(self.user.name), self.project)
        except projects.PermitError as exc:
            raise SpawnRefused(
                f"{self.user.name} may not open project {self.project}: {exc}"
            ) from None
        self._refuse_archived()
        profile = self.chosen_profile(plan.compute_profile)
        host = plan.host_identity(self.host_id_base)
        return self._sandbox_spec(plan.mounts, host, plan.linkage), profile

    def _refuse_archived(self) -> None:
        """A renewed project's workspace claim is still read-only until the retention sweep
        reopens it (``k8s.workspaces``, within minutes of the new permit): refused until
        then, rather than a server whose workspace cannot be written."""
        from jupyterlab_hdh.governance import retention

        marker = retention.archive_of(hdh_store(self.data_dir).data_dir, self.project)
        if marker is not None and retention.on_claim(marker):
            raise SpawnRefused(
                f"the workspace of project {self.project} was archived when its permit ended"
                f" ({marker['archived_at']}); it is reopened for the new permit by the next"
                " retention sweep (hdh-retention, every few minutes): try again shortly",
                503,
            )

    def _sandbox_spec(
        self, mounts: tuple[Any, ...], host: HostIdentity, linkage: Path | None = None
    ) -> SandboxSpec:
        return SandboxSpec(
            project=self.project,
            user=str(self.user.name),
            workspace=Path(WORKSPACE),  # a claim in the pod, not a host folder
            runtime_dir=Path("/nonexistent"),  # no supervisor folder on Kubernetes
            mounts=mounts,
            base_url=self.server.base_url if self.server is not None else "",
            python_prefix=Path(IMAGE_PYTHON_PREFIX),
            python_base_prefix=Path(IMAGE_PYTHON_PREFIX),
            host=host,
            linkage=linkage,
        )

    @property
    def is_review(self) -> bool:
        """A reviewer's own workspace (server ``review``), not a project's pod."""
        return self.project == projects.REVIEW_WORKSPACE

    def reviewer_identity(self) -> HostIdentity:
        """The reviewer's own ids (``review_id_base + user id``, no data group), once
        :func:`~jupyterlab_hdh.governance.projects.review_problem` lets them in."""
        from jupyterlab_hdh.governance import accounts

        try:
            check_id_bases(self.host_id_base, self.review_id_base)
        except SandboxConfigError as exc:
            raise SpawnRefused(f"the hub is misconfigured: {exc}", 500) from None
        with hdh_store(self.data_dir).sessions() as s:
            problem = projects.review_problem(s, str(self.user.name))
            if problem is not None:
                raise SpawnRefused(problem)
            user_id = accounts.get_user(s, str(self.user.name)).id
        return HostIdentity.for_reviewer(user_id, self.review_id_base)

    def hdh_pod_plan(self) -> PodPlan:
        """The pod of this user's server of this project (``SpawnRefused``: why not)."""
        spec, profile = self.hdh_spec()
        token = secrets.token_hex(32)  # a new one at each start: the guard reads it
        if self.is_review:  # no bridge (it acts as no one), the reviewer's own claim
            return pod_plan(spec, profile, own_claim=review_claim(spec.user), server_token=token)
        return pod_plan(spec, profile, self.bridge_address(), server_token=token)

    def spark_cluster(self) -> SparkCluster | None:
        """The Spark pods this server starts with (None: its profile has no executors)."""
        spec, profile = self.hdh_spec()
        return SparkCluster(spec, profile, self.pod_name) if profile.spark else None

    async def get_pod_manifest(self) -> Any:
        plan = await in_thread(self.hdh_pod_plan)
        plan.apply(self)
        # hdh.spark() sizes the JVM's heap from the limit, in bytes as KubeSpawner read it
        self._hdh_env = {
            **plan.env,
            "HDH_MEMORY_LIMIT": str(int(self.mem_limit)),
            **self._spark_env,
        }
        return await super().get_pod_manifest()

    async def _start(self) -> str:
        """Start the pod (KubeSpawner waits until it is ready), then answer the guard's URL:
        the proxy sends this server's traffic to the guard, which finds the pod itself.

        With a Spark profile, Spark's master pod first (the sandbox is told its address),
        then the sandbox, then the workers; any failure deletes the Spark pods made."""
        if not self.guard_url:
            raise SpawnRefused(
                "the hub is misconfigured: ProjectKubeSpawner.guard_url is not set", 500
            )
        self._spark_env = {}
        cluster = await in_thread(self.spark_cluster)
        try:
            if cluster is not None:
                master_ip = await self._start_spark_master(cluster)
                self._spark_env = cluster.driver_env(master_ip)
            await super()._start()
            if cluster is not None:
                for body in cluster.worker_pods(master_ip):
                    await self._create_spark_pod(cluster.namespace, body)
        except BaseException:
            await self.delete_spark_pods()
            raise
        return str(self.guard_url)

    def _get_pod_url(self, pod: Any) -> str:
        """The server's address as the hub records it: always the guard's, never the pod's.
        KubeSpawner's ``poll`` compares it with the recorded one and, if they differ, moves
        the proxy's route to what this answers: the pod's address would take the guard out
        of the path."""
        return str(self.guard_url)

    # -- Spark's pods (k8s/spark.py) ------------------------------------------

    async def _create_spark_pod(self, namespace: str, body: dict[str, Any]) -> None:
        """Create one of this server's Spark pods. A pod of that name left by an earlier
        start (a hub that died mid-way, a failed deletion) is deleted first, then made anew."""
        name = body["metadata"]["name"]
        for attempt in range(2):
            try:
                await asyncio.wait_for(
                    self.api.create_namespaced_pod(namespace, body), self.k8s_api_request_timeout
                )
                break
            except ApiException as exc:
                if exc.status != 409 or attempt:
                    if exc.status == 409:
                        raise SpawnRefused(
                            f"Spark's pod {name} of an earlier start of this server is still"
                            " being deleted: start it again in a minute",
                            409,
                        ) from None
                    raise
                self.log.warning("deleting %s, left by an earlier start of this server", name)
                await self._delete_spark_pod(name, namespace, grace=0)
                await self._gone(name, namespace)
        self.hdh_spark_pods = [*self.hdh_spark_pods, name]

    async def _gone(self, name: str, namespace: str) -> None:
        """Wait until the pod ``name`` no longer exists (at most ``start_timeout``)."""

        async def absent() -> bool:
            try:
                await self.api.read_namespaced_pod(name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False

        with contextlib.suppress(TimeoutError):
            await exponential_backoff(absent, f"{name} was not deleted", timeout=self.start_timeout)

    async def _start_spark_master(self, cluster: SparkCluster) -> str:
        """Create Spark's master pod and wait for its address (``SpawnRefused`` on time out)."""
        await self._create_spark_pod(cluster.namespace, cluster.master_pod())
        found: dict[str, str] = {}

        async def running() -> bool:
            pod = await self.api.read_namespaced_pod(cluster.master_name, cluster.namespace)
            status = pod.status
            if status is not None and status.phase == "Running" and status.pod_ip:
                found["ip"] = str(status.pod_ip)
                return True
            return False

        try:
            await exponential_backoff(
                running,
                f"Spark's master pod {cluster.master_name} did not start",
                timeout=self.start_timeout,
            )
        except TimeoutError:
            raise SpawnRefused(
                f"Spark's master pod {cluster.master_name} did not start within"
                f" {self.start_timeout} s (kubectl -n {cluster.namespace} describe pod"
                f" {cluster.master_name})",
                503,
            ) from None
        return found["ip"]

    async def delete_spark_pods(self) -> None:
        """Delete this server's Spark pods (those already gone are fine)."""
        names, self.hdh_spark_pods = self.hdh_spark_pods, []
        for name in names:
            if not await self._delete_spark_pod(name, self.namespace):
                self.hdh_spark_pods = [*self.hdh_spark_pods, name]  # tried again at stop

    async def _delete_spark_pod(self, name: str, namespace: str, grace: int = 5) -> bool:
        """Delete one pod; True when it is gone or going."""
        try:
            await asyncio.wait_for(
                self.api.delete_namespaced_pod(name, namespace, grace_period_seconds=grace),
                self.k8s_api_request_timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                self.log.warning("cannot delete Spark's pod %s: %s", name, exc.reason)
                return False
        return True

    async def stop(self, now: bool = False) -> None:
        await super().stop(now)
        await self.delete_spark_pods()

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.hdh_spark_pods:
            state["hdh_spark_pods"] = list(self.hdh_spark_pods)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.hdh_spark_pods = [str(n) for n in state.get("hdh_spark_pods") or []]

    def clear_state(self) -> None:
        super().clear_state()
        self.hdh_spark_pods = []

    def get_env(self) -> dict[str, str]:
        """The sandbox's environment only: no JupyterHub token or URL enters the pod."""
        return dict(self._hdh_env or {})

    def get_args(self) -> list[str]:
        return []  # the command is the sandbox's server, whole (pod.pod_command)

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None and self.hdh_spark_pods:
            await self.delete_spark_pods()  # the sandbox is gone: so are its executors
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
