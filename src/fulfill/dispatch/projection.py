"""The ETAs of a route's stops still ahead, projected again from where and when its van last was, at
the pace the van has shown: a stop whose ETA leaves its promised window is marked late at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import planning
from fulfill.dispatch.models import (
    Plan,
    PlanRoute,
    PlanStop,
    RouteStatus,
    StopStatus,
    Wave,
)
from fulfill.inventory.models import Node
from fulfill.orders.repository import record_event
from fulfill.tracking import following
from fulfill_routing import (
    Context,
    Depot,
    Location,
    Matrix,
    Problem,
    Stop,
    TimeWindow,
    Vehicle,
    projected,
)


def reproject(
    session: Session,
    plan: Plan,
    route: PlanRoute,
    settings: Settings,
    *,
    now: datetime,
    van_code: str,
    resumes_at: datetime | None = None,
) -> list[str]:
    """ETAs of the route's open stops from the van's last known place and time (or from when
    it is expected to move again); the fulfillments that this makes late for the first time."""
    stops = list(
        session.exec(
            select(PlanStop).where(PlanStop.route_id == route.id).order_by(col(PlanStop.position))
        ).all()
    )
    ahead = [s for s in stops if s.status == StopStatus.PLANNED]
    if not ahead or (route.status == RouteStatus.PLANNED and resumes_at is None):
        return []
    wave = session.get(Wave, plan.wave_id)
    node = session.get(Node, wave.node_id) if wave else None
    assert wave is not None and node is not None
    origin, since = _whereabouts(route, stops, now, (node.lat, node.lon))
    since = max(since, resumes_at or since)
    clock = planning.Clock.of(node, wave.local_date)
    here = Location(lat=origin[0], lon=origin[1])
    locations = (here, *(Location(lat=s.lat, lon=s.lon) for s in ahead))
    start = clock.seconds(since)
    distances, model = planning.travel_provider(settings).matrices(locations, start)
    durations = np.rint(model * route.pace).astype(model.dtype)  # the van's pace today
    problem = Problem(
        depots=(Depot(id="here", location=0),),
        vehicles=(Vehicle(id="van", start_depot="here", shift=TimeWindow(start=0, end=2**40)),),
        stops=tuple(
            Stop(
                id=s.fulfillment_id,
                location=k + 1,
                service_time=settings.dispatch_service_s,
                time_windows=(
                    planning.arrival_window(clock, s.window_start, s.window_end, settings),
                ),
            )
            for k, s in enumerate(ahead)
        ),
        matrix=Matrix(distances=distances, durations=durations),
    )
    ctx = Context.of(problem, distances, durations)
    times = projected(ctx, problem.vehicles[0], [s.fulfillment_id for s in ahead], start)
    newly_late: list[str] = []
    for stop, begins, late in zip(ahead, times.starts, times.late, strict=True):
        stop.eta = clock.at(begins)
        if late > 0 and not stop.late:
            newly_late.append(stop.fulfillment_id)
            record_event(
                session,
                stop.order_id,
                "delivery.late_predicted",
                {
                    "eta": stop.eta.isoformat(),
                    "promised_end": stop.window_end.isoformat(),
                    "minutes_late": round(late / 60),
                    "van": van_code,
                },
                at=now,
            )
        stop.late = stop.late or late > 0
        session.add(stop)
    return newly_late


def _whereabouts(
    route: PlanRoute, stops: list[PlanStop], now: datetime, depot: tuple[float, float]
) -> tuple[tuple[float, float], datetime]:
    """Where the van is and since when: its last ping, its last stop, or still the depot."""
    known = last_known(route, stops, None)
    return (known[0], max(known[1], now)) if known else (depot, now)


def last_known(
    route: PlanRoute, stops: list[PlanStop], before: datetime | None
) -> tuple[tuple[float, float], datetime, bool] | None:
    """Where and when the van was last known on the route (up to ``before``), and whether at a
    door (a handover, else an arrival) rather than a place it reported."""
    reached: list[tuple[datetime, PlanStop]] = []
    for stop in stops:
        at = stop.done_at or stop.eta
        if (
            stop.status != StopStatus.PLANNED
            and at is not None
            and (before is None or at <= before)
        ):
            reached.append((at, stop))
    door = max(reached, key=lambda pair: pair[0], default=None)
    seen, lat, lon = route.last_seen_at, route.last_lat, route.last_lon
    if (
        seen is not None
        and lat is not None
        and lon is not None
        and (before is None or seen <= before)
        and (door is None or door[0] <= seen)
    ):
        return (lat, lon), seen, False
    if door is None:
        return None
    return (door[1].lat, door[1].lon), door[0], True


def tell_etas(
    session: Session,
    stops: Sequence[PlanStop],
    cancelled: set[str],
    settings: Settings,
    now: datetime,
) -> None:
    """Tracking hears the ETAs of the stops still ahead, as customers are shown them."""
    etas = {
        s.fulfillment_id: planning.in_hand(s.eta, settings)
        for s in stops
        if s.fulfillment_id not in cancelled and not StopStatus(s.status).done and s.eta
    }
    following.set_plan_etas(session, etas, now)
