"""Project pods on Kubernetes, rendered offline: KubeSpawner's own ``get_pod_manifest()``
for every compute profile, validated against the Kubernetes schemas and the restricted Pod
Security Standard, with every isolation property a sandbox has on one machine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient

from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.hub.spawner import SpawnRefused
from jupyterlab_hdh.k8s.pod import DATASETS_CLAIM, SERVER_PORT, k8s_name, workspace_claim
from jupyterlab_hdh.k8s.profiles import DEFAULT_PROFILES, ProfileError, parse_profiles
from tests.governance.conftest import CONTROLLER
from tests.k8s.pod_security import restricted_violations

K8S_VERSION = "1.33"


class _User:
    def __init__(self, name: str, uid: int = 7) -> None:
        self.name = name
        self.id = uid
        self.url = f"/user/{name}/"


GUARD = "http://hdh-guard.hdh-system.svc:8000"


def _spawner(hub, user: str, project: str, bridge_url: str = "", **options: Any) -> Any:
    from jupyterlab_hdh.k8s.spawner import ProjectKubeSpawner

    sp = ProjectKubeSpawner(
        _mock=True,
        user=_User(user),
        orm_spawner=SimpleNamespace(name=project, server=None),
        data_dir=str(hub.data_dir.root),
        guard_url=GUARD,
        bridge_url=bridge_url,
    )
    sp.user_options = options
    return sp


def _pod(hub, user: str, project: str, bridge_url: str = "", **options: Any) -> Any:
    """The pod manifest KubeSpawner would create, as the JSON sent to the API server."""

    async def make() -> Any:  # KubeSpawner makes its API client in a running loop
        pod = await _spawner(hub, user, project, bridge_url, **options).get_pod_manifest()
        async with ApiClient() as client:
            return client.sanitize_for_serialization(pod)

    return asyncio.run(make())


def render(hub, user: str, project: str, bridge_url: str = "", **options: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = _pod(hub, user, project, bridge_url, **options)
    manifest.setdefault("apiVersion", "v1")
    manifest.setdefault("kind", "Pod")
    return manifest


def _project_id(hub, slug: str) -> int:
    with hub.sessions() as s:
        return pj.get_project(s, slug).id


@pytest.mark.parametrize("profile", [p.name for p in DEFAULT_PROFILES])
def test_every_profile_renders_a_valid_restricted_pod(cluster_world, profile: str) -> None:
    pod = render(cluster_world, "alice", "cohort-2027", profile=profile)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert restricted_violations(pod) == {}
    spec = pod["spec"]
    (c,) = spec["containers"]
    csc, psc = c["securityContext"], spec["securityContext"]
    uid = 200000 + _project_id(cluster_world, "cohort-2027")
    assert (csc["runAsUser"], csc["runAsGroup"], psc["fsGroup"]) == (uid, uid, uid)
    assert psc["supplementalGroups"] == [200000]  # the data group, to read mounted versions
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert spec.get("serviceAccountName") in (None, "")
    assert spec["enableServiceLinks"] is False
    assert spec["dnsPolicy"] == "None"
    assert spec["dnsConfig"]["nameservers"] == ["127.0.0.1"]
    labels = pod["metadata"]["labels"]
    assert labels["hdh.io/project"] == "cohort-2027"
    assert labels["hdh.io/role"] == "sandbox"
    assert labels["hdh.io/profile"] == profile


def test_the_pod_mounts_exactly_the_permitted_versions_read_only(cluster_world) -> None:
    spec = render(cluster_world, "alice", "cohort-2027")["spec"]
    (c,) = spec["containers"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    data = {p: m for p, m in mounts.items() if p.startswith("/data/")}
    assert set(data) == {"/data/snds/v2", "/data/pmsi_mco/v1"}  # not snds v1
    for path, m in data.items():
        assert m["readOnly"] is True
        assert m["name"] == "datasets"
        assert m["subPath"] == path.removeprefix("/data/")  # that version's folder only
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["datasets"]["persistentVolumeClaim"] == {
        "claimName": DATASETS_CLAIM,
        "readOnly": True,
    }
    assert mounts["/workspace"]["name"] == "workspace"
    assert not mounts["/workspace"].get("readOnly")
    assert volumes["workspace"]["persistentVolumeClaim"]["claimName"] == workspace_claim(
        "cohort-2027"
    )
    # IPython's kernelspec folder is an empty read-only mount: no kernel from the kernel
    assert mounts["/opt/jupyter/ipython/kernels"]["readOnly"] is True
    assert {v["name"] for v in spec["volumes"] if "emptyDir" in v} >= {"home", "tmp", "lab"}
    # JupyterLab saves settings where the server is told to (the root is read-only)
    assert mounts["/opt/jupyter/lab"]["name"] == "lab"
    (c,) = spec["containers"]
    assert "--LabApp.user_settings_dir=/opt/jupyter/lab/user-settings" in c.get(
        "command", c.get("args", [])
    )


def test_each_project_pod_runs_as_its_own_uid_with_its_own_versions(cluster_world) -> None:
    pod = render(cluster_world, "bob", "notes-only")
    spec = pod["spec"]
    (c,) = spec["containers"]
    assert [m["mountPath"] for m in c["volumeMounts"] if m["mountPath"].startswith("/data")] == [
        "/data/snds/v1"
    ]
    uid = 200000 + _project_id(cluster_world, "notes-only")
    assert c["securityContext"]["runAsUser"] == uid
    assert uid != 200000 + _project_id(cluster_world, "cohort-2027")
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"workspace": workspace_claim("notes-only"), "datasets": DATASETS_CLAIM}


def test_only_the_permits_project_pod_mounts_its_linked_tables(cluster_world) -> None:
    from jupyterlab_hdh.store.models import Linkage

    with cluster_world.transaction() as s:
        permit = pj.active_permit(s, "alice", "cohort-2027")
        s.add(
            Linkage(
                permit_id=permit.id,
                name="cohort",
                input_sha256="0" * 64,
                rows=1,
                matched=1,
                key_fingerprint="0" * 16,
                report={},
                created_by="test",
            )
        )
        permit_id = permit.id
    (c,) = render(cluster_world, "alice", "cohort-2027")["spec"]["containers"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/data/linkage"] == {
        "name": "datasets",
        "mountPath": "/data/linkage",
        "subPath": f".linkage/permit-{permit_id}",
        "readOnly": True,
    }
    (other,) = render(cluster_world, "bob", "notes-only")["spec"]["containers"]
    assert not [m for m in other["volumeMounts"] if m["mountPath"].startswith("/data/linkage")]


def test_no_jupyterhub_secret_or_argument_enters_the_pod(cluster_world) -> None:
    (c,) = render(cluster_world, "alice", "cohort-2027")["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    assert not [k for k in env if k.startswith(("JUPYTERHUB_", "JPY_"))]
    assert env["HDH_PROJECT"] == "cohort-2027"
    assert env["HDH_USER"] == "alice"
    assert env["HOME"] == "/home/jovyan"
    assert "R_PROFILE_USER" not in env  # a host path; the image's R site profile loads hdh.R
    assert not c.get("envFrom")
    cmd = c["command"] if "command" in c else c["args"]
    assert cmd[:3] == ["/opt/hdh/venv/bin/python", "-m", "jupyter_server"]
    assert not [a for a in cmd if a.startswith(("--ServerApp.sock", "--LabApp.extra_lab"))]
    assert "--ServerApp.ip=0.0.0.0" in cmd and f"--ServerApp.port={SERVER_PORT}" in cmd
    assert "--ContentsManager.files_handler_class=None" in cmd  # as the local sandbox
    assert "--ServerApp.base_url=/user/alice/cohort-2027/" in cmd
    assert [p["containerPort"] for p in c["ports"]] == [SERVER_PORT]


def test_the_gpu_profile_asks_for_a_gpu_on_gpu_nodes_only(cluster_world) -> None:
    spec = render(cluster_world, "alice", "cohort-2027", profile="gpu")["spec"]
    (c,) = spec["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    cpu = render(cluster_world, "alice", "cohort-2027", profile="cpu")["spec"]
    assert "nvidia.com/gpu" not in cpu["containers"][0]["resources"].get("limits", {})
    assert not cpu.get("nodeSelector")


def test_memory_limit_reaches_the_spark_heap_sizing(cluster_world) -> None:
    (c,) = render(cluster_world, "alice", "cohort-2027", profile="spark")["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert c["resources"]["limits"]["memory"] == 16 * 2**30  # KubeSpawner: G is GiB
    assert env["HDH_MEMORY_LIMIT"] == str(16 * 2**30)
    assert env["HDH_PROFILE"] == "spark"


@pytest.mark.parametrize(
    ("user", "project", "options", "status", "says"),
    [
        ("bob", "cohort-2027", {}, 403, "does not cover 'bob'"),
        ("carol", "cohort-2027", {}, 403, "'carol' is not a member"),
        ("alice", "", {}, 403, "no default server"),
        ("alice", "cohort-2027", {"profile": "quantum"}, 400, "no compute profile 'quantum'"),
    ],
)
def test_refused_spawns_say_why(cluster_world, user, project, options, status, says) -> None:
    with pytest.raises(SpawnRefused) as caught:
        _pod(cluster_world, user, project, **options)
    assert caught.value.status_code == status
    message = caught.value.jupyterhub_message
    assert says in message, message


def test_names_fold_to_dns_labels_without_collisions() -> None:
    assert k8s_name("hdh-workspace", "cohort-2027") == "hdh-workspace-cohort-2027"
    a, b = k8s_name("data", "pmsi_mco", "v1"), k8s_name("data", "pmsi-mco", "v1")
    assert a != b
    assert len(k8s_name("x" * 100)) <= 63


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"image": "hdh-base"}, "must be pinned"),
        ({"mem_limit": "lots"}, "not a quantity"),
        ({"cpu_guarantee": 9}, "cpu_guarantee <= cpu_limit"),
        ({"name": "GPU!"}, "lowercase"),
    ],
)
def test_a_bad_profile_is_named_with_its_key(entry: dict[str, Any], says: str) -> None:
    good = {
        "name": "big",
        "display_name": "Big",
        "image": "registry.example/hdh-base:1.0",
        "cpu_limit": 4,
        "cpu_guarantee": 1,
        "mem_limit": "16G",
        "mem_guarantee": "4G",
    }
    assert parse_profiles([good])[0].name == "big"
    with pytest.raises(ProfileError, match=says):
        parse_profiles([{**good, **entry}])
    with pytest.raises(ProfileError, match="unique"):
        parse_profiles([good, good])


def test_the_checker_catches_what_restricted_refuses(cluster_world) -> None:
    """The Pod Security checker is not vacuous: each loosening is named."""
    pod = render(cluster_world, "alice", "cohort-2027")
    spec = pod["spec"]
    c = spec["containers"][0]
    c["securityContext"]["allowPrivilegeEscalation"] = True
    c["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    spec["hostNetwork"] = True
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    del c["securityContext"]["seccompProfile"]
    del spec["securityContext"]["seccompProfile"]
    c["securityContext"]["runAsNonRoot"] = False
    assert set(restricted_violations(pod)) == {
        "privilege escalation",
        "capabilities",
        "host namespaces",
        "volume types",
        "seccomp",
        "running as non-root",
    }


def test_the_pod_plan_refuses_a_spec_without_the_project_identity(tmp_path: Path) -> None:
    from jupyterlab_hdh.k8s.pod import pod_plan
    from jupyterlab_hdh.sandbox.spec import SandboxSpec

    spec = SandboxSpec(project="p", user="u", workspace=tmp_path, runtime_dir=tmp_path)
    with pytest.raises(ValueError, match="host identity"):
        pod_plan(spec, DEFAULT_PROFILES[0], server_token="t" * 64)


class _FakeCoreV1:
    """Stands in for the Kubernetes API server (none runs here): ``read_namespace`` only."""

    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = labels
        self.created: list[Any] = []

    async def read_namespace(self, name: str) -> Any:
        from kubernetes_asyncio.client.rest import ApiException

        if self.labels is None:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(metadata=SimpleNamespace(name=name, labels=self.labels))

    async def create_namespace(self, body: Any) -> Any:  # must never be called
        self.created.append(body)
        return body


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        (None, "has no namespace hdh-p-cohort-2027 on this cluster"),
        ({}, "was provisioned not by HDH"),
        ({"hdh.io/policies": "0"}, "was provisioned policies v0"),
        # v1 had no RoleBinding for the guard: it could not find the pods
        ({"hdh.io/policies": "1"}, "was provisioned policies v1, not with this HDH's policies v4"),
        ({"hdh.io/policies": "2"}, "was provisioned policies v2, not with this HDH's policies v4"),
        # v3 had no RoleBinding for the retention sweep: a claim would never be archived
        ({"hdh.io/policies": "3"}, "was provisioned policies v3, not with this HDH's policies v4"),
        ({"hdh.io/policies": "4"}, None),
    ],
)
def test_a_pod_starts_only_in_its_provisioned_project_namespace(
    cluster_world, labels: dict[str, str] | None, says: str | None
) -> None:
    """The spawner never makes a namespace (it would lack the network policies)."""
    api = _FakeCoreV1(labels)

    async def ensure() -> Any:
        sp = _spawner(cluster_world, "alice", "cohort-2027")
        assert sp.namespace == "hdh-p-cohort-2027"
        sp.api = api
        await sp._ensure_namespace()

    if says is None:
        asyncio.run(ensure())
    else:
        with pytest.raises(SpawnRefused) as caught:
            asyncio.run(ensure())
        assert says in caught.value.jupyterhub_message
        assert "hdh k8s project cohort-2027 | kubectl apply -f -" in caught.value.jupyterhub_message
    assert api.created == []


# ------------------------------------------------------------------ the guard in the path


def test_the_pod_is_marked_for_the_guard_and_given_its_bridge(cluster_world) -> None:
    """The guard finds a person's pod by its annotation, routes to it only once its server
    answers, and the pod reaches the control plane at the guard's bridge, by address."""
    pod = render(cluster_world, "alice", "cohort-2027", bridge_url="http://localhost:8090")
    assert pod["metadata"]["annotations"]["hdh.io/user"] == "alice"
    assert pod["metadata"]["labels"]["hdh.io/role"] == "sandbox"
    (c,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HDH_BRIDGE_URL"] == "http://127.0.0.1:8090/projects/cohort-2027"
    probe = c["readinessProbe"]["httpGet"]
    assert probe == {"path": "/user/alice/cohort-2027/api", "port": SERVER_PORT}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    # without a bridge configured, no URL (the extension then says the control plane is away)
    (c,) = render(cluster_world, "alice", "cohort-2027")["spec"]["containers"]
    assert "HDH_BRIDGE_URL" not in {e["name"] for e in c["env"]}


@pytest.mark.parametrize(
    ("bridge_url", "status", "says"),
    [
        ("hdh-guard:8090", 500, "is not http://<host>:<port>"),
        ("http://hdh-guard.hdh-system.svc", 500, "is not http://<host>:<port>"),
        ("http://hdh-guard.invalid:8090", 503, "hdh-guard.invalid cannot be resolved"),
    ],
)
def test_a_bridge_without_an_address_refuses_the_spawn(
    cluster_world, bridge_url: str, status: int, says: str
) -> None:
    with pytest.raises(SpawnRefused) as caught:
        _pod(cluster_world, "alice", "cohort-2027", bridge_url)
    assert caught.value.status_code == status
    assert says in caught.value.jupyterhub_message


def test_the_hub_routes_the_server_to_the_guard_never_to_the_pod(
    cluster_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KubeSpawner's start answers the pod's address; the proxy is given the guard's."""
    from kubespawner import KubeSpawner

    started: list[str] = []

    async def pod_started(self: Any) -> str:  # KubeSpawner's start, which needs a cluster
        started.append(self.name)
        return "http://10.1.2.3:8888"

    monkeypatch.setattr(KubeSpawner, "_start", pod_started)

    async def start(guard_url: str) -> str:  # KubeSpawner makes its API client in a loop
        sp = _spawner(cluster_world, "alice", "cohort-2027")
        sp.guard_url = guard_url
        return str(await sp._start())

    assert asyncio.run(start(GUARD)) == GUARD
    assert started == ["cohort-2027"]
    with pytest.raises(SpawnRefused, match="guard_url is not set"):
        asyncio.run(start(""))
    assert started == ["cohort-2027"]  # no pod without a guard to put in front of it


def test_the_pod_names_the_projects_uid_as_the_sandbox_does(cluster_world) -> None:
    """Java looks the running uid up: the pod's /etc/passwd and /etc/group are the local
    sandbox's, written by an init container as the project's uid into a pod-local volume."""
    pod = render(cluster_world, "alice", "cohort-2027")
    spec = pod["spec"]
    (init,) = spec["initContainers"]
    (c,) = spec["containers"]
    uid = 200000 + _project_id(cluster_world, "cohort-2027")
    env = {e["name"]: e["value"] for e in init["env"]}
    assert (
        env["HDH_PASSWD"].splitlines()[0]
        == f"jovyan:x:{uid}:{uid}:HDH sandbox user:/home/jovyan:/bin/bash"
    )
    assert "hdh-data:x:200000:jovyan" in env["HDH_GROUP"]
    assert init["image"] == c["image"]
    assert init["command"][:2] == ["/bin/sh", "-c"] and "$HDH_PASSWD" in init["command"][2]
    assert init["securityContext"]["runAsNonRoot"] is True  # as the pod: the project's uid
    etc = {m["mountPath"]: m for m in c["volumeMounts"] if m["mountPath"].startswith("/etc/")}
    assert {p: (m["subPath"], m.get("readOnly")) for p, m in etc.items()} == {
        "/etc/passwd": ("passwd", True),
        "/etc/group": ("group", True),
    }
    assert restricted_violations(pod) == {}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_each_start_gives_the_pods_server_its_own_token(cluster_world) -> None:
    """The pod's server answers only the guard (which reads the token from the pod object):
    not a host-network pod of the node, which NetworkPolicies do not govern."""
    tokens = []
    for _ in range(2):
        (c,) = render(cluster_world, "alice", "cohort-2027")["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        tokens.append(env["JUPYTER_TOKEN"])
        cmd = c["command"] if "command" in c else c["args"]
        assert not [a for a in cmd if a.startswith("--IdentityProvider.token")]
    assert tokens[0] != tokens[1] and all(len(t) == 64 for t in tokens)


def test_a_permit_that_names_a_profile_allows_that_one_only(cluster_world) -> None:
    """The access desk decides the compute profile (issue 14, item 2): a permit naming one
    spawns it by default and refuses another, with the reason."""
    with cluster_world.transaction() as s:
        permit = pj.active_permit(s, "alice", "cohort-2027")
        pj.amend_permit(s, permit.id, pj.Amendment(compute_profile="gpu"), actor=CONTROLLER)
    pod = render(cluster_world, "alice", "cohort-2027")
    assert pod["metadata"]["labels"]["hdh.io/profile"] == "gpu"
    with pytest.raises(SpawnRefused, match="allows the compute profile 'gpu', not 'spark'"):
        render(cluster_world, "alice", "cohort-2027", profile="spark")
    # a permit that names none: the person's choice among the configured ones
    assert (
        render(cluster_world, "bob", "notes-only", profile="spark")["metadata"]["labels"][
            "hdh.io/profile"
        ]
        == "spark"
    )


def test_the_permits_profiles_are_the_spawners_defaults() -> None:
    assert tuple(p.name for p in DEFAULT_PROFILES) == pj.COMPUTE_PROFILES
