"""Same-day promises as the customer lives them, counted from the database: kept means delivered
within the window first given at checkout, however often the service moved it since.

A promise moved at a wave's publication (``delivery.moved_*``, ``delivery.handed_to_carrier``)
keeps the window it replaced on its timeline entry, so the first window is the earliest
``promise_before`` of an order's moves, else its promise as it stands. A move's cause is its
recorded reason; a late delivery's cause is its move's, or else that it was not delivered by the
end of the period, or delivered after the window. A false alarm is a customer told "running
late" whose parcel came within the window after all.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from fulfill.notify.models import Notice, NoticeStatus
from fulfill.notify.schemas import SameDayPromises
from fulfill.notify.templates import NoticeKind
from fulfill.orders.models import Order, OrderEvent, ServiceLevel
from fulfill.tracking.models import Shipment
from fulfill_carriers import TrackingStatus

MOVES = ("delivery.moved_to_next_wave", "delivery.moved_to_next_day", "delivery.handed_to_carrier")
RESCUED = "delivery.rescued"
NOT_DELIVERED = "not delivered"
NOBODY_HOME = "not delivered: nobody took it at the door"
AFTER_WINDOW = "delivered after the window"


@dataclass(frozen=True)
class Outcome:
    """One same-day order: the window first given, when its last parcel came, why it moved."""

    order_id: str
    first_start: datetime
    first_end: datetime
    delivered_at: datetime | None
    moved_because: str | None
    attempted: bool = False  # a van was at the door and nobody took the parcel

    @property
    def kept(self) -> bool:
        return self.delivered_at is not None and (
            self.first_start <= self.delivered_at <= self.first_end
        )

    @property
    def early(self) -> bool:
        return self.delivered_at is not None and self.delivered_at < self.first_start

    @property
    def late_because(self) -> str | None:
        if self.kept or self.early:
            return None
        if self.moved_because is not None:
            return f"moved: {self.moved_because}"
        if self.delivered_at is None:
            return NOBODY_HOME if self.attempted else NOT_DELIVERED
        return AFTER_WINDOW


def same_day_outcomes(session: Session, since: datetime, until: datetime) -> list[Outcome]:
    """Every same-day order placed in the period, with what became of its first promise."""
    orders = session.exec(
        select(Order).where(
            Order.service_level == ServiceLevel.SAME_DAY,
            col(Order.created_at) > since,
            col(Order.created_at) <= until,
        )
    ).all()
    ids = [o.id for o in orders]
    moves = _moves(session, ids)
    delivered = _delivered_at(session, ids)
    attempted = _orders_where(
        session, Shipment.order_id, ids, Shipment.status == TrackingStatus.ATTEMPT_FAILED
    )
    found = []
    for order in orders:
        first_start, first_end, because = order.promise_start, order.promise_end, None
        for data in moves.get(order.id, []):
            because = because or str(data.get("reason") or "moved")
            before = data.get("promise_before")
            if isinstance(before, dict):  # the earliest move knows the window first given
                first_start = datetime.fromisoformat(before["start"])
                first_end = datetime.fromisoformat(before["end"])
                break
        found.append(
            Outcome(
                order.id,
                first_start,
                first_end,
                delivered.get(order.id),
                because,
                attempted=order.id in attempted,
            )
        )
    return found


def same_day_figures(session: Session, since: datetime, until: datetime) -> SameDayPromises:
    outcomes = same_day_outcomes(session, since, until)
    ids = [o.order_id for o in outcomes]
    told_late = _orders_where(
        session,
        Notice.order_id,
        ids,
        Notice.kind == NoticeKind.RUNNING_LATE,
        Notice.status == NoticeStatus.SENT,
    )
    kept = [o for o in outcomes if o.kept]
    late = Counter(o.late_because for o in outcomes if o.late_because is not None)
    rescued = _orders_where(session, OrderEvent.order_id, ids, OrderEvent.kind == RESCUED)
    return SameDayPromises(
        placed=len(outcomes),
        kept=len(kept),
        kept_share=round(len(kept) / len(outcomes), 4) if outcomes else None,
        early=sum(o.early for o in outcomes),
        moved=dict(Counter(o.moved_because for o in outcomes if o.moved_because is not None)),
        late=dict(late),
        told_late=len(told_late),
        false_alarms=sum(o.order_id in told_late for o in kept),
        rescued=len(rescued),
        rescued_kept=sum(o.order_id in rescued for o in kept),
    )


def _moves(session: Session, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each order's moves, the first first."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not order_ids:
        return found
    rows = session.exec(
        select(OrderEvent.order_id, OrderEvent.data)
        .where(col(OrderEvent.order_id).in_(order_ids), col(OrderEvent.kind).in_(MOVES))
        .order_by(col(OrderEvent.at), col(OrderEvent.id))
    )
    for order_id, data in rows:
        found[order_id].append(dict(data))
    return found


def _delivered_at(session: Session, order_ids: Sequence[str]) -> dict[str, datetime]:
    """When each order's last parcel was delivered, for orders whose parcels all were."""
    by_order: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    if not order_ids:
        return {}
    rows = session.exec(
        select(Shipment.order_id, Shipment.status, Shipment.status_at).where(
            col(Shipment.order_id).in_(order_ids), Shipment.status != TrackingStatus.CANCELLED
        )
    )
    for order_id, status, at in rows:
        by_order[order_id].append((status, at))
    return {
        order_id: max(at for _, at in parcels)
        for order_id, parcels in by_order.items()
        if all(status == TrackingStatus.DELIVERED for status, _ in parcels)
    }


def _orders_where(
    session: Session, order_id: Any, order_ids: Sequence[str], *conditions: Any
) -> set[str]:
    """The orders among ``order_ids`` with a row (``order_id`` its column) that meets
    ``conditions``."""
    if not order_ids:
        return set()
    return set(session.exec(select(order_id).where(col(order_id).in_(order_ids), *conditions)))
