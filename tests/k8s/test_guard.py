"""The guard on a cluster: it finds pods through the Kubernetes API, stays in the path of
every request to them, and is the sandboxes' only way to the control plane.

Real components: the guard (its Tornado app, audit sink, upstream pool), a real Jupyter
server listening on a TCP port as a pod's does, kubernetes_asyncio's client with a
kubeconfig, the bridge's forwarding. The Kubernetes API itself cannot run here: a stand-in
answers the one call the guard makes (``tests/k8s/fake_api.py``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado import httpserver, httputil, web

from jupyterlab_hdh.guard.policy import GuardConfig
from jupyterlab_hdh.guard.proxy import Guard
from jupyterlab_hdh.guard.upstream import TcpUpstream
from jupyterlab_hdh.hub.bridge import BRIDGE_HEADER, PROJECT_HEADER, USER_HEADER
from jupyterlab_hdh.hub.config import free_port
from jupyterlab_hdh.k8s.directory import PodDirectory, api_pod_lister
from jupyterlab_hdh.k8s.guard import api_client, bridge_app
from jupyterlab_hdh.k8s.pod import SERVER_PORT
from jupyterlab_hdh.k8s.project import project_namespace
from jupyterlab_hdh.sandbox.spec import KERNEL_WEBSOCKET_ARG
from tests.guard.conftest import BASE, GuardServer, Upstream, run_guard, start_jupyter, stop_jupyter
from tests.guard.test_proxy import connect, events, run_code, start_kernel, xsrf_client
from tests.k8s.fake_api import FakeKubeApi, fake_kube_api, pod

TOKEN = "b" * 64
POD_TOKEN = "p" * 64  # the pod's server token, as the spawner puts it in the pod


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApi]:
    with fake_kube_api(tmp_path) as api:
        yield api


def ask(api: FakeKubeApi, question: Any, **directory: Any) -> Any:
    """Run ``question(directory)`` with a real API client on the stand-in."""

    async def run() -> Any:
        client = await api_client(str(api.kubeconfig))
        try:
            return await question(PodDirectory(api_pod_lister(client), **directory))
        finally:
            await client.close()

    return asyncio.run(run())


# ------------------------------------------------------------------ the directory


def test_a_persons_server_is_their_one_running_ready_sandbox(kube: FakeKubeApi) -> None:
    alice = pod("alice", "p1", "10.0.0.1", uid="uid-alice", token="t-alice")
    kube.pods += [
        alice,
        pod("carol", "p1", "10.0.0.3", ready=False),
        pod("dave", "p1", "10.0.0.4", deleting=True),
        pod("erin", "p1", "10.0.0.5", phase="Pending"),
        pod("frank", "p1", "10.0.0.6", role="spark-executor"),
        pod("grace", "p1", "10.0.0.7"),
        pod("grace", "p1", "10.0.0.8"),  # never guess between two
        pod("alice", "p2", "10.0.1.1"),
    ]
    # a pod of another namespace labelled p1 is not p1's (the namespace is the project's)
    stray = pod("heidi", "p1", "10.0.2.1")
    stray["metadata"]["namespace"] = project_namespace("p2")
    kube.pods.append(stray)

    async def servers(d: PodDirectory) -> dict[str, Any]:
        found = {}
        for user in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"):
            found[user] = await d.server(user, "p1")
        found["alice@p2"] = await d.server("alice", "p2")
        found["heidi@p2"] = await d.server("heidi", "p2")
        return found

    found = ask(kube, servers)
    assert found["alice"] == TcpUpstream("10.0.0.1", SERVER_PORT, "uid-alice", "t-alice")
    assert "t-alice" not in repr(found["alice"])  # never in a log line
    assert found["alice@p2"] is not None and found["alice@p2"].host == "10.0.1.1"
    assert [u for u, t in found.items() if t is None] == [
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "heidi@p2",
    ]
    # what the guard asked: its own token, the project's namespace, HDH's sandbox labels
    first = kube.requests[0]
    assert first["authorization"] == "Bearer guard-service-account-token"
    assert first["namespace"] == "hdh-p-p1"
    assert first["labels"] == "hdh.io/role=sandbox,hdh.io/project=p1"


def test_the_bridge_caller_is_the_sandbox_at_the_address(kube: FakeKubeApi) -> None:
    kube.pods += [
        pod("alice", "p1", "10.0.0.1"),
        pod("carol", "p1", "10.0.0.3", ready=False),  # starting: may already call
        pod("dave", "p1", "10.0.0.4", deleting=True),
        pod("frank", "p1", "10.0.0.6", role="spark-executor"),
        pod("bob", "p2", "10.0.1.2"),
    ]

    async def callers(d: PodDirectory) -> list[str | None]:
        return [
            await d.sandbox_at("p1", "10.0.0.1"),
            await d.sandbox_at("p2", "10.0.0.1"),  # alice's pod is not p2's
            await d.sandbox_at("p1", "10.0.0.3"),
            await d.sandbox_at("p1", "10.0.0.4"),
            await d.sandbox_at("p1", "10.0.0.6"),  # executors never call the bridge
            await d.sandbox_at("p1", "10.9.9.9"),
            await d.sandbox_at("p2", "10.0.1.2"),
        ]

    assert ask(kube, callers) == ["alice", None, "carol", None, None, None, "bob"]
    assert kube.requests[0]["fields"] == "status.podIP=10.0.0.1"


def test_servers_are_remembered_briefly_and_absences_never(kube: FakeKubeApi) -> None:
    now = [0.0]

    async def sequence(d: PodDirectory) -> list[Any]:
        seen = [await d.server("alice", "p1")]  # none yet: not remembered
        kube.pods.append(pod("alice", "p1", "10.0.0.1", uid="one"))
        seen.append(await d.server("alice", "p1"))  # found at once
        kube.pods.clear()
        seen.append(await d.server("alice", "p1"))  # within the ttl: remembered
        now[0] = 2.5
        seen.append(await d.server("alice", "p1"))  # past it: asked again, gone
        return seen

    seen = ask(kube, sequence, ttl=2.0, clock=lambda: now[0])
    assert [t.identity if t else None for t in seen] == [None, "one", "one", None]
    assert len(kube.requests) == 3


@pytest.mark.parametrize("status", [403, 500])
def test_an_api_refusal_routes_nothing(kube: FakeKubeApi, status: int) -> None:
    kube.pods.append(pod("alice", "p1", "10.0.0.1"))
    kube.refuse = status

    async def both(d: PodDirectory) -> tuple[Any, Any]:
        return await d.server("alice", "p1"), await d.sandbox_at("p1", "10.0.0.1")

    assert ask(kube, both) == (None, None)


def test_an_api_that_does_not_answer_routes_nothing(tmp_path: Path) -> None:
    with fake_kube_api(tmp_path) as gone:
        gone.pods.append(pod("alice", "p1", "10.0.0.1"))
    # the stand-in has stopped: connection refused

    async def both(d: PodDirectory) -> tuple[Any, Any]:
        return await d.server("alice", "p1"), await d.sandbox_at("p1", "10.0.0.1")

    assert ask(gone, both) == (None, None)


def test_a_new_pod_at_an_address_gets_new_connections() -> None:
    guard = Guard(
        resolve=lambda u, p: None,
        authorise=lambda u, p: None,
        identify=lambda h: None,
        audit_sink=None,  # type: ignore[arg-type]
        config=GuardConfig(),
    )
    first = guard.client(TcpUpstream("10.0.0.1", SERVER_PORT, "pod-1"))
    assert guard.client(TcpUpstream("10.0.0.1", SERVER_PORT, "pod-1")) is first
    second = guard.client(TcpUpstream("10.0.0.1", SERVER_PORT, "pod-2"))
    assert second is not first and second.target.identity == "pod-2"
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(first.fetch(None))  # type: ignore[arg-type]
    # pods come and go at new addresses: the pools of those gone do not pile up
    for i in range(3 * Guard.MAX_UNUSED_POOLS):
        guard.client(TcpUpstream(f"10.2.{i // 250}.{i % 250}", SERVER_PORT, f"pod-{i}"))
    assert len(guard._clients) <= Guard.MAX_UNUSED_POOLS + 1
    guard.close()


# ------------------------------------------------------------------ the guard in the path


@pytest.fixture(scope="module")
def pod_server() -> Iterator[Upstream]:
    """alice's server of proj1, listening on a TCP port as in a pod (its kernel websocket as
    the pod runs it)."""
    u = start_jupyter(
        tcp=True, extra=(KERNEL_WEBSOCKET_ARG, f"--IdentityProvider.token={POD_TOKEN}")
    )
    yield u
    stop_jupyter(u)


@pytest.fixture
def cluster_guard(pod_server: Upstream, kube: FakeKubeApi, tmp_path: Path) -> Iterator[GuardServer]:
    """The guard finding alice's pod of proj1 through the (stand-in) Kubernetes API."""
    kube.pods.append(pod("alice", "proj1", "127.0.0.1", uid="alice-pod", token=POD_TOKEN))
    holder: dict[str, PodDirectory] = {}

    async def resolve(user: str, project: str) -> TcpUpstream | None:
        if "d" not in holder:  # the client is made in the guard's own loop
            client = await api_client(str(kube.kubeconfig))
            holder["d"] = PodDirectory(api_pod_lister(client), ttl=0, port=pod_server.port)
        return await holder["d"].server(user, project)

    yield from run_guard("", tmp_path, GuardConfig(), resolve=resolve)


def test_every_request_to_a_pod_goes_through_the_guard_and_is_audited(
    cluster_guard: GuardServer, pod_server: Upstream, kube: FakeKubeApi
) -> None:
    (pod_server.root / "notes.txt").write_text("hello from the pod")
    # the pod's server answers no one without its token: not a neighbour on the node
    direct = f"http://127.0.0.1:{pod_server.port}{BASE}api/contents/notes.txt"
    assert httpx.get(direct, timeout=10).status_code == 403
    with cluster_guard.client() as c:
        r = c.get(BASE + "api/contents/notes.txt")
        assert r.status_code == 200, r.text
        assert r.json()["content"] == "hello from the pod"
        assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    with xsrf_client(cluster_guard) as c:
        kid = start_kernel(c)
        ws = connect(cluster_guard, kid)
        try:
            code = "print(6 * 7)"
            reply, out = run_code(ws, code, v1=False)
            assert reply["content"]["status"] == "ok" and out == ["42\n"]
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")
    executed = [json.loads(e.details) for e in events(cluster_guard, "code.execute")]
    assert [(d["code"], d["user"], d["project"]) for d in executed] == [(code, "alice", "proj1")]
    # bob has a permit but no pod; the guard never sends him to alice's
    cluster_guard.permits.add(("bob", "proj1"))
    with cluster_guard.client("bob") as c:
        r = c.get("/user/bob/proj1/api/contents/notes.txt")
        assert r.status_code == 503 and "sandbox not running" in r.text  # he has no pod
        r = c.get(BASE + "api/contents/notes.txt")
        assert r.status_code == 403 and "another user" in r.text
    # the pod is deleted: nothing is forwarded any more
    kube.pods.clear()
    with cluster_guard.client() as c:
        r = c.get(BASE + "api/contents/notes.txt")
        assert r.status_code == 503 and "sandbox not running" in r.text


# ------------------------------------------------------------------ the API bridge


#: while closed, the recording control plane holds its answers (a slow control plane)
GATE = {"closed": False}


class _ControlPlane(web.RequestHandler):
    def initialize(self, seen: list[dict[str, Any]]) -> None:
        self.seen = seen

    async def _record(self) -> None:
        self.seen.append(
            {
                "method": self.request.method,
                "uri": self.request.uri,
                "headers": httputil.HTTPHeaders(self.request.headers),
                "body": self.request.body,
            }
        )
        while GATE["closed"]:
            await asyncio.sleep(0.01)
        self.finish({"ok": True})

    async def get(self, *_: Any) -> None:
        await self._record()

    async def post(self, *_: Any) -> None:
        await self._record()


@pytest.fixture
def bridge(kube: FakeKubeApi, tmp_path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The guard's bridge port in front of a recording control plane."""
    from jupyterlab_hdh.hub.bridge import bridge_http_server

    seen: list[dict[str, Any]] = []
    api_port, bridge_port = free_port(), free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            client = await api_client(str(kube.kubeconfig))
            directory = PodDirectory(api_pod_lister(client))
            plane = httpserver.HTTPServer(web.Application([(r".*", _ControlPlane, {"seen": seen})]))
            plane.listen(api_port, "127.0.0.1")
            app = bridge_app(directory, f"http://127.0.0.1:{api_port}/", TOKEN)
            server = bridge_http_server(app)
            server.listen(bridge_port, "127.0.0.1")
            holder.update(client=client, servers=(plane, server))
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{bridge_port}", seen

    async def stop() -> None:
        for s in holder["servers"]:
            s.stop()
        await holder["client"].close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def test_the_bridge_forwards_as_the_pod_the_call_comes_from(
    bridge: tuple[str, list[dict[str, Any]]], kube: FakeKubeApi
) -> None:
    url, seen = bridge
    kube.pods.append(pod("alice", "p1", "127.0.0.1"))
    forged = {
        USER_HEADER: "mallory",
        PROJECT_HEADER: "other",
        BRIDGE_HEADER: "guess",
        "Authorization": "Bearer stolen",
        "Cookie": "jupyterhub-session-id=x",
        "X-Forwarded-For": "10.0.0.9",
    }
    with httpx.Client(base_url=url, headers=forged) as c:
        r = c.get("/projects/p1/api/bridge/whoami")
        assert r.status_code == 200, r.text
        r = c.post("/projects/p1/api/bridge/egress/requests", json={"title": "Table 2"})
        assert r.status_code == 200, r.text
    assert [(s["method"], s["uri"]) for s in seen] == [
        ("GET", "/api/bridge/whoami"),
        ("POST", "/api/bridge/egress/requests"),
    ]
    for s in seen:
        h = s["headers"]
        assert (h[USER_HEADER], h[PROJECT_HEADER], h[BRIDGE_HEADER]) == ("alice", "p1", TOKEN)
        assert not [k for k in ("Authorization", "Cookie", "X-Forwarded-For") if k in h]
    assert json.loads(seen[1]["body"]) == {"title": "Table 2"}


@pytest.mark.parametrize(
    "target, why",
    [
        ("/projects/p2/api/bridge/whoami", "127.0.0.1 is not a running sandbox of project p2"),
        ("/api/bridge/whoami", "takes /projects/<project>/api/"),
        ("/projects/P1/api/bridge/whoami", "takes /projects/<project>/api/"),
        ("/projects/p1/api/optout", "not reachable through the API bridge"),
        ("/projects/p1/api/bridge/../../api/optout", "'..' path segments"),
        ("/projects/p1", "takes /projects/<project>/api/"),
        ("/projects/review/api/bridge/whoami", "a review workspace acts as no one"),
    ],
)
def test_the_bridge_refuses_other_projects_and_routes(
    bridge: tuple[str, list[dict[str, Any]]], kube: FakeKubeApi, target: str, why: str
) -> None:
    url, seen = bridge
    kube.pods += [pod("alice", "p1", "127.0.0.1"), pod("bob", "p2", "10.0.1.2")]
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # as written
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403"), raw
    assert why in json.loads(body)["detail"]
    assert seen == []


def test_the_bridge_believes_the_connection_not_the_headers(
    bridge: tuple[str, list[dict[str, Any]]], kube: FakeKubeApi
) -> None:
    url, seen = bridge
    # bob's pod has another address; a caller at 127.0.0.1 cannot claim it, and a pod
    # being deleted is no one
    kube.pods += [pod("bob", "p1", "10.0.0.9"), pod("alice", "p1", "127.0.0.1", deleting=True)]
    spoof = {"X-Forwarded-For": "10.0.0.9", "X-Real-Ip": "10.0.0.9", "Forwarded": "for=10.0.0.9"}
    with httpx.Client(base_url=url, headers=spoof) as c:
        r = c.get("/projects/p1/api/bridge/whoami")
    assert r.status_code == 403 and "127.0.0.1 is not a running sandbox" in r.json()["detail"]
    assert seen == []


def test_one_sandbox_cannot_hold_the_bridge(
    bridge: tuple[str, list[dict[str, Any]]], kube: FakeKubeApi
) -> None:
    """A sandbox looping on the bridge gets 429 past a few calls in flight; its calls still
    answered free the places again."""
    from concurrent.futures import ThreadPoolExecutor

    from jupyterlab_hdh.k8s.guard import MAX_CALLS_IN_FLIGHT
    from tests.waiting import wait_for

    url, seen = bridge
    kube.pods.append(pod("alice", "p1", "127.0.0.1"))
    target = f"{url}/projects/p1/api/bridge/whoami"
    GATE["closed"] = True
    try:
        with ThreadPoolExecutor(MAX_CALLS_IN_FLIGHT) as pool:
            held = [pool.submit(httpx.get, target, timeout=30) for _ in range(MAX_CALLS_IN_FLIGHT)]
            wait_for(lambda: len(seen) == MAX_CALLS_IN_FLIGHT, "the held calls to arrive")
            r = httpx.get(target, timeout=10)
            assert r.status_code == 429 and "bridge calls at once" in r.json()["detail"]
            GATE["closed"] = False
            assert [f.result().status_code for f in held] == [200] * MAX_CALLS_IN_FLIGHT
    finally:
        GATE["closed"] = False
    assert httpx.get(target, timeout=10).status_code == 200
