"""What a project server gets, decided once for both back ends (bubblewrap and Kubernetes).

:func:`project_plan` asks the governance module whether ``user`` may open ``project`` now
(the active permit, or a :class:`~jupyterlab_hdh.governance.projects.PermitError` with the
reason) and which dataset versions their sandbox mounts (the permit's, as chosen on the
dataset-versions page), and the permit's linked cohort tables if it has any
(:func:`~jupyterlab_hdh.linkage.linked_folder`, read-only at ``/data/linkage``).
:class:`~jupyterlab_hdh.hub.spawner.SandboxSpawner` turns the plan into a bubblewrap
sandbox, :class:`~jupyterlab_hdh.k8s.spawner.ProjectKubeSpawner` into a pod: one
definition of a project server, two back ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jupyterlab_hdh import linkage
from jupyterlab_hdh.context import Installation
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.sandbox.spec import DatasetMount, HostIdentity


@dataclass(frozen=True)
class ProjectPlan:
    """A project server's permit, project identity and mounts (``linkage``: the host folder
    of the active permit's linked tables, or None; ``compute_profile``: the one the permit
    names, or None for the installation's choice)."""

    project: str
    user: str
    permit_id: int
    project_id: int
    mounts: tuple[DatasetMount, ...]
    linkage: Path | None = None
    compute_profile: str | None = None

    def host_identity(self, base: int) -> HostIdentity:
        """The project's own uid/gid (``base + project id``; ``base`` is the data group)."""
        return HostIdentity.for_project(self.project_id, base)


def project_plan(store: Installation, user: str, project: str) -> ProjectPlan:
    """The plan of ``user``'s server of ``project`` (``PermitError``: why they may not)."""
    with store.sessions() as s:
        permit = projects.active_permit(s, user, project)
        mounts = tuple(
            DatasetMount(m.dataset, m.version, Path(m.path))
            for m in projects.member_mounts(s, permit, user, store.data_dir)
        )
        linked = linkage.linked_folder(s, permit, store.data_dir)
        return ProjectPlan(
            project, user, permit.id, permit.project_id, mounts, linked, permit.compute_profile
        )
