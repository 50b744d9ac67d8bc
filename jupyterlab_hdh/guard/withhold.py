"""What the browser gets instead of a sandbox message that may not be shown whole.

Owns the rewriting of kernel-channel messages going to the browser when one is
over the per-message display cap or its person is over the daily budget
(``guard/display.py`` decides which). A replacement is built by the guard
alone: a fresh header, the *client's own request* as parent header (kept per
connection by :class:`KernelReplies`), and canonical content — outputs become
one visible placeholder per request, replies keep only their status fields
(the frontend stays usable: busy/idle, execution counts), everything else is
dropped. Nothing the kernel chose passes beyond an enumerated status and a
count, and at most one message of each type per client request, so a kernel
cannot stream data through headers, status flips or unsolicited replies.

Terminal output is replaced by one notice per connection.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

from jupyterlab_hdh.guard.audit import V1_SUBPROTOCOL, KernelMessage

OUTPUT_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "update_display_data", "error"}
)
_STATES = frozenset({"busy", "idle", "starting", "restarting", "dead"})
_COMPLETE = frozenset({"complete", "incomplete", "invalid", "unknown"})


class KernelReplies:
    """The client's requests on one kernel connection, so replies can be rebuilt.

    ``remember`` is called for every request the guard forwards; ``allow`` lets
    one message of each type per request through (and one placeholder for all
    its outputs).
    """

    def __init__(self, keep: int = 2000) -> None:
        self.keep = keep
        #: request msg_id → (its header, the kinds of replacement already sent for it)
        self.requests: OrderedDict[str, tuple[dict[str, Any], set[str]]] = OrderedDict()

    def remember(self, msg: KernelMessage) -> None:
        msg_id = str(msg.header.get("msg_id", ""))
        if not msg_id:
            return
        self.requests[msg_id] = (dict(msg.header), set())
        while len(self.requests) > self.keep:
            self.requests.popitem(last=False)

    def allow(self, parent_id: str, kind: str) -> dict[str, Any] | None:
        """The request header if ``kind`` may still be sent for it, else None."""
        entry = self.requests.get(parent_id)
        if entry is None or kind in entry[1]:
            return None
        entry[1].add(kind)
        return entry[0]


def _parse_down(message: str | bytes, subprotocol: str | None) -> tuple[str, dict[str, Any]]:
    """(channel, message dict with header, parent_header, content) of a kernel→client message."""
    if subprotocol == V1_SUBPROTOCOL and isinstance(message, bytes):
        channel, parts = deserialize_msg_from_ws_v1(message)
        return channel, {
            "header": json.loads(parts[0]),
            "parent_header": json.loads(parts[1]),
            "content": json.loads(parts[3]),
        }
    msg = json.loads(message) if isinstance(message, str) else deserialize_binary_message(message)
    return str(msg.get("channel", "")), msg


def _content(msg_type: str, content: dict[str, Any], note: str) -> dict[str, Any] | None:
    """Canonical content of a message passed in place of ``content`` (None: drop it)."""
    count = content.get("execution_count")
    count = count if isinstance(count, int) and not isinstance(count, bool) else None
    if msg_type == "status":
        state = content.get("execution_state")
        return {"execution_state": state} if state in _STATES else None
    if msg_type == "execute_reply":
        ok = content.get("status") == "ok"
        base = {"status": "ok" if ok else "error", "execution_count": count}
        if ok:
            return {**base, "payload": [], "user_expressions": {}}
        return {**base, "ename": "OutputWithheld", "evalue": note, "traceback": [note]}
    if msg_type == "kernel_info_reply":
        info = content.get("language_info")
        lang = info if isinstance(info, dict) else {}
        keep = {k: lang[k] for k in ("name", "version", "mimetype", "file_extension") if k in lang}
        return {
            "status": "ok",
            "protocol_version": str(content.get("protocol_version", "5.3"))[:16],
            "implementation": str(content.get("implementation", ""))[:64],
            "implementation_version": "",
            "language_info": {k: str(v)[:64] for k, v in keep.items()},
            "banner": "",
            "help_links": [],
        }
    if msg_type == "complete_reply":
        return {"status": "ok", "matches": [], "cursor_start": 0, "cursor_end": 0, "metadata": {}}
    if msg_type == "inspect_reply":
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    if msg_type == "history_reply":
        return {"status": "ok", "history": []}
    if msg_type == "is_complete_reply":
        status = content.get("status")
        return {"status": status if status in _COMPLETE else "unknown", "indent": ""}
    if msg_type == "comm_info_reply":
        return {"status": "ok", "comms": {}}
    if msg_type in ("shutdown_reply", "interrupt_reply"):
        return {"status": "ok", "restart": content.get("restart") is True}
    if msg_type == "input_request":
        return {"prompt": "", "password": content.get("password") is True}
    return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def withhold_kernel_message(
    message: str | bytes, subprotocol: str | None, replies: KernelReplies, note: str
) -> str | bytes | None:
    """The replacement sent for ``message`` (None: nothing is sent)."""
    try:
        channel, msg = _parse_down(message, subprotocol)
    except (ValueError, UnicodeDecodeError, IndexError, TypeError):
        return None
    header = _obj(msg.get("header"))
    parent = _obj(msg.get("parent_header"))
    content = _obj(msg.get("content"))
    new: dict[str, Any] | None
    msg_type = str(header.get("msg_type", ""))
    parent_id = str(parent.get("msg_id", ""))
    if msg_type in OUTPUT_TYPES:
        request = replies.allow(parent_id, "output")
        if request is None:
            return None
        msg_type, new = "stream", {"name": "stderr", "text": note + "\n"}
    else:
        kind = msg_type
        if msg_type == "status":
            kind = f"status:{content.get('execution_state')}"
        request = replies.allow(parent_id, kind)
        new = _content(msg_type, content, note) if request is not None else None
        if new is None:
            return None
    if channel not in ("shell", "iopub", "control", "stdin"):
        return None
    fresh = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": "",
        "session": "",
        "date": datetime.now(UTC).isoformat(),
        "version": "5.3",
    }
    assert request is not None
    if subprotocol == V1_SUBPROTOCOL:
        parts = [json.dumps(x).encode() for x in (fresh, request, {}, new)]
        return bytes(serialize_msg_to_ws_v1(parts, channel))
    return json.dumps(
        {
            "channel": channel,
            "header": fresh,
            "msg_id": fresh["msg_id"],
            "msg_type": msg_type,
            "parent_header": request,
            "metadata": {},
            "content": new,
            "buffers": [],
        }
    )


def terminal_notice(note: str) -> str:
    """The one terminal message shown instead of output that may not be shown."""
    return json.dumps(["stdout", "\r\n" + note + "\r\n"])
