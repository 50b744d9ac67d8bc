"""Who may reach whom on the cluster: HDH's NetworkPolicies (k8s/system and every project's
``hdh k8s project``), evaluated over a model cluster, one row per connection a sandbox must
not make, or the platform must be able to make. Each manifest is also validated against the
Kubernetes schemas. The JupyterHub chart's own policies for its hub and proxy pods are the
chart's (rendered by Helm, not here): those pods are unisolated in this model, which only
makes the rows about reaching them harder to deny, never easier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from jupyterlab_hdh.k8s.pod import SERVER_PORT
from jupyterlab_hdh.k8s.project import (
    GUARD_BRIDGE_PORT,
    GUARD_HTTP_PORT,
    SPARK_BLOCK_MANAGER_PORT,
    SPARK_DRIVER_PORT,
    SPARK_MASTER_PORT,
    SPARK_WORKER_PORT,
    project_manifests,
    project_namespace,
)
from tests.k8s.netpol import Cluster, External, Pod

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = [
    d for d in yaml.safe_load_all((ROOT / "k8s/system/network-policies.yaml").read_text()) if d
]
K8S_VERSION = "1.33"

A, B = project_namespace("cohort-a"), project_namespace("cohort-b")


def _sandbox(name: str, ns: str, slug: str, ip: str) -> Pod:
    return Pod(
        name,
        ns,
        {"hdh.io/role": "sandbox", "hdh.io/project": slug, "component": "singleuser-server"},
        ip,
        {"http": SERVER_PORT},
    )


PODS = {
    "proxy": Pod("proxy", "hdh-system", {"app": "jupyterhub", "component": "proxy"}, "10.0.0.2"),
    "hub": Pod("hub", "hdh-system", {"app": "jupyterhub", "component": "hub"}, "10.0.0.3"),
    "guard": Pod("guard", "hdh-system", {"hdh.io/role": "guard"}, "10.0.0.4"),
    "api": Pod("api", "hdh-system", {"hdh.io/role": "control-plane"}, "10.0.0.5"),
    "db": Pod("db", "hdh-system", {"hdh.io/role": "database"}, "10.0.0.6"),
    "dns": Pod("dns", "kube-system", {"k8s-app": "kube-dns"}, "10.0.1.10"),
    "alice-a": _sandbox("alice-a", A, "cohort-a", "10.1.0.2"),
    "bob-a": _sandbox("bob-a", A, "cohort-a", "10.1.0.3"),
    "exec-a": Pod(
        "exec-a", A, {"hdh.io/role": "spark-executor", "hdh.io/project": "cohort-a"}, "10.1.0.4"
    ),
    "exec-a2": Pod(
        "exec-a2", A, {"hdh.io/role": "spark-executor", "hdh.io/project": "cohort-a"}, "10.1.0.5"
    ),
    "carol-b": _sandbox("carol-b", B, "cohort-b", "10.2.0.2"),
    "exec-b": Pod(
        "exec-b", B, {"hdh.io/role": "spark-executor", "hdh.io/project": "cohort-b"}, "10.2.0.3"
    ),
    "metadata": External("cloud metadata", "169.254.169.254"),
    "internet": External("internet", "1.1.1.1"),
    "lan": External("a host of the site's network", "192.168.1.10"),
    # the address the shipped policy names (the operator replaces it with the real one)
    "kube-api": External("the Kubernetes API server", "192.0.2.1"),
}


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    objects = [*SYSTEM, *project_manifests("cohort-a"), *project_manifests("cohort-b")]
    namespaces = {
        "hdh-system": {"hdh.io/role": "system"},
        "kube-system": {},
        **{
            o["metadata"]["name"]: o["metadata"]["labels"]
            for o in objects
            if o["kind"] == "Namespace"
        },
    }
    return Cluster(namespaces, [p for p in PODS.values() if isinstance(p, Pod)], objects)


ROWS: list[tuple[str, str, int, str, bool]] = [
    # the platform's own paths
    ("proxy", "guard", GUARD_HTTP_PORT, "TCP", True),
    ("hub", "guard", GUARD_HTTP_PORT, "TCP", True),  # is the server it started up?
    ("hub", "guard", GUARD_BRIDGE_PORT, "TCP", False),
    ("api", "guard", GUARD_HTTP_PORT, "TCP", False),
    ("guard", "alice-a", SERVER_PORT, "TCP", True),
    ("guard", "carol-b", SERVER_PORT, "TCP", True),
    ("alice-a", "guard", GUARD_BRIDGE_PORT, "TCP", True),
    ("guard", "api", 8080, "TCP", True),
    ("proxy", "api", 8080, "TCP", True),
    ("api", "db", 5432, "TCP", True),
    ("guard", "dns", 53, "UDP", True),
    ("guard", "db", 5432, "TCP", True),  # permits, the audit log, display counts
    ("guard", "kube-api", 6443, "TCP", True),  # where each person's pod is
    # Spark inside one project: driver (in the sandbox) and executors
    ("exec-a", "alice-a", SPARK_DRIVER_PORT, "TCP", True),
    ("alice-a", "exec-a", SPARK_BLOCK_MANAGER_PORT, "TCP", True),
    ("alice-a", "exec-a", SPARK_MASTER_PORT, "TCP", True),  # the driver to the master
    ("exec-a", "exec-a2", SPARK_WORKER_PORT, "TCP", True),  # the master to a worker
    ("exec-a2", "exec-a", SPARK_MASTER_PORT, "TCP", True),  # a worker to the master
    ("alice-a", "exec-a", 8080, "TCP", False),  # the master's web page: no
    ("exec-a", "exec-a2", 8081, "TCP", False),
    ("exec-b", "exec-a", SPARK_MASTER_PORT, "TCP", False),  # another project's Spark: no
    ("carol-b", "exec-a", SPARK_MASTER_PORT, "TCP", False),
    # a sandbox reaches nothing else
    ("alice-a", "internet", 443, "TCP", False),
    ("alice-a", "lan", 22, "TCP", False),
    ("alice-a", "metadata", 80, "TCP", False),
    ("alice-a", "dns", 53, "UDP", False),
    ("alice-a", "dns", 53, "TCP", False),
    ("alice-a", "api", 8080, "TCP", False),
    ("alice-a", "db", 5432, "TCP", False),
    ("alice-a", "kube-api", 6443, "TCP", False),
    ("alice-a", "kube-api", 443, "TCP", False),
    ("alice-a", "hub", 8081, "TCP", False),
    ("alice-a", "proxy", 8000, "TCP", False),
    ("alice-a", "guard", GUARD_HTTP_PORT, "TCP", False),
    ("alice-a", "carol-b", SERVER_PORT, "TCP", False),
    ("alice-a", "exec-b", SPARK_BLOCK_MANAGER_PORT, "TCP", False),
    # not even another member's sandbox server of the same project (the guard authenticates)
    ("alice-a", "bob-a", SERVER_PORT, "TCP", False),
    # nor another member's sandbox on Spark's ports (only Spark's pods talk to a driver)
    ("alice-a", "bob-a", SPARK_DRIVER_PORT, "TCP", False),
    ("bob-a", "alice-a", SPARK_BLOCK_MANAGER_PORT, "TCP", False),
    ("exec-a", "bob-a", SERVER_PORT, "TCP", False),
    ("exec-a", "internet", 443, "TCP", False),
    ("exec-a", "metadata", 80, "TCP", False),
    ("exec-a", "guard", GUARD_BRIDGE_PORT, "TCP", False),
    ("exec-b", "alice-a", SPARK_DRIVER_PORT, "TCP", False),
    # and nothing but the guard reaches a sandbox
    ("proxy", "alice-a", SERVER_PORT, "TCP", False),
    ("hub", "alice-a", SERVER_PORT, "TCP", False),
    ("api", "alice-a", SERVER_PORT, "TCP", False),
    ("carol-b", "alice-a", SERVER_PORT, "TCP", False),
    ("guard", "alice-a", 22, "TCP", False),
    # the trusted side keeps to its own
    ("guard", "internet", 443, "TCP", False),
    ("guard", "metadata", 80, "TCP", False),
    ("guard", "lan", 6443, "TCP", False),
    ("api", "internet", 443, "TCP", False),
    ("api", "metadata", 80, "TCP", False),
    ("alice-a", "db", 5432, "TCP", False),
    ("proxy", "db", 5432, "TCP", False),
    ("db", "internet", 443, "TCP", False),
]


@pytest.mark.parametrize(
    ("src", "dst", "port", "proto", "allowed"),
    ROWS,
    ids=[f"{r[0]}->{r[1]}:{r[2]}/{r[3]}" for r in ROWS],
)
def test_who_may_reach_whom(
    cluster: Cluster, src: str, dst: str, port: int, proto: str, allowed: bool
) -> None:
    assert cluster.allowed(PODS[src], PODS[dst], port, proto) is allowed


def test_without_the_policies_everything_would_be_open() -> None:
    """The evaluator is not vacuous: the same rows with no policy are all allowed."""
    bare = Cluster(
        {"hdh-system": {}, "kube-system": {}, A: {}, B: {}},
        [p for p in PODS.values() if isinstance(p, Pod)],
        [],
    )
    assert all(bare.allowed(PODS[s], PODS[d], port, proto) for s, d, port, proto, _ in ROWS)


@pytest.mark.parametrize("source", ["system", "project"])
def test_every_manifest_validates(source: str) -> None:
    docs: list[dict[str, Any]] = SYSTEM if source == "system" else project_manifests("cohort-a")
    if source == "system":
        docs = [*docs, yaml.safe_load((ROOT / "k8s/system/namespace.yaml").read_text())]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_project_namespace_enforces_restricted_and_caps_what_it_may_make() -> None:
    objs = {o["kind"]: o for o in project_manifests("cohort-a")}
    labels = objs["Namespace"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    hard = objs["ResourceQuota"]["spec"]["hard"]
    assert hard["services"] == "0" and hard["persistentvolumeclaims"] == "2"
    assert "requests.nvidia.com/gpu" in hard
    pvcs = [o for o in project_manifests("cohort-a") if o["kind"] == "PersistentVolumeClaim"]
    assert {p["metadata"]["name"]: p["spec"]["accessModes"] for p in pvcs} == {
        "hdh-workspace-cohort-a": ["ReadWriteMany"],
        "hdh-datasets": ["ReadOnlyMany"],
    }
    pv = objs["PersistentVolume"]["spec"]
    assert pv["claimRef"] == {"namespace": A, "name": "hdh-datasets"}  # bound to this claim only
    assert pv["persistentVolumeReclaimPolicy"] == "Retain"
