"""A project's own Kubernetes objects: its namespace and everything that isolates it.

Each project lives in its own namespace ``hdh-p-<slug>`` (:func:`project_namespace`), made
before its first pod by :func:`project_manifests` (``hdh k8s project SLUG | kubectl apply
-f -``, by an operator or the provisioning of a permit), never by the spawner: a namespace
without its policies would be a sandbox with the network open, so
:class:`~jupyterlab_hdh.k8s.spawner.ProjectKubeSpawner` refuses to start a pod in a
namespace that does not carry :data:`PROVISIONED_LABEL` at :data:`POLICY_VERSION`.

The objects:

* the Namespace, labelled for the ``restricted`` Pod Security Standard (enforced);
* a ResourceQuota and a LimitRange (the project's share of the cluster: CPU, memory,
  GPUs, pods, storage);
* the project workspace, a ReadWriteMany claim;
* three RoleBindings: the guard may read the namespace's pods, the hub make and delete
  them, the retention sweep archive the workspace claim through a Job (the ClusterRoles
  are in ``k8s/system``);
* NetworkPolicies: everything denied in both directions, then only: the guard may reach
  the sandboxes' server port; a sandbox may reach the guard's bridge port (its only way
  to the control plane); Spark's master, workers and executors and the driver in the
  sandbox talk on Spark's four fixed ports (7077-7080), inside the project. No DNS, no
  internet, no cloud metadata address, no other pod — and not another member's sandbox
  server in the same project (no token guards that port: the guard authenticates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyterlab_hdh.k8s.pod import (
    DATASETS_CLAIM,
    LABEL_PREFIX,
    RUNTIME_DEFAULT_SECCOMP,
    SERVER_PORT,
    k8s_name,
    restricted_container_context,
    workspace_claim,
)

SYSTEM_NAMESPACE = "hdh-system"
#: the guard's ports: the proxy's HTTP side, and the API bridge the sandboxes call
GUARD_HTTP_PORT = 8000
GUARD_BRIDGE_PORT = 8090
#: Spark's ports between a project's Spark pods (``jupyterlab_hdh.k8s.spark``): the
#: standalone master, the driver's RPC (``hdh.spark()`` fixes it), the block managers of the
#: driver and of each executor, and a worker's RPC
SPARK_MASTER_PORT = 7077
SPARK_DRIVER_PORT = 7078
SPARK_BLOCK_MANAGER_PORT = 7079
SPARK_WORKER_PORT = 7080
PROVISIONED_LABEL = f"{LABEL_PREFIX}policies"
#: bumped whenever the policies change, so a namespace made by an older HDH is refused
#: 2: the guard's and the hub's RoleBindings; 3: no sandbox to sandbox; 4: the retention's
POLICY_VERSION = "4"
ROLE = f"{LABEL_PREFIX}role"
PROJECT = f"{LABEL_PREFIX}project"


def project_namespace(slug: str) -> str:
    return k8s_name("hdh-p", slug)


@dataclass(frozen=True)
class ProjectQuota:
    """A project's share of the cluster (Kubernetes quantities)."""

    cpu: str = "16"
    memory: str = "64Gi"
    gpus: int = 1
    pods: int = 20
    workspace: str = "50Gi"
    storage_class: str = ""  # a ReadWriteMany class (empty: the cluster's default)
    datasets_size: str = "1Ti"


#: where the dataset versions live, as a PersistentVolume source (the operator's storage:
#: NFS, CephFS, a CSI driver...); mounted read-only in every project namespace
DEFAULT_DATASETS_SOURCE: dict[str, Any] = {
    "nfs": {"server": "hdh-datasets.hdh-system.svc", "path": "/datasets", "readOnly": True}
}


def project_job(
    slug: str,
    naming: dict[str, str],
    pod_labels: dict[str, str],
    container: dict[str, Any],
    *,
    run_as: tuple[int, int],
    fs_group: int | None = None,
    volumes: list[dict[str, Any]] | None = None,
    **job_spec: Any,
) -> dict[str, Any]:
    """A Job of project ``slug``'s namespace, run once (no retry): its pod restricted, with
    no service-account token and no other service's address, as ``run_as`` (uid, gid), its
    one ``container`` under the restricted security context. ``naming``: ``{"name": ...}``
    or ``{"generateName": ...}``; ``fs_group``: the volumes' group, as the sandboxes have
    it; ``job_spec``: more of the Job's spec."""
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as[0],
            "runAsGroup": run_as[1],
            "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
        },
        "containers": [{**container, "securityContext": restricted_container_context()}],
    }
    if fs_group is not None:
        pod_spec["securityContext"].update(
            {"fsGroup": fs_group, "fsGroupChangePolicy": "OnRootMismatch"}
        )
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **naming,
            "namespace": project_namespace(slug),
            "labels": {**pod_labels, "app.kubernetes.io/part-of": "hdh"},
        },
        "spec": {
            "backoffLimit": 0,
            **job_spec,
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }


def _meta(name: str, slug: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {
            PROJECT: slug,
            "app.kubernetes.io/part-of": "hdh",
            "app.kubernetes.io/managed-by": "hdh",
        },
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _policy(name: str, slug: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, slug, project_namespace(slug)),
        "spec": spec,
    }


def _guard_peer() -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": SYSTEM_NAMESPACE}},
        "podSelector": {"matchLabels": {ROLE: "guard"}},
    }


#: Spark's pods of a project: the driver (in the sandbox) and its executors
SPARK_EXECUTORS: dict[str, Any] = {"matchLabels": {ROLE: "spark-executor"}}
SPARK_PODS: dict[str, Any] = {
    "matchExpressions": [{"key": ROLE, "operator": "In", "values": ["sandbox", "spark-executor"]}]
}


def _spark_ports() -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": SPARK_MASTER_PORT, "endPort": SPARK_WORKER_PORT}]


def network_policies(slug: str) -> list[dict[str, Any]]:
    """The project namespace's NetworkPolicies (see the module's docstring)."""
    sandbox = {"matchLabels": {ROLE: "sandbox"}}
    return [
        _policy("default-deny", slug, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(
            "sandbox-from-guard",
            slug,
            {
                "podSelector": sandbox,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [_guard_peer()], "ports": [{"protocol": "TCP", "port": SERVER_PORT}]}
                ],
            },
        ),
        _policy(
            "sandbox-to-bridge",
            slug,
            {
                "podSelector": sandbox,
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [_guard_peer()],
                        "ports": [{"protocol": "TCP", "port": GUARD_BRIDGE_PORT}],
                    }
                ],
            },
        ),
        _policy(
            "spark-within-project",
            slug,
            {
                # Spark's own pods (master, workers, executors): with each other and with
                # the drivers (the sandboxes)
                "podSelector": SPARK_EXECUTORS,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": SPARK_PODS}], "ports": _spark_ports()}],
                "egress": [{"to": [{"podSelector": SPARK_PODS}], "ports": _spark_ports()}],
            },
        ),
        _policy(
            "driver-to-spark",
            slug,
            {
                # a sandbox (a driver) talks to Spark's pods only: never to another member's
                # sandbox on these ports (an unaudited channel between two sandboxes)
                "podSelector": sandbox,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": SPARK_EXECUTORS}], "ports": _spark_ports()}],
                "egress": [{"to": [{"podSelector": SPARK_EXECUTORS}], "ports": _spark_ports()}],
            },
        ),
    ]


#: the guard's service account, the hub's (the JupyterHub chart's) and the retention
#: sweep's, in hdh-system
GUARD_ACCOUNT = "hdh-guard"
HUB_ACCOUNT = "hub"
RETENTION_ACCOUNT = "hdh-retention"


def role_bindings(slug: str, *, retention: bool = True) -> list[dict[str, Any]]:
    """Who may act in the project's namespace (ClusterRoles of ``k8s/system``): the guard
    reads its pods (to find a person's server and a bridge caller), the hub makes and
    deletes them, the retention sweep runs the Jobs that archive the workspace claim
    (:mod:`jupyterlab_hdh.k8s.workspaces`). Nothing else, and nothing for the pods
    themselves (they have no token)."""
    ns = project_namespace(slug)

    def binding(name: str, role: str, account: str) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(name, slug, ns),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": SYSTEM_NAMESPACE}
            ],
        }

    bindings = [
        binding("hdh-guard", "hdh-guard-pods", GUARD_ACCOUNT),
        binding("hdh-hub", "hdh-hub-spawn", HUB_ACCOUNT),
    ]
    if retention:  # a project's workspace claim (the review namespace has none)
        bindings.append(binding("hdh-retention", "hdh-retention", RETENTION_ACCOUNT))
    return bindings


def datasets_volume(slug: str, source: dict[str, Any], size: str) -> list[dict[str, Any]]:
    """The dataset versions, read-only, as a claim of the project's namespace: a
    PersistentVolume of the operator's ``source`` bound to exactly that claim (a pod mounts
    only its permitted versions of it, by ``subPath``: :mod:`jupyterlab_hdh.k8s.pod`)."""
    ns = project_namespace(slug)
    pv_name = k8s_name("hdh-datasets", slug)
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": _meta(pv_name, slug),
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "capacity": {"storage": size},
                "persistentVolumeReclaimPolicy": "Retain",  # never delete the datasets
                "storageClassName": "",
                "claimRef": {"namespace": ns, "name": DATASETS_CLAIM},
                "mountOptions": ["ro"],
                **source,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(DATASETS_CLAIM, slug, ns),
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": pv_name,
                "resources": {"requests": {"storage": size}},
            },
        },
    ]


def _namespace(slug: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(project_namespace(slug), slug),
    }
    namespace["metadata"]["labels"].update(
        {
            ROLE: "project",
            PROVISIONED_LABEL: POLICY_VERSION,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }
    )
    return namespace


def _limits(slug: str, hard: dict[str, str]) -> list[dict[str, Any]]:
    """The namespace's quota (``hard``) and the defaults of a container that names none."""
    ns = project_namespace(slug)
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta("project-quota", slug, ns),
            "spec": {"hard": hard},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta("project-limits", slug, ns),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "1", "memory": "2Gi"},
                        "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                    }
                ]
            },
        },
    ]


def _no_services() -> dict[str, str]:
    return {"services": "0", "services.loadbalancers": "0", "services.nodeports": "0"}


def project_manifests(
    slug: str,
    quota: ProjectQuota | None = None,
    datasets_source: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every object of project ``slug``, in the order to apply them."""
    quota = quota or ProjectQuota()
    ns = project_namespace(slug)
    hard: dict[str, str] = {
        "requests.cpu": quota.cpu,
        "limits.cpu": quota.cpu,
        "requests.memory": quota.memory,
        "limits.memory": quota.memory,
        "pods": str(quota.pods),
        "persistentvolumeclaims": "2",  # its workspace and the datasets, nothing more
        "requests.nvidia.com/gpu": str(quota.gpus),
        **_no_services(),  # a project exposes nothing
    }
    workspace: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(workspace_claim(slug), slug, ns),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": quota.workspace}},
        },
    }
    if quota.storage_class:
        workspace["spec"]["storageClassName"] = quota.storage_class
    return [
        _namespace(slug),
        *_limits(slug, hard),
        *network_policies(slug),
        *role_bindings(slug),
        workspace,
        *datasets_volume(slug, datasets_source or DEFAULT_DATASETS_SOURCE, quota.datasets_size),
    ]


@dataclass(frozen=True)
class ReviewQuota:
    """What the reviewers' workspaces may use together (Kubernetes quantities)."""

    cpu: str = "16"
    memory: str = "64Gi"
    pods: int = 50
    workspaces: int = 200  # one claim per reviewer
    storage: str = "500Gi"


def review_manifests(quota: ReviewQuota | None = None) -> list[dict[str, Any]]:
    """The namespace of the reviewers' own workspaces (the named server ``review``), in the
    order to apply them: a project namespace that no project can take (``review`` is a
    reserved slug), with no dataset, no way to the API bridge (a review workspace acts as
    no one) and one claim per reviewer, made by the hub at their first spawn."""
    from jupyterlab_hdh.governance.projects import REVIEW_WORKSPACE

    quota = quota or ReviewQuota()
    slug = REVIEW_WORKSPACE
    hard = {
        "requests.cpu": quota.cpu,
        "limits.cpu": quota.cpu,
        "requests.memory": quota.memory,
        "limits.memory": quota.memory,
        "pods": str(quota.pods),
        "persistentvolumeclaims": str(quota.workspaces),
        "requests.storage": quota.storage,
        "requests.nvidia.com/gpu": "0",
        **_no_services(),
    }
    policies = [p for p in network_policies(slug) if p["metadata"]["name"] in REVIEW_POLICIES]
    storage = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta("hdh-hub-review-storage", slug, project_namespace(slug)),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "hdh-hub-review-storage",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": SYSTEM_NAMESPACE}
        ],
    }
    bindings = role_bindings(slug, retention=False)
    return [_namespace(slug), *_limits(slug, hard), *policies, *bindings, storage]


#: a review workspace's policies: everything denied, then only the guard to its server
REVIEW_POLICIES = ("default-deny", "sandbox-from-guard")
