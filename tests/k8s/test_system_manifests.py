"""HDH's own objects in hdh-system (k8s/system/*.yaml): valid Kubernetes, HDH's own pods
admitted by the restricted Pod Security Standard with no service-account token but the
guard's, and the rights of the guard and the hub (with each project's RoleBindings)
exactly what their roles need, by a small RBAC evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from jupyterlab_hdh.k8s.project import project_manifests, project_namespace, review_manifests
from tests.k8s.pod_security import restricted_violations

SYSTEM = Path(__file__).resolve().parents[2] / "k8s" / "system"


def _docs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{d['kind']}/{d['metadata']['name']}", d)
        for path in sorted(SYSTEM.glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]


DOCS = _docs()
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[n for n, _ in DOCS])
def test_each_object_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.33", strict=True)
    if doc["kind"] not in CLUSTER_SCOPED:
        assert doc["metadata"]["namespace"] == "hdh-system"
    else:
        assert "namespace" not in doc["metadata"]


def test_hdh_pods_are_restricted_and_carry_no_token_but_the_guards() -> None:
    deployments = {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == "Deployment"}
    assert set(deployments) == {"hdh-api", "hdh-guard"}
    for name, d in deployments.items():
        pod = {"spec": d["spec"]["template"]["spec"]}
        assert restricted_violations(pod) == {}, name
        # the guard lists pods (its rights: test_rights_are_what_each_role_needs)
        assert pod["spec"]["automountServiceAccountToken"] is (name == "hdh-guard")
        for c in pod["spec"]["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            secrets = [e for e in c.get("env", []) if "valueFrom" in e]
            assert all("secretKeyRef" in e["valueFrom"] for e in secrets)
            clear = [e["name"] for e in c.get("env", []) if "value" in e]
            secret_names = [
                n for n in clear if n.endswith(("_TOKEN", "_SECRET", "PASSWORD", "STORE_URL"))
            ]
            assert secret_names == [], f"{d['metadata']['name']} sets secrets in clear"


def test_the_retention_sweep_is_restricted_and_holds_its_token_and_no_secret_in_clear() -> None:
    (cron,) = [d for _, d in DOCS if d["kind"] == "CronJob"]
    assert cron["metadata"]["name"] == "hdh-retention"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"  # one sweep at a time
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert restricted_violations({"spec": spec}) == {}
    assert spec["serviceAccountName"] == "hdh-retention"
    assert spec["automountServiceAccountToken"] is True  # it makes Jobs
    (c,) = spec["containers"]
    assert c["command"][-3:] == ["k8s", "workspace", "sweep"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert all("secretKeyRef" in e["valueFrom"] for e in c["env"] if "valueFrom" in e)
    assert [e["name"] for e in c["env"] if "value" in e] == []
    # the control plane's data directory (the archive markers) and store, as hdh-api has them
    (api,) = [
        d for _, d in DOCS if d["kind"] == "Deployment" and d["metadata"]["name"] == "hdh-api"
    ]
    api_spec = api["spec"]["template"]["spec"]
    assert [v for v in spec["volumes"] if v["name"] == "data"] == [
        v for v in api_spec["volumes"] if v["name"] == "data"
    ]
    assert spec["securityContext"]["runAsUser"] == api_spec["securityContext"]["runAsUser"]


def test_the_example_secret_holds_no_real_secret() -> None:
    (secret,) = [d for _, d in DOCS if d["kind"] == "Secret"]
    assert set(secret["stringData"].values()) <= {
        "CHANGE-ME",
        "postgresql+psycopg://hdh:CHANGE-ME@hdh-postgres.hdh-system.svc:5432/hdh",
    }


def _rules(objects: list[dict[str, Any]], account: str) -> set[tuple[str, str, str]]:
    """Every (namespace or "*", resource, verb) the service account ``hdh-system/account``
    may use, from the (Cluster)Roles its (Cluster)RoleBindings grant; a resource outside
    the core API is named with its group (``batch/jobs``)."""
    roles = {
        (o.get("metadata", {}).get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    granted: set[tuple[str, str, str]] = set()
    for b in objects:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subject = {"kind": "ServiceAccount", "name": account, "namespace": "hdh-system"}
        if subject not in b["subjects"]:
            continue
        ref = b["roleRef"]
        scope = "*" if b["kind"] == "ClusterRoleBinding" else b["metadata"]["namespace"]
        role_ns = None if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"]
        role = roles[(role_ns, ref["name"])]  # a binding to a missing role is an error
        for rule in role["rules"]:
            (group,) = rule["apiGroups"]  # one group per rule, named
            resources = [f"{group}/{r}" if group else r for r in rule["resources"]]
            granted |= {(scope, r, v) for r in resources for v in rule["verbs"]}
    return granted


def test_rights_are_what_each_role_needs() -> None:
    """The guard reads pods of project namespaces only; the hub watches sandbox pods
    everywhere (KubeSpawner's one watch) but makes and deletes them only in project
    namespaces; a project grants no one else anything."""
    objects = [
        *(d for _, d in DOCS),
        *project_manifests("cohort-a"),
        *project_manifests("b"),
        *review_manifests(),
    ]
    a, b, rv = project_namespace("cohort-a"), project_namespace("b"), "hdh-p-review"
    assert _rules(objects, "hdh-guard") == {
        (ns, "pods", verb) for ns in (a, b, rv) for verb in ("get", "list")
    }
    assert _rules(objects, "hub") == {
        *[("*", r, v) for r in ("pods", "events") for v in ("get", "list", "watch")],
        ("*", "namespaces", "get"),
        *[(ns, "pods", v) for ns in (a, b, rv) for v in ("create", "delete")],
        # each reviewer's own claim, made at their first spawn; a project's are the operator's
        *[(rv, "persistentvolumeclaims", v) for v in ("get", "create")],
    }
    # the retention sweep: Jobs and the workspace claim of project namespaces, no more
    assert _rules(objects, "hdh-retention") == {
        *[(ns, "batch/jobs", v) for ns in (a, b) for v in ("create", "get", "delete")],
        *[(ns, "pods", "list") for ns in (a, b)],
        *[(ns, "pods/log", "get") for ns in (a, b)],
        *[(ns, "persistentvolumeclaims", v) for ns in (a, b) for v in ("get", "patch", "delete")],
    }
    for account in ("default", "hdh-api", "jovyan"):
        assert _rules(objects, account) == set()
    subjects = {
        (s["namespace"], s["name"])
        for o in project_manifests("cohort-a")
        if o["kind"] == "RoleBinding"
        for s in o["subjects"]
    }
    assert subjects == {
        ("hdh-system", "hdh-guard"),
        ("hdh-system", "hub"),
        ("hdh-system", "hdh-retention"),
    }


def test_the_guard_is_what_the_hub_and_the_pods_are_told_it_is() -> None:
    """The hub routes to the guard's Service and gives pods its bridge port; the guard's
    command serves both ports, as the proxy's policy and the projects' policies expect."""
    from jupyterlab_hdh.k8s.project import GUARD_BRIDGE_PORT, GUARD_HTTP_PORT

    values = yaml.safe_load((SYSTEM.parent / "values.yaml").read_text())
    (service,) = [
        d for _, d in DOCS if d["kind"] == "Service" and d["metadata"]["name"] == "hdh-guard"
    ]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"http": GUARD_HTTP_PORT, "bridge": GUARD_BRIDGE_PORT}
    assert (
        values["hub"]["extraEnv"]["HDH_GUARD_URL"]
        == f"http://hdh-guard.hdh-system.svc:{GUARD_HTTP_PORT}"
    )
    (guard,) = [
        d for _, d in DOCS if d["kind"] == "Deployment" and d["metadata"]["name"] == "hdh-guard"
    ]
    pod = guard["spec"]["template"]
    assert pod["metadata"]["labels"]["hdh.io/role"] == "guard"  # what the policies select
    (c,) = pod["spec"]["containers"]
    assert c["command"][-6:] == [
        "k8s",
        "guard",
        "--port",
        str(GUARD_HTTP_PORT),
        "--bridge-port",
        str(GUARD_BRIDGE_PORT),
    ]
    assert pod["spec"]["serviceAccountName"] == "hdh-guard"
    data = {v["name"]: v for v in pod["spec"]["volumes"]}["data"]
    assert data["persistentVolumeClaim"]["readOnly"] is True
