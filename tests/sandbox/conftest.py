"""Fixtures of the sandbox tests: a fake HDH data directory, workspaces, real sandboxes.

The layout mimics an installation: ``hdh/keys/`` (a secret), ``hdh/datasets/
<ds>/<version>/`` (tiny Parquet files), ``hdh/sandboxes/<project>--<user>/``
(runtime folders), and ``workspaces/<project>/``. Tests needing a real sandbox
skip with the reason when bubblewrap cannot create namespaces on the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyterlab_hdh.sandbox import (
    HostIdentity,
    Sandbox,
    SandboxClient,
    SandboxSpec,
    bwrap_problem,
    runtime_dir_for,
)

CANARY_ENV = "HDH_TEST_HOST_CANARY"


@dataclass
class Site:
    root: Path
    hdh: Path
    keys: Path
    datasets: Path
    workspaces: Path

    def dataset(self, name: str, version: str) -> Path:
        return self.datasets / name / version

    def spec(
        self, project: str, user: str, mounts: list[tuple[str, str]], **kw: object
    ) -> SandboxSpec:
        return SandboxSpec(
            project=project,
            user=user,
            workspace=self.workspaces / project,
            runtime_dir=runtime_dir_for(self.hdh / "sandboxes", project, user),
            mounts=tuple((d, v, self.dataset(d, v)) for d, v in mounts),
            protected=(self.hdh,),
            secrets=(self.keys,),
            **{"host": host_identity(project), **kw},  # type: ignore[arg-type]
        )


def host_identity(project: str) -> HostIdentity | None:
    """As the spawner does: under root, each project runs as its own uid (ids 1, 2, ...)."""
    if os.geteuid() != 0:
        return None
    ids = PROJECT_IDS.setdefault(project, len(PROJECT_IDS) + 1)
    return HostIdentity.for_project(ids)


PROJECT_IDS: dict[str, int] = {}


def make_site(root: Path) -> Site:
    import pyarrow as pa
    import pyarrow.parquet as pq

    hdh = root / "hdh"
    site = Site(root, hdh, hdh / "keys", hdh / "datasets", root / "workspaces")
    site.keys.mkdir(parents=True, mode=0o700)
    (site.keys / "pseudonymisation.key").write_bytes(b"TOP-SECRET-KEY")
    (hdh / "hdh.sqlite").write_bytes(b"store")
    for ds, version in (("ds_a", "v1"), ("ds_a", "v2"), ("ds_b", "v1")):
        d = site.dataset(ds, version)
        d.mkdir(parents=True)
        table = pa.table({"id": [1, 2, 3], "tag": [f"{ds}-{version}"] * 3})
        pq.write_table(table, d / "part-0.parquet")
    for project in ("p1", "p2"):
        (site.workspaces / project).mkdir(parents=True, mode=0o700)  # as the spawner makes them
    (site.workspaces / "p2" / "secret.txt").write_text("project p2 only")
    return site


@pytest.fixture(scope="session")
def bwrap_ok() -> None:
    problem = bwrap_problem()
    if problem is not None:
        pytest.skip(f"no sandbox on this machine: {problem}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def sandbox(bwrap_ok: None, site: Site) -> Iterator[Sandbox]:
    """One running sandbox for project p1 / alice, with ds_a/v1 and ds_b/v1."""
    os.environ[CANARY_ENV] = "host-secret"
    spec = site.spec("p1", "alice", [("ds_a", "v1"), ("ds_b", "v1")])
    sb = Sandbox(spec, start_timeout=60)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()
        os.environ.pop(CANARY_ENV, None)


@pytest.fixture(scope="module")
def client(sandbox: Sandbox) -> SandboxClient:
    """A client of the module's sandbox (a module may define its own ``sandbox``)."""
    return sandbox.client(timeout=30)


@pytest.fixture(scope="module")
def kernel(client: SandboxClient) -> Iterator[str]:
    kid = client.start_kernel()
    yield kid
    client.shutdown_kernel(kid)
