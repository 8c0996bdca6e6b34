"""Customer notices decided from the order's timeline; ``sending`` sends them through the outbox.

``announce`` reads timeline entries as they are written (an order confirmed, a parcel out for
delivery, a late alert...) and, in the same transaction, writes a notice on the customer's first
channel and an outbox event that sends it, so a notice exists exactly when its cause committed.
It stores facts (times, reason codes), not words: the words are chosen when the notice leaves,
in the customer's language and timezone, so a notice held back by quiet hours speaks of "today"
on the day it is read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session, col, select

from fulfill.inventory.models import Node
from fulfill.notify import wording
from fulfill.notify.models import Notice, NoticeStatus
from fulfill.notify.templates import NoticeKind
from fulfill.orders.models import Fulfillment, Order, OrderStatus, new_id
from fulfill.orders.timeline import TimelineEntry
from fulfill.outbox.service import enqueue_many
from fulfill.tracking.models import Shipment
from fulfill_carriers import TrackingStatus

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
        if order is None or (cancelled(order) and kind is not NoticeKind.ORDER_CANCELLED):
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


def cancelled(order: Order) -> bool:
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
