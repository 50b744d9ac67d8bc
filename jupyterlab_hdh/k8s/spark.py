"""A project server's Spark executors on Kubernetes, made by the hub, never by the sandbox.

Spark's own Kubernetes scheduler has the driver create its executor pods through the
Kubernetes API. The driver runs in the sandbox (the person's kernel, ``hdh.spark()``), which
holds no API rights on purpose: a pod it could create could mount any version of the
datasets claim and run outside the guard's view. So the hub makes the executors itself when
a server with a Spark profile (``ComputeProfile.executors``) starts: a Spark **standalone
master** pod, then the sandbox pod (with ``HDH_SPARK_MASTER=spark://<master>:7077``), then
``executors`` **worker** pods, each launching one executor that connects back to the driver.

Every one of these pods is a pod of the project under the same rules as the sandbox: the
project's uid and data group, exactly the permitted dataset versions read-only at
``/data/<dataset>/<version>`` and the workspace (executors read the data and write results),
restricted Pod Security, no service-account token, no DNS, and the project's NetworkPolicies
(label ``hdh.io/role=spark-executor``: Spark's four ports within the project, nothing else:
no bridge, no guard, no internet). All of them, the driver included, authenticate with one
secret per server start (Spark's ``spark.authenticate``, the secret in ``_SPARK_AUTH_SECRET``),
so another member's sandbox in the same project, which the policies let reach Spark's ports,
cannot join or drive this cluster. The pods carry the server's sandbox pod name
(``hdh.io/server``) and are deleted with it (:class:`~jupyterlab_hdh.k8s.spawner.
ProjectKubeSpawner`). Pure: the manifests are tested offline.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from jupyterlab_hdh.k8s.pod import (
    LABEL_PREFIX,
    RUNTIME_DEFAULT_SECCOMP,
    USER_ANNOTATION,
    identity_files,
    isolated_pod_settings,
    k8s_name,
    pod_volumes,
    restricted_container_context,
)
from jupyterlab_hdh.k8s.profiles import ComputeProfile
from jupyterlab_hdh.k8s.project import (
    PROJECT,
    ROLE,
    SPARK_MASTER_PORT,
    SPARK_WORKER_PORT,
    project_namespace,
)
from jupyterlab_hdh.sandbox.spec import SANDBOX_TMP, SandboxSpec

#: Spark reads its shared secret from here when ``spark.authenticate.secret`` is not set
SECRET_ENV = "_SPARK_AUTH_SECRET"  # noqa: S105 - the variable's name
#: the sandbox pod of the server these Spark pods belong to
SERVER_LABEL = f"{LABEL_PREFIX}server"
SPARK_LABEL = f"{LABEL_PREFIX}spark"
ENTRYPOINT = "/opt/hdh/bin/entrypoint.sh"
#: the Python of the images (executors run the driver's UDFs with it)
EXECUTOR_PYTHON = "/opt/hdh/venv/bin/python"
POD_IP_ENV = {"name": "HDH_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]i?)?$")
_UNITS = {
    None: 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
#: the standalone daemons' own heap (master, and the worker beside its executor)
DAEMON_HEAP = 512 * 2**20


def quantity_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes memory quantity (``16G``, ``512Mi``)."""
    m = _QUANTITY.match(quantity)
    if m is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def executor_heap(limit: str) -> int:
    """An executor's heap in MiB within its worker pod's memory ``limit``: 60 % of it, less
    the worker daemon's heap (the JVM's own memory and Python workers share the rest)."""
    return max(512, (int(quantity_bytes(limit) * 0.6) - DAEMON_HEAP) // 2**20)


@dataclass(frozen=True)
class SparkCluster:
    """The Spark pods of one server: ``spec`` and ``profile`` are the sandbox pod's,
    ``server`` its pod name."""

    spec: SandboxSpec
    profile: ComputeProfile
    server: str
    secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)

    @property
    def namespace(self) -> str:
        return project_namespace(self.spec.project)

    @property
    def master_name(self) -> str:
        return k8s_name(self.server, "spark-master")

    @property
    def worker_names(self) -> list[str]:
        return [k8s_name(self.server, f"spark-{i}") for i in range(self.profile.executors)]

    @property
    def executor_cores(self) -> int:
        return max(1, int(self.profile.executor_cpu))

    @property
    def _heap(self) -> str:
        return f"{executor_heap(self.profile.executor_memory)}m"

    def master_url(self, master_ip: str) -> str:
        return f"spark://{master_ip}:{SPARK_MASTER_PORT}"

    def driver_env(self, master_ip: str) -> dict[str, Any]:
        """What the sandbox pod's environment gains (KubeSpawner takes the dict entry)."""
        return {
            "HDH_SPARK_MASTER": self.master_url(master_ip),
            SECRET_ENV: self.secret,
            "HDH_SPARK_EXECUTOR_CORES": str(self.executor_cores),
            "HDH_SPARK_EXECUTOR_MEMORY": self._heap,
            "HDH_SPARK_EXECUTOR_PYTHON": EXECUTOR_PYTHON,
            "HDH_POD_IP": {"valueFrom": POD_IP_ENV["valueFrom"]},
        }

    def master_pod(self) -> dict[str, Any]:
        return self._pod(
            self.master_name,
            "master",
            [{"name": "HDH_SPARK_PORT", "value": str(SPARK_MASTER_PORT)}],
            SPARK_MASTER_PORT,
            {"cpu": "1", "memory": "1Gi"},
            {"cpu": "250m", "memory": "1Gi"},
            data=False,
        )

    def worker_pods(self, master_ip: str) -> list[dict[str, Any]]:
        env = [
            {"name": "HDH_SPARK_MASTER_URL", "value": self.master_url(master_ip)},
            {"name": "HDH_SPARK_PORT", "value": str(SPARK_WORKER_PORT)},
            {"name": "HDH_SPARK_CORES", "value": str(self.executor_cores)},
            {
                "name": "HDH_SPARK_MEMORY",
                "value": f"{executor_heap(self.profile.executor_memory)}m",
            },
        ]
        limits = {"cpu": str(self.profile.executor_cpu), "memory": self.profile.executor_memory}
        return [
            self._pod(name, "worker", env, SPARK_WORKER_PORT, limits, limits, data=True)
            for name in self.worker_names
        ]

    def _pod(
        self,
        name: str,
        part: str,
        env: list[dict[str, Any]],
        port: int,
        limits: dict[str, str],
        requests: dict[str, str],
        *,
        data: bool,
    ) -> dict[str, Any]:
        spec, host = self.spec, self.spec.host
        if host is None:
            raise ValueError("Spark's pods need the project's host identity (SandboxSpec.host)")
        volumes, mounts = pod_volumes(spec)
        keep = {"workspace", "tmp", "datasets"} if data else {"tmp"}
        mounted = [m for k, m in mounts.items() if m["name"] in keep or k in keep]
        init, identity, identity_mounts = identity_files(spec, self.profile.spark_image)
        selector, tolerations = self.profile.scheduling()
        pod_security: dict[str, Any] = {
            "runAsNonRoot": True,
            "runAsUser": host.uid,
            "runAsGroup": host.gid,
            "fsGroup": host.gid,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
        }
        if data and spec.mounts and host.data_gid is not None:
            pod_security["supplementalGroups"] = [host.data_gid]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {
                    ROLE: "spark-executor",
                    PROJECT: spec.project,
                    SERVER_LABEL: self.server,
                    SPARK_LABEL: part,
                    "app.kubernetes.io/part-of": "hdh",
                },
                "annotations": {USER_ANNOTATION: spec.user},
            },
            "spec": {
                **isolated_pod_settings(),
                "hostname": k8s_name("spark", part),
                "automountServiceAccountToken": False,
                "restartPolicy": "Always",  # a restarted master keeps its pod's address
                "securityContext": pod_security,
                "nodeSelector": selector,
                "tolerations": tolerations,
                "containers": [
                    {
                        "name": "spark",
                        "image": self.profile.spark_image,
                        "command": [ENTRYPOINT, part],
                        "env": [
                            POD_IP_ENV,
                            {"name": SECRET_ENV, "value": self.secret},
                            *env,
                        ],
                        "ports": [{"name": "spark", "containerPort": port, "protocol": "TCP"}],
                        "resources": {"limits": limits, "requests": requests},
                        "securityContext": restricted_container_context(),
                        "volumeMounts": [*mounted, *identity_mounts],
                        "workingDir": SANDBOX_TMP,
                    }
                ],
                "initContainers": [init],
                "volumes": [*(v for k, v in volumes.items() if k in keep), identity],
            },
        }
