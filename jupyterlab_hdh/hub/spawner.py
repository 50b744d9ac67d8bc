"""One named server per project and person: a bubblewrap sandbox behind the guard.

Owns :class:`SandboxSpawner`. The server name is the project slug
(``/hub/spawn/<user>/<project>``); the default (unnamed) server is refused.
``start()`` asks :func:`~jupyterlab_hdh.hub.plan.project_plan` (the question the
Kubernetes spawner asks too) for the active permit (a
:class:`~jupyterlab_hdh.governance.projects.PermitError` fails the spawn with
its one-line reason, answered 403 on the hub's spawn page and REST API), builds
the :class:`~jupyterlab_hdh.sandbox.SandboxSpec` (workspace
``<data-dir>/workspaces/<project>/``, runtime folder
``<data-dir>/sandboxes/<project>--<user>/``, the permit's dataset versions
read-only), starts it in a thread and returns the **guard's** URL: the proxy
routes ``/user/<name>/<project>/`` to the one guard, which finds the
sandbox's Unix socket itself. ``poll()`` also re-checks the permit, so a
revoked or expired permit, or a removed member, stops the sandbox within one
poll interval. Starts and stops are audited (``sandbox.start``, ``sandbox.stop``).
While the sandbox runs, the spawner also serves its API bridge
(:mod:`jupyterlab_hdh.hub.bridge`, ``<runtime>/bridge/api.sock``), which adds
this spawner's user and project to every forwarded request.

A hub running as root never runs a sandbox as root: each project's sandboxes
run as the project's own host uid (``host_id_base + project id``, see
:class:`~jupyterlab_hdh.sandbox.spec.HostIdentity`).

The server name ``review`` (:data:`~jupyterlab_hdh.governance.projects.REVIEW_WORKSPACE`,
which no project may take) is a reviewer's own workspace: only those
:func:`~jupyterlab_hdh.governance.projects.access_problem` lets in (reviewers, committee
members, administrators) start it; it mounts no dataset, has its own persistent folder
``<data-dir>/review-workspaces/<user>/`` and **no API bridge** (nothing in it can act
as anyone), and under a root hub runs as ``review_id_base + user id`` without the data
group. The review data itself never passes through it: the JupyterLab widget talks from
the browser to the control plane.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner, SpawnException
from traitlets import Float, Integer, Unicode

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.hub.store import hdh_store, in_thread
from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE, REVIEW_ID_BASE


class SpawnRefused(SpawnException):  # type: ignore[misc]  # noqa: N818 - a refusal
    """A spawn JupyterHub must refuse with a message fit for the user.

    A :class:`~jupyterhub.spawner.SpawnException` (an HTTP error): JupyterHub answers it with
    ``status`` and this one-line message, on the spawn page (not its generic "500 : Unhandled
    error starting server") and in its REST API (``{"status": 403, "message": …}``)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message, reason="refused", status_code=status)
        self.jupyterhub_message = message


class SandboxSpawner(Spawner):  # type: ignore[misc]
    """Spawn the project's sandbox (named server = project slug) and route it via the guard."""

    data_dir = Unicode(help="The HDH data directory (store, datasets, sandboxes)").tag(config=True)
    guard_url = Unicode(help="URL the proxy forwards sandbox traffic to (the guard)").tag(
        config=True
    )
    sandbox_start_timeout = Float(60.0, help="Seconds for the sandbox's server to answer").tag(
        config=True
    )
    api_url = Unicode(
        "", help="The control-plane API the sandbox's bridge forwards to (empty: no bridge)"
    ).tag(config=True)
    bridge_token_file = Unicode(
        "", help="0600 file holding the bridge token the control-plane API expects"
    ).tag(config=True)
    cpu_limit = Float(0.0, help="CPU cores each sandbox may use (0: no limit)").tag(config=True)
    memory_limit_bytes = Integer(0, help="Memory limit of each sandbox in bytes (0: none)").tag(
        config=True
    )
    host_id_base = Integer(
        HOST_ID_BASE,
        help="Under a root hub, project <id>'s sandboxes run as host uid/gid base + id;"
        " the base itself is the group that reads dataset versions",
    ).tag(config=True)
    review_id_base = Integer(
        REVIEW_ID_BASE,
        help="Under a root hub, user <id>'s review workspace runs as host uid/gid base + id,"
        " with no supplementary group (it reads no dataset)",
    ).tag(config=True)

    _sandbox: Any = None
    _bridge: Any = None

    # -- helpers ------------------------------------------------------------

    @property
    def project(self) -> str:
        return str(self.name or "")

    @property
    def hdh_user(self) -> str:
        return str(self.user.name)

    @property
    def is_review(self) -> bool:
        """The reviewer's own workspace (server ``review``), not a project's sandbox."""
        from jupyterlab_hdh.governance.projects import REVIEW_WORKSPACE

        return self.project == REVIEW_WORKSPACE

    def _audit(self, action: str, details: dict[str, Any]) -> None:
        with hdh_store(self.data_dir).transaction() as s:
            record(
                s,
                actor=self.hdh_user,
                action=action,
                target=f"sandbox:{self.project}--{self.hdh_user}",
                details={"project": self.project, **details},
            )

    def _build(self) -> Any:
        """The sandbox for the active permit (raises SpawnRefused with the reason)."""
        if self.is_review:
            return self._build_review()
        from jupyterlab_hdh.governance.projects import PermitError
        from jupyterlab_hdh.hub.plan import project_plan

        store = hdh_store(self.data_dir)
        try:
            plan = project_plan(store, self.hdh_user, self.project)
        except PermitError as exc:
            raise SpawnRefused(
                f"{self.hdh_user} may not open project {self.project}: {exc}"
            ) from None
        host = plan.host_identity(self.host_id_base) if os.geteuid() == 0 else None
        store.data_dir.workspaces.mkdir(mode=0o700, exist_ok=True)
        self._reopen_archive(store, plan.permit_id)
        return self._sandbox_of(
            store.data_dir.workspace(self.project), plan.mounts, host, plan.permit_id, plan.linkage
        )

    def _reopen_archive(self, store: Any, permit_id: int) -> None:
        """A renewed project's workspace was archived read-only when its last permit ended:
        writable again before its sandbox starts (``governance.retention``)."""
        from jupyterlab_hdh.governance import retention

        if retention.archive_of(store.data_dir, self.project) is None:
            return
        with store.transaction() as s:
            retention.reopen(
                s, store.data_dir, self.project, actor=self.hdh_user, reason=f"permit #{permit_id}"
            )

    def _build_review(self) -> Any:
        """The reviewer's workspace: no dataset, no project, its own folder and host ids."""
        from jupyterlab_hdh.governance import accounts, projects
        from jupyterlab_hdh.sandbox import HostIdentity

        store = hdh_store(self.data_dir)
        with store.sessions() as s:
            problem = projects.review_problem(s, self.hdh_user)
            if problem is not None:
                raise SpawnRefused(problem)
            user_id = accounts.get_user(s, self.hdh_user).id
        host = (
            HostIdentity.for_reviewer(user_id, self.review_id_base) if os.geteuid() == 0 else None
        )
        store.data_dir.review_workspaces.mkdir(mode=0o700, exist_ok=True)
        return self._sandbox_of(store.data_dir.review_workspace(self.hdh_user), (), host, None)

    def _sandbox_of(
        self,
        workspace: Path,
        mounts: tuple[Any, ...],
        host: Any,
        permit_id: int | None,
        linkage: Path | None = None,
    ) -> Any:
        """This server's sandbox (not started): its folders under the data directory, the
        hub's limits, the data directory and its keys never bound."""
        from jupyterlab_hdh.sandbox import Sandbox, SandboxConfigError, SandboxSpec, runtime_dir_for
        from jupyterlab_hdh.sandbox.spec import check_id_bases

        try:
            check_id_bases(self.host_id_base, self.review_id_base)
        except SandboxConfigError as exc:
            raise SpawnRefused(f"the hub is misconfigured: {exc}", 500) from None
        data_dir = hdh_store(self.data_dir).data_dir
        root = data_dir.root
        spec = SandboxSpec(
            project=self.project,
            user=self.hdh_user,
            workspace=workspace,
            runtime_dir=runtime_dir_for(root / "sandboxes", self.project, self.hdh_user),
            mounts=mounts,
            base_url=self.server.base_url if self.server is not None else "",
            memory_limit=self.memory_limit_bytes or None,
            cpu_limit=self.cpu_limit or None,
            protected=(root,),
            secrets=(data_dir.keys,),
            host=host,
            linkage=linkage,
        )
        (root / "sandboxes").mkdir(mode=0o700, exist_ok=True)
        sandbox = Sandbox(spec, start_timeout=self.sandbox_start_timeout)
        sandbox.permit_id = permit_id  # type: ignore[attr-defined]
        return sandbox

    def _start_sandbox(self) -> None:
        from jupyterlab_hdh.sandbox import SandboxBusyError, SandboxError

        sandbox = self._build()
        try:
            sandbox.start()
        except SandboxBusyError:
            raise SpawnRefused(
                f"the sandbox of project {self.project} for {self.hdh_user} is already running"
                " (a second start of the same project is refused)",
                409,
            ) from None
        except SandboxError as exc:
            self._audit("sandbox.start_failed", {"error": str(exc).splitlines()[0]})
            raise SpawnRefused(
                f"the sandbox of project {self.project} failed: {exc}", 500
            ) from None
        self._sandbox = sandbox
        spec = sandbox.spec
        self._audit(
            "sandbox.start",
            {
                "permit": sandbox.permit_id,
                "mounts": [
                    {"dataset": m.dataset, "version": m.version, "target": m.target}
                    for m in spec.mounts
                ],
                "pid": sandbox.pid,
                "limits": f"{sandbox.limits.describe()}; {sandbox.seccomp}",
            },
        )

    def _stop_sandbox(self, reason: str) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is None:
            return
        sandbox.stop()
        self._audit("sandbox.stop", {"reason": reason})

    def _permit_problem(self) -> str | None:
        from jupyterlab_hdh.governance import projects

        with hdh_store(self.data_dir).sessions() as s:
            return projects.access_problem(s, self.hdh_user, self.project)

    def _open_bridge(self) -> None:
        """Serve ``<runtime>/bridge/api.sock`` for this (user, project), in the hub's loop."""
        from jupyterlab_hdh.hub.bridge import BridgeServer, BridgeTarget, read_token
        from jupyterlab_hdh.sandbox import runtime_dir_for

        if not self.api_url or not self.bridge_token_file:
            return  # no control plane configured: /bridge stays empty (the extension says so)
        if self.is_review:
            return  # a reviewer's workspace acts as no one: its /bridge stays empty
        runtime = runtime_dir_for(Path(self.data_dir) / "sandboxes", self.project, self.hdh_user)
        target = BridgeTarget(
            api_url=self.api_url.rstrip("/"),
            token=read_token(self.bridge_token_file),
            user=self.hdh_user,
            project=self.project,
        )
        sandbox = self._sandbox
        host = sandbox.spec.host if sandbox is not None else None
        bridge = BridgeServer(
            runtime / "bridge" / "api.sock", target, group=host.gid if host is not None else None
        )
        bridge.start()
        self._bridge = bridge

    def _close_bridge(self) -> None:
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            bridge.stop()

    # -- the Spawner API ----------------------------------------------------

    async def start(self) -> str:
        if not self.project:
            raise SpawnRefused(
                "HDH has no default server: each project is its own server."
                f" Open /hub/spawn/{self.hdh_user}/<project> (the project's slug)"
            )
        if not self.guard_url:
            raise SpawnRefused("the hub is misconfigured: SandboxSpawner.guard_url is not set", 500)
        await in_thread(self._start_sandbox)
        try:
            self._open_bridge()
        except Exception as exc:
            why = f"the API bridge of project {self.project} could not start: {exc}"
            await in_thread(lambda: self._stop_sandbox(why))
            raise SpawnRefused(why, 500) from None
        return str(self.guard_url)

    async def poll(self) -> int | None:
        sandbox = self._sandbox
        if sandbox is None or not sandbox.alive:
            self._close_bridge()
            if sandbox is not None:
                await in_thread(lambda: self._stop_sandbox("the sandbox's server exited"))
            return 1
        problem = await in_thread(self._permit_problem)
        if problem is not None:
            self.log.warning("stopping sandbox %s: %s", sandbox.spec.name, problem)
            self._close_bridge()
            await in_thread(lambda: self._stop_sandbox(problem))
            return 1
        return None

    async def stop(self, now: bool = False) -> None:
        self._close_bridge()
        await in_thread(lambda: self._stop_sandbox("stopped by the hub"))

    # No state to persist: a sandbox dies with the hub (bwrap --die-with-parent, and
    # cleanup_servers=True), so a restarted hub has nothing to rediscover.
