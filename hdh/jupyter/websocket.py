"""The kernel websocket of the sandbox's Jupyter server, without Nagle's delay.

On Kubernetes the guard reaches a pod's server over TCP. A kernel answers a request with
several small messages (status, the output, the reply); with Nagle's algorithm on the
server's socket, each one after the first waits for the guard's delayed ACK, about 40 ms
per round trip (measured: ``bench/bench_guard_overhead.py --upstream tcp``). Jupyter Server
does not switch it off, so the sandbox's server runs with this connection class
(``--ServerApp.kernel_websocket_connection_class``), which does when the connection opens.
On a Unix socket (one machine) it changes nothing.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayKernelWebsocketConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    """Jupyter Server's kernel websocket connection, with ``TCP_NODELAY`` on its socket."""

    def connect(self) -> Any:
        handler = self.websocket_handler
        if handler is not None and handler.ws_connection is not None:
            handler.set_nodelay(True)  # Tornado applies it to TCP sockets only
        return super().connect()
