"""The sandbox's server sends kernel messages without Nagle's delay (a pod behind the guard
over TCP: about 40 ms a round trip otherwise, ``bench/bench_guard_overhead.py --upstream
tcp``): its kernel websocket connection class switches ``TCP_NODELAY`` on."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from tornado import iostream

from hdh.jupyter.websocket import NoDelayKernelWebsocketConnection
from jupyterlab_hdh.k8s.pod import pod_command
from jupyterlab_hdh.sandbox.spec import (
    KERNEL_WEBSOCKET_ARG,
    HostIdentity,
    SandboxSpec,
    server_argv,
)

FLAG = KERNEL_WEBSOCKET_ARG


def test_the_sandboxs_server_and_the_pods_run_with_it(tmp_path: Path) -> None:
    spec = SandboxSpec(
        project="p",
        user="u",
        workspace=tmp_path,
        runtime_dir=tmp_path,
        host=HostIdentity(200001, 200001, 200000),
    )
    assert KERNEL_WEBSOCKET_ARG.endswith(
        "="
        + NoDelayKernelWebsocketConnection.__module__
        + "."
        + NoDelayKernelWebsocketConnection.__name__
    )  # the flag names this very class
    assert FLAG in server_argv(spec)
    assert FLAG in pod_command(spec)


class _Handler:
    """What the connection needs of Tornado's websocket handler: a TCP stream under it."""

    def __init__(self, family: socket.AddressFamily) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.stream = iostream.IOStream(self.sock)
        self.ws_connection = self

    def set_nodelay(self, value: bool) -> None:
        self.stream.set_nodelay(value)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX])
def test_opening_the_connection_switches_nagle_off_on_tcp_only(
    family: socket.AddressFamily, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection,
    )

    connected: list[Any] = []
    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect", lambda self: connected.append(1))
    handler = _Handler(family)
    conn = NoDelayKernelWebsocketConnection.__new__(NoDelayKernelWebsocketConnection)
    conn.__dict__["_trait_values"] = {"websocket_handler": handler}
    try:
        conn.connect()
        assert connected == [1]  # Jupyter Server's own connect still runs
        if family == socket.AF_INET:
            assert handler.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        handler.stream.close()
