"""The channels a notice travels by, behind one interface: email over SMTP, SMS through an HTTP
provider, and a signed webhook to the storefront.

``send`` returns the provider's id for the message, or raises ``ChannelUnavailable`` (try the
same channel again later: a timeout, a refused connection, a 4xx SMTP reply, HTTP 429 or 5xx)
or ``ChannelRefused`` (this channel will not take this message: fall back to the next one the
customer allows). Every message carries its idempotency key to the provider (``Message-ID``,
``Idempotency-Key``, ``Fulfill-Notice-Id``), so a retry after a lost answer is recognisable.
"""

from __future__ import annotations

import hashlib
import json
import mailbox
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx

from fulfill.notify.templates import NoticeKind, Rendered
from fulfill_carriers import SIGNATURE_HEADER, retryable, send, sign


@dataclass(frozen=True)
class Message:
    key: str  # the idempotency key: one notice on one channel
    kind: NoticeKind
    to: str  # an email address, a phone number, or the storefront's URL
    rendered: Rendered
    data: dict[str, Any] = field(default_factory=dict)  # the notice as JSON, for webhooks


class ChannelError(Exception):
    pass


class ChannelUnavailable(ChannelError):
    """Try the same channel again later."""


class ChannelRefused(ChannelError):
    """This channel will not deliver this message: fall back to the next one."""


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> str: ...


class EmailChannel:
    """SMTP, on one connection kept open between messages (a notice costs one transaction,
    not a connect, EHLO and QUIT). A connection idle for a while is checked with NOOP first;
    any failure closes it, and the next message opens a new one."""

    name = "email"
    CHECK_AFTER_IDLE_S = 5.0

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls
        self.timeout_s = timeout_s
        self._smtp: smtplib.SMTP | None = None
        self._used_at = 0.0
        self._lock = threading.Lock()

    def send(self, message: Message) -> str:
        email = compose(message, self.sender)
        with self._lock:
            try:
                self._connection().send_message(email)
            except (OSError, smtplib.SMTPException) as exc:
                if not isinstance(exc, smtplib.SMTPRecipientsRefused):
                    self.close()  # the server's state after a failed transaction is unknown
                raise self._channel_error(exc, message.to) from exc
            self._used_at = time.monotonic()
        return str(email["Message-ID"])

    def _channel_error(self, exc: Exception, to: str) -> ChannelError:
        """4xx: try again later; 5xx: this channel will not take it; no answer: later."""
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                return ChannelUnavailable(f"SMTP deferred {to}: {exc.recipients}")
            return ChannelRefused(f"SMTP refused {to}: {exc.recipients}")
        if isinstance(exc, smtplib.SMTPResponseException):
            error = ChannelUnavailable if 400 <= exc.smtp_code < 500 else ChannelRefused
            return error(f"SMTP answered {exc.smtp_code} {exc.smtp_error!r}")
        return ChannelUnavailable(f"SMTP {self.host}:{self.port}: {exc}")

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and time.monotonic() - self._used_at > self.CHECK_AFTER_IDLE_S:
            try:
                code, _ = self._smtp.noop()
            except (OSError, smtplib.SMTPException):
                code = 0
            if code != 250:  # the server closed it meanwhile
                self.close()
        if self._smtp is None:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            try:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def message_digest(key: str) -> str:
    """The local part of the Message-ID of the notice with idempotency key ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def compose(message: Message, sender: str) -> EmailMessage:
    """The mail of a notice: plain text and HTML, in the notice's language."""
    email = EmailMessage()
    email["Subject"] = message.rendered.subject
    email["From"] = sender
    email["To"] = message.to
    # The same notice always has the same id: a resent one is recognisably the same mail.
    email["Message-ID"] = f"<{message_digest(message.key)}@{_domain(sender)}>"
    email.set_content(message.rendered.text)
    email.add_alternative(message.rendered.html, subtype="html")
    email["Content-Language"] = message.rendered.language  # after: content setters clear it
    return email


class MaildirChannel:
    """Email kept in a local Maildir, for the embedded default where no SMTP server is set:
    any mail client reads it (``mutt -f .fulfill/mail``)."""

    name = "email"

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder, self.sender = folder, sender

    def send(self, message: Message) -> str:
        email = compose(message, self.sender)
        try:
            mailbox.Maildir(self.folder, create=True).add(email)
        except OSError as exc:
            raise ChannelUnavailable(f"cannot write to {self.folder}: {exc}") from exc
        return str(email["Message-ID"])


class SmsChannel:
    """An HTTP SMS provider: ``POST {url}/v1/messages`` ``{"to", "body"}`` with the key as
    ``Idempotency-Key``, answered ``{"id"}`` (``fulfill_carriers.sms_sandbox`` serves it)."""

    name = "sms"

    def __init__(self, url: str, token: str = "", timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout_s)

    def send(self, message: Message) -> str:
        status, body = send(
            self._http,
            "POST",
            "/v1/messages",
            _unavailable,
            json={"to": message.to, "body": message.rendered.sms},
            headers={"Idempotency-Key": message.key},
        )
        if retryable(status):
            raise ChannelUnavailable(f"SMS provider answered {status}: {body}")
        if status >= 400:
            raise ChannelRefused(f"SMS provider refused {message.to}: {status} {body}")
        return str(body.get("id", ""))

    def close(self) -> None:
        self._http.close()


class WebhookChannel:
    """The storefront's own endpoint: the notice as signed JSON, for it to tell the customer
    its own way (an app push, a message in the account)."""

    name = "webhook"

    def __init__(self, secret: str, timeout_s: float = 10.0) -> None:
        self.secret = secret
        self._http = httpx.Client(timeout=timeout_s)

    def send(self, message: Message) -> str:
        body = json.dumps(
            {
                "id": message.key,
                "kind": message.kind.value,
                "language": message.rendered.language,
                "subject": message.rendered.subject,
                "text": message.rendered.text,
                "data": message.data,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Fulfill-Notice-Id": message.key,
            SIGNATURE_HEADER: sign(body, self.secret),
        }
        try:
            response = self._http.post(message.to, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"{message.to}: {type(exc).__name__}: {exc}") from exc
        if retryable(response.status_code) or response.status_code == 408:
            raise ChannelUnavailable(f"{message.to} answered {response.status_code}")
        if response.status_code >= 300:
            raise ChannelRefused(f"{message.to} answered {response.status_code}")
        return message.key

    def close(self) -> None:
        self._http.close()


def _unavailable(text: str, status: int | None) -> Exception:
    return ChannelUnavailable(text)


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip("> ") or "fulfill.local"
