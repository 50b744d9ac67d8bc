"""The Kubernetes Pod Security Standards' ``restricted`` profile as a checker of manifests.

Each rule of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(baseline and restricted, v1.30+) is one function returning the violations it finds, so a
test names the rule a pod breaks. No cluster runs here; this is what the admission
controller of a namespace labelled ``pod-security.kubernetes.io/enforce: restricted``
would check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod["spec"]
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def host_namespaces(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    return [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]


def privileged(pod: dict[str, Any]) -> list[str]:
    return [
        f"{c['name']}: privileged"
        for c in _containers(pod)
        if (c.get("securityContext") or {}).get("privileged")
    ]


def capabilities(pod: dict[str, Any]) -> list[str]:
    out = []
    for c in _containers(pod):
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{c['name']}: capabilities not dropped (drop: [ALL])")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            out.append(f"{c['name']}: adds {sorted(extra)}")
    return out


def volume_types(pod: dict[str, Any]) -> list[str]:
    out = []
    for v in pod["spec"].get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            out.append(f"volume {v['name']}: {sorted(kinds - ALLOWED_VOLUME_TYPES)}")
    return out


def host_ports(pod: dict[str, Any]) -> list[str]:
    return [
        f"{c['name']}: hostPort {p['hostPort']}"
        for c in _containers(pod)
        for p in c.get("ports") or []
        if p.get("hostPort")
    ]


def privilege_escalation(pod: dict[str, Any]) -> list[str]:
    return [
        f"{c['name']}: allowPrivilegeEscalation is not false"
        for c in _containers(pod)
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
    ]


def _effective(pod: dict[str, Any], c: dict[str, Any], key: str) -> Any:
    own = (c.get("securityContext") or {}).get(key)
    return own if own is not None else (pod["spec"].get("securityContext") or {}).get(key)


def run_as_non_root(pod: dict[str, Any]) -> list[str]:
    out = []
    for c in _containers(pod):
        if _effective(pod, c, "runAsNonRoot") is not True:
            out.append(f"{c['name']}: runAsNonRoot is not true")
        if _effective(pod, c, "runAsUser") == 0:
            out.append(f"{c['name']}: runAsUser 0")
    return out


def seccomp(pod: dict[str, Any]) -> list[str]:
    out = []
    for c in _containers(pod):
        profile = _effective(pod, c, "seccompProfile") or {}
        if profile.get("type") not in ALLOWED_SECCOMP:
            out.append(f"{c['name']}: seccompProfile {profile.get('type')!r}")
    return out


RULES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "host namespaces": host_namespaces,
    "privileged containers": privileged,
    "capabilities": capabilities,
    "volume types": volume_types,
    "host ports": host_ports,
    "privilege escalation": privilege_escalation,
    "running as non-root": run_as_non_root,
    "seccomp": seccomp,
}


def restricted_violations(pod: dict[str, Any]) -> dict[str, list[str]]:
    """Every rule the pod breaks, with what breaks it (empty: the pod is admitted)."""
    return {name: found for name, rule in RULES.items() if (found := rule(pod))}
