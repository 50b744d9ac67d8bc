"""Parsing what the guard audits: kernel messages (v1 binary, legacy JSON and binary),
terminal input, contents saves; and the store sink writing a verifiable chain."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from jupyter_server.services.kernels.connection.base import (
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)
from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.context import init_installation
from jupyterlab_hdh.guard.audit import (
    V1_SUBPROTOCOL,
    MessageError,
    RefusedMessage,
    StoreAuditSink,
    TerminalInput,
    kernel_event,
    parse_kernel_message,
    parse_save_body,
    refused_event,
)
from jupyterlab_hdh.guard.audit import (
    AuditEvent as GuardEvent,
)
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import AuditEvent

HEADER = {"msg_id": "m1", "msg_type": "execute_request", "session": "s1"}
CONTENT = {"code": "import os\nprint(os.getcwd())  # é", "silent": False}


def v1(channel: str = "shell", header: object = HEADER, content: object = CONTENT) -> bytes:
    parts = [json.dumps(x).encode() for x in (header, {}, {}, content)]
    return bytes(serialize_msg_to_ws_v1(parts, channel))


def test_v1_execute_request() -> None:
    msg = parse_kernel_message(v1(), V1_SUBPROTOCOL)
    ev = kernel_event(msg, user="alice", project="p", kernel_id="k")
    assert ev is not None and ev.action == "code.execute" and ev.target == "project:p/kernel:k"
    assert ev.details["code"] == CONTENT["code"]
    assert ev.details["sha256"] == hashlib.sha256(CONTENT["code"].encode()).hexdigest()
    assert ev.details["msg_id"] == "m1" and ev.details["session"] == "s1"


def test_v1_with_buffers_and_other_messages() -> None:
    parts = [json.dumps(x).encode() for x in (HEADER, {}, {}, CONTENT)] + [b"\x00buf"]
    msg = parse_kernel_message(bytes(serialize_msg_to_ws_v1(parts, "shell")), V1_SUBPROTOCOL)
    assert msg.content["code"] == CONTENT["code"] and msg.buffers == (b"\x00buf",)
    info = parse_kernel_message(
        v1(header={"msg_type": "kernel_info_request", "msg_id": "i"}, content={}), V1_SUBPROTOCOL
    )
    ev = kernel_event(info, user="a", project="p", kernel_id="k")
    assert ev.action == "kernel.request" and ev.details["msg_type"] == "kernel_info_request"


def _event(channel: str, msg_type: str, content: dict[str, object], *bufs: bytes) -> GuardEvent:
    parts = [json.dumps(x).encode() for x in ({"msg_type": msg_type, "msg_id": "m"}, {}, {})]
    parts += [json.dumps(content).encode(), *bufs]
    msg = parse_kernel_message(bytes(serialize_msg_to_ws_v1(parts, channel)), V1_SUBPROTOCOL)
    return kernel_event(msg, user="alice", project="p", kernel_id="k")


def test_every_forwarded_message_is_audited_with_what_the_kernel_acts_on() -> None:
    # the value typed at an input() prompt: exec(input()) runs it
    ev = _event("stdin", "input_reply", {"value": "import os; os.listdir('/data')"})
    assert ev.action == "kernel.input" and ev.details["value"].startswith("import os")
    # user_expressions are evaluated by the kernel like the cell itself
    ev = _event("shell", "execute_request", {"code": "", "user_expressions": {"x": "open('f')"}})
    assert ev.action == "code.execute" and ev.details["user_expressions"] == {"x": "open('f')"}
    # widget traffic: the data and each buffer's digest
    ev = _event("shell", "comm_msg", {"comm_id": "c", "data": {"v": 1}}, b"\x01\x02")
    assert ev.action == "kernel.comm" and ev.details["content"]["data"] == {"v": 1}
    assert ev.details["buffers"] == [{"size": 2, "sha256": hashlib.sha256(b"\x01\x02").hexdigest()}]
    ev = _event("shell", "complete_request", {"code": "os.pa", "cursor_pos": 5})
    assert ev.action == "kernel.request" and ev.details["content"]["code"] == "os.pa"
    ev = _event("control", "interrupt_request", {})
    assert ev.action == "kernel.request"


@pytest.mark.parametrize(
    ("channel", "msg_type"),
    [
        ("control", "debug_request"),
        ("shell", "debug_request"),
        ("stdin", "execute_request"),  # a known type on the wrong channel
        ("iopub", "execute_request"),
        ("shell", "input_reply"),
        ("shell", "apply_request"),  # the old IPython.parallel request
        ("shell", ""),
    ],
)
def test_other_messages_are_refused(channel: str, msg_type: str) -> None:
    with pytest.raises(RefusedMessage) as info:
        _event(channel, msg_type, {"code": "print(1)"})
    assert info.value.msg.channel == channel
    ev = refused_event(info.value.msg, user="alice", project="p", kernel_id="k")
    assert ev.action == "kernel.refused" and ev.details["content"] == {"code": "print(1)"}


def test_malformed_input_reply_and_expressions_raise() -> None:
    with pytest.raises(MessageError):
        _event("stdin", "input_reply", {"value": 3})
    with pytest.raises(MessageError):
        _event("shell", "execute_request", {"code": "", "user_expressions": {"x": 1}})


def test_legacy_json_and_binary() -> None:
    full = {
        "channel": "shell",
        "header": HEADER,
        "parent_header": {},
        "metadata": {},
        "content": CONTENT,
        "buffers": [],
    }
    assert parse_kernel_message(json.dumps(full), None).content == CONTENT
    blob = serialize_binary_message({**full, "buffers": [b"xyz"]})
    assert parse_kernel_message(blob, None).header["msg_type"] == "execute_request"


@pytest.mark.parametrize(
    ("message", "proto"),
    [
        ("text on v1", V1_SUBPROTOCOL),
        (b"\x01", V1_SUBPROTOCOL),
        ((99).to_bytes(8, "little") + b"x" * 16, V1_SUBPROTOCOL),
        (v1()[:-5] + b"}}}}}", V1_SUBPROTOCOL),
        (v1(header=[1, 2]), V1_SUBPROTOCOL),
        ("not json", None),
        ("[1, 2]", None),
        (json.dumps({"header": {}, "content": {}}), None),  # no channel
        (b"\x00\x00\x00\x05abc", None),
    ],
)
def test_malformed_messages_raise(message: str | bytes, proto: str | None) -> None:
    with pytest.raises(MessageError):
        parse_kernel_message(message, proto)


def test_execute_without_code_string_raises() -> None:
    msg = parse_kernel_message(v1(content={"code": ["x"]}), V1_SUBPROTOCOL)
    with pytest.raises(MessageError):
        kernel_event(msg, user="a", project="p", kernel_id="k")


def test_terminal_lines_are_coalesced() -> None:
    t = TerminalInput(max_pending=10)
    assert t.feed('["stdin", "ls -"]') == []
    assert t.feed('["stdin", "la\\r"]') == ["ls -la\r"]
    assert t.feed('["set_size", 24, 80]') == []
    assert t.feed('["stdin", "a\\nb\\rc"]') == ["a\n", "b\r"]
    assert t.feed('["stdin", "0123456789"]') == ["c0123456789"]  # flushed past max_pending
    assert t.feed('["stdin", "tail"]') == [] and t.flush() == ["tail"]
    for bad in ("nope", "{}", '["stdin"]', '["stdin", 5]'):
        with pytest.raises(MessageError):
            t.feed(bad)


def test_save_body() -> None:
    s = parse_save_body(b'{"type": "file", "format": "text", "content": "hello"}')
    assert (s.type, s.format, s.content_bytes, s.chunk) == ("file", "text", b"hello", None)
    b = parse_save_body(b'{"type": "file", "format": "base64", "content": "AAEC", "chunk": 2}')
    assert b.content_bytes == b"\x00\x01\x02" and b.chunk == 2
    with pytest.raises(MessageError):
        parse_save_body(b"[]")
    with pytest.raises(MessageError):
        parse_save_body(b'{"chunk": "1"}')


def test_store_sink_writes_a_verifiable_chain(tmp_path: Path) -> None:
    hub, _ = init_installation(DataDir.resolve(tmp_path))
    try:
        sink = StoreAuditSink(hub)
        ev = kernel_event(
            parse_kernel_message(v1(), V1_SUBPROTOCOL), user="alice", project="p", kernel_id="k"
        )
        assert ev is not None

        async def run() -> None:
            await asyncio.gather(*(sink.record(ev) for _ in range(10)))

        asyncio.run(run())
        with hub.sessions() as s:
            rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "code.execute")).all()
            assert len(rows) == 10 and rows[0].actor == "alice"
            assert json.loads(rows[0].details)["code"] == CONTENT["code"]
            assert verify(s).ok
    finally:
        hub.close()
