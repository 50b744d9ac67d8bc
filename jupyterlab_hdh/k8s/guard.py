"""The guard on a cluster: every project server behind it, and the API bridge as its port.

``hdh k8s guard`` runs the same guard as on one machine (:func:`~jupyterlab_hdh.guard.app.
service_app`: a JupyterHub service that checks the permit, audits every message and
accounts the display), as the Deployment ``hdh-guard`` (``k8s/system/guard.yaml``), with
two ports:

* **8000**, the proxy's side: the hub routes every ``/user/<user>/<project>/`` to it
  (:class:`~jupyterlab_hdh.k8s.spawner.ProjectKubeSpawner` answers the guard's URL, never
  the pod's), and the guard forwards to the person's pod, which it finds through the
  Kubernetes API (:class:`~jupyterlab_hdh.k8s.directory.PodDirectory`); the project's
  NetworkPolicies let nothing else reach a pod's server port;
* **8090**, the API bridge: a sandbox calls ``http://<guard>:8090/projects/<slug>/api/...``
  (``HDH_BRIDGE_URL`` in its environment); the caller is the sandbox pod of ``<slug>``
  whose address the connection comes from (:class:`PodBridgeHandler`), and the request is
  checked and forwarded as on one machine (:mod:`jupyterlab_hdh.hub.bridge`: the same
  allow-list, the bridge token and the caller's identity added by the guard, nothing of
  the sandbox's own believed). The project's NetworkPolicies let only its sandbox pods
  reach this port; the control plane re-checks the permit of every bridged call.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from tornado import web

from jupyterlab_hdh.governance.projects import REVIEW_WORKSPACE
from jupyterlab_hdh.hub.bridge import (
    BridgeRefused,
    BridgeTarget,
    ForwardHandler,
    bridge_http_server,
    read_token,
)
from jupyterlab_hdh.k8s.directory import PodDirectory, api_pod_lister
from jupyterlab_hdh.k8s.project import GUARD_BRIDGE_PORT, GUARD_HTTP_PORT
from jupyterlab_hdh.paths import DataDir

log = logging.getLogger("hdh.guard")

#: ``/projects/<slug><the bridged request target>``
BRIDGE_ROUTE = re.compile(r"/projects/([a-z0-9][a-z0-9-]{0,38})(/[^?#]*(?:\?[^#]*)?)")


#: bridge calls one address may have in flight (each asks the Kubernetes API, then the
#: control plane): a sandbox looping on the bridge cannot starve the others
MAX_CALLS_IN_FLIGHT = 8


class PodBridgeHandler(ForwardHandler):
    """The API bridge of a cluster: the caller is the sandbox pod at the connection's address."""

    directory: PodDirectory
    api_url: str
    token: str
    in_flight: dict[str, int]
    _counted: str | None = None

    def initialize(  # type: ignore[override]
        self, directory: PodDirectory, api_url: str, token: str, in_flight: dict[str, int]
    ) -> None:
        super().initialize(None)
        self.directory = directory
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.in_flight = in_flight

    def prepare(self) -> None:
        ip = self.request.remote_ip or ""
        if self.in_flight.get(ip, 0) >= MAX_CALLS_IN_FLIGHT:
            self.set_status(429)
            self.finish(
                {
                    "detail": f"more than {MAX_CALLS_IN_FLIGHT} bridge calls at once from {ip}:"
                    " wait for an answer",
                    "reason": "bridge",
                }
            )
            return
        self.in_flight[ip] = self.in_flight.get(ip, 0) + 1
        self._counted = ip

    def on_finish(self) -> None:
        ip, self._counted = self._counted, None
        if ip is not None:
            left = self.in_flight.get(ip, 1) - 1
            if left > 0:
                self.in_flight[ip] = left
            else:
                self.in_flight.pop(ip, None)

    async def route(self) -> tuple[BridgeTarget, str]:
        m = BRIDGE_ROUTE.fullmatch(self.request.uri or "")
        if m is None:
            raise BridgeRefused("the API bridge takes /projects/<project>/api/...")
        project, rest = m.group(1), m.group(2)
        if project == REVIEW_WORKSPACE:
            raise BridgeRefused("a review workspace acts as no one: it has no API bridge")
        ip = self.request.remote_ip or ""
        user = await self.directory.sandbox_at(project, ip)
        if user is None:
            log.warning("bridge call from %s refused: not a sandbox of %s", ip, project)
            raise BridgeRefused(f"{ip} is not a running sandbox of project {project}")
        return BridgeTarget(self.api_url, self.token, user, project), rest


def bridge_app(directory: PodDirectory, api_url: str, token: str) -> web.Application:
    in_flight: dict[str, int] = {}  # per caller's address, for this bridge
    handler = {"directory": directory, "api_url": api_url, "token": token, "in_flight": in_flight}
    return web.Application([(r".*", PodBridgeHandler, handler)])


async def api_client(kubeconfig: str | None) -> Any:
    """A Kubernetes API client: from ``kubeconfig``, else the pod's service account."""
    from kubernetes_asyncio import config
    from kubernetes_asyncio.client import ApiClient

    if kubeconfig:
        return await config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()  # the guard's service account (k8s/system/guard.yaml)
    return ApiClient()


def serve(
    data_dir: DataDir,
    *,
    api_url: str,
    bridge_token_file: str,
    ip: str = "0.0.0.0",  # noqa: S104 - a pod's own address
    port: int = GUARD_HTTP_PORT,
    bridge_port: int = GUARD_BRIDGE_PORT,
    kubeconfig: str | None = None,
) -> None:
    """Run the cluster's guard until SIGTERM (env: the JupyterHub service's, and
    ``HDH_GUARD_COOKIE_SECRET``). ``SystemExit`` with one line when it cannot start."""
    from jupyterlab_hdh.guard.app import guard_server, run_until_signal, service_app

    if not api_url or not bridge_token_file:
        raise SystemExit(
            "hdh k8s guard: the control plane's URL and the bridge token are required"
            " (HDH_API_URL and HDH_BRIDGE_TOKEN_FILE, or --api-url and --bridge-token-file)"
        )
    try:
        token = read_token(bridge_token_file)
    except OSError as exc:
        raise SystemExit(f"hdh k8s guard: the bridge token cannot be read: {exc}") from None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = loop.run_until_complete(api_client(kubeconfig))
    directory = PodDirectory(api_pod_lister(client))
    app = service_app(directory.server, data_dir)
    guard_server(app).listen(port, ip)
    bridge_http_server(bridge_app(directory, api_url, token)).listen(bridge_port, ip)
    log.info("guard on :%d, API bridge on :%d", port, bridge_port)
    try:
        run_until_signal(app)
    finally:
        loop.run_until_complete(client.close())
