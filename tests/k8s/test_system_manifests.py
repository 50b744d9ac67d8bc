"""HDH's own objects in hdh-system (k8s/system/*.yaml): valid Kubernetes, and HDH's own
pods admitted by the restricted Pod Security Standard with no service-account token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

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


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[n for n, _ in DOCS])
def test_each_object_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.33", strict=True)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "hdh-system"


def test_hdh_pods_are_restricted_and_carry_no_token() -> None:
    deployments = [d for _, d in DOCS if d["kind"] == "Deployment"]
    assert deployments
    for d in deployments:
        pod = {"spec": d["spec"]["template"]["spec"]}
        assert restricted_violations(pod) == {}, d["metadata"]["name"]
        assert pod["spec"]["automountServiceAccountToken"] is False
        for c in pod["spec"]["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            secrets = [e for e in c.get("env", []) if "valueFrom" in e]
            assert all("secretKeyRef" in e["valueFrom"] for e in secrets)
            clear = [e["name"] for e in c.get("env", []) if "value" in e]
            secret_names = [
                n for n in clear if n.endswith(("_TOKEN", "_SECRET", "PASSWORD", "STORE_URL"))
            ]
            assert secret_names == [], f"{d['metadata']['name']} sets secrets in clear"


def test_the_example_secret_holds_no_real_secret() -> None:
    (secret,) = [d for _, d in DOCS if d["kind"] == "Secret"]
    assert set(secret["stringData"].values()) <= {
        "CHANGE-ME",
        "postgresql+psycopg://hdh:CHANGE-ME@hdh-postgres.hdh-system.svc:5432/hdh",
    }
