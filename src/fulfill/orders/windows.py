"""Delivery windows and wave cutoffs, in each node's own timezone, stored in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fulfill.config import Settings
from fulfill.inventory.models import Node
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
        return PromiseWindow(*_local_days(today, 1, 1, tz), order_by=_end_of_day(today, tz))
    return PromiseWindow(*_local_days(today, *STANDARD_DAYS, tz), order_by=_end_of_day(today, tz))


def _local_days(today: date, first: int, last: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(today + timedelta(days=first), DAY_START, tzinfo=tz)
    end = datetime.combine(today + timedelta(days=last), DAY_END, tzinfo=tz)
    return start, end


def _end_of_day(today: date, tz: ZoneInfo) -> datetime:
    """Carrier windows hold for orders placed before the node's local midnight."""
    return datetime.combine(today + timedelta(days=1), time(0, 0), tzinfo=tz)
