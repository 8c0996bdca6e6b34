"""Dispatch: plan waves, let a dispatcher adjust and publish plans, and follow the vans.

Plans are immutable versions: planning, a move or a re-plan writes a new version of the wave's
plan, so what a dispatcher saw, what was published and what the drivers did stay on record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.db import session_scope, utcnow
from fulfill.dispatch import planning
from fulfill.dispatch.models import (
    Plan,
    PlanRoute,
    PlanStatus,
    PlanStop,
    RouteStatus,
    StopStatus,
    Van,
    Wave,
    WaveStatus,
)
from fulfill.dispatch.planning import (
    WaveProblem,
    delivery_of,
    latest_plan,
    published_plan,
)
from fulfill.dispatch.waves import (
    Claim,
    answer_request,
    claim_planning,
    next_plan_number,
    next_wave,
    release_planning,
    request_plan,
    wave_for,
)
from fulfill.errors import Conflict, NotFound, Unprocessable
from fulfill.inventory.models import Node
from fulfill.orders import timeline
from fulfill.orders.models import Fulfillment, FulfillmentStatus, Order
from fulfill.orders.repository import record_event
from fulfill.orders.windows import next_cutoff
from fulfill.outbox.service import enqueue
from fulfill.tracking import service as tracking
from fulfill.tracking.shipping import request_shipment
from fulfill_routing.checker import check
from fulfill_routing.model import Solution, Unserved
from fulfill_routing.schedule import Infeasible, projected, schedule_route
from fulfill_routing.solve import solve

log = logging.getLogger(__name__)


class MoveRefused(Conflict):
    code = "move-refused"


@dataclass
class PlanView:
    """A plan with its rows, as the API and the page read it."""

    plan: Plan
    wave: Wave
    node: Node
    routes: list[tuple[PlanRoute, Van, list[PlanStop]]]
    unassigned: list[PlanStop] = field(default_factory=list)


# Reading.


def get_wave(session: Session, wave_id: int) -> Wave:
    wave = session.get(Wave, wave_id)
    if wave is None:
        raise NotFound(f"no wave {wave_id}")
    return wave


def get_plan(session: Session, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}")
    return plan


def plan_view(session: Session, plan: Plan) -> PlanView:
    wave = get_wave(session, plan.wave_id)
    node = session.get(Node, wave.node_id)
    assert node is not None
    rows = session.exec(
        select(PlanRoute, Van)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .where(PlanRoute.plan_id == plan.id)
        .order_by(col(Van.code))
    ).all()
    stops = session.exec(
        select(PlanStop).where(PlanStop.plan_id == plan.id).order_by(col(PlanStop.position))
    ).all()
    by_route: dict[int | None, list[PlanStop]] = {}
    for stop in stops:
        by_route.setdefault(stop.route_id, []).append(stop)
    routes = [(route, van, by_route.get(route.id, [])) for route, van in rows]
    return PlanView(plan, wave, node, routes, by_route.get(None, []))


# Planning.


PLAN_TRIES = 3  # solves per claim while vans keep leaving under it


def plan_wave(
    engine: Engine, wave_id: int, settings: Settings, now: datetime | None = None
) -> Plan | None:
    """Answer the wave's newest plan request, once: a second worker, a retry or a stale request
    finds nothing to do. Routes locked by the dispatcher or already on the road are kept as
    they are; the rest is solved (outside any transaction) from the current plan. A van that
    left while the solver ran makes that solution stale: it is solved again, and after a few
    tries the request is left for the next sweep."""
    now = now or utcnow()
    with session_scope(engine) as session:
        claim = claim_planning(session, wave_id, now, settings.dispatch_planning_lease_s)
        session.commit()
    if claim is None:
        return None
    try:
        for _ in range(PLAN_TRIES):
            answered, plan = _plan_once(engine, wave_id, claim, settings)
            if answered:
                return plan
        log.warning(
            "wave %s: vans kept leaving while it was planned; the next sweep asks again", wave_id
        )
        return None
    finally:
        with session_scope(engine) as session:
            release_planning(session, wave_id, claim)
            session.commit()


def _plan_once(
    engine: Engine, wave_id: int, claim: Claim, settings: Settings
) -> tuple[bool, Plan | None]:
    """One solve and its answer; (False, None) when a van left meanwhile (nothing stored)."""
    with session_scope(engine) as session:
        wave = get_wave(session, wave_id)
        node = session.get(Node, wave.node_id)
        assert node is not None and node.id is not None
        source = planning.current_plan(session, wave_id)
        kept = _kept_routes(session, source) if source else []
        kept_vans = {van.code for _, van, _ in kept}
        kept_stops = {s.fulfillment_id for _, _, stops in kept for s in stops}
        deliveries = [
            d for d in planning.wave_deliveries(session, wave) if d.fulfillment_id not in kept_stops
        ]
        vans = [v for v in planning.active_vans(session, node.id) if v.code not in kept_vans]
        previous = _sequences(session, source) if source else {}
        booked = planning.bookings(session, wave, settings)
        wp = planning.build_problem(
            node, wave, deliveries, vans, settings, previous=previous, booked=booked
        )
        session.expunge_all()
    solution = _solve(wp, settings)
    with session_scope(engine) as session:
        # A locked route is kept too, but as it was when read: still at the depot.
        gone = {van.code for route, van, _ in kept if route.status != RouteStatus.PLANNED}
        left = on_the_road(session, published_plan(session, wave_id)) - gone
        if left:
            log.info("wave %s: %s left while planning; solving again", wave_id, sorted(left))
            return False, None
        if not answer_request(session, wave_id, claim.version):
            return True, None  # another worker answered this request first
        wave = get_wave(session, wave_id)
        origin = claim.requested_by or "dispatcher"
        number = next_plan_number(session, wave_id)
        plan = planning.store_plan(
            session, wave, number, origin, wp, solution, request=claim.version
        )
        assert plan.id is not None
        for route, van, stops in kept:
            _copy_route(session, plan.id, route, van, stops)
        _total(session, plan)
        # An order that joined meanwhile asked for the next plan, which publishes itself.
        if _publishes_itself(wave, origin, settings) and not unplanned(session, wave, plan):
            publish(session, plan, settings, now=utcnow())
        session.commit()
        return True, plan


def _left_since(session: Session, current: Plan | None, plan: Plan) -> list[str]:
    """Vans that left on their route in ``current`` (the published plan) after ``plan`` was
    made: it would re-plan what they carry. (A dispatcher's move may empty a route that is out;
    a planner keeps it.)"""
    ours = dict(
        session.exec(
            select(Van.code, PlanRoute.status)
            .join(PlanRoute, col(PlanRoute.van_id) == Van.id)
            .where(PlanRoute.plan_id == plan.id)
        ).all()
    )
    return sorted(
        van
        for van in on_the_road(session, current)
        if ours.get(van) == RouteStatus.PLANNED or (van not in ours and plan.origin != "move")
    )


def on_the_road(session: Session, published: Plan | None) -> set[str]:
    """The vans whose route in the wave's published plan has left the depot."""
    if published is None:
        return set()
    rows = session.exec(
        select(Van.code)
        .join(PlanRoute, col(PlanRoute.van_id) == Van.id)
        .where(PlanRoute.plan_id == published.id, PlanRoute.status != RouteStatus.PLANNED)
    ).all()
    return set(rows)


def _publishes_itself(wave: Wave, origin: str, settings: Settings) -> bool:
    """The plan made at the cutoff, or for an order that joined a planned wave, goes out by
    itself (unless the setting says a dispatcher publishes)."""
    return (
        settings.dispatch_auto_publish
        and origin in ("cutoff", "order")
        and wave.status != WaveStatus.OPEN
    )


def _sequences(session: Session, plan: Plan) -> dict[str, list[str]]:
    view = plan_view(session, plan)
    return {van.code: [s.fulfillment_id for s in stops] for _, van, stops in view.routes}


def _kept_routes(session: Session, plan: Plan) -> list[tuple[PlanRoute, Van, list[PlanStop]]]:
    """Routes a re-plan leaves as they are: locked by the dispatcher, or already on the road."""
    return [
        (route, van, stops)
        for route, van, stops in plan_view(session, plan).routes
        if route.locked or route.status != RouteStatus.PLANNED
    ]


def _solve(wp: WaveProblem, settings: Settings) -> Solution:
    if not wp.deliveries:
        return Solution(routes=(), cost=0, distance=0, engine="none")
    if wp.problem is None:
        reason = "no van is free: the node has no active van, or every one is locked or on the road"
        return Solution(
            routes=(),
            unserved=tuple(Unserved(stop=s, reason=reason) for s in wp.deliveries),
            cost=0,
            distance=0,
            engine="none",
        )
    return solve(
        wp.problem, engine=settings.dispatch_engine, time_limit_s=settings.dispatch_time_limit_s
    )


def _copy_route(
    session: Session, plan_id: int, route: PlanRoute, van: Van, stops: Sequence[PlanStop]
) -> PlanRoute:
    """A route of an earlier version into ``plan_id``, exactly as it is (progress included)."""
    copy = PlanRoute(**route.model_dump(exclude={"id", "plan_id"}), plan_id=plan_id)
    session.add(copy)
    session.flush()
    assert copy.id is not None
    session.add_all(_copy_stop(s, plan_id, copy.id, k) for k, s in enumerate(stops))
    return copy


def unplanned(session: Session, wave: Wave, plan: Plan) -> list[str]:
    """The wave's pending fulfillments that ``plan`` does not know (they joined after it)."""
    in_plan = set(
        session.exec(select(PlanStop.fulfillment_id).where(PlanStop.plan_id == plan.id)).all()
    )
    pending = session.exec(
        select(Fulfillment.id).where(
            Fulfillment.wave_id == wave.id, Fulfillment.status == FulfillmentStatus.PENDING
        )
    ).all()
    return sorted(set(pending) - in_plan)


def _carry_progress(session: Session, source: Plan, plan: Plan) -> None:
    """What the drivers reported on the plan they follow stays true in the one replacing it."""
    old_stops = {
        s.fulfillment_id: s
        for s in session.exec(select(PlanStop).where(PlanStop.plan_id == source.id)).all()
    }
    old_routes = {
        r.van_id: r
        for r in session.exec(select(PlanRoute).where(PlanRoute.plan_id == source.id)).all()
    }
    for route in session.exec(select(PlanRoute).where(PlanRoute.plan_id == plan.id)).all():
        before = old_routes.get(route.van_id)
        if before is not None and before.status != RouteStatus.PLANNED:
            route.status = before.status
            route.last_lat, route.last_lon, route.last_seen_at = (
                before.last_lat,
                before.last_lon,
                before.last_seen_at,
            )
            session.add(route)
    for stop in session.exec(select(PlanStop).where(PlanStop.plan_id == plan.id)).all():
        old = old_stops.get(stop.fulfillment_id)
        if old is not None and old.status != StopStatus.PLANNED:
            stop.status, stop.done_at, stop.outcome = old.status, old.done_at, old.outcome
            stop.late = old.late
            session.add(stop)
    session.flush()


# Dispatcher actions.


def ask_for_plan(session: Session, wave: Wave) -> int:
    """Plan the wave now (it stays open until its cutoff if it is open); the request's number,
    which the wave's ``planned_version`` reaches when the plan is stored."""
    return request_plan(session, wave, "dispatcher")


def _lock_wave(session: Session, wave_id: int) -> Wave:
    """The wave's row, locked for this transaction: publications and moves of one wave queue
    up instead of each building on a version the other is replacing."""
    wave = session.exec(select(Wave).where(Wave.id == wave_id).with_for_update()).first()
    if wave is None:
        raise NotFound(f"no wave {wave_id}")
    return wave


def _require_newest(session: Session, plan: Plan, action: str) -> None:
    newest = latest_plan(session, plan.wave_id)
    if newest is not None and newest.id != plan.id:
        raise Conflict(
            f"plan {plan.id} is version {plan.version}; {action} the newest version "
            f"({newest.version}, plan {newest.id})",
            plan=plan.id,
            newest=newest.id,
        )


def set_route_lock(session: Session, plan: Plan, van_code: str, locked: bool) -> PlanRoute:
    route = _route_of(session, plan, van_code)
    route.locked = locked
    session.add(route)
    return route


def _route_of(session: Session, plan: Plan, van_code: str) -> PlanRoute:
    row = session.exec(
        select(PlanRoute)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .where(PlanRoute.plan_id == plan.id, Van.code == van_code)
    ).first()
    if row is None:
        raise NotFound(f"plan {plan.id} has no route for van {van_code}", van=van_code)
    return row


def move_stop(
    session: Session,
    plan: Plan,
    fulfillment_id: str,
    van_code: str | None,
    position: int | None,
    *,
    force: bool,
    settings: Settings,
) -> tuple[Plan, list[str]]:
    """Move a stop to ``van_code``'s route at ``position`` (the end if None), or out of every
    route (``van_code`` None), as a new version of the plan. A move that breaks a window, a
    capacity or a shift is refused with the reason, unless forced: then it is kept with the
    reason as a warning, and the ETAs show how late the van will be."""
    _lock_wave(session, plan.wave_id)
    _require_newest(session, plan, "move stops on")
    view = plan_view(session, plan)
    sequences = {van.code: [s.fulfillment_id for s in stops] for _, van, stops in view.routes}
    unassigned = [s.fulfillment_id for s in view.unassigned]
    stop = _plan_stop(view, fulfillment_id)
    if stop.status != StopStatus.PLANNED:
        raise MoveRefused(f"stop {fulfillment_id} is {stop.status} already", stop=fulfillment_id)
    vans = {v.code: v for v in planning.active_vans(session, view.node.id)}  # type: ignore[arg-type]
    vans.update({van.code: van for _, van, _ in view.routes})
    if van_code is not None and van_code not in vans:
        raise Unprocessable(f"no active van {van_code} at {view.node.code}", field="van")
    source = next((v for v, s in sequences.items() if fulfillment_id in s), None)
    if source is not None:
        sequences[source].remove(fulfillment_id)
    else:
        unassigned.remove(fulfillment_id)
    if van_code is None:
        unassigned.append(fulfillment_id)
    else:
        target = sequences.setdefault(van_code, [])
        if position is not None and position > len(target):
            raise Unprocessable(
                f"position {position} is past the end of van {van_code}'s route "
                f"({len(target)} stops)",
                field="position",
            )
        target.insert(len(target) if position is None else position, fulfillment_id)
    deliveries = [delivery_of(s) for _, _, stops in view.routes for s in stops] + [
        delivery_of(s) for s in view.unassigned
    ]
    booked = planning.bookings(session, view.wave, settings)
    wp = planning.build_problem(
        view.node, view.wave, deliveries, vans.values(), settings, booked=booked
    )
    changed = {v for v in (source, van_code) if v is not None}
    warnings = [
        f"van {v}: {reason}"
        for v in sorted(changed)
        if (reason := _why_infeasible(wp, v, sequences.get(v, []))) is not None
    ]
    if warnings and not force:
        raise MoveRefused(
            f"moving {fulfillment_id} breaks the plan: {'; '.join(warnings)}",
            stop=fulfillment_id,
            reasons=warnings,
        )
    new = _copy_plan(session, view, sequences, unassigned, changed, wp, warnings)
    return new, warnings


def _plan_stop(view: PlanView, fulfillment_id: str) -> PlanStop:
    for _, _, stops in view.routes:
        for stop in stops:
            if stop.fulfillment_id == fulfillment_id:
                return stop
    for stop in view.unassigned:
        if stop.fulfillment_id == fulfillment_id:
            return stop
    raise NotFound(f"plan {view.plan.id} has no stop {fulfillment_id}", stop=fulfillment_id)


def _why_infeasible(wp: WaveProblem, van_code: str, stops: list[str]) -> str | None:
    """The planner's own scheduler and checker decide whether a route holds."""
    problem, context = wp.routing()
    vehicle = next(v for v in problem.vehicles if v.id == van_code)
    try:
        route = schedule_route(context, vehicle, stops)
    except Infeasible as exc:
        return str(exc)
    alone = problem.model_copy(
        update={"vehicles": (vehicle,), "stops": tuple(context.stops_of(stops))}
    )
    solution = Solution(
        routes=(route,), cost=route.cost, distance=route.distance, engine="dispatcher"
    )
    violations = check(alone, solution, context.distances, context.durations)
    return violations[0] if violations else None


def _copy_plan(
    session: Session,
    view: PlanView,
    sequences: dict[str, list[str]],
    unassigned: list[str],
    changed: set[str],
    wp: WaveProblem,
    warnings: list[str],
) -> Plan:
    """The next version: unchanged routes copied, changed ones re-timed (late if forced)."""
    assert view.wave.id is not None
    version = next_plan_number(session, view.wave.id)
    old = view.plan
    plan = Plan(
        wave_id=old.wave_id,
        version=version,
        origin="move",
        engine=old.engine,
        stops=old.stops,
        warnings=warnings,
    )
    session.add(plan)
    session.flush()
    old_stops = {s.fulfillment_id: s for _, _, stops in view.routes for s in stops}
    old_stops.update({s.fulfillment_id: s for s in view.unassigned})
    old_routes = {van.code: route for route, van, _ in view.routes}
    assert plan.id is not None
    for van_code, stop_ids in sequences.items():
        if not stop_ids:
            continue
        van = wp.vans[van_code]
        before = old_routes.get(van_code)
        if before is not None:  # as it was; re-timed below if the move touched it
            route = PlanRoute(**before.model_dump(exclude={"id", "plan_id"}), plan_id=plan.id)
        else:  # a van that had no route: timed below
            route = PlanRoute(
                plan_id=plan.id,
                van_id=van.id,  # type: ignore[arg-type]
                depart_at=wp.clock.at(0),
                return_at=wp.clock.at(0),
            )
        session.add(route)
        session.flush()
        assert route.id is not None
        copies = [_copy_stop(old_stops[s], plan.id, route.id, k) for k, s in enumerate(stop_ids)]
        if van_code in changed or before is None:
            _retime(wp, van_code, stop_ids, route, copies)
        session.add_all(copies)
    session.add_all(_copy_stop(old_stops[s], plan.id, None, k) for k, s in enumerate(unassigned))
    session.flush()
    _total(session, plan)
    return plan


def _copy_stop(stop: PlanStop, plan_id: int, route_id: int | None, position: int) -> PlanStop:
    data = stop.model_dump(exclude={"id", "plan_id", "route_id", "position"})
    copy = PlanStop(**data, plan_id=plan_id, route_id=route_id, position=position)
    if route_id is None:
        copy.eta = copy.departure = None
        copy.unassigned_reason = (
            copy.unassigned_reason or "moved out of every route by a dispatcher"
        )
    else:
        copy.unassigned_reason = None
    return copy


def _retime(
    wp: WaveProblem, van_code: str, stop_ids: list[str], route: PlanRoute, stops: list[PlanStop]
) -> None:
    problem, context = wp.routing()
    vehicle = next(v for v in problem.vehicles if v.id == van_code)
    try:
        scheduled = schedule_route(context, vehicle, stop_ids)
    except Infeasible:
        scheduled = None
    if scheduled is not None:
        route.depart_at, route.return_at = wp.clock.at(scheduled.start), wp.clock.at(scheduled.end)
        route.distance_m, route.duration_s = scheduled.distance, scheduled.duration
        route.cost = scheduled.cost / planning.COST_SCALE
        route.load = list(scheduled.peak_load)
        for stop, visit in zip(stops, scheduled.visits, strict=True):
            stop.eta, stop.departure = wp.clock.at(visit.start), wp.clock.at(visit.departure)
            stop.wait_s, stop.late = visit.wait, False
        return
    times = projected(context, vehicle, stop_ids, vehicle.shift.start)
    route.depart_at, route.return_at = wp.clock.at(vehicle.shift.start), wp.clock.at(times.end)
    route.duration_s = times.end - vehicle.shift.start
    for stop, start, late in zip(stops, times.starts, times.late, strict=True):
        stop.eta = wp.clock.at(start)
        stop.late = late > 0


def _total(session: Session, plan: Plan) -> None:
    routes = session.exec(select(PlanRoute).where(PlanRoute.plan_id == plan.id)).all()
    plan.cost = round(sum(r.cost for r in routes), 6)
    plan.distance_m = sum(r.distance_m for r in routes)
    plan.duration_s = sum(r.duration_s for r in routes)
    plan.vans_used = len(routes)
    plan.unassigned = len(
        session.exec(
            select(PlanStop.id).where(PlanStop.plan_id == plan.id, col(PlanStop.route_id).is_(None))
        ).all()
    )
    session.add(plan)


def publish(session: Session, plan: Plan, settings: Settings, *, now: datetime) -> Plan:
    """Send the plan to the drivers and fix the customers' ETAs; a stop no van serves moves to
    the next wave today, or to a carrier or the next day, with the reason on its timeline.

    Only the newest version is published, and only if it knows every order of the wave; what
    drivers reported on the plan it replaces is carried over."""
    if plan.status == PlanStatus.PUBLISHED:
        return plan
    if plan.status == PlanStatus.SUPERSEDED:
        raise Conflict(f"plan {plan.id} was superseded by a later version", plan=plan.id)
    wave = _lock_wave(session, plan.wave_id)
    _require_newest(session, plan, "publish")
    missing = unplanned(session, wave, plan)
    if missing:
        raise Conflict(
            f"{len(missing)} order(s) joined the wave after this plan was made: re-plan first",
            fulfillments=missing[:20],
        )
    current = published_plan(session, plan.wave_id)
    left = _left_since(session, current, plan)
    if left:
        raise Conflict(
            f"{', '.join(left)} left on the route drivers follow after version {plan.version} "
            "was made: re-plan the wave first",
            vans=left,
        )
    node = session.get(Node, wave.node_id)
    assert node is not None
    told: dict[str, tuple[str, datetime | None]] = {}
    if current is not None:
        _carry_progress(session, current, plan)
        for _, van, stops in plan_view(session, current).routes:
            told.update({s.fulfillment_id: (van.code, s.eta) for s in stops})
        current.status = PlanStatus.SUPERSEDED
        session.add(current)
        session.flush()
    plan.status, plan.published_at = PlanStatus.PUBLISHED, now
    wave.status = WaveStatus.PUBLISHED
    session.add_all([plan, wave])
    view = plan_view(session, plan)
    live = _live(session, view)
    for route, van, stops in view.routes:
        active = [s for s in stops if s.fulfillment_id in live]
        enqueue(session, "route.dispatched", _route_message(view, route, van, active))
        for stop in active:
            if stop.status == StopStatus.PLANNED:
                eta = planning.in_hand(stop.eta, settings) if stop.eta else None
                tracking.follow_own_fleet(session, stop.fulfillment_id, eta, now)
            if stop.status == StopStatus.PLANNED and _changed(
                told.get(stop.fulfillment_id), van.code, stop.eta
            ):
                record_event(
                    session,
                    stop.order_id,
                    "delivery.scheduled",
                    {
                        "wave": wave.id,
                        "plan": plan.id,
                        "van": van.code,
                        "eta": stop.eta.isoformat() if stop.eta else None,
                        "late": stop.late,
                    },
                    at=now,
                )
    for stop in view.unassigned:
        _reschedule(session, wave, node, stop, settings, now)
    session.flush()
    return plan


def _live(session: Session, view: PlanView) -> set[str]:
    """The plan's fulfillments still to deliver (a cancelled order leaves the driver's list)."""
    ids = [s.fulfillment_id for _, _, stops in view.routes for s in stops]
    rows = session.exec(
        select(Fulfillment.id).where(
            col(Fulfillment.id).in_(ids),
            col(Fulfillment.status).in_(
                [FulfillmentStatus.PENDING, FulfillmentStatus.OUT_FOR_DELIVERY]
            ),
        )
    ).all()
    return set(rows)


ETA_NEWS = timedelta(minutes=5)


def _changed(told: tuple[str, datetime | None] | None, van: str, eta: datetime | None) -> bool:
    """Whether a customer's delivery changed enough since the last publication to say so."""
    if told is None:
        return True
    van_before, eta_before = told
    if van_before != van or (eta_before is None) != (eta is None):
        return True
    return eta is not None and eta_before is not None and abs(eta - eta_before) > ETA_NEWS


def _route_message(
    view: PlanView, route: PlanRoute, van: Van, stops: Sequence[PlanStop]
) -> dict[str, object]:
    return {
        "plan": view.plan.id,
        "wave": view.wave.id,
        "node": view.node.code,
        "van": van.code,
        "depart_at": route.depart_at.isoformat(),
        "stops": [
            {
                "fulfillment": s.fulfillment_id,
                "order": s.order_id,
                "lat": s.lat,
                "lon": s.lon,
                "eta": s.eta.isoformat() if s.eta else None,
            }
            for s in stops
        ],
    }


def _reschedule(
    session: Session, wave: Wave, node: Node, stop: PlanStop, settings: Settings, now: datetime
) -> None:
    """A stop no van of this wave serves: the next wave today with a new window, else a
    carrier (or the next day's first wave), recorded on the order's timeline with the reason."""
    fulfillment = session.get(Fulfillment, stop.fulfillment_id)
    if fulfillment is None or fulfillment.wave_id != wave.id:
        return  # already moved by an earlier publication
    if fulfillment.status != FulfillmentStatus.PENDING:
        return  # cancelled meanwhile: nothing to deliver
    reason = stop.unassigned_reason or "no van could serve it"
    later = next_wave(session, wave, node, now)
    if later is None and settings.dispatch_last_resort == "next_day":
        tomorrow = _first_cutoff_after(node, now)
        later = wave_for(session, node, tomorrow) if tomorrow is not None else None
    data: dict[str, object] = {
        "fulfillment": fulfillment.id,
        "from_wave": wave.id,
        "reason": reason,
    }
    if later is None:
        fulfillment.wave_id = None
        fulfillment.status = FulfillmentStatus.HANDED_TO_CARRIER
        request_shipment(session, fulfillment)  # the parcel carrier takes it, followed from then
        kind = "delivery.handed_to_carrier"
    else:
        fulfillment.wave_id = later.id
        same_day = later.local_date == wave.local_date
        kind = "delivery.moved_to_next_wave" if same_day else "delivery.moved_to_next_day"
        data.update(_new_promise(session, stop.order_id, later, settings))
        if later.status != WaveStatus.OPEN:
            request_plan(session, later, "order")
    session.add(fulfillment)
    record_event(session, stop.order_id, kind, data, at=now)
    timeline.publish(session, [(stop.order_id, kind, data, now)])


def _new_promise(
    session: Session, order_id: str, wave: Wave, settings: Settings
) -> dict[str, object]:
    """The window the moved delivery can now keep, from its new wave's cutoff; the order's
    promise becomes that, and the timeline keeps the one it replaces."""
    order = session.get(Order, order_id)
    assert order is not None
    before = {"start": order.promise_start.isoformat(), "end": order.promise_end.isoformat()}
    start = wave.cutoff_at.astimezone(UTC) + timedelta(minutes=settings.same_day_window_offset_min)
    order.promise_start = start
    order.promise_end = start + timedelta(minutes=settings.same_day_window_length_min)
    session.add(order)
    after = {"start": order.promise_start.isoformat(), "end": order.promise_end.isoformat()}
    return {
        "wave": wave.id,
        "cutoff": wave.cutoff_at.isoformat(),
        "promise_before": before,
        "promise": after,
    }


def _first_cutoff_after(node: Node, now: datetime) -> datetime | None:
    """The node's first cutoff on a later day (within a week)."""
    for days in range(1, 8):
        start_of_day = (now + timedelta(days=days)).astimezone(ZoneInfo(node.timezone))
        midnight = start_of_day.replace(hour=0, minute=0, second=0, microsecond=0)
        cutoff = next_cutoff(node, midnight)
        if cutoff is not None:
            return cutoff
    return None
