"""E-mail delivery of airlock notifications (the in-app rows are written by the workflow).

Owns :class:`EmailSettings` (where the SMTP server is, and which address a
user has) and :func:`send_pending`, which e-mails ``notifications`` rows whose
``emailed_at`` is NULL. The workflow writes those rows in the same transaction
as each transition; e-mail happens afterwards, here, so a slow or absent mail
server never blocks or undoes a transition. Delivery is at-least-once:

* ``emailed_at`` is set (and committed, row by row) only after the SMTP server
  accepted the message; a refused recipient or a server that is down leaves
  the row pending for the next run, and nothing is ever dropped;
* on PostgreSQL the rows being sent are locked ``FOR UPDATE SKIP LOCKED``, so two
  senders running at once do not both send one row;
* a message is sent again only if the process dies between the server's
  acceptance and the commit; it then carries the same ``Message-ID`` (derived
  from the row, not random), so mail clients and archives show it once.

Addresses: the user's own (``users.email``, ``hdh user email NAME ADDRESS``), else
``addresses[name]`` when configured, else ``<name>@<domain>`` when a domain is
configured, else none (the row stays pending, in-app only, and is reported).

Configuration: ``<data dir>/smtp.toml`` (table ``[smtp]``) then environment
variables ``HDH_SMTP_*`` (which win). No host configured = e-mail off.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.store.models import Notification, User

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "ssl"]
SECURITY_MODES: tuple[Security, ...] = ("none", "starttls", "ssl")
CONFIG_FILE = "smtp.toml"
ENV_PREFIX = "HDH_SMTP_"


class EmailConfigError(HdhError, ValueError):
    """The SMTP configuration is unusable (bad port, unknown security mode, ...)."""

    http_status = 503


@dataclass(frozen=True)
class EmailSettings:
    """Where and how to send e-mail. ``host=None`` means e-mail is off."""

    host: str | None = None
    port: int = 25
    from_address: str = "hdh@localhost"
    security: Security = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    domain: str | None = None  # default address: <user name>@<domain>
    addresses: Mapping[str, str] = field(default_factory=dict)  # user name -> address
    base_url: str | None = None  # the control plane's URL: each message links its web page
    timeout: float = 10.0
    ca_file: str | None = None  # CA bundle that signs the server's certificate (private CAs)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise EmailConfigError(f"SMTP port {self.port} is not 1..65535")
        if self.security not in SECURITY_MODES:
            raise EmailConfigError(
                f"SMTP security {self.security!r} is not one of {', '.join(SECURITY_MODES)}"
            )
        if (self.username is None) != (self.password is None):
            raise EmailConfigError("give both an SMTP username and a password, or neither")
        for value in (self.from_address, *self.addresses.values(), self.domain or ""):
            if any(c in value for c in "\r\n"):
                raise EmailConfigError("e-mail addresses and domains are one line each")

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def address_of(self, user_name: str) -> str | None:
        """The user's e-mail address, or None when none is known."""
        if user_name in self.addresses:
            return self.addresses[user_name]
        return f"{user_name}@{self.domain}" if self.domain else None

    @classmethod
    def from_mapping(cls, conf: Mapping[str, Any]) -> EmailSettings:
        """Settings from a mapping with this class's field names (unknown keys refused)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(conf) - known - {"password_file"}
        if unknown:
            raise EmailConfigError(f"unknown SMTP settings: {', '.join(sorted(unknown))}")
        values = dict(conf)
        pw_file = values.pop("password_file", None)
        if pw_file and values.get("password") is None:
            values["password"] = Path(pw_file).read_text().strip()
        try:
            if "port" in values:
                values["port"] = int(values["port"])
            if "timeout" in values:
                values["timeout"] = float(values["timeout"])
        except (TypeError, ValueError) as exc:
            raise EmailConfigError(f"bad SMTP setting: {exc}") from None
        values["addresses"] = dict(values.get("addresses") or {})
        return cls(**values)

    @classmethod
    def load(cls, root: Path | None = None, env: Mapping[str, str] | None = None) -> EmailSettings:
        """``<root>/smtp.toml`` ``[smtp]`` table, overridden by ``HDH_SMTP_*`` variables.

        Variables: HOST, PORT, FROM, SECURITY, USERNAME, PASSWORD, PASSWORD_FILE,
        DOMAIN, BASE_URL, CA_FILE, ADDRESSES (``alice=a@x.org,bob=b@y.org``).
        """
        env = os.environ if env is None else env
        conf: dict[str, Any] = {}
        if root is not None and (root / CONFIG_FILE).is_file():
            try:
                conf = dict(tomllib.loads((root / CONFIG_FILE).read_text()).get("smtp", {}))
            except tomllib.TOMLDecodeError as exc:
                raise EmailConfigError(f"{root / CONFIG_FILE}: {exc}") from None
        names = {
            "HOST": "host",
            "PORT": "port",
            "FROM": "from_address",
            "SECURITY": "security",
            "USERNAME": "username",
            "PASSWORD": "password",
            "PASSWORD_FILE": "password_file",
            "DOMAIN": "domain",
            "BASE_URL": "base_url",
            "CA_FILE": "ca_file",
        }
        for var, key in names.items():
            if env.get(ENV_PREFIX + var):
                conf[key] = env[ENV_PREFIX + var]
        if env.get(ENV_PREFIX + "ADDRESSES"):
            pairs = [p.partition("=") for p in env[ENV_PREFIX + "ADDRESSES"].split(",") if p]
            if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
                raise EmailConfigError(f"{ENV_PREFIX}ADDRESSES is name=address,name=address")
            conf["addresses"] = {k.strip(): v.strip() for k, _, v in pairs}
        return cls.from_mapping(conf)


@dataclass
class SendReport:
    """What one :func:`send_pending` run did."""

    sent: list[int] = field(default_factory=list)  # notification ids now marked emailed
    pending: list[int] = field(default_factory=list)  # left for the next run
    no_address: list[str] = field(default_factory=list)  # users without a known address
    error: str | None = None  # why the run stopped early (server down, login refused)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "pending": self.pending,
            "no_address": sorted(set(self.no_address)),
            "error": self.error,
        }


def message_id(row: Notification, settings: EmailSettings) -> str:
    """The same ``<…@domain>`` each time ``row`` is sent: a re-send is recognised as such."""
    created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
    stamp = int(created.timestamp() * 1_000_000)
    domain = settings.from_address.rpartition("@")[2] or "hdh.invalid"
    return f"<hdh-notification-{row.id}.{stamp}@{domain}>"


def _message(row: Notification, to: str, settings: EmailSettings) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.from_address
    msg["To"] = to
    # a subject is one line: a stray newline must not start a header of its own
    msg["Subject"] = " ".join(row.subject.split())[:200]
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(row, settings)
    link, page = "", row.link
    if row.request_id is not None:
        page = f"ui/egress/requests/{row.request_id}"
    if settings.base_url and page:
        link = f"\n\n{settings.base_url.rstrip('/')}/{page}"
    what = "airlock" if row.request_id is not None else "access desk"
    msg.set_content(f"{row.body}{link}\n\n-- \nHDH {what} notification #{row.id}\n")
    return msg


def _connect(settings: EmailSettings) -> smtplib.SMTP:
    """A logged-in connection; TLS always verifies the server's certificate and name."""
    assert settings.host
    server: smtplib.SMTP
    if settings.security == "ssl":
        server = smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            context=ssl.create_default_context(cafile=settings.ca_file),
        )
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            server.starttls(context=ssl.create_default_context(cafile=settings.ca_file))
        if settings.username is not None and settings.password is not None:
            server.login(settings.username, settings.password)
    except BaseException:
        server.close()
        raise
    return server


def send_pending(
    session: Session,
    settings: EmailSettings,
    *,
    user_email: Callable[[str], str | None] | None = None,
    limit: int = 200,
) -> SendReport:
    """E-mail up to ``limit`` notifications not yet e-mailed; mark each only once accepted.

    ``user_email`` maps a user name to an address (default: ``settings.address_of``).
    Commits ``session`` after each accepted message. Never raises for mail-server
    trouble: the report says what was left pending and why.
    """
    report = SendReport()
    if not settings.enabled:
        return report
    candidates = list(
        session.execute(
            select(Notification.id, Notification.user_name)
            .where(Notification.emailed_at.is_(None))
            .order_by(Notification.id)
            .limit(limit)
        )
    )
    stored: dict[str, str | None] = {
        name: email
        for name, email in session.execute(
            select(User.name, User.email).where(
                User.name.in_({u for _, u in candidates}), User.email.is_not(None)
            )
        )
    }
    session.rollback()

    def default_address(user_name: str) -> str | None:
        return stored.get(user_name) or settings.address_of(user_name)

    address_of = user_email or default_address
    todo: list[tuple[int, str]] = []
    for row_id, user_name in candidates:
        to = address_of(user_name)
        if to:
            todo.append((row_id, to))
        else:
            report.no_address.append(user_name)
            report.pending.append(row_id)
    if not todo:
        return report
    try:
        server = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        report.pending.extend(i for i, _ in todo)
        report.error = f"SMTP server {settings.host}:{settings.port}: {type(exc).__name__}: {exc}"
        log.warning("notifications not e-mailed (will retry): %s", report.error)
        return report
    try:
        for n, (row_id, to) in enumerate(todo):
            # lock this row while it is sent: a concurrent sender skips it, and sees it done
            row = session.scalars(
                select(Notification)
                .where(Notification.id == row_id, Notification.emailed_at.is_(None))
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if row is None:  # sent meanwhile by another run, or being sent now
                session.rollback()
                continue
            try:
                server.send_message(_message(row, to, settings))
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
                session.rollback()
                report.pending.append(row_id)  # this message only: try the others
                log.warning("notification %s to %s refused: %s", row_id, to, exc)
                continue
            except (OSError, smtplib.SMTPException) as exc:
                session.rollback()
                report.pending.extend(i for i, _ in todo[n:])
                report.error = f"SMTP server failed while sending: {type(exc).__name__}: {exc}"
                log.warning("notifications not e-mailed (will retry): %s", report.error)
                break
            # accepted by the server: record it at once, so a later failure cannot re-send it
            row.emailed_at = datetime.now(UTC)
            session.commit()
            report.sent.append(row_id)
    finally:
        session.rollback()
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            server.close()
    return report
