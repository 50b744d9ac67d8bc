"""The sandbox's Jupyter side: the server extension (thin ``/hdh/*`` routes for the panels)
and the contents manager confined to the workspace (``contents.py``).

Holds no secret and imports nothing of the control plane (store, governance,
egress, keys): what it knows comes from the sandbox itself (the read-only
``/data`` mounts). Routes that need the control plane (``/hdh/whoami``,
``/hdh/catalogue``) go through the hub's API bridge socket ``/bridge/api.sock``,
which adds the project identity (``bridge.py``).
"""

from __future__ import annotations

from typing import Any

from hdh.jupyter.handlers import route_table


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "hdh.jupyter"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    web_app = server_app.web_app
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(".*$", route_table(base_url))
    server_app.log.info("HDH sandbox extension: /hdh routes registered")
