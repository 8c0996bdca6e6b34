"""Dispatch: plan waves, let a dispatcher adjust and publish plans, and follow the vans.

Plans are immutable versions: planning, a move or a re-plan writes a new version of the wave's
plan, so what a dispatcher saw, what was published and what the drivers did stay on record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
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
from fulfill.dispatch.planning import Delivery, WaveProblem
from fulfill.dispatch.waves import (
    claim_planning,
    finish_planning,
    next_wave,
    request_plan,
    wave_for,
)
from fulfill.errors import Conflict, NotFound, Unprocessable
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment, FulfillmentStatus
from fulfill.orders.service import record_event
from fulfill.outbox.service import enqueue
from fulfill.sourcing.service import next_cutoff
from fulfill_routing.checker import check
from fulfill_routing.model import Route, Solution, Unserved
from fulfill_routing.schedule import Infeasible, projected, schedule_route
from fulfill_routing.solve import solve


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


def latest_plan(session: Session, wave_id: int) -> Plan | None:
    return session.exec(
        select(Plan).where(Plan.wave_id == wave_id).order_by(col(Plan.version).desc())
    ).first()


def published_plan(session: Session, wave_id: int) -> Plan | None:
    return session.exec(
        select(Plan).where(Plan.wave_id == wave_id, Plan.status == PlanStatus.PUBLISHED)
    ).first()


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


def plan_wave(
    engine: Engine, wave_id: int, settings: Settings, now: datetime | None = None
) -> Plan | None:
    """Plan the wave's newest requested version, once: a second worker, a retry or a stale
    request finds nothing to do. The solve runs outside any transaction."""
    now = now or utcnow()
    with session_scope(engine) as session:
        version = claim_planning(session, wave_id, now, settings.dispatch_planning_lease_s)
        session.commit()
    if version is None:
        return None
    try:
        with session_scope(engine) as session:
            wave = get_wave(session, wave_id)
            node = session.get(Node, wave.node_id)
            assert node is not None
            previous = latest_plan(session, wave_id)
            kept = _kept_routes(session, previous) if previous else {}
            previous_routes = _sequences(session, previous) if previous else {}
            deliveries = planning.wave_deliveries(session, wave)
            vans = planning.active_vans(session, node.id)  # type: ignore[arg-type]
            wp = planning.build_problem(
                node, wave, deliveries, vans, settings, previous=previous_routes
            )
            origin = _origin(wave, previous)
            session.expunge_all()
        solution, warnings = _solve_keeping(wp, kept, settings)
        with session_scope(engine) as session:
            wave = get_wave(session, wave_id)
            try:
                with session.begin_nested():
                    plan = planning.store_plan(
                        session, wave, version, origin, wp, solution, locked=kept, warnings=warnings
                    )
            except IntegrityError:  # this version was stored by another worker
                return None
            _carry_progress(session, previous, plan)
            finish_planning(session, wave_id, version)
            if settings.dispatch_auto_publish and wave.status == WaveStatus.CLOSED:
                publish(session, plan, settings, now=utcnow())
            session.commit()
            return plan
    finally:
        with session_scope(engine) as session:
            finish_planning(session, wave_id, 0)  # releases the lease if planning failed
            session.commit()


def _origin(wave: Wave, previous: Plan | None) -> str:
    if wave.status == WaveStatus.OPEN:
        return "dispatcher"  # planned ahead of the cutoff
    return "replan" if previous is not None else "cutoff"


def _sequences(session: Session, plan: Plan) -> dict[str, list[str]]:
    view = plan_view(session, plan)
    return {van.code: [s.fulfillment_id for s in stops] for _, van, stops in view.routes}


def _kept_routes(session: Session, plan: Plan) -> dict[str, list[str]]:
    """Routes a re-plan leaves alone: locked by the dispatcher, or already on the road."""
    view = plan_view(session, plan)
    return {
        van.code: [s.fulfillment_id for s in stops]
        for route, van, stops in view.routes
        if route.locked or route.status != RouteStatus.PLANNED
    }


def _solve_keeping(
    wp: WaveProblem, kept: dict[str, list[str]], settings: Settings
) -> tuple[Solution, list[str]]:
    """Solve the wave without the kept routes' vans and stops, then put those routes back."""
    started = time.perf_counter()
    problem = wp.problem
    warnings: list[str] = []
    kept = {
        v: [s for s in stops if s in wp.deliveries] for v, stops in kept.items() if v in wp.vans
    }
    kept_routes: list[Route] = []
    for van_code, stops in kept.items():
        vehicle = next(v for v in problem.vehicles if v.id == van_code)
        try:
            kept_routes.append(schedule_route(wp.context, vehicle, stops))
        except Infeasible as exc:
            warnings.append(f"van {van_code}: kept route re-planned because {exc}")
    kept_vans = {r.vehicle for r in kept_routes}
    kept_stops = {v.stop for r in kept_routes for v in r.visits}
    rest = problem.model_copy(
        update={
            "vehicles": tuple(v for v in problem.vehicles if v.id not in kept_vans),
            "stops": tuple(s for s in problem.stops if s.id not in kept_stops),
            "initial_routes": {
                v: tuple(s for s in r if s not in kept_stops)
                for v, r in problem.initial_routes.items()
                if v not in kept_vans
            },
        }
    )
    if not rest.stops:
        solved = Solution(routes=(), cost=0, distance=0, engine="none")
    elif not rest.vehicles:
        reason = "no van is free: every van of the node is locked or on the road"
        solved = Solution(
            routes=(),
            unserved=tuple(Unserved(stop=s.id, reason=reason) for s in rest.stops),
            cost=0,
            distance=0,
            engine="none",
        )
    else:
        solved = solve(
            rest, engine=settings.dispatch_engine, time_limit_s=settings.dispatch_time_limit_s
        )
    routes = solved.routes + tuple(kept_routes)
    return (
        Solution(
            routes=routes,
            unserved=solved.unserved,
            cost=sum(r.cost for r in routes),
            distance=sum(r.distance for r in routes),
            engine=solved.engine,
            seconds=time.perf_counter() - started,
            feasible=solved.feasible,
        ),
        warnings,
    )


def _carry_progress(session: Session, previous: Plan | None, plan: Plan) -> None:
    """What the drivers already reported stays true in the new version."""
    if previous is None:
        return
    source = published_plan(session, plan.wave_id) or previous
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
        if before is not None:
            route.status = before.status
            route.last_lat, route.last_lon, route.last_seen_at = (
                before.last_lat, before.last_lon, before.last_seen_at,
            )  # fmt: skip
            route.locked = route.locked or before.locked
    for stop in session.exec(select(PlanStop).where(PlanStop.plan_id == plan.id)).all():
        old = old_stops.get(stop.fulfillment_id)
        if old is not None and old.status != StopStatus.PLANNED:
            stop.status, stop.done_at, stop.outcome = old.status, old.done_at, old.outcome
            stop.late = old.late
    session.flush()


# Dispatcher actions.


def ask_for_plan(session: Session, wave: Wave) -> int:
    """Plan the wave now (it stays open until its cutoff if it is open); the version to expect."""
    return request_plan(session, wave)


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
    deliveries = [_delivery_of(s) for _, _, stops in view.routes for s in stops] + [
        _delivery_of(s) for s in view.unassigned
    ]
    wp = planning.build_problem(view.node, view.wave, deliveries, vans.values(), settings)
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


def _delivery_of(stop: PlanStop) -> Delivery:
    return Delivery(
        fulfillment_id=stop.fulfillment_id,
        order_id=stop.order_id,
        lat=stop.lat,
        lon=stop.lon,
        window_start=stop.window_start,
        window_end=stop.window_end,
        parcels=stop.parcels,
        weight_kg=stop.weight_kg,
    )


def _why_infeasible(wp: WaveProblem, van_code: str, stops: list[str]) -> str | None:
    """The planner's own scheduler and checker decide whether a route holds."""
    vehicle = next(v for v in wp.problem.vehicles if v.id == van_code)
    try:
        route = schedule_route(wp.context, vehicle, stops)
    except Infeasible as exc:
        return str(exc)
    alone = wp.problem.model_copy(
        update={"vehicles": (vehicle,), "stops": tuple(wp.context.stops_of(stops))}
    )
    solution = Solution(
        routes=(route,), cost=route.cost, distance=route.distance, engine="dispatcher"
    )
    violations = check(alone, solution, wp.context.distances, wp.context.durations)
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
    version = request_plan(session, view.wave)
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
    for van_code, stop_ids in sequences.items():
        if not stop_ids:
            continue
        van = wp.vans[van_code]
        before = old_routes.get(van_code)
        route = PlanRoute(
            plan_id=plan.id,  # type: ignore[arg-type]
            van_id=van.id,  # type: ignore[arg-type]
            locked=before.locked if before else False,
            status=before.status if before else RouteStatus.PLANNED,
            depart_at=before.depart_at if before else wp.clock.at(0),
            return_at=before.return_at if before else wp.clock.at(0),
            distance_m=before.distance_m if before else 0,
            duration_s=before.duration_s if before else 0,
            cost=before.cost if before else 0.0,
            load=list(before.load) if before else [],
            rest=before.rest if before else None,
            last_lat=before.last_lat if before else None,
            last_lon=before.last_lon if before else None,
            last_seen_at=before.last_seen_at if before else None,
        )
        session.add(route)
        session.flush()
        copies = [_copy_stop(old_stops[s], plan.id, route.id, k) for k, s in enumerate(stop_ids)]  # type: ignore[arg-type]
        if van_code in changed or before is None:
            _retime(wp, van_code, stop_ids, route, copies)
        session.add_all(copies)
    assert plan.id is not None
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
    vehicle = next(v for v in wp.problem.vehicles if v.id == van_code)
    try:
        scheduled = schedule_route(wp.context, vehicle, stop_ids)
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
    times = projected(wp.context, vehicle, stop_ids, vehicle.shift.start)
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
    the next wave today, or to a carrier or the next day, with the reason on its timeline."""
    if plan.status == PlanStatus.PUBLISHED:
        return plan
    if plan.status == PlanStatus.SUPERSEDED:
        raise Conflict(f"plan {plan.id} was superseded by a later version", plan=plan.id)
    wave = get_wave(session, plan.wave_id)
    node = session.get(Node, wave.node_id)
    assert node is not None
    current = published_plan(session, plan.wave_id)
    if current is not None:
        if current.version > plan.version:
            raise Conflict(f"a later version ({current.version}) is published", plan=plan.id)
        current.status = PlanStatus.SUPERSEDED
        session.add(current)
        session.flush()
    plan.status, plan.published_at = PlanStatus.PUBLISHED, now
    wave.status = WaveStatus.PUBLISHED
    session.add_all([plan, wave])
    view = plan_view(session, plan)
    for route, van, stops in view.routes:
        enqueue(session, "route.dispatched", _route_message(view, route, van, stops))
        for stop in stops:
            if stop.status == StopStatus.PLANNED:
                record_event(session, stop.order_id, "delivery.scheduled", {
                    "wave": wave.id, "plan": plan.id, "van": van.code,
                    "eta": stop.eta.isoformat() if stop.eta else None,
                    "late": stop.late,
                }, at=now)  # fmt: skip
    for stop in view.unassigned:
        _reschedule(session, wave, node, stop, settings, now)
    session.flush()
    return plan


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
    fulfillment = session.get(Fulfillment, stop.fulfillment_id)
    if fulfillment is None or fulfillment.wave_id != wave.id:
        return  # already moved by an earlier publication
    later = next_wave(session, wave, node, now)
    reason = stop.unassigned_reason or "no van could serve it"
    if later is not None:
        fulfillment.wave_id = later.id
        kind, data = (
            "delivery.moved_to_next_wave",
            {"wave": later.id, "cutoff": later.cutoff_at.isoformat()},
        )
    elif settings.dispatch_last_resort == "next_day":
        tomorrow = _first_cutoff_after(node, now)
        if tomorrow is None:
            fulfillment.status = FulfillmentStatus.HANDED_TO_CARRIER
            kind, data = "delivery.handed_to_carrier", {}
        else:
            fulfillment.wave_id = wave_for(session, node, tomorrow).id
            kind, data = "delivery.moved_to_next_day", {"cutoff": tomorrow.isoformat()}
    else:
        fulfillment.wave_id = None
        fulfillment.status = FulfillmentStatus.HANDED_TO_CARRIER
        kind, data = "delivery.handed_to_carrier", {}
    session.add(fulfillment)
    record_event(
        session, stop.order_id, kind, {**data, "from_wave": wave.id, "reason": reason}, at=now
    )


def _first_cutoff_after(node: Node, now: datetime) -> datetime | None:
    """The node's first cutoff on a later day (within a week)."""
    for days in range(1, 8):
        start_of_day = (now + timedelta(days=days)).astimezone(ZoneInfo(node.timezone))
        midnight = start_of_day.replace(hour=0, minute=0, second=0, microsecond=0)
        cutoff = next_cutoff(node, midnight)
        if cutoff is not None:
            return cutoff
    return None
