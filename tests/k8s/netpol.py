"""A table-driven evaluator of Kubernetes NetworkPolicy semantics (networking.k8s.io/v1).

No cluster and no CNI run here, so the policies are checked by evaluating them, as the API
documentation defines them (https://kubernetes.io/docs/concepts/services-networking/network-policies/):

* a pod is isolated for a direction when at least one policy of its namespace selects it
  with that ``policyType`` (``Ingress`` is implied; ``Egress`` when listed or when the
  policy has ``egress`` rules); a pod isolated for nothing accepts and sends everything;
* policies add up: a connection is allowed in a direction when any rule of any policy
  selecting the pod allows it;
* a connection between two pods needs the source's egress AND the destination's ingress;
  to an address outside the cluster, only the source's egress;
* a peer is a ``podSelector`` (in the policy's namespace), a ``namespaceSelector`` (every
  pod there), both (those pods in those namespaces), or an ``ipBlock`` (``cidr`` minus
  ``except``); an empty ``from``/``to`` means every peer, empty ``ports`` every port;
  ``port`` may be a number or the container port's name, with ``endPort`` ranges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ip: str
    ports: Mapping[str, int] = field(default_factory=dict)  # named container ports


@dataclass(frozen=True)
class External:
    """An address outside the cluster (the internet, a cloud metadata service)."""

    name: str
    ip: str


Endpoint = Pod | External


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels``, ``matchExpressions``); ``{}`` selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


class Cluster:
    """Namespaces (with their labels), pods and NetworkPolicies; answers ``allowed``."""

    def __init__(
        self,
        namespaces: Mapping[str, Mapping[str, str]],
        pods: Iterable[Pod],
        policies: Iterable[Mapping[str, Any]],
    ) -> None:
        self.namespaces = {k: dict(v) for k, v in namespaces.items()}
        self.pods = list(pods)
        self.policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
        for p in self.policies:
            ns = p["metadata"].get("namespace")
            if ns not in self.namespaces:
                raise ValueError(f"policy {p['metadata']['name']} in unknown namespace {ns!r}")

    def _ns_labels(self, ns: str) -> dict[str, str]:
        return {**self.namespaces[ns], "kubernetes.io/metadata.name": ns}

    def _policies_for(self, pod: Pod, direction: str) -> list[Mapping[str, Any]]:
        out = []
        for p in self.policies:
            if p["metadata"]["namespace"] != pod.namespace:
                continue
            spec = p["spec"]
            types = spec.get("policyTypes") or (
                ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]
            )
            if direction in types and selects(spec.get("podSelector"), pod.labels):
                out.append(p)
        return out

    def _peer_matches(self, peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            ip = ipaddress.ip_address(other.ip)
            if ip not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        if not isinstance(other, Pod):
            return False  # pod and namespace selectors match pods only
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self._ns_labels(other.namespace)):
                return False
        elif other.namespace != policy_ns:
            return False
        return "podSelector" not in peer or selects(peer["podSelector"], other.labels)

    @staticmethod
    def _port_matches(
        rule_ports: list[Mapping[str, Any]] | None, port: int, proto: str, dst: Endpoint
    ) -> bool:
        if not rule_ports:
            return True
        for rp in rule_ports:
            if rp.get("protocol", "TCP") != proto:
                continue
            want = rp.get("port")
            if want is None:
                return True
            if isinstance(want, str):
                want = dst.ports.get(want) if isinstance(dst, Pod) else None
                if want is None:
                    continue
            if want <= port <= rp.get("endPort", want):
                return True
        return False

    def _direction_allows(
        self, pod: Pod, direction: str, other: Endpoint, port: int, proto: str, dst: Endpoint
    ) -> bool:
        policies = self._policies_for(pod, direction)
        if not policies:
            return True  # not isolated in this direction
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for p in policies:
            for rule in p["spec"].get(key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(
                    self._peer_matches(peer, p["metadata"]["namespace"], other) for peer in peers
                )
                if peer_ok and self._port_matches(rule.get("ports"), port, proto, dst):
                    return True
        return False

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, proto: str = "TCP") -> bool:
        """Whether ``src`` may open ``dst:port/proto``."""
        if isinstance(src, Pod) and not self._direction_allows(
            src, "Egress", dst, port, proto, dst
        ):
            return False
        if isinstance(dst, Pod):
            return self._direction_allows(dst, "Ingress", src, port, proto, dst)
        return True
