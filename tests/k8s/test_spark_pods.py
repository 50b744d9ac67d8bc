"""Spark on a cluster: the executors are pods of the project, made by the hub, never by the
sandbox, under the same identity, mounts and isolation as the sandbox.

The manifests are rendered offline and validated (Kubernetes schemas, restricted Pod
Security); the spawner's order of work (master, sandbox, workers; cleanup on failure and at
stop) runs against a stand-in for the API server, which cannot run here. The Spark
processes themselves (the image's entrypoint as master and worker, a driver with and
without the secret) run for real in tests/hdh/test_spark_standalone.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner

from jupyterlab_hdh.hub.spawner import SpawnRefused
from jupyterlab_hdh.k8s.profiles import DEFAULT_PROFILES, profile_named
from jupyterlab_hdh.k8s.project import ProjectQuota
from jupyterlab_hdh.k8s.spark import SECRET_ENV, SparkCluster, executor_heap, quantity_bytes
from tests.k8s.pod_security import restricted_violations
from tests.k8s.test_pod_manifests import _project_id, _spawner

SPARK = profile_named(DEFAULT_PROFILES, "spark")


def _cluster(hub: Any, user: str = "alice", project: str = "cohort-2027") -> SparkCluster:
    async def make() -> SparkCluster:  # KubeSpawner makes its API client in a running loop
        sp = _spawner(hub, user, project, profile="spark")
        cluster = sp.spark_cluster()
        assert cluster is not None
        return cluster

    return asyncio.run(make())


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_spark_pods_are_valid_restricted_pods_of_the_project(cluster_world) -> None:
    cluster = _cluster(cluster_world)
    master, workers = cluster.master_pod(), cluster.worker_pods("10.1.0.9")
    assert len(workers) == SPARK.executors == 2
    uid = 200000 + _project_id(cluster_world, "cohort-2027")
    for pod in (master, *workers):
        kubernetes_validate.validate(pod, "1.33", strict=True)
        assert restricted_violations(pod) == {}, pod["metadata"]["name"]
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["namespace"] == "hdh-p-cohort-2027"
        assert meta["labels"]["hdh.io/role"] == "spark-executor"  # the project's policies
        assert meta["labels"]["hdh.io/project"] == "cohort-2027"
        assert meta["labels"]["hdh.io/server"] == cluster.server
        assert meta["annotations"]["hdh.io/user"] == "alice"
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False and spec["dnsPolicy"] == "None"
        psc = spec["securityContext"]
        assert (psc["runAsUser"], psc["runAsGroup"], psc["fsGroup"]) == (uid, uid, uid)
        (c,) = spec["containers"]
        assert c["image"] == "ghcr.io/hdh-open/hdh-spark:0.1.0"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        env = _env(c)
        assert env["HDH_POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        assert env[SECRET_ENV] == cluster.secret
    assert master["spec"]["containers"][0]["command"][-1] == "master"
    # the master reads no data; each worker mounts exactly the permitted versions, read-only
    assert "supplementalGroups" not in master["spec"]["securityContext"]
    master_mounts = [m["mountPath"] for m in master["spec"]["containers"][0]["volumeMounts"]]
    assert master_mounts == ["/tmp", "/etc/passwd", "/etc/group"]
    for w in workers:
        (c,) = w["spec"]["containers"]
        assert c["command"][-1] == "worker"
        assert w["spec"]["securityContext"]["supplementalGroups"] == [200000]
        data = {m["mountPath"]: m for m in c["volumeMounts"] if m["name"] == "datasets"}
        assert set(data) == {"/data/snds/v2", "/data/pmsi_mco/v1"}
        assert all(m["readOnly"] is True for m in data.values())
        assert {m["mountPath"] for m in c["volumeMounts"]} == {
            *data,
            "/workspace",
            "/tmp",
            "/etc/passwd",
            "/etc/group",
        }
        # Java names the project's uid (Spark's Hadoop libraries fail without an entry)
        (init,) = w["spec"]["initContainers"]
        passwd = _env(init)["HDH_PASSWD"]
        assert passwd.startswith(f"jovyan:x:{uid}:{uid}:")
        env = _env(c)
        assert env["HDH_SPARK_MASTER_URL"] == "spark://10.1.0.9:7077"
        assert (env["HDH_SPARK_PORT"], env["HDH_SPARK_CORES"]) == ("7080", "4")
        assert c["resources"]["limits"] == {"cpu": "4", "memory": "16G"}
    assert len({w["metadata"]["name"] for w in workers}) == 2


def test_each_start_has_its_own_secret_and_the_driver_is_told_where_and_how(
    cluster_world,
) -> None:
    one, two = _cluster(cluster_world), _cluster(cluster_world)
    assert one.secret != two.secret and len(one.secret) == 64
    assert one.secret not in repr(one)
    env = one.driver_env("10.1.0.9")
    assert env["HDH_SPARK_MASTER"] == "spark://10.1.0.9:7077"
    assert env[SECRET_ENV] == one.secret
    assert env["HDH_SPARK_EXECUTOR_CORES"] == "4"
    assert env["HDH_SPARK_EXECUTOR_MEMORY"] == f"{executor_heap('16G')}m"
    # the executor's heap, the worker daemon and the JVM's own memory fit the pod's limit
    assert executor_heap("16G") * 2**20 + 512 * 2**20 < 0.7 * quantity_bytes("16G")
    # KubeSpawner writes the address as a field reference in the sandbox pod

    async def sandbox_pod() -> dict[str, Any]:
        from kubernetes_asyncio.client import ApiClient

        sp = _spawner(cluster_world, "alice", "cohort-2027", profile="spark")
        sp._spark_env = env
        pod = await sp.get_pod_manifest()
        async with ApiClient() as client:
            return dict(client.sanitize_for_serialization(pod))

    pod = asyncio.run(sandbox_pod())
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", **pod}, "1.33", strict=True)
    sp_env = _env(pod["spec"]["containers"][0])
    assert sp_env["HDH_POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert sp_env["HDH_SPARK_MASTER"] == "spark://10.1.0.9:7077"


def test_the_default_spark_profile_fits_a_default_project_quota() -> None:
    quota = ProjectQuota()
    cpu = SPARK.cpu_limit + 1 + SPARK.executors * SPARK.executor_cpu  # driver, master, workers
    memory = (
        quantity_bytes(SPARK.mem_limit.replace("G", "Gi"))  # KubeSpawner reads G as GiB
        + 2**30
        + SPARK.executors * quantity_bytes(SPARK.executor_memory)
    )
    assert cpu <= float(quota.cpu)
    assert memory <= quantity_bytes(quota.memory)


class _FakeApi:
    """The API server's pod calls, recorded (none runs here)."""

    def __init__(self, master_ready_after: int = 1) -> None:
        self.calls: list[tuple[str, str]] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.ready_after = master_ready_after

    async def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> Any:
        name = body["metadata"]["name"]
        self.calls.append(("create", name))
        self.bodies[name] = body
        return body

    async def read_namespaced_pod(self, name: str, namespace: str) -> Any:
        self.reads += 1
        running = self.ready_after is not None and self.reads > self.ready_after
        status = SimpleNamespace(
            phase="Running" if running else "Pending", pod_ip="10.1.0.9" if running else None
        )
        return SimpleNamespace(status=status)

    async def delete_namespaced_pod(self, name: str, namespace: str, **_: Any) -> Any:
        self.calls.append(("delete", name))
        if name not in self.bodies:
            raise ApiException(status=404, reason="Not Found")


def _run(
    hub: Any, monkeypatch: pytest.MonkeyPatch, api: _FakeApi, sandbox_fails: bool = False
) -> tuple[Any, list[dict[str, Any]], Any]:
    """Start a Spark server with KubeSpawner's own pod start replaced (it needs a cluster),
    then stop it; returns the spawner, what the sandbox pod was given, and the outcome."""
    given: list[dict[str, Any]] = []

    async def sandbox_started(self: Any) -> str:
        api.calls.append(("create", "sandbox"))
        given.append(dict(self._spark_env))
        if sandbox_fails:
            raise TimeoutError("the sandbox pod did not start")
        return "http://10.1.0.20:8888"

    async def sandbox_stopped(self: Any, now: bool = False) -> None:
        api.calls.append(("delete", "sandbox"))

    monkeypatch.setattr(KubeSpawner, "_start", sandbox_started)
    monkeypatch.setattr(KubeSpawner, "stop", sandbox_stopped)

    async def lifecycle() -> tuple[Any, Any]:
        sp = _spawner(hub, "alice", "cohort-2027", profile="spark")
        sp.api = api
        sp.start_timeout = 3
        try:
            url = await sp._start()
        except Exception as exc:
            return sp, exc
        return sp, url

    sp, outcome = asyncio.run(lifecycle())
    return sp, given, outcome


def test_the_hub_makes_the_master_then_the_sandbox_then_the_workers(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _FakeApi(master_ready_after=2)
    sp, given, outcome = _run(cluster_world, monkeypatch, api)
    assert outcome == "http://hdh-guard.hdh-system.svc:8000"
    master, w0, w1 = (
        f"{sp.pod_name}-spark-master",
        f"{sp.pod_name}-spark-0",
        f"{sp.pod_name}-spark-1",
    )
    assert api.calls == [("create", master), ("create", "sandbox"), ("create", w0), ("create", w1)]
    assert api.reads == 3  # waited for the master's address
    (env,) = given
    assert env["HDH_SPARK_MASTER"] == "spark://10.1.0.9:7077"
    assert env[SECRET_ENV] == api.bodies[w0]["spec"]["containers"][0]["env"][1]["value"]
    # the hub remembers them (a restarted hub still deletes them) and deletes them at stop
    assert sp.get_state()["hdh_spark_pods"] == [master, w0, w1]
    restarted = asyncio.run(_reload(cluster_world, sp.get_state(), api))
    assert restarted.hdh_spark_pods == [master, w0, w1]
    api.calls.clear()
    asyncio.run(restarted.stop())
    assert api.calls == [("delete", "sandbox"), ("delete", master), ("delete", w0), ("delete", w1)]
    assert restarted.hdh_spark_pods == []


async def _reload(hub: Any, state: dict[str, Any], api: _FakeApi) -> Any:
    sp = _spawner(hub, "alice", "cohort-2027", profile="spark")
    sp.api = api
    sp.load_state(state)
    return sp


def test_a_failed_start_leaves_no_spark_pod(cluster_world, monkeypatch: pytest.MonkeyPatch) -> None:
    api = _FakeApi()
    sp, _, outcome = _run(cluster_world, monkeypatch, api, sandbox_fails=True)
    assert isinstance(outcome, TimeoutError)
    master = f"{sp.pod_name}-spark-master"
    assert api.calls == [("create", master), ("create", "sandbox"), ("delete", master)]
    assert sp.hdh_spark_pods == []


def test_a_master_that_never_runs_is_a_clear_refusal(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _FakeApi(master_ready_after=10**6)
    sp, given, outcome = _run(cluster_world, monkeypatch, api)
    assert isinstance(outcome, SpawnRefused) and outcome.status_code == 503
    assert "did not start within 3 s" in outcome.jupyterhub_message
    assert "kubectl -n hdh-p-cohort-2027 describe pod" in outcome.jupyterhub_message
    master = f"{sp.pod_name}-spark-master"
    assert api.calls == [("create", master), ("delete", master)]  # no sandbox, no workers
    assert given == []


def test_servers_without_executors_make_no_spark_pod(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def cluster_of(profile: str) -> Any:
        return _spawner(cluster_world, "alice", "cohort-2027", profile=profile).spark_cluster()

    assert asyncio.run(cluster_of("cpu")) is None
    assert asyncio.run(cluster_of("gpu")) is None


def test_revoking_the_permit_stops_the_pod_and_its_executors(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on one machine: the hub's poll re-checks the permit and stops what it lets in no
    longer (the guard already refuses every request the moment the permit ends)."""
    from jupyterlab_hdh.governance import projects as pj
    from tests.governance.conftest import CONTROLLER

    stopped: list[str] = []

    async def pod_running(self: Any) -> None:
        return None  # KubeSpawner's poll: the pod is there

    async def pod_stopped(self: Any, now: bool = False) -> None:
        stopped.append("sandbox")

    monkeypatch.setattr(KubeSpawner, "poll", pod_running)
    monkeypatch.setattr(KubeSpawner, "stop", pod_stopped)
    api = _FakeApi()

    async def poll() -> tuple[Any, list[str]]:
        sp = _spawner(cluster_world, "alice", "cohort-2027", profile="spark")
        sp.api = api
        sp.hdh_spark_pods = ["m", "w0"]
        api.bodies.update({"m": {}, "w0": {}})
        return await sp.poll(), list(sp.hdh_spark_pods)

    assert asyncio.run(poll()) == (None, ["m", "w0"])  # the permit holds: nothing stops
    assert stopped == [] and api.calls == []
    with cluster_world.transaction() as s:
        permit = pj.active_permit(s, "alice", "cohort-2027")
        pj.revoke_permit(s, permit.id, reason="committee withdrew it", actor=CONTROLLER)
    assert asyncio.run(poll()) == (1, [])
    assert stopped == ["sandbox"]
    assert api.calls == [("delete", "m"), ("delete", "w0")]


def test_the_hubs_poll_never_moves_the_route_to_the_pod(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KubeSpawner's own poll compares the recorded address with the pod's and moves the
    proxy's route when they differ: ProjectKubeSpawner's address is the guard's, always."""
    from types import SimpleNamespace as NS

    async def watching(self: Any, replace: bool = False) -> None:
        return None  # KubeSpawner's pod watch, which needs a cluster: the reflector below

    monkeypatch.setattr(KubeSpawner, "_start_watching_pods", watching)
    committed: list[int] = []

    async def poll() -> tuple[Any, str, int]:
        sp = _spawner(cluster_world, "alice", "cohort-2027")
        running = {
            "metadata": {"name": sp.pod_name, "namespace": sp.namespace},
            "status": {
                "phase": "Running",
                "podIP": "10.1.2.3",
                "containerStatuses": [{"name": "notebook", "ready": True, "state": {}}],
            },
        }
        reflector = NS(pods={f"{sp.namespace}/{sp.pod_name}": running})
        monkeypatch.setattr(type(sp), "pod_reflector", property(lambda self: reflector))
        guard = "hdh-guard.hdh-system.svc"
        sp.orm_spawner.server = NS(ip=guard, port=8000, base_url="/user/alice/cohort-2027/")
        server = NS(ip=guard, port=8000, url=f"http://{guard}:8000/user/alice/cohort-2027/")
        monkeypatch.setattr(type(sp), "server", property(lambda self: server))
        sp.db = NS(commit=lambda: committed.append(1))
        status = await sp.poll()
        return status, f"{server.ip}:{server.port}", len(committed)

    assert asyncio.run(poll()) == (None, "hdh-guard.hdh-system.svc:8000", 0)


def test_a_spark_pod_left_by_an_earlier_start_is_replaced(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub that died mid-start leaves a pod of that name: it is deleted and made anew,
    instead of every later start being refused."""

    class Leftover(_FakeApi):
        def __init__(self, names: set[str]) -> None:
            super().__init__()
            self.left = set(names)

        async def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> Any:
            name = body["metadata"]["name"]
            if name in self.left:
                self.calls.append(("conflict", name))
                raise ApiException(status=409, reason="AlreadyExists")
            return await super().create_namespaced_pod(namespace, body)

        async def read_namespaced_pod(self, name: str, namespace: str) -> Any:
            if name in self.left or ("delete", name) in self.calls and name not in self.bodies:
                raise ApiException(status=404, reason="Not Found")
            return await super().read_namespaced_pod(name, namespace)

        async def delete_namespaced_pod(self, name: str, namespace: str, **kw: Any) -> Any:
            self.calls.append(("delete", name))
            self.left.discard(name)

    async def make() -> str:
        return str(_spawner(cluster_world, "alice", "cohort-2027", profile="spark").pod_name)

    pod_name = asyncio.run(make())
    api = Leftover({f"{pod_name}-spark-0"})
    sp, _, outcome = _run(cluster_world, monkeypatch, api)
    assert outcome == "http://hdh-guard.hdh-system.svc:8000"
    w0 = f"{pod_name}-spark-0"
    assert api.calls[-4:] == [
        ("conflict", w0),
        ("delete", w0),
        ("create", w0),
        ("create", f"{pod_name}-spark-1"),
    ]
    assert w0 in sp.hdh_spark_pods
