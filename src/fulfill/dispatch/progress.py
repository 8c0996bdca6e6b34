"""What the vans report: a route started, a stop reached, delivered or failed, a position.

Each report is stored once (its event id), applied to the van's route in the published plan,
and the ETAs of the stops still ahead are projected again from where and when the van is
(``projection``). A van that reports nothing is the silent-van rule's (``silence``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import planning
from fulfill.dispatch.models import (
    DriverEvent,
    Plan,
    PlanRoute,
    PlanStatus,
    PlanStop,
    RouteStatus,
    StopStatus,
    Van,
    Wave,
)
from fulfill.dispatch.projection import last_known, reproject, tell_etas
from fulfill.errors import Conflict, NotFound, Unprocessable
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment, FulfillmentStatus
from fulfill.orders.repository import record_event
from fulfill.tracking import following
from fulfill_carriers import driver_event
from fulfill_routing import (
    Location,
)


class DriverEventKind(StrEnum):
    ROUTE_STARTED = "route_started"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    FAILED = "failed"
    POSITION = "position"

    @property
    def names_a_stop(self) -> bool:
        return self in (DriverEventKind.ARRIVED, DriverEventKind.DELIVERED, DriverEventKind.FAILED)


@dataclass(frozen=True)
class Report:
    event_id: str
    kind: DriverEventKind
    van: str
    at: datetime
    fulfillment_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    proof: dict[str, Any] | None = None
    reason: str | None = None
    wave: int | None = None  # the wave whose route it is about, when the driver's app knows


@dataclass(frozen=True)
class Applied:
    event: DriverEvent
    replayed: bool
    late: list[str]  # fulfillments newly predicted late

    @property
    def wave(self) -> int | None:
        """The wave of the route the report was applied to."""
        wave = self.event.data.get("wave")
        return int(wave) if wave is not None else None


CLOCK_TOLERANCE = timedelta(minutes=5)
PACE_BOUNDS = (0.8, 3.0)  # the pace a van may be given against the travel model
MIN_LEG_S = 120.0  # a shorter leg (the next door) says too little about the pace


def record_report(
    session: Session, source: str, report: Report, settings: Settings, *, now: datetime
) -> Applied:
    """Store and apply one report; a replay (same source and event id) changes nothing."""
    existing = _stored(session, source, report.event_id)
    if existing is not None:
        return Applied(existing, True, [])
    if report.at > now + CLOCK_TOLERANCE:  # a device clock ahead would freeze the van's ETAs
        raise Unprocessable(f"at {report.at.isoformat()} is in the future", field="at")
    plan, route = _current_route(session, report)
    stop = _stop_of(session, route, report) if report.kind.names_a_stop else None
    event = DriverEvent(
        source=source,
        event_id=report.event_id,
        kind=report.kind,
        van_code=report.van,
        fulfillment_id=report.fulfillment_id,
        at=report.at,
        lat=report.lat,
        lon=report.lon,
        data={
            "wave": plan.wave_id,
            **{k: v for k, v in (("proof", report.proof), ("reason", report.reason)) if v},
        },
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:  # the same report, concurrently
        stored = _stored(session, source, report.event_id)
        assert stored is not None
        return Applied(stored, True, [])
    _learn_pace(session, plan, route, stop, report, settings)
    _apply(session, route, stop, report)
    late = reproject(session, plan, route, settings, now=report.at, van_code=report.van)
    _tell_tracking(session, route, stop, report, f"{source}:{report.event_id}", settings, now)
    return Applied(event, False, late)


def _tell_tracking(
    session: Session,
    route: PlanRoute,
    stop: PlanStop | None,
    report: Report,
    event_id: str,
    settings: Settings,
    now: datetime,
) -> None:
    """The report as tracking events of the parcels it is about (all of the route's when the
    van leaves), and the route's new ETAs, which may make a parcel late."""
    stops = session.exec(
        select(PlanStop).where(PlanStop.route_id == route.id).order_by(col(PlanStop.position))
    ).all()
    cancelled = set(
        session.exec(
            select(Fulfillment.id).where(
                col(Fulfillment.id).in_([s.fulfillment_id for s in stops]),
                Fulfillment.status == FulfillmentStatus.CANCELLED,
            )
        ).all()
    )
    about = stops if report.kind is DriverEventKind.ROUTE_STARTED else [stop] if stop else []
    for target in about:
        if target.fulfillment_id in cancelled:
            continue  # not on board: its order was cancelled before the van left
        if report.kind is DriverEventKind.ROUTE_STARTED and StopStatus(target.status).done:
            continue
        event = driver_event(
            report.kind.value,
            target.fulfillment_id,
            report.at,
            f"{event_id}:{target.fulfillment_id}",
            reason=report.reason,
        )
        if event is not None:
            following.driver_report(session, target.fulfillment_id, event, now)
    tell_etas(session, stops, cancelled, settings, now)


def _stored(session: Session, source: str, event_id: str) -> DriverEvent | None:
    return session.exec(
        select(DriverEvent).where(DriverEvent.source == source, DriverEvent.event_id == event_id)
    ).first()


def _current_route(session: Session, report: Report) -> tuple[Plan, PlanRoute]:
    """The van's published route the report is about: the one of the wave it names, else the
    one holding the stop it names. Otherwise a start is of the van's next route not yet on the
    road, and any other report is about the route it drives now (the last one started, since a
    van drives its waves in order), else about the next one."""
    query = (
        select(Plan, PlanRoute)
        .join(PlanRoute, col(PlanRoute.plan_id) == Plan.id)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .join(Wave, col(Wave.id) == Plan.wave_id)
        .where(Van.code == report.van, Plan.status == PlanStatus.PUBLISHED)
        .order_by(col(Wave.cutoff_at))
    )
    if report.wave is not None:
        named = session.exec(query.where(Plan.wave_id == report.wave)).first()
        if named is None:
            raise Unprocessable(
                f"van {report.van} has no published route in wave {report.wave}", field="wave"
            )
        return named[0], named[1]
    if report.fulfillment_id is not None:
        holding = session.exec(
            query.join(PlanStop, col(PlanStop.route_id) == PlanRoute.id).where(
                PlanStop.fulfillment_id == report.fulfillment_id
            )
        ).first()
        if holding is not None:
            return holding[0], holding[1]
    # Among the waves of about that day: a route left planned on an earlier day is not next.
    near = query.where(col(Wave.cutoff_at) > report.at - timedelta(days=1))
    rows = list(session.exec(near).all())
    if not rows:
        raise NotFound(f"van {report.van} has no published route that day", van=report.van)
    ahead = [r for r in rows if r[1].status == RouteStatus.PLANNED]
    driving = [r for r in rows if r[1].status == RouteStatus.STARTED]
    if report.kind is DriverEventKind.ROUTE_STARTED:
        return (ahead[:1] or driving[-1:] or rows[-1:])[0]
    return (driving[-1:] or ahead[:1] or rows[-1:])[0]


def _stop_of(session: Session, route: PlanRoute, report: Report) -> PlanStop:
    if report.fulfillment_id is None:
        raise Unprocessable(f"a {report.kind} event names its stop", field="stop")
    stop = session.exec(
        select(PlanStop).where(
            PlanStop.route_id == route.id, PlanStop.fulfillment_id == report.fulfillment_id
        )
    ).first()
    if stop is None:
        raise Unprocessable(
            f"stop {report.fulfillment_id} is not on van {report.van}'s route", field="stop"
        )
    return stop


def _apply(session: Session, route: PlanRoute, stop: PlanStop | None, report: Report) -> None:
    located = report.lat is not None and report.lon is not None
    if located and (route.last_seen_at is None or report.at >= route.last_seen_at):
        route.last_lat, route.last_lon, route.last_seen_at = report.lat, report.lon, report.at
    if report.kind is DriverEventKind.ROUTE_STARTED and route.status == RouteStatus.PLANNED:
        route.status = RouteStatus.STARTED
        _out_for_delivery(session, route)
    if stop is not None:
        _apply_to_stop(session, route, stop, report)
    session.add(route)


def _apply_to_stop(session: Session, route: PlanRoute, stop: PlanStop, report: Report) -> None:
    if StopStatus(stop.status).done:
        if report.kind is not DriverEventKind.ARRIVED:
            raise Conflict(
                f"stop {stop.fulfillment_id} is {stop.status} already", stop=stop.fulfillment_id
            )
        return  # an arrival reported after the outcome: stored, nothing moves back
    if route.status == RouteStatus.PLANNED:
        route.status = RouteStatus.STARTED
        _out_for_delivery(session, route)
    stop.late = stop.late or report.at > stop.window_end  # what happened, not a prediction
    if report.kind is DriverEventKind.ARRIVED:
        stop.status = StopStatus.ARRIVED
        stop.eta = report.at
    else:
        stop.status = (
            StopStatus.DELIVERED if report.kind is DriverEventKind.DELIVERED else StopStatus.FAILED
        )
        stop.done_at = report.at
        stop.outcome = {"proof": report.proof} if report.proof else {"reason": report.reason}
        _close_fulfillment(session, stop, report)
    session.add(stop)
    session.flush()
    if all(StopStatus(s).done for s in _statuses(session, route)):
        route.status = RouteStatus.FINISHED


def _learn_pace(
    session: Session,
    plan: Plan,
    route: PlanRoute,
    stop: PlanStop | None,
    report: Report,
    settings: Settings,
) -> None:
    """How long the van took from where it was last known (a door, a place it reported) to
    where it says it is now (a door reached, a position), against the travel model. The
    route's pace moves halfway towards it, so the ETAs ahead stretch with a slow day (traffic
    the model does not know) and shrink back when it clears."""
    there = _reported_place(stop, report)
    stops = list(session.exec(select(PlanStop).where(PlanStop.route_id == route.id)))
    known = last_known(route, stops, report.at)
    wave = session.get(Wave, plan.wave_id)
    node = session.get(Node, wave.node_id) if wave else None
    if there is None or known is None or wave is None or node is None:
        return
    (lat, lon), at, door = known
    clock = planning.Clock.of(node, wave.local_date)
    _, durations = planning.travel_provider(settings).matrices(
        (Location(lat=lat, lon=lon), there), clock.seconds(at)
    )
    # From a door: the rest of the service there (after the handover) comes before the drive.
    standing = settings.dispatch_service_s - settings.dispatch_handover_s if door else 0
    expected = float(durations[0][1]) + max(0, standing)
    taken = (report.at - at).total_seconds()
    if expected >= MIN_LEG_S and taken > 0:
        low, high = PACE_BOUNDS
        route.pace = min(high, max(low, (route.pace + taken / expected) / 2))


def _reported_place(stop: PlanStop | None, report: Report) -> Location | None:
    if report.kind is DriverEventKind.ARRIVED and stop is not None:
        return None if StopStatus(stop.status).done else Location(lat=stop.lat, lon=stop.lon)
    if report.kind is DriverEventKind.POSITION and report.lat is not None:
        return Location(lat=report.lat, lon=report.lon or 0.0)
    return None


def _statuses(session: Session, route: PlanRoute) -> list[str]:
    return list(session.exec(select(PlanStop.status).where(PlanStop.route_id == route.id)).all())


def _out_for_delivery(session: Session, route: PlanRoute) -> None:
    """The van has left: its orders can no longer be cancelled (the parcels are on board)."""
    ids = session.exec(select(PlanStop.fulfillment_id).where(PlanStop.route_id == route.id)).all()
    for fulfillment in session.exec(
        select(Fulfillment).where(
            col(Fulfillment.id).in_(ids), Fulfillment.status == FulfillmentStatus.PENDING
        )
    ).all():
        fulfillment.status = FulfillmentStatus.OUT_FOR_DELIVERY
        session.add(fulfillment)


def _close_fulfillment(session: Session, stop: PlanStop, report: Report) -> None:
    fulfillment = session.get(Fulfillment, stop.fulfillment_id)
    assert fulfillment is not None
    if fulfillment.status == FulfillmentStatus.CANCELLED:
        raise Conflict(
            f"the order of stop {stop.fulfillment_id} was cancelled", stop=stop.fulfillment_id
        )
    delivered = report.kind is DriverEventKind.DELIVERED
    fulfillment.status = FulfillmentStatus.DELIVERED if delivered else FulfillmentStatus.FAILED
    session.add(fulfillment)
    kind = "delivery.delivered" if delivered else "delivery.attempt_failed"
    data: dict[str, Any] = {"van": report.van, "late": stop.late}
    data.update({"proof": report.proof} if delivered else {"reason": report.reason})
    record_event(session, stop.order_id, kind, data, at=report.at)
