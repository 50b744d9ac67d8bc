"""What the guard records into the audit log, and where it writes it.

Owns the parsing of client-to-sandbox traffic worth auditing (kernel channel
messages in the legacy JSON protocol, its legacy binary form, and JupyterLab
4's ``v1.kernel.websocket.jupyter.org`` binary protocol; terminal websocket
input; contents saves) into :class:`AuditEvent` values, and the sinks that
persist them. The proxy records an event *before* forwarding the message it
describes; if recording fails the message is dropped and the connection
closed, so no unaudited code runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from jupyterlab_hdh.audit.log import NewEvent, record_many

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
_log = logging.getLogger("hdh.guard.audit")


class MessageError(ValueError):
    """A client message the guard cannot parse (the connection is closed)."""


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    """Where audit events go. ``record`` must raise if the event was not persisted."""

    async def record(self, event: AuditEvent) -> None: ...


class StoreAuditSink:
    """Writes events to the store with group commit, off the event loop.

    ``record`` queues the event and waits; one writer thread takes every event
    waiting (up to ``max_batch``) and appends them, in the order ``record`` was
    called, in one store transaction (``audit.log.record_many``: the same hash
    chain, one commit, so one fsync, for the whole batch). Each ``record``
    returns only once the transaction holding its event has committed, and
    raises if it failed: then none of that batch's events was written (the
    transaction rolled back), and every caller in it drops its message. Under
    load, waiting events share a commit; alone, an event is committed at once.

    The writer keeps one store connection (no pool checkout and pre-ping round
    trip per commit). If it turns out dead before anything was sent to be
    committed (the store restarted: SQLAlchemy reports the connection
    invalidated), the batch is retried once on a fresh connection; a failure
    at the commit itself is not retried (its outcome is unknown) and raises.
    """

    def __init__(self, hub: Any, *, max_batch: int = 512) -> None:
        self.hub = hub
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[tuple[AuditEvent, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._conn: Connection | None = None  # used by the writer thread only
        #: transactions attempted and events in them (tests, diagnostics)
        self.batches = 0
        self.events = 0

    async def record(self, event: AuditEvent) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the audit sink is closed")
            self._queue.append((event, loop, done))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="audit-group-commit", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        await done

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._drop_connection()

    def _commit(self, events: list[AuditEvent]) -> None:
        new = [NewEvent(e.actor, e.action, e.target, e.details) for e in events]
        for attempt in (1, 2):
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._conn = self.hub.engine.connect()
            try:
                trans = conn.begin()
                record_many(conn, new)
            except BaseException as exc:
                dead = _is_disconnect(conn, exc)
                self._drop_connection()  # rolls back whatever was begun
                if attempt == 1 and dead:
                    continue  # the kept connection was dead: nothing was written
                raise
            try:
                trans.commit()
            except BaseException:
                self._drop_connection()
                raise
            return

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            error: BaseException | None = None
            try:
                self._commit([e for e, _, _ in batch])
            except BaseException as exc:  # every waiter of this batch gets it
                error = exc
                _log.error("audit commit of %d event(s) failed: %r", len(batch), exc)
            self.batches += 1
            self.events += len(batch)
            for _, loop, done in batch:
                # RuntimeError: that caller's loop is closed, nobody waits
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, done, error)


def _is_disconnect(conn: Connection, exc: BaseException) -> bool:
    """True if ``exc`` says the connection is dead (SQLAlchemy's or the driver's own error)."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    dialect = conn.dialect
    if not isinstance(exc, dialect.loaded_dbapi.Error):
        return False
    try:
        raw = conn.connection.dbapi_connection
    except Exception:
        return True
    return bool(dialect.is_disconnect(exc, raw, None))


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the caller was cancelled
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class MemoryAuditSink:
    """Keeps events in a list (tests, and a guard run without a store)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


# ----------------------------------------------------------------- kernel messages


@dataclass(frozen=True)
class KernelMessage:
    channel: str
    header: dict[str, Any]
    content: dict[str, Any]
    #: Binary buffers after the content (widgets' comm messages carry some).
    buffers: tuple[bytes, ...] = ()

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))


def _json_obj(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"{what} is not JSON") from exc
    if not isinstance(obj, dict):
        raise MessageError(f"{what} is not a JSON object")
    return obj


def parse_kernel_message(message: str | bytes, subprotocol: str | None) -> KernelMessage:
    """Parse one client-to-kernel websocket message (raises MessageError)."""
    if subprotocol == V1_SUBPROTOCOL:
        if not isinstance(message, bytes):
            raise MessageError("text message on the v1 kernel protocol")
        return _parse_v1(message)
    buffers: tuple[bytes, ...] = ()
    if isinstance(message, str):
        msg = _json_obj(message, "kernel message")
    else:
        msg, buffers = _parse_legacy_binary(message)
    header = msg.get("header")
    content = msg.get("content", {})
    channel = msg.get("channel")
    if not isinstance(header, dict) or not isinstance(content, dict):
        raise MessageError("kernel message without header/content objects")
    if not isinstance(channel, str):
        raise MessageError("kernel message without a channel")
    return KernelMessage(channel, header, content, buffers)


def _parse_v1(data: bytes) -> KernelMessage:
    # layout (jupyter_server services/kernels/connection/base.py): 8-byte LE count n,
    # n 8-byte LE offsets; offsets[0] starts the channel name, then header,
    # parent_header, metadata, content, buffers...
    if len(data) < 8:
        raise MessageError("v1 message too short")
    n = int.from_bytes(data[:8], "little")
    if n < 6 or 8 * (n + 1) > len(data):
        raise MessageError("v1 message with a bad offset count")
    offsets = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
    if offsets[0] != 8 * (n + 1) or any(b < a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise MessageError("v1 message with bad offsets")
    if offsets[-1] > len(data):
        raise MessageError("v1 message offsets past its end")
    bounds = [*offsets, len(data)]
    parts = [data[bounds[i] : bounds[i + 1]] for i in range(len(offsets))]
    try:
        channel = parts[0].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError("v1 channel is not UTF-8") from exc
    header = _json_obj(parts[1], "v1 header")
    content = _json_obj(parts[4], "v1 content")
    # the last offset marks the end of the last part (jupyter_server's serializer)
    return KernelMessage(channel, header, content, tuple(p for p in parts[5:] if p))


def _parse_legacy_binary(data: bytes) -> tuple[dict[str, Any], tuple[bytes, ...]]:
    # 4-byte BE count n, n 4-byte BE offsets; first part is the JSON message, then buffers
    if len(data) < 8:
        raise MessageError("binary message too short")
    (n,) = struct.unpack("!I", data[:4])
    if n < 1 or 4 * (n + 1) > len(data):
        raise MessageError("binary message with a bad part count")
    offsets = list(struct.unpack("!" + "I" * n, data[4 : 4 * (n + 1)]))
    bounds = [*offsets, len(data)]
    if bounds[0] < 4 * (n + 1) or any(b < a for a, b in zip(bounds, bounds[1:], strict=False)):
        raise MessageError("binary message with bad offsets")
    if bounds[-1] > len(data):
        raise MessageError("binary message with bad offsets")
    msg = _json_obj(data[bounds[0] : bounds[1]], "binary kernel message")
    buffers = tuple(data[bounds[i] : bounds[i + 1]] for i in range(1, n))
    return msg, buffers


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: Client-to-kernel messages the guard forwards, by channel (Jupyter messaging 5.4);
#: every other one is refused and its refusal audited. No ``debug_request``: the
#: debugger evaluates expressions and sets variables outside any audited cell, so
#: it is off in sandboxes (its JupyterLab plugins are disabled too).
CLIENT_MESSAGES: dict[str, frozenset[str]] = {
    "shell": frozenset(
        {
            "execute_request",
            "inspect_request",
            "complete_request",
            "history_request",
            "is_complete_request",
            "comm_info_request",
            "kernel_info_request",
            "comm_open",
            "comm_msg",
            "comm_close",
        }
    ),
    "control": frozenset({"kernel_info_request", "interrupt_request", "shutdown_request"}),
    "stdin": frozenset({"input_reply"}),
}


class RefusedMessage(MessageError):
    """A well-formed client message of a type the guard never forwards (audited, dropped)."""

    def __init__(self, msg: KernelMessage) -> None:
        super().__init__(f"{msg.msg_type or 'untyped'} on {msg.channel or 'no'} channel")
        self.msg = msg


def _common(msg: KernelMessage, user: str, project: str, kernel_id: str) -> dict[str, Any]:
    return {
        "user": user,
        "project": project,
        "msg_type": msg.msg_type,
        "msg_id": str(msg.header.get("msg_id", "")),
        "session": str(msg.header.get("session", "")),
        "kernel_id": kernel_id,
        "channel": msg.channel,
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
    }


def _buffers(msg: KernelMessage) -> list[dict[str, Any]]:
    return [{"size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for b in msg.buffers]


def kernel_event(
    msg: KernelMessage, *, user: str, project: str, kernel_id: str, path: str | None = None
) -> AuditEvent:
    """The audit event recorded before a client message reaches a kernel.

    Every forwarded message is recorded with what the kernel acts on:
    ``code.execute`` for cells (the code and the ``user_expressions``, which the
    kernel evaluates too, and ``path``: the notebook or console the kernel's session
    is for, as the server last answered it — :class:`KernelPaths` — or None),
    ``kernel.input`` for the value typed at an ``input()`` prompt (``exec(input())``
    runs it), ``kernel.comm`` for widget and comm traffic (its data and the digests
    of its buffers), ``kernel.request`` for the rest (completion, inspection,
    history, interrupt…, with their content).
    Raises :class:`RefusedMessage` for a type outside :data:`CLIENT_MESSAGES`,
    :class:`MessageError` for a malformed one.
    """
    if msg.msg_type not in CLIENT_MESSAGES.get(msg.channel, frozenset()):
        raise RefusedMessage(msg)
    target = f"project:{project}/kernel:{kernel_id}"
    details = _common(msg, user, project, kernel_id)
    if msg.msg_type == "execute_request":
        code = msg.content.get("code")
        if not isinstance(code, str):
            raise MessageError("execute_request without a code string")
        expressions = msg.content.get("user_expressions") or {}
        if not isinstance(expressions, dict) or not all(
            isinstance(v, str) for v in expressions.values()
        ):
            raise MessageError("execute_request with malformed user_expressions")
        details.update(code=code, sha256=sha256_text(code), path=path)
        if expressions:
            details["user_expressions"] = expressions
        return AuditEvent(actor=user, action="code.execute", target=target, details=details)
    if msg.msg_type == "input_reply":
        value = msg.content.get("value")
        if not isinstance(value, str):
            raise MessageError("input_reply without a value string")
        details.update(value=value, sha256=sha256_text(value))
        return AuditEvent(actor=user, action="kernel.input", target=target, details=details)
    details["content"] = msg.content
    if msg.msg_type.startswith("comm_"):
        details["buffers"] = _buffers(msg)
        return AuditEvent(actor=user, action="kernel.comm", target=target, details=details)
    if msg.buffers:
        details["buffers"] = _buffers(msg)
    return AuditEvent(actor=user, action="kernel.request", target=target, details=details)


def refused_event(msg: KernelMessage, *, user: str, project: str, kernel_id: str) -> AuditEvent:
    """What the guard records when it drops a client message of a refused type."""
    details = _common(msg, user, project, kernel_id)
    details["content"] = msg.content
    return AuditEvent(
        actor=user,
        action="kernel.refused",
        target=f"project:{project}/kernel:{kernel_id}",
        details=details,
    )


# ----------------------------------------------------------------- sessions


class KernelPaths:
    """Which notebook (or console) each kernel runs for, from the sandbox server's answers.

    The guard reads the answers to ``api/sessions`` (``POST``, ``GET``) and
    ``api/sessions/<id>`` (``GET``, ``PATCH``: a rename) that pass through it: each
    session model the *server* returns names its ``path`` and its ``kernel.id``;
    the browser's request body is never read. The latest answer wins, so a renamed
    notebook's cells carry the new path from the rename on. A kernel the guard saw
    no answer for (a guard restart before JupyterLab's next sessions poll) has no
    path (None). Kept per ``(user, project)`` sandbox, at most ``max_entries``
    kernels (the least recently seen forgotten first). No extra request: only
    answers JupyterLab asked for anyway.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._paths: OrderedDict[tuple[str, str, str], str | None] = OrderedDict()

    def get(self, user: str, project: str, kernel_id: str) -> str | None:
        return self._paths.get((user, project, kernel_id))

    def observe(self, user: str, project: str, payload: bytes) -> None:
        """Remember the kernels' paths from one sessions answer (ignored if malformed)."""
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return
        for model in obj if isinstance(obj, list) else [obj]:
            if not isinstance(model, dict):
                continue
            kernel = model.get("kernel")
            kid = kernel.get("id") if isinstance(kernel, dict) else None
            path = model.get("path")
            if not isinstance(kid, str) or not kid:
                continue
            key = (user, project, kid)
            self._paths[key] = path if isinstance(path, str) and path else None
            self._paths.move_to_end(key)
        while len(self._paths) > self.max_entries:
            self._paths.popitem(last=False)


# ----------------------------------------------------------------- template runs


def template_event(
    name: str, payload: bytes, *, user: str, project: str, parameters: dict[str, Any] | None = None
) -> AuditEvent:
    """``template.run``: the launcher's copy of template ``name`` into the workspace
    (``POST hdh/templates/<name>/copy``), with the copied notebook's ``path`` from the
    server's answer (None if it has none). Its cells are audited as ``code.execute``
    when they run."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        obj = None
    path = obj.get("path") if isinstance(obj, dict) else None
    return AuditEvent(
        actor=user,
        action="template.run",
        target=f"project:{project}/template:{name}",
        details={
            "user": user,
            "project": project,
            "template": name,
            "mode": "copy",
            "parameters": parameters or {},
            "path": path if isinstance(path, str) else None,
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        },
    )


# ----------------------------------------------------------------- terminals


class TerminalInput:
    """Coalesces terminal keystrokes into lines; ``feed`` returns completed lines.

    Everything typed is recorded: a partial line is flushed when the buffer
    grows past ``max_pending`` or the connection closes (``flush``).
    """

    def __init__(self, max_pending: int = 4096) -> None:
        self.pending = ""
        self.max_pending = max_pending

    def feed(self, message: str | bytes) -> list[str]:
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MessageError("terminal message is not UTF-8") from exc
        try:
            obj = json.loads(message)
        except ValueError as exc:
            raise MessageError("terminal message is not JSON") from exc
        if not isinstance(obj, list) or not obj or not isinstance(obj[0], str):
            raise MessageError("terminal message is not a [type, ...] list")
        if obj[0] != "stdin":
            return []
        if len(obj) < 2 or not isinstance(obj[1], str):
            raise MessageError("terminal stdin without text")
        self.pending += obj[1]
        lines: list[str] = []
        while True:
            cut = min(
                (i for i in (self.pending.find("\r"), self.pending.find("\n")) if i >= 0),
                default=-1,
            )
            if cut < 0:
                break
            lines.append(self.pending[: cut + 1])
            self.pending = self.pending[cut + 1 :]
        if len(self.pending) > self.max_pending:
            lines.append(self.pending)
            self.pending = ""
        return lines

    def flush(self) -> list[str]:
        out, self.pending = ([self.pending] if self.pending else []), ""
        return out


def terminal_event(line: str, *, user: str, project: str, terminal: str) -> AuditEvent:
    return AuditEvent(
        actor=user,
        action="terminal.input",
        target=f"project:{project}/terminal:{terminal}",
        details={"user": user, "project": project, "input": line, "sha256": sha256_text(line)},
    )


# ----------------------------------------------------------------- file saves


@dataclass(frozen=True)
class SaveBody:
    type: str
    format: str
    content_bytes: bytes
    chunk: int | None


def parse_save_body(body: bytes) -> SaveBody:
    """Parse a ``PUT api/contents`` body: ``{type, format, content, chunk?}``."""
    obj = _json_obj(body or b"{}", "contents body")
    ctype = str(obj.get("type", ""))
    fmt = str(obj.get("format") or "")
    content = obj.get("content")
    chunk = obj.get("chunk")
    if chunk is not None and not isinstance(chunk, int):
        raise MessageError("chunk is not an integer")
    if content is None:
        data = b""
    elif fmt == "base64":
        if not isinstance(content, str):
            raise MessageError("base64 content is not a string")
        try:
            data = base64.b64decode(content, validate=False)
        except ValueError as exc:
            raise MessageError("invalid base64 content") from exc
    elif isinstance(content, str):
        data = content.encode("utf-8")
    else:
        data = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return SaveBody(ctype, fmt, data, chunk)


def check_notebook(body: bytes) -> None:
    """Raise MessageError unless a notebook save carries a valid nbformat 4 document.

    Malformed notebooks are refused here, with a clear reason, rather than
    passed to the sandbox (whose server answers some of them with a 500).
    """
    import nbformat

    obj = _json_obj(body or b"{}", "contents body")
    if obj.get("type") != "notebook" or obj.get("content") is None:
        return
    content = obj["content"]
    if not isinstance(content, dict):
        raise MessageError("the notebook content is not a JSON object")
    try:
        nbformat.validate(nbformat.from_dict(content), version=4)
    except nbformat.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MessageError(f"not a valid nbformat 4 notebook: {first[:200]}") from None
    except Exception as exc:  # nbformat raises assorted errors on odd shapes
        raise MessageError(f"not a valid nbformat 4 notebook: {type(exc).__name__}") from None


def save_event(
    save: SaveBody, *, user: str, project: str, path: str, body_sha256: str, body_size: int
) -> AuditEvent:
    return AuditEvent(
        actor=user,
        action="file.save",
        target=f"project:{project}/file:{path}",
        details={
            "user": user,
            "project": project,
            "path": path,
            "type": save.type,
            "format": save.format,
            "size": len(save.content_bytes),
            "sha256": hashlib.sha256(save.content_bytes).hexdigest(),
            "body_size": body_size,
            "body_sha256": body_sha256,
            "chunk": save.chunk,
        },
    )


Recorder = Callable[[AuditEvent], Any]
