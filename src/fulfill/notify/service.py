"""Customer notices: decided from the order's timeline, sent through the outbox.

``announce`` reads timeline entries as they are written (an order confirmed, a parcel out for
delivery, a late alert...) and, in the same transaction, writes a notice on the customer's first
channel and an outbox event that sends it, so a notice exists exactly when its cause committed.
It stores facts (times, reason codes), not words: the words are chosen when the notice leaves,
in the customer's language and timezone, so a notice held back by quiet hours speaks of "today"
on the day it is read.

``send`` is the outbox's handler. A channel that is unavailable is tried again with backoff up
to ``FULFILL_NOTICE_ATTEMPTS``; one that refuses, or stays down, hands the notice to the next
channel the customer allows (a new row, ``fallback_of`` the first). A notice that no channel
took is a dead letter: it stays ``failed``, is on the order's timeline, and an admin can replay
it (``POST /v1/notices/{id}/replay``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, update
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.errors import Conflict, NotFound
from fulfill.inventory.models import Node
from fulfill.notify import wording
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
from fulfill.notify.templates import NoticeKind, Rendered, render
from fulfill.orders.models import Fulfillment, Order, OrderStatus, new_id
from fulfill.orders.repository import record_event
from fulfill.orders.timeline import TimelineEntry
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import Handler, enqueue, enqueue_many
from fulfill.tracking.models import Shipment
from fulfill_carriers import own_fleet
from fulfill_carriers.status import TrackingStatus

log = logging.getLogger(__name__)

SEND_TOPIC = "notice.send"

# Which timeline entries tell the customer something, and what.
TRIGGERS: dict[str, NoticeKind] = {
    "order.created": NoticeKind.ORDER_CONFIRMED,
    "order.cancelled": NoticeKind.ORDER_CANCELLED,
    "shipment.picked_up": NoticeKind.SHIPPED,
    "shipment.in_transit": NoticeKind.SHIPPED,
    "shipment.out_for_delivery": NoticeKind.OUT_FOR_DELIVERY,
    "shipment.late": NoticeKind.RUNNING_LATE,
    "delivery.moved_to_next_wave": NoticeKind.RUNNING_LATE,
    "delivery.moved_to_next_day": NoticeKind.RUNNING_LATE,
    "delivery.handed_to_carrier": NoticeKind.RUNNING_LATE,
    "shipment.attempt_failed": NoticeKind.ATTEMPT_FAILED,
    "shipment.delivered": NoticeKind.DELIVERED,
    "shipment.exception": NoticeKind.EXCEPTION,
    "shipment.lost": NoticeKind.EXCEPTION,
}
# Today's delivery is at stake: these may reach the customer in their quiet hours.
URGENT = frozenset(
    {NoticeKind.OUT_FOR_DELIVERY, NoticeKind.RUNNING_LATE, NoticeKind.ATTEMPT_FAILED}
)
# Held back by quiet hours, these say nothing once the parcel is further along.
OVERTAKEN_BY = {
    NoticeKind.SHIPPED: TrackingStatus.OUT_FOR_DELIVERY.rank,
    NoticeKind.OUT_FOR_DELIVERY: TrackingStatus.DELIVERED.rank,
}
CARRIER_NAMES = {"sandbox": "our carrier", "mcf": "Amazon", "aftership": "our carrier"}


# ---- deciding -------------------------------------------------------------------------------


def announce(session: Session, entries: Sequence[TimelineEntry]) -> int:
    """Write the notices that ``entries`` call for (at most one per subject and kind), each with
    its outbox event, in the caller's transaction. Returns how many were written."""
    wanted = [(entry, TRIGGERS[entry[1]]) for entry in entries if entry[1] in TRIGGERS]
    if not wanted:
        return 0
    orders = _by_id(session, Order, {entry[0] for entry, _ in wanted})
    shipment_ids = {entry[2]["shipment"] for entry, _ in wanted if "shipment" in entry[2]}
    shipments = _by_id(session, Shipment, shipment_ids)
    zones = zones_of(session, orders)
    drafts: dict[tuple[str, str], dict[str, Any]] = {}
    for (order_id, trigger, data, at), kind in wanted:
        order = orders.get(order_id)
        if order is None or (_cancelled(order) and kind is not NoticeKind.ORDER_CANCELLED):
            continue
        shipment = shipments.get(data.get("shipment", ""))
        draft = _draft(order, shipment, kind, trigger, data, at, zones.get(order_id, "UTC"))
        if draft is not None:
            drafts.setdefault((draft["subject"], kind.value), draft)
    fresh = _not_yet_told(session, drafts)
    if fresh:
        session.execute(insert(Notice), fresh)
        enqueue_many(session, SEND_TOPIC, [({"notice": d["id"]}, d["not_before"]) for d in fresh])
    return len(fresh)


def _cancelled(order: Order) -> bool:
    """Nothing more is said of a cancelled order but that it is cancelled."""
    return order.status == OrderStatus.CANCELLED


def _by_id(session: Session, table: Any, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(table).where(col(table.id).in_(ids)))}


def zones_of(session: Session, orders: dict[str, Order]) -> dict[str, str]:
    """The customer's timezone, else the zone of a node shipping the order."""
    zones = {o.id: o.customer["timezone"] for o in orders.values() if o.customer.get("timezone")}
    missing = [order_id for order_id in orders if order_id not in zones]
    if missing:
        rows = session.exec(
            select(Fulfillment.order_id, Node.timezone)
            .join(Node, col(Node.id) == Fulfillment.node_id)
            .where(col(Fulfillment.order_id).in_(missing))
        ).all()
        for order_id, zone in rows:
            zones.setdefault(order_id, zone)
    return zones


def _draft(
    order: Order,
    shipment: Shipment | None,
    kind: NoticeKind,
    trigger: str,
    data: dict[str, Any],
    at: datetime,
    zone: str,
) -> dict[str, Any] | None:
    customer = order.customer
    channels = customer.get("channels") or ["email"]
    found = _facts(order, shipment, kind, trigger, data, zone)
    if found is None:
        return None
    subject, facts = found
    channel = channels[0]
    return {
        "id": new_id(),
        "order_id": order.id,
        "shipment_id": shipment.id if shipment else None,
        "subject": subject,
        "kind": kind.value,
        "channel": channel,
        "to": contact(customer, channel) or "",
        "language": customer.get("language", "en"),
        "context": facts,
        "urgent": kind in URGENT,
        "trigger": trigger,
        "triggered_at": at,
        "not_before": release_at(customer.get("quiet_hours"), zone, at, kind in URGENT),
        "status": NoticeStatus.PENDING,
        "attempts": 0,
        "created_at": at,
    }


def _facts(
    order: Order,
    shipment: Shipment | None,
    kind: NoticeKind,
    trigger: str,
    data: dict[str, Any],
    zone: str,
) -> tuple[str, dict[str, Any]] | None:
    """The notice's subject (what it is about, once) and the facts its words come from."""
    facts: dict[str, Any] = {
        "zone": zone,
        "first_name": wording.first_name(order.customer.get("name", "")),
        "order_ref": order.external_id,
        "storefront": order.storefront,
        "token": order.tracking_token,
        "window": [_iso(order.promise_start), _iso(order.promise_end)],
    }
    if kind in (NoticeKind.ORDER_CONFIRMED, NoticeKind.ORDER_CANCELLED):
        return f"order:{order.id}", facts
    if kind is NoticeKind.RUNNING_LATE:
        return _late_facts(order, shipment, trigger, data, facts)
    if shipment is None:
        return None
    facts["carrier"] = shipment.carrier
    facts["reason"] = data.get("reason") or shipment.reason
    if trigger == "shipment.lost":
        facts["reason"] = "lost"
    if shipment.eta is not None:
        start, end = wording.eta_window(shipment.eta, shipment.eta_source)
        facts["eta"] = [_iso(start), _iso(end)]
    return f"shipment:{shipment.id}", facts


def _late_facts(
    order: Order,
    shipment: Shipment | None,
    trigger: str,
    data: dict[str, Any],
    facts: dict[str, Any],
) -> tuple[str, dict[str, Any]] | None:
    """One apology per broken promise of a fulfillment: a delivery moved to a later round and
    its van running late against the same window are one story, told once."""
    if trigger == "shipment.late":
        if shipment is None:
            return None
        fulfillment: str | None = shipment.fulfillment_id
        broken_end = data.get("promised_end")
        if shipment.eta is not None:
            start, end = wording.eta_window(shipment.eta, shipment.eta_source)
            facts["eta"] = [_iso(start), _iso(end)]
        facts["situation"], facts["carrier"] = "late", shipment.carrier
    else:
        fulfillment = data.get("fulfillment")
        before = data.get("promise_before") or {}
        broken_end = before.get("end") or _iso(order.promise_end)
        if before:
            facts["window"] = [before.get("start"), before.get("end")]
        if "promise" in data:
            facts["eta"] = [data["promise"]["start"], data["promise"]["end"]]
        facts["situation"] = "moved" if "promise" in data else "late"
    return f"late:{order.id}:{fulfillment}:{broken_end}", facts


def _not_yet_told(
    session: Session, drafts: dict[tuple[str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    if not drafts:
        return []
    subjects = {subject for subject, _ in drafts}
    told = set(
        session.exec(
            select(Notice.subject, Notice.kind).where(col(Notice.subject).in_(subjects))
        ).all()
    )
    return [draft for key, draft in drafts.items() if key not in told]


def contact(customer: dict[str, Any], channel: str) -> str | None:
    """Where ``channel`` reaches this customer; the storefront's URL is the sender's setting."""
    return {
        "email": customer.get("email"),
        "sms": customer.get("phone"),
        "webhook": "storefront",
    }.get(channel)


def release_at(
    quiet_hours: dict[str, str] | None, zone: str, at: datetime, urgent: bool
) -> datetime:
    """When a notice caused at ``at`` may leave: at once, or when the customer's quiet hours
    (local times; a start after the end spans midnight) are over."""
    if urgent or not quiet_hours:
        return at
    start, end = time.fromisoformat(quiet_hours["start"]), time.fromisoformat(quiet_hours["end"])
    local = at.astimezone(ZoneInfo(zone))
    now = local.time()
    quiet = start <= now < end if start < end else (now >= start or now < end)
    if not quiet:
        return at
    release = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if release <= local:
        release += timedelta(days=1)
    return release.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


# ---- words ----------------------------------------------------------------------------------


def words(notice: Notice, settings: Settings, now: datetime) -> dict[str, Any]:
    """The template's context: the facts said in the customer's language and timezone."""
    facts, language = notice.context, notice.language
    zone = facts.get("zone", "UTC")
    carrier = facts.get("carrier")
    storefront = facts.get("storefront", "")
    # An order placed by a key of no storefront is filed under the key (``key:<id>``): no name.
    shop = settings.shop_name or ("" if ":" in storefront else storefront)
    situation = facts.get("situation") or ("lost" if facts.get("reason") == "lost" else "exception")
    tracking_url = settings.tracking_url(facts.get("token", ""))
    return {
        "shop": shop,
        "first_name": facts.get("first_name", ""),
        "order_ref": facts.get("order_ref", ""),
        "window": _say_window(facts.get("window"), zone, now, language),
        "eta": _say_window(facts.get("eta") or facts.get("window"), zone, now, language),
        "tracking_url": tracking_url,
        "remedy": wording.remedy(situation, language),
        "remedy_url": tracking_url,
        "remedy_action": wording.remedy("action", language),
        "reason": wording.reason(facts.get("reason"), language),
        "next_step": wording.next_step(facts.get("reason"), carrier == own_fleet.CODE, language),
        "carrier": _carrier_name(carrier, shop),
    }


def _carrier_name(code: str | None, shop: str) -> str:
    if code == own_fleet.CODE:
        return shop
    return CARRIER_NAMES.get(code or "", code or "")


def _say_window(pair: list[str | None] | None, zone: str, now: datetime, language: str) -> str:
    if not pair or not pair[0] or not pair[1]:
        return ""
    start, end = datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1])
    return wording.window(start, end, zone, now, language)


def rendered(notice: Notice, settings: Settings, now: datetime) -> Rendered:
    return render(NoticeKind(notice.kind), notice.language, words(notice, settings, now))


# ---- sending --------------------------------------------------------------------------------


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
    if order is None or (_cancelled(order) and notice.kind != NoticeKind.ORDER_CANCELLED):
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
