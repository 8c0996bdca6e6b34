"""Recording what carriers say: it becomes each shipment's story, and trouble is seen before
the customer sees it.

``record`` is the one way events enter: it keeps each event once (by its key), moves the status
forward only (an older event arriving late is stored and changes nothing), refreshes the ETA
(from the carrier, else the plan, else a transit-time model), sets the ``late`` flag when the ETA
passes the promised window, and writes each alert once per (shipment, kind). The shipments that
go quiet are found by ``sweeping.sweep``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.orders import timeline
from fulfill.orders.models import Fulfillment, FulfillmentStatus, Order
from fulfill.orders.repository import record_events
from fulfill.orders.timeline import TimelineEntry
from fulfill.tracking.models import (
    AlertKind,
    Shipment,
    TrackingAlert,
    TrackingEvent,
)
from fulfill_carriers import CarrierEvent, ExceptionReason
from fulfill_carriers import TrackingStatus as S

HOUR = timedelta(hours=1)
# How much past the promise an ETA must be to count as late: a share of the time still to go,
# at most the maximum (see late_for_sure).
LATE_MARGIN_SHARE = 0.1
LATE_MARGIN_MAX = timedelta(minutes=10)


ON_ITS_WAY = frozenset({S.PICKED_UP, S.IN_TRANSIT, S.OUT_FOR_DELIVERY})


TROUBLE = frozenset({S.EXCEPTION, S.ATTEMPT_FAILED})


# What is left of the journey in each status, for a day's service (the transit-time model, used
# when neither the carrier nor the plan gives an ETA); scaled by the service level.
REMAINING: dict[S, timedelta] = {
    S.PENDING: 30 * HOUR,
    S.INFO_RECEIVED: 28 * HOUR,
    S.PICKED_UP: 24 * HOUR,
    S.IN_TRANSIT: 16 * HOUR,
    S.OUT_FOR_DELIVERY: 3 * HOUR,
    S.ATTEMPT_FAILED: 24 * HOUR,
    S.EXCEPTION: 48 * HOUR,
}


SERVICE_SCALE = {"same_day": 0.2, "next_day": 1.0, "standard": 2.5}


FULFILLMENT_STATUS = {
    S.PICKED_UP: FulfillmentStatus.HANDED_TO_CARRIER,
    S.IN_TRANSIT: FulfillmentStatus.HANDED_TO_CARRIER,
    S.OUT_FOR_DELIVERY: FulfillmentStatus.OUT_FOR_DELIVERY,
    S.DELIVERED: FulfillmentStatus.DELIVERED,
    S.RETURNED: FulfillmentStatus.FAILED,
}


# A fulfillment of several parcels moves on with the most advanced one, never back.
FULFILLMENT_RANK = {
    FulfillmentStatus.PENDING: 0,
    FulfillmentStatus.HANDED_TO_CARRIER: 1,
    FulfillmentStatus.OUT_FOR_DELIVERY: 2,
    FulfillmentStatus.DELIVERED: 3,
    FulfillmentStatus.FAILED: 3,
    FulfillmentStatus.CANCELLED: 4,
}


@dataclass(frozen=True)
class Recorded:
    stored: int  # events new to us
    moved: bool  # the status changed
    alerts: tuple[str, ...]


def locked(session: Session, shipment_id: str) -> Shipment:
    """The shipment, locked for this transaction: one writer of its story at a time."""
    shipment = session.exec(
        select(Shipment).where(Shipment.id == shipment_id).with_for_update()
    ).one()
    return shipment


@dataclass
class Known:
    """What ``record`` needs of the database for a set of shipments, read in a few queries
    rather than a few per shipment: a worker applies thousands of events a second this way."""

    seen: set[tuple[str, str]]  # (shipment id, event key) stored already
    alerted: set[tuple[str, str]]  # (shipment id, alert kind) written already
    fulfillments: dict[str, Fulfillment]
    levels: dict[str, str]  # order id -> service level
    rows: list[dict[str, Any]] = field(default_factory=list)  # events to insert
    timeline: list[TimelineEntry] = field(default_factory=list)

    def write(self, session: Session) -> None:
        """Insert what ``record`` gathered, in two statements (executemany, no RETURNING)."""
        if self.rows:
            session.execute(insert(TrackingEvent), self.rows)
        tell(session, self.timeline)
        self.rows, self.timeline = [], []

    @classmethod
    def of(
        cls,
        session: Session,
        events: Mapping[str, Sequence[CarrierEvent]],
        shipments: Sequence[Shipment],
    ) -> Known:
        ids = [s.id for s in shipments]
        keys = {e.key for found in events.values() for e in found}
        seen = (
            session.exec(
                select(TrackingEvent.shipment_id, TrackingEvent.key).where(
                    col(TrackingEvent.shipment_id).in_(ids), col(TrackingEvent.key).in_(keys)
                )
            ).all()
            if keys
            else []
        )
        alerted = session.exec(
            select(TrackingAlert.shipment_id, TrackingAlert.kind).where(
                col(TrackingAlert.shipment_id).in_(ids)
            )
        ).all()
        fulfillments = session.exec(
            select(Fulfillment).where(
                col(Fulfillment.id).in_([s.fulfillment_id for s in shipments])
            )
        ).all()
        levels = session.exec(
            select(Order.id, Order.service_level).where(
                col(Order.id).in_({s.order_id for s in shipments})
            )
        ).all()
        return cls(set(seen), set(alerted), {f.id: f for f in fulfillments}, dict(levels))


def record(
    session: Session,
    shipment: Shipment,
    events: Iterable[CarrierEvent],
    *,
    source: str,
    now: datetime,
    known: Known | None = None,
) -> Recorded:
    """Apply what a carrier said to ``shipment`` (locked by the caller). ``known`` is what was
    read for a whole batch (``Known.of``); without it, this shipment's is read here."""
    given = list(events)
    mine = known is None
    known = known or Known.of(session, {shipment.id: given}, [shipment])
    fresh = _unseen(shipment, given, known)
    before = S(shipment.status)
    alerts: list[str] = []
    for event in sorted(fresh, key=lambda e: e.occurred_at):
        moved = _moves_forward(shipment, event)
        known.rows.append(_row(shipment, event, source, now, moved))
        known.seen.add((shipment.id, event.key))
        if shipment.last_scan_at is None or event.occurred_at > shipment.last_scan_at:
            shipment.last_scan_at = event.occurred_at
            if event.eta is not None:
                shipment.eta, shipment.eta_source = event.eta, "carrier"
        if moved:
            shipment.status, shipment.status_at = event.status, event.occurred_at
            shipment.reason = event.reason.value if event.reason else None
            alerts += _alerts_for(session, shipment, event, now, known)
        elif event.status is S(shipment.status) and event.occurred_at > shipment.status_at:
            # The status said again, later: it dates from then, so an older event of the same
            # rank that arrives after it (a carrier's late delivery) cannot take its place.
            shipment.status_at = event.occurred_at
            shipment.reason = event.reason.value if event.reason else shipment.reason
    moved_at_all = S(shipment.status) is not before
    if moved_at_all:
        _status_changed(session, shipment, before, now, known)
    alerts += refresh_eta(session, shipment, now, known)
    shipment.updated_at = now
    if mine:
        known.write(session)
    return Recorded(len(fresh), moved_at_all, tuple(alerts))


def _unseen(shipment: Shipment, events: Iterable[CarrierEvent], known: Known) -> list[CarrierEvent]:
    by_key: dict[str, CarrierEvent] = {}
    for event in events:
        by_key.setdefault(event.key, event)
    return [e for k, e in by_key.items() if (shipment.id, k) not in known.seen]


def _moves_forward(shipment: Shipment, event: CarrierEvent) -> bool:
    """Never backwards, never out of a terminal status, ``unknown`` never replaces anything;
    between statuses of the same rank (a failed attempt, a new run out for delivery) only a
    newer event moves. Trouble is the exception that proves it: a parcel held up by weather or
    back at the depot after a failed attempt is on its way again at its next scan, so a newer
    scan of a parcel on its way ends an exception or a failed attempt."""
    current = S(shipment.status)
    incoming = event.status
    if current.is_terminal or incoming is S.UNKNOWN or incoming is current:
        return False
    newer = event.occurred_at >= shipment.status_at
    if current in TROUBLE and newer and incoming.rank >= S.PICKED_UP.rank:
        return True
    if incoming.rank != current.rank:
        return incoming.rank > current.rank
    return newer


def _row(
    shipment: Shipment, event: CarrierEvent, source: str, now: datetime, moved: bool
) -> dict[str, Any]:
    return {
        "shipment_id": shipment.id,
        "key": event.key,
        "status": event.status.value,
        "raw_code": event.raw_code[:64],
        "description": event.description[:500],
        "location": event.location[:200] if event.location else None,
        "reason": event.reason.value if event.reason else None,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "source": source,
        "moved": moved,
    }


def _alerts_for(
    session: Session, shipment: Shipment, event: CarrierEvent, now: datetime, known: Known
) -> list[str]:
    details: dict[str, Any] = {
        "status": event.status.value,
        "code": event.raw_code,
        "description": event.description,
        "occurred_at": event.occurred_at.isoformat(),
    }
    if event.reason:
        details["reason"] = event.reason.value
    raised = []
    if event.status is S.ATTEMPT_FAILED:
        raised.append(alert(session, shipment, AlertKind.ATTEMPT_FAILED, now, details, known))
    if event.status is S.EXCEPTION:
        raised.append(alert(session, shipment, AlertKind.EXCEPTION, now, details, known))
        if event.reason is ExceptionReason.LOST:
            raised.append(alert(session, shipment, AlertKind.LOST, now, details, known))
    return [kind for kind in raised if kind]


def alert(
    session: Session,
    shipment: Shipment,
    kind: AlertKind,
    now: datetime,
    details: dict[str, Any],
    known: Known | None = None,
) -> str | None:
    """Write the alert once; returns its kind if this call wrote it."""
    if known is not None:
        if (shipment.id, kind.value) in known.alerted:
            return None
        known.alerted.add((shipment.id, kind.value))
    elif session.exec(
        select(TrackingAlert.id).where(
            TrackingAlert.shipment_id == shipment.id, TrackingAlert.kind == kind
        )
    ).first():
        return None
    row = TrackingAlert(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        kind=kind,
        detected_at=now,
        details=details,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # written concurrently: once is what counts
        return None
    entry = (shipment.order_id, f"shipment.{kind.value}", {"shipment": shipment.id, **details}, now)
    if known is not None:
        known.timeline.append(entry)
    else:
        tell(session, [entry])
    return kind.value


def tell(session: Session, entries: list[TimelineEntry]) -> None:
    """Write timeline entries, and the notices they call for, in the caller's transaction."""
    record_events(session, entries)
    timeline.publish(session, entries)


def _status_changed(
    session: Session, shipment: Shipment, before: S, now: datetime, known: Known
) -> None:
    status = S(shipment.status)
    if status.is_terminal:
        shipment.active, shipment.next_poll_at = False, None
    known.timeline.append(
        (
            shipment.order_id,
            f"shipment.{status.value}",
            {
                "shipment": shipment.id,
                "from": before.value,
                "tracking_number": shipment.tracking_number,
                **({"reason": shipment.reason} if shipment.reason else {}),
            },
            now,
        )
    )
    target = FULFILLMENT_STATUS.get(status)
    fulfillment = known.fulfillments.get(shipment.fulfillment_id)
    if (
        target is not None
        and fulfillment is not None
        and FULFILLMENT_RANK[target] > FULFILLMENT_RANK[FulfillmentStatus(fulfillment.status)]
    ):
        fulfillment.status = target


def refresh_eta(
    session: Session,
    shipment: Shipment,
    now: datetime,
    known: Known | None = None,
) -> list[str]:
    """Keep an ETA (the transit model when nobody gave one, never in the past for a parcel not
    yet delivered) and flag ``late`` when it passes the promised window: once, with an alert."""
    status = S(shipment.status)
    if status is S.DELIVERED:
        done_at = shipment.status_at
        shipment.late = bool(shipment.promised_end and done_at > shipment.promised_end)
        return []
    if status.is_terminal:
        return []
    if shipment.eta is None or shipment.eta_source == "model":
        level = known.levels.get(shipment.order_id) if known else None
        shipment.eta = _modelled_eta(session, shipment, status, level)
        shipment.eta_source = "model"
    if shipment.eta is not None and shipment.eta < now:
        shipment.eta = now  # overdue: it arrives no sooner than now
    late = late_for_sure(shipment.eta, shipment.promised_end, now)
    if late and not shipment.late:
        shipment.late = True
        details = {
            "promised_end": _iso(shipment.promised_end),
            "eta": _iso(shipment.eta),
            "eta_source": shipment.eta_source,
            "status": status.value,
        }
        kind = alert(session, shipment, AlertKind.LATE, now, details, known)
        return [kind] if kind else []
    if not late:
        shipment.late = False
    return []


def late_for_sure(eta: datetime | None, promised_end: datetime | None, now: datetime) -> bool:
    """Whether an ETA misses the promise by more than its own uncertainty: an ETA hours ahead
    slipping a few minutes past the window is a guess that often comes right, and a customer
    told "running late" whose parcel then comes on time was alarmed for nothing. The margin
    shrinks as the arrival nears, so a real delay is still told before the window ends."""
    if eta is None or promised_end is None:
        return False
    margin = min(LATE_MARGIN_MAX, (eta - now) * LATE_MARGIN_SHARE)
    return eta > promised_end + max(margin, timedelta(0))


def _modelled_eta(
    session: Session, shipment: Shipment, status: S, level: str | None
) -> datetime | None:
    remaining = REMAINING.get(status)
    if remaining is None:
        return shipment.promised_end
    if level is None:
        order = session.get(Order, shipment.order_id)
        level = order.service_level if order else ""
    scale = SERVICE_SCALE.get(level, 1.0)
    since = shipment.last_scan_at or shipment.created_at
    return since + remaining * scale


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
