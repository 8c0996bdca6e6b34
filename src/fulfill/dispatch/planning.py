"""A wave as a routing problem, and a routing solution as a stored plan.

Times in the problem are seconds after local midnight of the wave's date at its node (so the
speed profile reads the right hour); costs are in millionths of the currency unit, so that
the planner's integer arithmetic loses nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from fulfill.config import Settings
from fulfill.dispatch.models import (
    Plan,
    PlanRoute,
    PlanStop,
    Van,
    Wave,
)
from fulfill.dispatch.repository import Booked, Delivery
from fulfill.inventory.models import Node
from fulfill_routing import (
    Break,
    Context,
    Depot,
    GreatCircle,
    Location,
    Matrix,
    OsrmTable,
    Problem,
    Solution,
    Stop,
    TimeWindow,
    TravelTimeProvider,
    with_location,
)
from fulfill_routing import Vehicle as RoutingVehicle

COST_SCALE = 1_000_000  # problem cost units per currency unit
DEPOT = "depot"


def travel_provider(settings: Settings) -> TravelTimeProvider:
    if settings.travel == "osrm":
        if not settings.osrm_url:
            raise ValueError("FULFILL_TRAVEL=osrm needs FULFILL_OSRM_URL")
        return OsrmTable(settings.osrm_url)
    return GreatCircle(circuity=settings.travel_circuity)


@dataclass(frozen=True)
class Clock:
    """Converts between aware datetimes and the problem's seconds after local midnight.

    Arithmetic happens in UTC: Python subtracts two datetimes of the same zone by their wall
    clocks, which is an hour off across a daylight-saving change."""

    midnight: datetime  # local midnight of the wave's date, in UTC
    tz: ZoneInfo

    @classmethod
    def of(cls, node: Node, local_date: str) -> Clock:
        tz = ZoneInfo(node.timezone)
        local = datetime.combine(date.fromisoformat(local_date), time(0), tzinfo=tz)
        return cls(local.astimezone(UTC), tz)

    def seconds(self, at: datetime) -> int:
        return max(0, math.floor((at.astimezone(UTC) - self.midnight).total_seconds()))

    def at(self, seconds: int) -> datetime:
        return self.midnight + timedelta(seconds=seconds)

    def window(self, start: datetime, end: datetime) -> TimeWindow:
        """A promised window in the problem's seconds (one that has ended is empty)."""
        opens = self.seconds(start)
        return TimeWindow(start=opens, end=max(opens, self.seconds(end)))

    def local(self, hhmm: str) -> int:
        """Seconds of a local wall-clock time on this date (daylight saving included)."""
        day = self.midnight.astimezone(self.tz).date()
        return self.seconds(datetime.combine(day, time.fromisoformat(hhmm), tzinfo=self.tz))


@dataclass(frozen=True)
class WaveProblem:
    """The wave for the planner; ``problem`` is None when no van is free to plan with."""

    problem: Problem | None
    clock: Clock
    deliveries: dict[str, Delivery]
    vans: dict[str, Van]
    context: Context | None
    departure_s: int = 0  # when the vans can leave: the matrices' time of day

    def routing(self) -> tuple[Problem, Context]:
        assert self.problem is not None and self.context is not None, "no van to plan with"
        return self.problem, self.context


def build_problem(
    node: Node,
    wave: Wave,
    deliveries: Iterable[Delivery],
    vans: Iterable[Van],
    settings: Settings,
    *,
    previous: dict[str, list[str]] | None = None,
    booked: dict[str, Booked] | None = None,
) -> WaveProblem:
    """The wave's routing problem: vans leave after the cutoff and loading (and once back from
    an earlier wave's route, see ``bookings``), stops are to be served within their promised
    windows, and a stop left out costs the unassigned penalty."""
    clock = Clock.of(node, wave.local_date)
    ready = clock.seconds(wave.cutoff_at) + settings.dispatch_loading_min * 60
    by_id = {d.fulfillment_id: d for d in deliveries}
    van_by_code = {v.code: v for v in vans}
    stops = tuple(stop_for(d, k + 1, clock, settings) for k, d in enumerate(by_id.values()))
    if not van_by_code:
        return WaveProblem(None, clock, by_id, van_by_code, None)
    depot = Location(lat=node.lat, lon=node.lon)
    locations = (depot, *(Location(lat=d.lat, lon=d.lon) for d in by_id.values()))
    fleet = tuple(
        _vehicle(v, clock, ready, (booked or {}).get(v.code, Booked()))
        for v in van_by_code.values()
    )
    known = set(by_id)
    initial = {
        v: tuple(s for s in stops_of if s in known)
        for v, stops_of in (previous or {}).items()
        if v in van_by_code
    }
    distances, durations = travel_provider(settings).matrices(locations, ready)
    problem = Problem(
        name=f"wave-{wave.id}",
        depots=(Depot(id=DEPOT, location=0),),
        vehicles=fleet,
        stops=stops,
        locations=locations,
        matrix=Matrix(distances=distances, durations=durations),
        initial_routes={v: s for v, s in initial.items() if s},
    )
    context = Context.of(problem, distances, durations)
    return WaveProblem(problem, clock, by_id, van_by_code, context, ready)


def with_bookings(wp: WaveProblem, vans: Iterable[Van], booked: dict[str, Booked]) -> WaveProblem:
    """``wp`` planned with ``vans`` (as they are now, the same ones it was built for) and their
    hours as ``booked`` has them; the matrices stay as they are. The vans are kept as copies
    that belong to no session, so that ``wp`` can outlive the one that read them."""
    kept = {v.code: Van(**v.model_dump()) for v in vans}
    fleet = [
        _vehicle(v, wp.clock, wp.departure_s, booked.get(v.code, Booked())) for v in kept.values()
    ]
    return with_vehicles(replace(wp, vans=kept), fleet)


def with_vehicles(wp: WaveProblem, vehicles: Sequence[RoutingVehicle]) -> WaveProblem:
    """``wp`` planned with ``vehicles`` only."""
    problem, context = wp.routing()
    changed = problem.model_copy(update={"vehicles": tuple(vehicles)})
    return replace(
        wp, problem=changed, context=Context.of(changed, context.distances, context.durations)
    )


def arrival_window(clock: Clock, start: datetime, end: datetime, settings: Settings) -> TimeWindow:
    """When the van may reach the door: the promise is the parcel in the customer's hands by
    the window's end, so the van arrives a handover earlier."""
    return clock.window(start, end - timedelta(seconds=settings.dispatch_handover_s))


def planned_window(clock: Clock, start: datetime, end: datetime, settings: Settings) -> TimeWindow:
    """When a plan has the van reach the door: within the arrival window, a slack before its
    end, so that a slower drive than the travel model's (rush hour, roadworks) still keeps the
    promise. Projections of a van under way judge lateness by the arrival window itself."""
    slack = timedelta(minutes=settings.dispatch_slack_min)
    window = arrival_window(clock, start, end, settings)
    opens = window.start
    return TimeWindow(start=opens, end=max(opens, window.end - int(slack.total_seconds())))


def in_hand(arrival: datetime, settings: Settings) -> datetime:
    """When the parcel is in the customer's hands (what tracking and the customer are told): a
    handover after the van reaches the door."""
    return arrival + timedelta(seconds=settings.dispatch_handover_s)


def stop_for(delivery: Delivery, location: int, clock: Clock, settings: Settings) -> Stop:
    """The planner's stop for a delivery at matrix index ``location``."""
    return Stop(
        id=delivery.fulfillment_id,
        location=location,
        service_time=settings.dispatch_service_s,
        time_windows=(planned_window(clock, delivery.window_start, delivery.window_end, settings),),
        demand=(delivery.parcels, math.ceil(delivery.weight_kg)),
        penalty=round(settings.dispatch_unassigned_penalty * COST_SCALE),
    )


def with_delivery(
    wp: WaveProblem, delivery: Delivery, settings: Settings
) -> tuple[Problem, Context]:
    """``wp`` and one more delivery, whose travel is priced against the others only (2n pairs,
    not (n + 1)^2): what a same-day promise asks of a wave's plan on every cart change."""
    problem, context = wp.routing()
    assert problem.locations is not None
    extra = Location(lat=delivery.lat, lon=delivery.lon)
    distances, durations = with_location(
        travel_provider(settings),
        problem.locations,
        (context.distances, context.durations),
        extra,
        wp.departure_s,
    )
    stop = stop_for(delivery, len(problem.locations), wp.clock, settings)
    grown = problem.model_copy(
        update={
            "stops": (*problem.stops, stop),
            "locations": (*problem.locations, extra),
            "matrix": Matrix(distances=distances, durations=durations),
        }
    )
    return grown, Context.of(grown, distances, durations)


def _rest(van: Van, clock: Clock, start: int, end: int) -> Break | None:
    """The van's break, if it falls within its hours for this wave; otherwise the driver takes
    it outside them (before the wave, or between two waves' routes), and a break the van could
    not take would make the whole wave unsolvable."""
    if not (van.break_start and van.break_end and van.break_minutes):
        return None
    duration = van.break_minutes * 60
    earliest = max(clock.local(van.break_start), start)
    latest = min(clock.local(van.break_end), end - duration)
    if earliest > latest:
        return None
    return Break(window=TimeWindow(start=earliest, end=latest), duration=duration)


def _vehicle(van: Van, clock: Clock, ready: int, booked: Booked) -> RoutingVehicle:
    start = max(clock.local(van.shift_start), ready)
    end = clock.local(van.shift_end)
    if booked.after is not None:
        start = max(start, clock.seconds(booked.after))
    if booked.before is not None:
        end = min(end, clock.seconds(booked.before))
    end = max(start, end)
    return RoutingVehicle(
        id=van.code,
        start_depot=DEPOT,
        capacity=(van.capacity_parcels, math.floor(van.capacity_kg)),
        shift=TimeWindow(start=start, end=end),
        distance_cost=round(van.cost_per_km * COST_SCALE / 1000),
        duration_cost=round(van.cost_per_hour * COST_SCALE / 3600),
        fixed_cost=round(van.fixed_cost * COST_SCALE),
        max_stops=van.max_stops,
        rest=_rest(van, clock, start, end),
    )


def store_plan(
    session: Session,
    wave: Wave,
    version: int,
    origin: str,
    wp: WaveProblem,
    solution: Solution,
    *,
    request: int | None = None,
    warnings: Sequence[str] = (),
) -> Plan:
    """Write ``solution`` as plan ``version`` of ``wave``, with every stop and route."""
    assert wave.id is not None
    plan = Plan(
        wave_id=wave.id,
        version=version,
        request=request,
        origin=origin,
        engine=solution.engine,
        cost=solution.cost / COST_SCALE,
        distance_m=solution.distance,
        duration_s=sum(r.duration for r in solution.routes),
        vans_used=solution.vehicles_used,
        stops=len(wp.deliveries),
        unassigned=len(solution.unserved),
        solve_seconds=round(solution.seconds, 3),
        warnings=list(warnings),
    )
    session.add(plan)
    session.flush()
    assert plan.id is not None
    routes: list[tuple[PlanRoute, list[PlanStop]]] = []
    for route in solution.routes:
        if not route.visits:
            continue
        van = wp.vans[route.vehicle]
        assert van.id is not None
        row = PlanRoute(
            plan_id=plan.id,
            van_id=van.id,
            depart_at=wp.clock.at(route.start),
            return_at=wp.clock.at(route.end),
            distance_m=route.distance,
            duration_s=route.duration,
            cost=route.cost / COST_SCALE,
            load=list(route.peak_load),
            rest=None
            if route.rest is None
            else {
                "start": wp.clock.at(route.rest.start).isoformat(),
                "minutes": route.rest.duration // 60,
                "after": route.rest.after,
            },
        )
        stops = [
            _stop_row(plan.id, wp, visit.stop, position=k, eta=wp.clock.at(visit.start))
            for k, visit in enumerate(route.visits)
        ]
        for stop, visit in zip(stops, route.visits, strict=True):
            stop.departure = wp.clock.at(visit.departure)
            stop.wait_s = visit.wait
        routes.append((row, stops))
    session.add_all([row for row, _ in routes])
    session.flush()
    for row, stops in routes:
        for stop in stops:
            stop.route_id = row.id
        session.add_all(stops)
    session.add_all(
        _stop_row(plan.id, wp, u.stop, position=k, reason=u.reason)
        for k, u in enumerate(solution.unserved)
    )
    session.flush()
    return plan


def _stop_row(
    plan_id: int,
    wp: WaveProblem,
    fulfillment_id: str,
    *,
    position: int,
    eta: datetime | None = None,
    reason: str | None = None,
) -> PlanStop:
    d = wp.deliveries[fulfillment_id]
    return PlanStop(
        plan_id=plan_id,
        position=position,
        fulfillment_id=fulfillment_id,
        order_id=d.order_id,
        lat=d.lat,
        lon=d.lon,
        window_start=d.window_start,
        window_end=d.window_end,
        eta=eta,
        parcels=d.parcels,
        weight_kg=d.weight_kg,
        unassigned_reason=reason,
    )
