"""Sending a notice through the outbox.

``send`` is the outbox's handler. A channel that is unavailable is tried again with backoff up
to ``FULFILL_NOTICE_ATTEMPTS``; one that refuses, or stays down, hands the notice to the next
channel the customer allows (a new row, ``fallback_of`` the first). A notice that no channel
took is a dead letter: it stays ``failed``, is on the order's timeline, and an admin can replay
it (``POST /v1/notices/{id}/replay``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.errors import Conflict, NotFound
from fulfill.notify.announcing import OVERTAKEN_BY, SEND_TOPIC, cancelled, contact
from fulfill.notify.channels import (
    Channel,
    ChannelRefused,
    ChannelUnavailable,
    EmailChannel,
    MaildirChannel,
    Message,
    SmsChannel,
    WebhookChannel,
)
from fulfill.notify.models import Notice, NoticeStatus
from fulfill.notify.phrasing import rendered
from fulfill.notify.templates import NoticeKind
from fulfill.orders.models import Order
from fulfill.orders.repository import record_event
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import Handler, enqueue
from fulfill.tracking.models import Shipment
from fulfill_carriers import TrackingStatus

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: str  # sent, retry, fell_back, failed, skipped, done
    notice: str | None = None  # the fallback's id


def handlers(settings: Settings) -> dict[str, list[Handler]]:
    engine = engine_for(settings.resolved_database_url)

    def deliver(row: OutboxEvent) -> None:
        send(engine, str(row.payload["notice"]), row.attempts, settings)

    return {SEND_TOPIC: [deliver]}


def send(
    engine: Engine,
    notice_id: str,
    attempt: int,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
) -> Outcome:
    """Send one notice on its channel; raises ``ChannelUnavailable`` for the outbox to try again
    later while tries remain. Idempotent: a notice no longer pending is left alone."""
    now = clock()
    with session_scope(engine) as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.status != NoticeStatus.PENDING:
            return Outcome("done")
        if _overtaken(session, notice):
            _finish(session, notice, NoticeStatus.SKIPPED, now, error="overtaken by events")
            session.commit()
            return Outcome("skipped")
        session.expunge(notice)
    try:
        channel = channels(settings).get(notice.channel)
        if channel is None:
            raise ChannelRefused(f"no {notice.channel} provider is configured")
        message = Message(
            key=notice.id,
            kind=NoticeKind(notice.kind),
            to=_address(notice, settings),
            rendered=rendered(notice, settings, now),
            data=_data(notice, settings),
        )
        provider_id = channel.send(message)
    except ChannelUnavailable as exc:
        if attempt < settings.notice_attempts:
            _note(engine, notice.id, attempt, exc)
            raise
        return _fall_back(engine, notice.id, attempt, exc, now)
    except ChannelRefused as exc:
        return _fall_back(engine, notice.id, attempt, exc, now)
    with session_scope(engine) as session:
        _finish(
            session, notice, NoticeStatus.SENT, clock(), provider_id=provider_id, attempts=attempt
        )
        session.commit()
    return Outcome("sent")


def _address(notice: Notice, settings: Settings) -> str:
    if notice.channel == "webhook":
        if not settings.notices_webhook_url:
            raise ChannelRefused("no storefront endpoint for notices is configured")
        return settings.notices_webhook_url
    return notice.to


def _data(notice: Notice, settings: Settings) -> dict[str, Any]:
    return {
        "order": notice.order_id,
        "order_ref": notice.context.get("order_ref"),
        "shipment": notice.shipment_id,
        "trigger": notice.trigger,
        "triggered_at": notice.triggered_at.isoformat(),
        "tracking_url": settings.tracking_url(notice.context.get("token", "")),
    }


def _overtaken(session: Session, notice: Notice) -> bool:
    """A notice that waited for quiet hours to end is not sent once it says nothing new: the
    order was cancelled, or the parcel went further meanwhile."""
    if notice.not_before <= notice.triggered_at:
        return False
    order = session.get(Order, notice.order_id)
    if order is None or (cancelled(order) and notice.kind != NoticeKind.ORDER_CANCELLED):
        return True
    beyond = OVERTAKEN_BY.get(NoticeKind(notice.kind))
    if beyond is None or notice.shipment_id is None:
        return False
    shipment = session.get(Shipment, notice.shipment_id)
    return shipment is not None and TrackingStatus(shipment.status).rank >= beyond


def _finish(
    session: Session,
    notice: Notice,
    status: NoticeStatus,
    now: datetime,
    *,
    provider_id: str | None = None,
    attempts: int | None = None,
    error: str | None = None,
) -> None:
    """Close a pending notice once (a concurrent sender that got here first wins)."""
    values: dict[str, Any] = {"status": status, "error": error}
    if status is NoticeStatus.SENT:
        values.update(sent_at=now, provider_id=(provider_id or "")[:200])
    if attempts is not None:
        values["attempts"] = attempts
    done = session.execute(
        update(Notice)
        .where(col(Notice.id) == notice.id, col(Notice.status) == NoticeStatus.PENDING)
        .values(**values)
    )
    if getattr(done, "rowcount", 0):
        record_event(
            session,
            notice.order_id,
            f"notice.{status.value}",
            {
                "notice": notice.id,
                "kind": notice.kind,
                "channel": notice.channel,
                **({"error": error} if error else {}),
            },
            at=now,
        )


def _note(engine: Engine, notice_id: str, attempt: int, exc: Exception) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(Notice)
            .where(col(Notice.id) == notice_id)
            .values(attempts=attempt, error=f"{type(exc).__name__}: {exc}"[:1000])
        )
        session.commit()


def _fall_back(
    engine: Engine, notice_id: str, attempt: int, exc: Exception, now: datetime
) -> Outcome:
    """This channel gave up: the same notice goes to the customer's next channel, else it is a
    dead letter on the order's timeline."""
    error = f"{type(exc).__name__}: {exc}"[:1000]
    log.warning("notice %s: %s", notice_id, error)
    with session_scope(engine) as session:
        notice = session.exec(select(Notice).where(Notice.id == notice_id).with_for_update()).one()
        if notice.status != NoticeStatus.PENDING:
            return Outcome("done")
        order = session.get(Order, notice.order_id)
        channels_left = _after(order.customer if order else {}, notice.channel)
        taken = set(
            session.exec(
                select(Notice.channel).where(
                    Notice.subject == notice.subject, Notice.kind == notice.kind
                )
            ).all()
        )
        following = next((c for c in channels_left if c not in taken), None)
        _finish(session, notice, NoticeStatus.FAILED, now, attempts=attempt, error=error)
        if following is None or order is None:
            session.commit()
            return Outcome("failed")
        successor = Notice(
            order_id=notice.order_id,
            shipment_id=notice.shipment_id,
            subject=notice.subject,
            kind=notice.kind,
            channel=following,
            to=contact(order.customer, following) or "",
            language=notice.language,
            context=notice.context,
            urgent=notice.urgent,
            trigger=notice.trigger,
            triggered_at=notice.triggered_at,
            not_before=now,
            fallback_of=notice.id,
            created_at=now,
        )
        session.add(successor)
        enqueue(session, SEND_TOPIC, {"notice": successor.id})
        session.commit()
        return Outcome("fell_back", successor.id)


def _after(customer: dict[str, Any], channel: str) -> list[str]:
    chosen = list(customer.get("channels") or ["email"])
    rest = chosen[chosen.index(channel) + 1 :] if channel in chosen else []
    return [c for c in rest if contact(customer, c)]


def replay(session: Session, notice_id: str, now: datetime) -> Notice:
    """Send a dead letter again (an admin fixed the cause): back to pending, with a new event."""
    notice = session.exec(select(Notice).where(Notice.id == notice_id).with_for_update()).first()
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    if notice.status != NoticeStatus.FAILED:
        raise Conflict(
            f"notice {notice_id} is {notice.status}: only a failed one is replayed",
            notice_status=notice.status,
        )
    notice.status, notice.attempts, notice.error, notice.not_before = (
        NoticeStatus.PENDING,
        0,
        None,
        now,
    )
    session.add(notice)
    enqueue(session, SEND_TOPIC, {"notice": notice.id})
    about = {"notice": notice.id, "kind": notice.kind, "channel": notice.channel}
    record_event(session, notice.order_id, "notice.replayed", about, at=now)
    return notice


_channels: dict[tuple[Any, ...], dict[str, Channel]] = {}


def channels(settings: Settings) -> dict[str, Channel]:
    """This process's channels for these settings, made once (they hold HTTP clients)."""
    key = (
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_sender,
        settings.sms_url,
        settings.sms_token,
        settings.notices_webhook_secret,
        str(settings.data_dir),
    )
    found = _channels.get(key)
    if found is None:
        found = _channels[key] = _make_channels(settings)
    return found


def _make_channels(settings: Settings) -> dict[str, Channel]:
    email: Channel
    if settings.smtp_host:
        email = EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout_s=settings.notice_timeout_s,
        )
    else:
        email = MaildirChannel(settings.data_dir / "mail", settings.smtp_sender)
    found: dict[str, Channel] = {
        "email": email,
        "webhook": WebhookChannel(settings.notices_webhook_secret, settings.notice_timeout_s),
    }
    if settings.sms_url:
        found["sms"] = SmsChannel(
            settings.sms_url, settings.sms_token or "", settings.notice_timeout_s
        )
    return found
