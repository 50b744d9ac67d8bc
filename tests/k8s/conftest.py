"""The Kubernetes tests render manifests: the store only holds the permits, so SQLite alone
(the permit logic is tested on both stores in tests/governance). Every module gets a dummy
kubeconfig (KubeSpawner loads one when it is made); ``cluster_world`` is a small installation
with two projects and their permits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.config import kube_config

from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.hub.store import close_stores
from jupyterlab_hdh.paths import STORE_URL_ENV
from tests.governance.conftest import CONTROLLER, _world
from tests.governance.fakes import fake_version


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- cluster: {server: "https://k8s.invalid:6443", insecure-skip-tls-verify: true}
  name: dummy
contexts:
- context: {cluster: dummy, user: dummy, namespace: hdh}
  name: dummy
current-context: dummy
users:
- name: dummy
  user: {token: not-a-token}
"""


@pytest.fixture(scope="module", autouse=True)
def _kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """KubeSpawner loads a client configuration when it is created: a dummy cluster that is
    never contacted (nothing here reaches an API server)."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(DUMMY_KUBECONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(path))
        # read once when kubernetes_asyncio is imported, before this fixture runs
        mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield


@pytest.fixture
def cluster_world(hub, monkeypatch: pytest.MonkeyPatch):
    """cohort-2027 (alice leads, bob a member) with a permit granting alice snds v2 and
    pmsi_mco v1; project notes-only (bob leads) granting bob snds v1."""
    monkeypatch.setenv(STORE_URL_ENV, hub.data_dir.store_url)  # as the hub's config passes it
    _world(hub, None)
    fake_version(hub, "snds", 2)
    fake_version(hub, "pmsi_mco", 1)
    now = datetime.now(UTC)
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds/v2", "pmsi_mco/v1"],
            expires_at=now + timedelta(days=30),
            actor=CONTROLLER,
        )
        pj.create_project(s, "notes-only", title="t", purpose="p", actor=CONTROLLER)
        pj.add_member(s, "notes-only", "bob", role="lead", actor=CONTROLLER)
        pj.grant_permit(
            s,
            "notes-only",
            members=["bob"],
            datasets=["snds/v1"],
            expires_at=now + timedelta(days=30),
            actor=CONTROLLER,
        )
    yield hub
    close_stores()
