"""E-mail notifications against a real local SMTP server (aiosmtpd), on both store backends.

A row is marked e-mailed only once the server accepted it; anything that goes
wrong leaves it pending and a later run delivers it. Nothing is ever lost.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from jupyterlab_hdh.egress.notify import EmailConfigError, EmailSettings, send_pending
from jupyterlab_hdh.hub.config import free_port
from jupyterlab_hdh.store.models import Notification


class Inbox:
    """aiosmtpd handler keeping what it accepted; refuses recipients listed in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _start(inbox: Inbox, port: int, **kwargs: Any) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = _start(inbox, port)
    yield inbox, port
    controller.stop()


def _notify(hub: Any, *rows: tuple[str, str]) -> list[int]:
    with hub.transaction() as s:
        objs = [
            Notification(user_name=user, kind="submitted", subject=subject, body=f"body {subject}")
            for user, subject in rows
        ]
        s.add_all(objs)
        s.flush()
        return [o.id for o in objs]


def _emailed(hub: Any) -> dict[int, bool]:
    with hub.sessions() as s:
        return {n.id: n.emailed_at is not None for n in s.scalars(select(Notification))}


def test_pending_rows_are_sent_to_each_user_and_marked(hub: Any, smtp: Any) -> None:
    inbox, port = smtp
    ids = _notify(hub, ("alice", "Request 1 submitted"), ("bob", "Request 1 needs review"))
    settings = EmailSettings(
        host="127.0.0.1",
        port=port,
        from_address="airlock@hdh.example",
        domain="hdh.example",
        addresses={"bob": "bob.reviewer@uni.example"},
        base_url="https://hdh.example",
    )
    with hub.sessions() as s:
        report = send_pending(s, settings)
    assert report.sent == ids and report.pending == [] and report.error is None
    got = {tuple(rcpt): msg for rcpt, msg in inbox.messages}
    assert set(got) == {("alice@hdh.example",), ("bob.reviewer@uni.example",)}
    alice = got[("alice@hdh.example",)]
    assert alice["Subject"] == "Request 1 submitted"
    assert alice["From"] == "airlock@hdh.example"
    assert "body Request 1 submitted" in alice.get_content()
    assert _emailed(hub) == dict.fromkeys(ids, True)
    # a second run has nothing left to send
    with hub.sessions() as s:
        assert send_pending(s, settings).sent == []
    assert len(inbox.messages) == 2


def test_a_message_sent_again_after_a_lost_commit_has_the_same_message_id(
    hub: Any, smtp: Any
) -> None:
    """At-least-once: if the commit after the server's acceptance is lost (a crash), the row is
    sent again, under the same Message-ID, so the recipient's client shows it once."""
    from sqlalchemy import update

    inbox, port = smtp
    ids = _notify(hub, ("alice", "Request 7 approved"), ("alice", "Request 8 returned"))
    settings = EmailSettings(
        host="127.0.0.1", port=port, from_address="airlock@hdh.example", domain="hdh.example"
    )
    with hub.sessions() as s:
        assert send_pending(s, settings).sent == ids
    with hub.transaction() as s:  # as if the process died before recording the first one
        s.execute(update(Notification).where(Notification.id == ids[0]).values(emailed_at=None))
    with hub.sessions() as s:
        assert send_pending(s, settings).sent == [ids[0]]
    first, second, again = (msg["Message-ID"] for _, msg in inbox.messages)
    assert again == first != second
    assert first.startswith(f"<hdh-notification-{ids[0]}.") and first.endswith("@hdh.example>")


def test_server_down_leaves_rows_pending_and_the_next_run_delivers(hub: Any) -> None:
    port = free_port()  # nothing listens here yet
    ids = _notify(hub, ("alice", "Returned"), ("carol", "Approved"))
    settings = EmailSettings(host="127.0.0.1", port=port, domain="x.example", timeout=3)
    with hub.sessions() as s:
        report = send_pending(s, settings)
    assert report.sent == [] and sorted(report.pending) == ids
    assert report.error and "ConnectionRefusedError" in report.error
    assert _emailed(hub) == dict.fromkeys(ids, False)

    inbox = Inbox()
    controller = _start(inbox, port)
    try:
        with hub.sessions() as s:
            report = send_pending(s, settings)
    finally:
        controller.stop()
    assert report.sent == ids
    assert sorted(r[0] for r, _ in inbox.messages) == ["alice@x.example", "carol@x.example"]
    assert _emailed(hub) == dict.fromkeys(ids, True)


def test_a_refused_recipient_stays_pending_the_others_are_sent(hub: Any, smtp: Any) -> None:
    inbox, port = smtp
    inbox.refuse.add("bob@x.example")
    a, b, c = _notify(hub, ("alice", "1"), ("bob", "2"), ("carol", "3"))
    settings = EmailSettings(host="127.0.0.1", port=port, domain="x.example")
    with hub.sessions() as s:
        report = send_pending(s, settings)
    assert report.sent == [a, c] and report.pending == [b]
    assert _emailed(hub) == {a: True, b: False, c: True}
    inbox.refuse.clear()
    with hub.sessions() as s:
        assert send_pending(s, settings).sent == [b]


def test_users_without_an_address_stay_pending_and_are_reported(hub: Any, smtp: Any) -> None:
    inbox, port = smtp
    a, b = _notify(hub, ("alice", "1"), ("bob", "2"))
    settings = EmailSettings(host="127.0.0.1", port=port, addresses={"alice": "a@x.example"})
    with hub.sessions() as s:
        report = send_pending(s, settings)
    assert report.sent == [a] and report.pending == [b] and report.no_address == ["bob"]
    assert [r for r, _ in inbox.messages] == [["a@x.example"]]


def test_email_off_sends_nothing_and_keeps_rows(hub: Any, smtp: Any) -> None:
    inbox, _port = smtp
    ids = _notify(hub, ("alice", "1"))
    with hub.sessions() as s:
        report = send_pending(s, EmailSettings(domain="x.example"))
    assert report.sent == [] and inbox.messages == []
    assert _emailed(hub) == dict.fromkeys(ids, False)


def test_a_subject_cannot_inject_headers(hub: Any, smtp: Any) -> None:
    inbox, port = smtp
    _notify(hub, ("alice", "Results\r\nBcc: mallory@evil.example\r\n\r\nfake body"))
    with hub.sessions() as s:
        send_pending(s, EmailSettings(host="127.0.0.1", port=port, domain="x.example"))
    [(rcpt, msg)] = inbox.messages
    assert rcpt == ["alice@x.example"]
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Results Bcc: mallory@evil.example fake body"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_username_and_password(hub: Any) -> None:
    def check(_server: Any, _session: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"hdh",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    inbox, port = Inbox(), free_port()
    controller = _start(
        inbox, port, authenticator=check, auth_required=True, auth_require_tls=False
    )
    try:
        ids = _notify(hub, ("alice", "1"))
        bad = EmailSettings(
            host="127.0.0.1", port=port, domain="x.example", username="hdh", password="wrong"
        )
        with hub.sessions() as s:
            report = send_pending(s, bad)
        assert report.sent == [] and report.pending == ids and "Authentication" in str(report.error)
        good = EmailSettings(
            host="127.0.0.1", port=port, domain="x.example", username="hdh", password="s3cret"
        )
        with hub.sessions() as s:
            assert send_pending(s, good).sent == ids
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_settings_from_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "smtp.toml").write_text(
        '[smtp]\nhost = "mail.example"\nport = 587\nsecurity = "starttls"\n'
        'from_address = "hdh@example.org"\ndomain = "example.org"\n'
        '[smtp.addresses]\nbob = "bob@elsewhere.org"\n'
    )
    (tmp_path / "pw").write_text("from-file\n")
    s = EmailSettings.load(
        tmp_path,
        env={
            "HDH_SMTP_PORT": "2525",
            "HDH_SMTP_USERNAME": "relay",
            "HDH_SMTP_PASSWORD_FILE": str(tmp_path / "pw"),
        },
    )
    assert (s.host, s.port, s.security, s.username, s.password) == (
        "mail.example",
        2525,
        "starttls",
        "relay",
        "from-file",
    )
    assert s.address_of("alice") == "alice@example.org"
    assert s.address_of("bob") == "bob@elsewhere.org"
    assert "from-file" not in repr(s)
    assert not EmailSettings.load(tmp_path / "nothing", env={}).enabled
    env = {"HDH_SMTP_HOST": "h", "HDH_SMTP_ADDRESSES": "alice=a@x.org, bob=b@y.org"}
    assert EmailSettings.load(None, env=env).addresses == {"alice": "a@x.org", "bob": "b@y.org"}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"host": "h", "port": "70000"}, "port"),
        ({"host": "h", "port": "smtp"}, "bad SMTP setting"),
        ({"host": "h", "security": "tls"}, "security"),
        ({"host": "h", "username": "u"}, "both"),
        ({"host": "h", "from_address": "a@b\nBcc: c@d"}, "one line"),
        ({"host": "h", "hostname": "typo"}, "unknown SMTP settings: hostname"),
    ],
)
def test_bad_settings_are_refused_clearly(conf: dict[str, Any], message: str) -> None:
    with pytest.raises(EmailConfigError, match=message):
        EmailSettings.from_mapping(conf)


class SlowInbox(Inbox):
    """Takes a while to accept each message, so two senders overlap."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import asyncio

        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_two_senders_at_once_send_each_row_once_on_postgresql(hub: Any) -> None:
    import threading

    if hub.engine.dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; the API serialises")
    inbox, port = SlowInbox(), free_port()
    controller = _start(inbox, port)
    ids = _notify(hub, *((f"user{i}", f"subject {i}") for i in range(20)))
    settings = EmailSettings(host="127.0.0.1", port=port, domain="x.example")
    reports: list[Any] = []

    def run() -> None:
        with hub.sessions() as s:
            reports.append(send_pending(s, settings))

    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        controller.stop()
    sent = sorted(i for r in reports for i in r.sent)
    assert sent == ids  # every row once, none twice
    assert all(r.sent for r in reports)  # and both senders did part of the work
    assert sorted(r[0] for r, _ in inbox.messages) == sorted(
        f"user{i}@x.example" for i in range(20)
    )
    assert _emailed(hub) == dict.fromkeys(ids, True)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test's private CA) and its key."""
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_tls(cert: Path, key: Path) -> Any:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_starttls_with_login_verifies_the_servers_certificate(
    hub: Any, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files

    def check(_server: Any, _session: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    inbox, port = Inbox(), free_port()
    controller = _start(
        inbox,
        port,
        tls_context=_server_tls(cert, key),
        require_starttls=True,
        authenticator=check,
        auth_required=True,  # and AUTH only over TLS (aiosmtpd's default)
    )
    try:
        ids = _notify(hub, ("alice", "over TLS"))
        common: dict[str, Any] = dict(
            host="127.0.0.1", port=port, domain="x.example", security="starttls",
            username="hdh", password="s3cret", timeout=5,
        )  # fmt: skip
        # the server's certificate is not signed by a CA we trust: nothing is sent to it
        with hub.sessions() as s:
            report = send_pending(s, EmailSettings(**common))
        assert report.sent == [] and report.pending == ids
        assert "CERTIFICATE_VERIFY_FAILED" in str(report.error)
        with hub.sessions() as s:
            report = send_pending(s, EmailSettings(**common, ca_file=str(cert)))
        assert report.sent == ids, report
    finally:
        controller.stop()
    [(rcpt, msg)] = inbox.messages
    assert rcpt == ["alice@x.example"] and msg["Subject"] == "over TLS"


def test_implicit_tls(hub: Any, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    inbox, port = Inbox(), free_port()
    controller = _start(inbox, port, ssl_context=_server_tls(cert, key))
    try:
        ids = _notify(hub, ("alice", "over SMTPS"))
        settings = EmailSettings(
            host="127.0.0.1", port=port, domain="x.example", security="ssl", ca_file=str(cert)
        )
        with hub.sessions() as s:
            assert send_pending(s, settings).sent == ids
    finally:
        controller.stop()
    assert [m["Subject"] for _, m in inbox.messages] == ["over SMTPS"]


def test_a_users_own_address_comes_first(hub: Any, smtp: Any) -> None:
    from jupyterlab_hdh.governance.accounts import create_user, set_email

    inbox, port = smtp
    with hub.transaction() as s:
        create_user(s, "dora", "reviewer", actor="test")
        set_email(s, "dora", "dora.reviewer@hospital.example", actor="test")
    _notify(hub, ("dora", "Request 3 needs review"), ("erin", "Request 3 submitted"))
    settings = EmailSettings(host="127.0.0.1", port=port, domain="hdh.example")
    with hub.sessions() as s:
        report = send_pending(s, settings)
    assert sorted(to for tos, _ in inbox.messages for to in tos) == [
        "dora.reviewer@hospital.example",  # hers, not dora@hdh.example
        "erin@hdh.example",  # no address of her own: the configured domain
    ]
    assert report.no_address == []


@pytest.mark.parametrize(
    "bad",
    ["dora", "dora@", "@x.org", "a b@x.org", "dora@x", "x@y.org\nBcc: eve@z.org", "<a@b.org>"],
)
def test_bad_addresses_are_refused_and_nothing_changes(hub: Any, bad: str) -> None:
    from jupyterlab_hdh.governance.accounts import AccountError, create_user, set_email
    from jupyterlab_hdh.store.models import User

    with hub.transaction() as s:
        create_user(s, "dora", "reviewer", actor="test")
        set_email(s, "dora", "dora@hospital.example", actor="test")
    with pytest.raises(AccountError, match="invalid e-mail address"), hub.transaction() as s:
        set_email(s, "dora", bad, actor="test")
    with hub.sessions() as s:
        assert s.scalars(select(User).where(User.name == "dora")).one().email == (
            "dora@hospital.example"
        )
