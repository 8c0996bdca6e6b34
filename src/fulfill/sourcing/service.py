"""The foundation's sourcing rule: the nearest own node that can ship the whole order.

``candidate_sources`` is the one place that decides; it returns every node that could ship the
order, nearest first, so that the caller can fall back to the next one when a concurrent order
takes the last units first. The optimiser that replaces this rule keeps that contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from geopy.distance import geodesic
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.errors import Conflict, OutOfStock
from fulfill.inventory import repository as inventory_repo
from fulfill.inventory.models import Node
from fulfill.inventory.service import StockLine
from fulfill.orders.models import ServiceLevel

# Delivery days for the carrier service levels, until carriers bring their own transit times.
DAY_START = time(9, 0)
DAY_END = time(21, 0)
STANDARD_DAYS = (2, 5)


@dataclass(frozen=True)
class PromiseWindow:
    """Always in UTC; the node's timezone only decides which local times they are."""

    start: datetime
    end: datetime
    order_by: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.order_by is not None:
            object.__setattr__(self, "order_by", self.order_by.astimezone(UTC))


@dataclass(frozen=True)
class Candidate:
    node: Node
    distance_km: float
    window: PromiseWindow


class ServiceLevelUnavailable(Conflict):
    code = "service-level-unavailable"


class NoSingleSource(Conflict):
    code = "no-single-source"


def next_cutoff(node: Node, now: datetime) -> datetime | None:
    """The node's next wave cutoff later today in its own timezone, as an aware datetime."""
    tz = ZoneInfo(node.timezone)
    local_now = now.astimezone(tz)
    for cutoff in node.wave_cutoffs:
        at = datetime.combine(local_now.date(), time.fromisoformat(cutoff), tzinfo=tz)
        if at > local_now:
            return at
    return None


def promise_window(
    node: Node, level: ServiceLevel, now: datetime, settings: Settings
) -> PromiseWindow | None:
    """The window this node can promise at ``now``, or None if it cannot offer ``level``."""
    tz = ZoneInfo(node.timezone)
    today = now.astimezone(tz).date()
    if level is ServiceLevel.SAME_DAY:
        cutoff = next_cutoff(node, now) if node.same_day_radius_km > 0 else None
        if cutoff is None:
            return None
        start = cutoff + timedelta(minutes=settings.same_day_window_offset_min)
        end = start + timedelta(minutes=settings.same_day_window_length_min)
        return PromiseWindow(start, end, order_by=cutoff)
    if level is ServiceLevel.NEXT_DAY:
        return PromiseWindow(*_local_days(today, 1, 1, tz))
    return PromiseWindow(*_local_days(today, *STANDARD_DAYS, tz))


def candidate_sources(
    session: Session,
    lines: Sequence[StockLine],
    destination: tuple[float, float],
    level: ServiceLevel,
    now: datetime,
    settings: Settings,
) -> list[Candidate]:
    """Own nodes that can ship every line and offer ``level``, nearest first.

    Raises a 409 that says why when there is none: the service level is out of reach, a sku
    is short (naming it and what is left), or no single node holds the whole order.
    """
    reachable = _reachable(session, destination, level, now, settings)
    if not reachable:
        raise ServiceLevelUnavailable(_unavailable_reason(level), service_level=level.value)
    available = inventory_repo.available_by_node(session, [line.product_id for line in lines])
    able = [
        c
        for c in reachable
        if all(available.get((c.node.id, ln.product_id), 0) >= ln.quantity for ln in lines)  # type: ignore[arg-type]
    ]
    if able:
        return able
    for line in sorted(lines, key=lambda x: x.sku):
        best = max(available.get((c.node.id, line.product_id), 0) for c in reachable)  # type: ignore[arg-type]
        if best < line.quantity:
            raise OutOfStock(line.sku, line.quantity, max(best, 0))
    raise NoSingleSource(
        "every sku is in stock, but no single node holds the whole order",
        nodes=[c.node.code for c in reachable],
    )


def _reachable(
    session: Session,
    destination: tuple[float, float],
    level: ServiceLevel,
    now: datetime,
    settings: Settings,
) -> list[Candidate]:
    candidates = []
    for node in inventory_repo.active_nodes(session):
        if not node.node_kind.is_own:
            continue
        window = promise_window(node, level, now, settings)
        if window is None:
            continue
        distance = geodesic((node.lat, node.lon), destination).km
        if level is ServiceLevel.SAME_DAY and distance > node.same_day_radius_km:
            continue
        candidates.append(Candidate(node, distance, window))
    return sorted(candidates, key=lambda c: (c.distance_km, c.node.code))


def _unavailable_reason(level: ServiceLevel) -> str:
    if level is ServiceLevel.SAME_DAY:
        return (
            "same_day is not available for this destination now: no own node within its "
            "same-day radius has a wave cutoff left today"
        )
    return f"{level.value} is not available: no active own node"


def _local_days(today: date, first: int, last: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(today + timedelta(days=first), DAY_START, tzinfo=tz)
    end = datetime.combine(today + timedelta(days=last), DAY_END, tzinfo=tz)
    return start, end
