"""Following shipments: what carriers say becomes each shipment's story, and trouble is seen
before the customer sees it.

``record`` is the one way events enter: it keeps each event once (by its key), moves the status
forward only (an older event arriving late is stored and changes nothing), refreshes the ETA
(from the carrier, else the plan, else a transit-time model), sets the ``late`` flag when the ETA
passes the promised window, and writes each alert once per (shipment, kind). ``sweep`` finds the
shipments that went quiet: ``stalled`` when a status lasts longer than it should, ``lost`` when
a parcel in transit has not been scanned for days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.orders import timeline
from fulfill.orders.models import Fulfillment, FulfillmentStatus, Order
from fulfill.orders.repository import record_event, record_events
from fulfill.orders.timeline import TimelineEntry
from fulfill.tracking.models import (
    AlertKind,
    Shipment,
    TrackingAlert,
    TrackingEvent,
)
from fulfill.tracking.schemas import ShipmentAlert, ShipmentEvent, ShipmentPublic
from fulfill_carriers import own_fleet
from fulfill_carriers.adapter import CarrierEvent, ExceptionReason
from fulfill_carriers.status import TrackingStatus as S

HOUR = timedelta(hours=1)

# How often a shipment is polled in each status: often near the door, rarely in transit.
POLL_EVERY: dict[S, timedelta] = {
    S.PENDING: 4 * HOUR,
    S.INFO_RECEIVED: 4 * HOUR,
    S.PICKED_UP: 2 * HOUR,
    S.IN_TRANSIT: 2 * HOUR,
    S.OUT_FOR_DELIVERY: HOUR / 6,
    S.ATTEMPT_FAILED: HOUR / 2,
    S.EXCEPTION: HOUR / 2,
    S.AVAILABLE_FOR_PICKUP: 6 * HOUR,
    S.RETURNING: 12 * HOUR,
    S.UNKNOWN: 2 * HOUR,
}

# A status that lasts longer than this without a scan is stalled.
STALLED_AFTER: dict[S, timedelta] = {
    S.PENDING: 48 * HOUR,
    S.INFO_RECEIVED: 48 * HOUR,
    S.PICKED_UP: 36 * HOUR,
    S.IN_TRANSIT: 48 * HOUR,
    S.OUT_FOR_DELIVERY: 12 * HOUR,
    S.ATTEMPT_FAILED: 36 * HOUR,
    S.EXCEPTION: 72 * HOUR,
    S.AVAILABLE_FOR_PICKUP: 8 * 24 * HOUR,
    S.RETURNING: 10 * 24 * HOUR,
    S.UNKNOWN: 48 * HOUR,
}
# A parcel on its way that nobody has scanned for this long is lost.
LOST_AFTER = 7 * 24 * HOUR
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


def follow(
    session: Session,
    fulfillment: Fulfillment,
    carrier: str,
    tracking_number: str,
    now: datetime,
    *,
    tracking_ref: str | None = None,
    eta: datetime | None = None,
    eta_source: str = "carrier",
) -> Shipment:
    """The shipment of ``fulfillment`` with this carrier and tracking number, created once."""
    existing = shipment_by_number(session, carrier, tracking_number)
    if existing is not None:
        return existing
    order = session.get(Order, fulfillment.order_id)
    assert order is not None
    own = carrier == own_fleet.CODE  # reported by drivers, never polled
    shipment = Shipment(
        fulfillment_id=fulfillment.id,
        order_id=fulfillment.order_id,
        carrier=carrier,
        tracking_number=tracking_number,
        tracking_ref=tracking_ref or tracking_number,
        status=S.PENDING,
        status_at=now,
        promised_end=order.promise_end,
        eta=eta,
        eta_source=eta_source if eta else None,
        next_poll_at=None if own else now,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(shipment)
    except IntegrityError:  # followed concurrently by another worker: theirs stands
        found = shipment_by_number(session, carrier, tracking_number)
        assert found is not None
        return found
    record_event(
        session,
        order.id,
        "shipment.followed",
        {"shipment": shipment.id, "carrier": carrier, "tracking_number": tracking_number},
        at=now,
    )
    return shipment


def shipment_by_number(session: Session, carrier: str, tracking_number: str) -> Shipment | None:
    return session.exec(
        select(Shipment).where(
            Shipment.carrier == carrier, Shipment.tracking_number == tracking_number
        )
    ).first()


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
    late = bool(shipment.promised_end and shipment.eta and shipment.eta > shipment.promised_end)
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


def follow_own_fleet(
    session: Session, fulfillment_id: str, eta: datetime | None, now: datetime
) -> Shipment | None:
    """The own fleet's shipment of a planned stop (its tracking number is the fulfillment's
    id), with the plan's ETA."""
    fulfillment = session.get(Fulfillment, fulfillment_id)
    if fulfillment is None:
        return None
    shipment = follow(
        session, fulfillment, own_fleet.CODE, fulfillment_id, now, eta=eta, eta_source="plan"
    )
    if eta is not None and shipment.eta != eta:
        shipment.eta, shipment.eta_source = eta, "plan"
    refresh_eta(session, shipment, now)
    return shipment


def driver_report(
    session: Session, fulfillment_id: str, event: CarrierEvent, now: datetime
) -> Recorded | None:
    """A driver's report about a parcel of the own fleet, as a tracking event."""
    shipment = shipment_by_number(session, own_fleet.CODE, fulfillment_id) or follow_own_fleet(
        session, fulfillment_id, None, now
    )
    if shipment is None:
        return None
    return record(session, locked(session, shipment.id), [event], source="driver", now=now)


def set_plan_etas(session: Session, etas: Mapping[str, datetime], now: datetime) -> list[str]:
    """The own fleet's ETAs from the route plan (fulfillment id -> ETA), read and written for
    the whole route at once: this runs on every driver report."""
    if not etas:
        return []
    shipments = session.exec(
        select(Shipment).where(
            Shipment.carrier == own_fleet.CODE,
            col(Shipment.tracking_number).in_(etas),
            col(Shipment.active),
        )
    ).all()
    known = Known.of(session, {}, shipments)
    raised = []
    for shipment in shipments:
        shipment.eta, shipment.eta_source = etas[shipment.tracking_number], "plan"
        raised += refresh_eta(session, shipment, now, known)
    known.write(session)
    return raised


def next_poll(shipment: Shipment, now: datetime, settings: Settings) -> datetime | None:
    if not shipment.active:
        return None
    every = POLL_EVERY.get(S(shipment.status), 2 * HOUR) * settings.tracking_poll_scale
    return now + every


def sweep(session: Session, now: datetime, limit: int = 5000) -> list[str]:
    """Alerts for shipments that went quiet, and ETAs that passed without a delivery: the
    longest unchecked first, so every active shipment has its turn however many there are."""
    rows = session.exec(
        select(Shipment)
        .where(col(Shipment.active))
        .order_by(col(Shipment.checked_at).is_not(None), col(Shipment.checked_at))
        .limit(limit)
        .with_for_update(skip_locked=True)  # a shipment being recorded is swept next time
    ).all()
    known = Known.of(session, {}, rows)
    raised = []
    for shipment in rows:
        shipment.checked_at = now
        raised += _quiet(session, shipment, now, known)
        raised += refresh_eta(session, shipment, now, known)
    known.write(session)
    return raised


def _quiet(session: Session, shipment: Shipment, now: datetime, known: Known) -> list[str]:
    status = S(shipment.status)
    last = shipment.last_scan_at or shipment.created_at
    silent = now - last
    details = {
        "status": status.value,
        "last_scan_at": last.isoformat(),
        "silent_hours": round(silent / HOUR, 1),
    }
    raised = []
    if silent > STALLED_AFTER.get(status, 48 * HOUR):
        raised.append(alert(session, shipment, AlertKind.STALLED, now, details, known))
    if status in ON_ITS_WAY and silent > LOST_AFTER:
        raised.append(alert(session, shipment, AlertKind.LOST, now, details, known))
    return [kind for kind in raised if kind]


def shipments_public(session: Session, shipments: Sequence[Shipment]) -> list[ShipmentPublic]:
    """Each shipment with its timeline (by when things happened) and alerts, in two queries."""
    ids = [s.id for s in shipments]
    if not ids:
        return []
    events = session.exec(
        select(TrackingEvent)
        .where(col(TrackingEvent.shipment_id).in_(ids))
        .order_by(col(TrackingEvent.occurred_at), col(TrackingEvent.id))
    ).all()
    alerts = session.exec(
        select(TrackingAlert)
        .where(col(TrackingAlert.shipment_id).in_(ids))
        .order_by(col(TrackingAlert.detected_at), col(TrackingAlert.id))
    ).all()
    return [
        _public(
            s,
            [e for e in events if e.shipment_id == s.id],
            [a for a in alerts if a.shipment_id == s.id],
        )
        for s in shipments
    ]


def shipments_of_order(session: Session, order_id: str) -> list[ShipmentPublic]:
    rows = session.exec(
        select(Shipment).where(Shipment.order_id == order_id).order_by(col(Shipment.created_at))
    ).all()
    return shipments_public(session, rows)


def _public(
    shipment: Shipment, events: Sequence[TrackingEvent], alerts: Sequence[TrackingAlert]
) -> ShipmentPublic:
    return ShipmentPublic(
        id=shipment.id,
        order=shipment.order_id,
        fulfillment=shipment.fulfillment_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        status=shipment.status,
        status_at=shipment.status_at,
        reason=shipment.reason,
        eta=shipment.eta,
        eta_source=shipment.eta_source,
        promised_end=shipment.promised_end,
        late=shipment.late,
        last_scan_at=shipment.last_scan_at,
        timeline=[
            ShipmentEvent(
                status=e.status,
                code=e.raw_code,
                description=e.description,
                location=e.location,
                reason=e.reason,
                occurred_at=e.occurred_at,
                received_at=e.received_at,
                source=e.source,
                moved=e.moved,
            )
            for e in events
        ],
        alerts=[
            ShipmentAlert(kind=a.kind, detected_at=a.detected_at, details=a.details) for a in alerts
        ],
    )
