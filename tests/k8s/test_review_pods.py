"""A reviewer's own workspace on a cluster (the named server ``review``), as on one
machine: no dataset, no project, no API bridge, the reviewer's own ids and claim, in a
namespace that only the guard reaches and from which nothing goes out."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.hub.spawner import SpawnRefused
from jupyterlab_hdh.k8s.project import review_manifests
from tests.k8s.netpol import Cluster, Pod
from tests.k8s.pod_security import restricted_violations
from tests.k8s.test_network_policies import PODS, SYSTEM
from tests.k8s.test_pod_manifests import K8S_VERSION, _pod, _spawner, render


def test_a_reviewers_workspace_is_a_pod_with_nothing_of_a_project(cluster_world) -> None:
    pod = render(cluster_world, "rev", "review", bridge_url="http://localhost:8090")
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert restricted_violations(pod) == {}
    assert pod["metadata"]["labels"]["hdh.io/role"] == "sandbox"
    assert pod["metadata"]["labels"]["hdh.io/project"] == "review"
    assert pod["metadata"]["annotations"]["hdh.io/user"] == "rev"
    spec = pod["spec"]
    (c,) = spec["containers"]
    with cluster_world.sessions() as s:
        uid = 300000 + accounts.get_user(s, "rev").id  # review_id_base + the user's id
    csc, psc = c["securityContext"], spec["securityContext"]
    assert (csc["runAsUser"], csc["runAsGroup"], psc["fsGroup"]) == (uid, uid, uid)
    assert not psc.get("supplementalGroups")  # not in the data group
    assert not [m for m in c["volumeMounts"] if m["mountPath"].startswith("/data")]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert "HDH_BRIDGE_URL" not in env  # it acts as no one
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"hdh-review-rev"}  # the reviewer's own, never a project's

    async def namespace() -> str:
        return str(_spawner(cluster_world, "rev", "review").namespace)

    assert asyncio.run(namespace()) == "hdh-p-review"  # review_manifests() makes it


def test_the_hub_makes_the_reviewers_own_claim(cluster_world) -> None:
    async def claim() -> Any:
        sp = _spawner(cluster_world, "rev", "review")
        sp.hdh_pod_plan().apply(sp)
        return sp.get_pvc_manifest()

    pvc = asyncio.run(claim())
    assert pvc.metadata.name == "hdh-review-rev"
    assert pvc.spec.access_modes == ["ReadWriteOnce"]
    assert pvc.spec.resources.requests["storage"] == "10Gi"


@pytest.mark.parametrize("user", ["alice", "ctl"])
def test_who_may_not_review_gets_no_workspace(cluster_world, user: str) -> None:
    with pytest.raises(SpawnRefused) as caught:
        _pod(cluster_world, user, "review")
    assert caught.value.status_code == 403
    assert user in caught.value.jupyterhub_message


def test_the_review_namespace_lets_only_the_guard_in_and_nothing_out() -> None:
    docs = review_manifests()
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    (ns,) = [d for d in docs if d["kind"] == "Namespace"]
    assert ns["metadata"]["name"] == "hdh-p-review"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["labels"]["hdh.io/policies"]
    assert [d["kind"] for d in docs].count("PersistentVolumeClaim") == 0  # made per reviewer
    rev = Pod(
        "rev", "hdh-p-review", {"hdh.io/role": "sandbox", "hdh.io/project": "review"}, "10.9.0.2"
    )
    pods = [p for p in PODS.values() if isinstance(p, Pod)] + [rev]
    namespaces = {
        "hdh-system": {"hdh.io/role": "system"},
        "kube-system": {},
        "hdh-p-review": ns["metadata"]["labels"],
        **{
            p.namespace: {"hdh.io/role": "project"}
            for p in pods
            if p.namespace.startswith("hdh-p-")
        },
    }
    cluster = Cluster(namespaces, pods, [*SYSTEM, *docs])
    assert cluster.allowed(PODS["guard"], rev, 8888, "TCP")
    for port in (8090, 8000):
        assert not cluster.allowed(rev, PODS["guard"], port, "TCP")  # no bridge, no proxy
    for other in ("api", "db", "hub", "dns", "alice-a", "internet", "metadata"):
        assert not cluster.allowed(rev, PODS[other], 443, "TCP")
    assert not cluster.allowed(PODS["alice-a"], rev, 8888, "TCP")
    assert not cluster.allowed(PODS["proxy"], rev, 8888, "TCP")


def test_hdh_k8s_review_prints_the_namespace() -> None:
    r = CliRunner().invoke(main, ["k8s", "review", "--pods", "10"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    docs = list(yaml.safe_load_all(r.output))
    quota = next(d for d in docs if d["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"]["pods"] == "10"
    assert quota["spec"]["hard"]["services"] == "0"
