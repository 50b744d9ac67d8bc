"""A project sandbox as a Kubernetes pod: the same specification, another back end.

:func:`pod_plan` turns the :class:`~jupyterlab_hdh.sandbox.SandboxSpec` the embedded spawner
gives bubblewrap (project, person, workspace, permitted dataset versions, host identity) and
a :class:`~jupyterlab_hdh.k8s.profiles.ComputeProfile` into the settings of one pod, which
:class:`~jupyterlab_hdh.k8s.spawner.ProjectKubeSpawner` hands to KubeSpawner. Pure: no
cluster, no store; the tests render the manifests offline and validate them against the
Kubernetes schemas.

What the pod keeps from the bubblewrap sandbox:

* the same Jupyter server command (:func:`~jupyterlab_hdh.sandbox.spec.server_argv`:
  no ``/files``, read-only extension manager, HDH's ``/hdh`` routes), listening on the
  pod's port instead of a Unix socket (only the guard may reach it: NetworkPolicy), and
  the same environment (:func:`~jupyterlab_hdh.sandbox.spec.sandbox_env`) and nothing
  else: no JupyterHub token, no service links, no service-account token;
* the project workspace read-write at ``/workspace`` (a ReadWriteMany claim per
  project), each permitted dataset version read-only at ``/data/<dataset>/<version>``
  (a read-only mount of that version's folder in the datasets claim: the pod sees no
  other version), HOME and the temporary folders as pod-local ``emptyDir``;
* the project's own uid/gid (``host_id_base + project id``) with the data group as its
  only supplementary group, never root, named in the pod's ``/etc/passwd`` and
  ``/etc/group`` as in the sandbox (:func:`identity_files`: Java looks the uid up);
* restricted Pod Security: non-root, every capability dropped, ``RuntimeDefault``
  seccomp, no privilege escalation, a read-only root filesystem, and no DNS (the pod's
  only resolver is its own loopback).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from jupyterlab_hdh.k8s.profiles import ComputeProfile
from jupyterlab_hdh.paths import LINKAGE_FOLDER
from jupyterlab_hdh.sandbox.spec import (
    DATA_ROOT,
    IPYTHON_DIR,
    IPYTHON_KERNELS_DIR,
    LAB_STATE_DIR,
    LINKAGE_ROOT,
    SANDBOX_HOME,
    SANDBOX_TMP,
    SANDBOX_VAR_TMP,
    WORKSPACE,
    SandboxSpec,
    group_text,
    passwd_text,
    sandbox_env,
    sandbox_ids,
    server_argv,
)

#: the port the sandbox's Jupyter server listens on inside its pod
SERVER_PORT = 8888
#: the interpreter of the images (``images/``), where the local sandbox uses the host's venv
IMAGE_PYTHON_PREFIX = "/opt/hdh/venv"
#: the claim holding every dataset version as ``<dataset>/<version>/`` (read-only)
DATASETS_CLAIM = "hdh-datasets"
LABEL_PREFIX = "hdh.io/"
#: the pod's person, annotated: the account name as it is (a label cannot hold every name);
#: the guard forwards a person's requests to, and bridges calls from, the pod bearing it
USER_ANNOTATION = f"{LABEL_PREFIX}user"
#: the pod's server token, made by the spawner at each start: the server answers only the
#: guard, which reads it from the pod object (anything else reaching port 8888, such as a
#: host-network pod of the node, which NetworkPolicies do not govern, is refused)
SERVER_TOKEN_ENV = "JUPYTER_TOKEN"  # noqa: S105 - the variable's name
#: how a pod reaches the control plane: the guard's bridge port, by address (no DNS in a pod)
BRIDGE_URL_ENV = "HDH_BRIDGE_URL"
#: a reviewer's own workspace claim
REVIEW_WORKSPACE_SIZE = "10Gi"
#: arguments of the local command that name host paths or the Unix socket
_LOCAL_ONLY_ARGS = (
    "--ServerApp.sock=",
    "--ServerApp.sock_mode=",
    "--LabApp.extra_labextensions_path=",  # the images install the extension itself
    "--IdentityProvider.token=",  # a pod's server has a token (SERVER_TOKEN_ENV)
)
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def k8s_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label from ``parts`` (``_``, dots and capitals folded); a short hash is
    added when folding changed a part, so two names never fold into one."""
    raw = "-".join(parts)
    name = _DNS_LABEL.sub("-", raw.lower()).strip("-")
    if name != raw or len(name) > limit:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[: limit - 9].rstrip('-')}-{digest}"
    return name


def workspace_claim(project: str) -> str:
    """The ReadWriteMany claim of a project's workspace."""
    return k8s_name("hdh-workspace", project)


def review_claim(user: str) -> str:
    """The claim of a reviewer's own workspace (made by the hub at their first spawn)."""
    return k8s_name("hdh-review", user)


@dataclass(frozen=True)
class PodPlan:
    """The KubeSpawner settings of one project pod (see :meth:`apply`)."""

    image: str
    cmd: list[str]
    env: dict[str, str]
    volumes: dict[str, dict[str, Any]]
    volume_mounts: dict[str, dict[str, Any]]
    uid: int
    gid: int
    supplemental_gids: list[int]
    pod_security_context: dict[str, Any]
    container_security_context: dict[str, Any]
    labels: dict[str, str]
    cpu_limit: float
    cpu_guarantee: float
    mem_limit: str
    mem_guarantee: str
    extra_resource_limits: dict[str, str]
    node_selector: dict[str, str]
    tolerations: dict[str, dict[str, str]]
    annotations: dict[str, str] = field(default_factory=dict)
    extra_container_config: dict[str, Any] = field(default_factory=dict)
    extra_pod_config: dict[str, Any] = field(default_factory=dict)
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    #: a reviewer's own claim, which KubeSpawner makes when missing (empty: the project's)
    own_claim: str = ""

    def apply(self, spawner: Any) -> None:
        """Set these values on a KubeSpawner (before ``get_pod_manifest``/``start``)."""
        spawner.image = self.image
        spawner.cmd = self.cmd
        spawner.volumes = self.volumes
        spawner.volume_mounts = self.volume_mounts
        spawner.uid = self.uid
        spawner.gid = self.gid
        spawner.fs_gid = self.gid
        spawner.supplemental_gids = self.supplemental_gids
        spawner.pod_security_context = self.pod_security_context
        spawner.container_security_context = self.container_security_context
        spawner.extra_labels = self.labels
        spawner.extra_annotations = self.annotations
        spawner.extra_container_config = self.extra_container_config
        spawner.cpu_limit = self.cpu_limit
        spawner.cpu_guarantee = self.cpu_guarantee
        spawner.mem_limit = self.mem_limit
        spawner.mem_guarantee = self.mem_guarantee
        spawner.extra_resource_limits = self.extra_resource_limits
        spawner.extra_resource_guarantees = self.extra_resource_limits
        spawner.node_selector = self.node_selector
        spawner.tolerations = self.tolerations
        spawner.extra_pod_config = self.extra_pod_config
        spawner.working_dir = WORKSPACE
        spawner.port = SERVER_PORT
        spawner.automount_service_account_token = False
        spawner.service_account = None
        spawner.privileged = False
        spawner.allow_privilege_escalation = False
        # a project's workspace claim is the operator's; a reviewer's own is made on first use
        spawner.storage_pvc_ensure = bool(self.own_claim)
        if self.own_claim:
            spawner.pvc_name = self.own_claim
            spawner.storage_access_modes = ["ReadWriteOnce"]
            spawner.storage_capacity = REVIEW_WORKSPACE_SIZE
        spawner.lifecycle_hooks = {}
        spawner.init_containers = self.init_containers
        spawner.extra_containers = []


#: seccomp as the restricted Pod Security Standard asks
RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}


def restricted_container_context() -> dict[str, Any]:
    """A container's security context under the restricted Pod Security Standard, with a
    read-only root filesystem: every HDH pod's (sandboxes, the isolation probe)."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }


#: where a pod's own /etc/passwd and /etc/group are written before it starts
IDENTITY_VOLUME = "identity"
IDENTITY_DIR = "/hdh-identity"


def identity_files(
    spec: SandboxSpec, image: str
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The project's uid named in the pod, as in the local sandbox (``passwd_text``,
    ``group_text``): Java (Spark's Hadoop libraries) looks the running uid up and fails
    without an entry, and an image cannot list every project's uid in advance.

    Returns an init container (the pod's image, as the project's uid, restricted) that
    writes the two files into a pod-local volume, that volume, and the mounts of the files
    over ``/etc/passwd`` and ``/etc/group`` (read-only) for the main container."""
    init = {
        "name": "identity",
        "image": image,
        "command": [
            "/bin/sh",
            "-c",
            f'printf "%s" "$HDH_PASSWD" > {IDENTITY_DIR}/passwd'
            f' && printf "%s" "$HDH_GROUP" > {IDENTITY_DIR}/group',
        ],
        "env": [
            {"name": "HDH_PASSWD", "value": passwd_text(spec)},
            {"name": "HDH_GROUP", "value": group_text(spec)},
        ],
        # as the project's uid (KubeSpawner sets it on the main container only)
        "securityContext": {
            **restricted_container_context(),
            "runAsUser": sandbox_ids(spec)[0],
            "runAsGroup": sandbox_ids(spec)[1],
        },
        "resources": {
            "limits": {"cpu": "100m", "memory": "64Mi"},
            "requests": {"cpu": "10m", "memory": "16Mi"},
        },
        "volumeMounts": [{"name": IDENTITY_VOLUME, "mountPath": IDENTITY_DIR}],
    }
    volume = {"name": IDENTITY_VOLUME, "emptyDir": {"sizeLimit": "1Mi"}}
    mounts = [
        {
            "name": IDENTITY_VOLUME,
            "mountPath": f"/etc/{name}",
            "subPath": name,
            "readOnly": True,
        }
        for name in ("passwd", "group")
    ]
    return init, volume, mounts


def isolated_pod_settings() -> dict[str, Any]:
    """The pod-level settings of every project pod (sandboxes, Spark's pods): no other
    service's address, nothing of the node's, and no DNS."""
    return {
        "enableServiceLinks": False,  # no other service's address in the environment
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "dnsPolicy": "None",  # no resolver but the pod's own loopback: no DNS
        "dnsConfig": {"nameservers": ["127.0.0.1"], "searches": [], "options": []},
        "hostname": "hdh-sandbox",
    }


def pod_command(spec: SandboxSpec) -> list[str]:
    """The local sandbox's server command, listening on the pod's port."""
    argv = [a for a in server_argv(spec) if not a.startswith(_LOCAL_ONLY_ARGS)]
    return [
        *argv,
        "--ServerApp.ip=0.0.0.0",
        f"--ServerApp.port={SERVER_PORT}",
        "--ServerApp.port_retries=0",
    ]


def pod_volumes(
    spec: SandboxSpec, claim: str = ""
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """A project pod's volumes and mounts, by name: the workspace claim, the pod-local
    folders, and each permitted dataset version read-only by ``subPath`` (and the permit's
    linked tables, ``.linkage/permit-<id>``, at ``/data/linkage``)."""
    volumes: dict[str, dict[str, Any]] = {
        "workspace": {
            "name": "workspace",
            "persistentVolumeClaim": {"claimName": claim or workspace_claim(spec.project)},
        },
        "home": {"name": "home", "emptyDir": {"sizeLimit": "1Gi"}},
        "tmp": {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
        "var-tmp": {"name": "var-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        "ipython": {"name": "ipython", "emptyDir": {"sizeLimit": "100Mi"}},
        # an empty folder mounted read-only over IPython's kernelspec folder (as locally)
        "no-kernelspecs": {"name": "no-kernelspecs", "emptyDir": {"sizeLimit": "1Mi"}},
        # JupyterLab's user settings and workspaces (the root filesystem is read-only)
        "lab": {"name": "lab", "emptyDir": {"sizeLimit": "10Mi"}},
    }
    mounts: dict[str, dict[str, Any]] = {
        "workspace": {"name": "workspace", "mountPath": WORKSPACE},
        "home": {"name": "home", "mountPath": SANDBOX_HOME},
        "tmp": {"name": "tmp", "mountPath": SANDBOX_TMP},
        "var-tmp": {"name": "var-tmp", "mountPath": SANDBOX_VAR_TMP},
        "ipython": {"name": "ipython", "mountPath": IPYTHON_DIR},
        "no-kernelspecs": {
            "name": "no-kernelspecs",
            "mountPath": IPYTHON_KERNELS_DIR,
            "readOnly": True,
        },
        "lab": {"name": "lab", "mountPath": LAB_STATE_DIR},
    }
    if spec.mounts or spec.linkage is not None:
        volumes["datasets"] = {
            "name": "datasets",
            "persistentVolumeClaim": {"claimName": DATASETS_CLAIM, "readOnly": True},
        }
    for m in spec.mounts:
        key = k8s_name("data", m.dataset, m.version)
        mounts[key] = {
            "name": "datasets",
            "mountPath": f"{DATA_ROOT}/{m.dataset}/{m.version}",
            "subPath": f"{m.dataset}/{m.version}",
            "readOnly": True,
        }
    if spec.linkage is not None:  # the permit's linked tables: datasets/.linkage/permit-<id>
        mounts["linkage"] = {
            "name": "datasets",
            "mountPath": LINKAGE_ROOT,
            "subPath": f"{LINKAGE_FOLDER}/{spec.linkage.name}",
            "readOnly": True,
        }
    return volumes, mounts


def pod_plan(
    spec: SandboxSpec,
    profile: ComputeProfile,
    bridge_url: str = "",
    own_claim: str = "",
    *,
    server_token: str,
) -> PodPlan:
    """The pod of ``spec`` on ``profile``. ``spec.host`` (the project's identity) is required:
    a pod never runs as root, nor as another project's uid. ``bridge_url``: the guard's API
    bridge (``http://<address>:8090``; empty: none), given to the pod with the project's
    path as ``HDH_BRIDGE_URL``. ``own_claim``: the workspace is this claim (a reviewer's),
    not the project's. ``server_token``: the server's token (a new one at each start)."""
    if spec.host is None:
        raise ValueError("a project pod needs the project's host identity (SandboxSpec.host)")
    if len(server_token) < 32:
        raise ValueError("a project pod's server needs a token of at least 32 characters")
    host = spec.host
    host.check()
    volumes, mounts = pod_volumes(spec, own_claim)
    init, identity, identity_mounts = identity_files(spec, profile.image)
    volumes[IDENTITY_VOLUME] = identity
    for m in identity_mounts:
        mounts[f"identity-{m['subPath']}"] = m
    env = sandbox_env(spec)
    # the host's path of HDH's R helper means nothing in an image: R's site profile there
    # loads it from the venv (images/base/hdh-rprofile.R)
    env.pop("R_PROFILE_USER", None)
    env["HDH_PROFILE"] = profile.name
    env[SERVER_TOKEN_ENV] = server_token
    if bridge_url:
        env[BRIDGE_URL_ENV] = f"{bridge_url.rstrip('/')}/projects/{spec.project}"
    selector, tolerations = profile.scheduling()
    return PodPlan(
        image=profile.image,
        cmd=pod_command(spec),
        env=env,
        volumes=volumes,
        volume_mounts=mounts,
        uid=host.uid,
        gid=host.gid,
        supplemental_gids=[host.data_gid]
        if (spec.mounts or spec.linkage is not None) and host.data_gid is not None
        else [],
        pod_security_context={
            "runAsNonRoot": True,
            "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
            "fsGroupChangePolicy": "OnRootMismatch",
        },
        container_security_context=restricted_container_context(),
        labels={
            f"{LABEL_PREFIX}role": "sandbox",
            f"{LABEL_PREFIX}project": spec.project,
            f"{LABEL_PREFIX}profile": profile.name,
        },
        cpu_limit=profile.cpu_limit,
        cpu_guarantee=profile.cpu_guarantee,
        mem_limit=profile.mem_limit,
        mem_guarantee=profile.mem_guarantee,
        extra_resource_limits=profile.resource_limits(),
        node_selector=selector,
        tolerations={f"{i:02d}": t for i, t in enumerate(tolerations)},
        annotations={USER_ANNOTATION: spec.user},
        # ready once its server answers: the hub routes to the guard only then (the kubelet
        # probes from the node, which NetworkPolicies do not stop)
        extra_container_config={
            # lenient: a kernel using every CPU slows the server, and a pod not ready gets
            # no request from the guard (30 s without an answer before that)
            "readinessProbe": {
                "httpGet": {"path": f"{spec.base_url or '/'}api", "port": SERVER_PORT},
                "periodSeconds": 3,
                "timeoutSeconds": 5,
                "failureThreshold": 10,
            }
        },
        extra_pod_config=isolated_pod_settings(),
        init_containers=[init],
        own_claim=own_claim,
    )
