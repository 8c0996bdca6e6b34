"""A dispatcher's edits to a plan: lock a route, move a stop. Each edit writes a new version,
checked before it is kept."""

from __future__ import annotations

from sqlmodel import Session

from fulfill.config import Settings
from fulfill.dispatch import planning, repository
from fulfill.dispatch.models import (
    Plan,
    PlanRoute,
    PlanStop,
    StopStatus,
)
from fulfill.dispatch.planning import WaveProblem
from fulfill.dispatch.plans import (
    PlanView,
    copy_stop,
    lock_wave,
    plan_view,
    require_newest,
    route_of,
    total,
)
from fulfill.dispatch.repository import delivery_of
from fulfill.dispatch.waves import (
    next_plan_number,
)
from fulfill.errors import Conflict, NotFound, Unprocessable
from fulfill_routing import Infeasible, Solution, check, projected, schedule_route


class MoveRefused(Conflict):
    code = "move-refused"


def set_route_lock(session: Session, plan: Plan, van_code: str, locked: bool) -> PlanRoute:
    route = route_of(session, plan, van_code)
    route.locked = locked
    session.add(route)
    return route


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
    lock_wave(session, plan.wave_id)
    require_newest(session, plan, "move stops on")
    view = plan_view(session, plan)
    sequences = {van.code: [s.fulfillment_id for s in stops] for _, van, stops in view.routes}
    unassigned = [s.fulfillment_id for s in view.unassigned]
    stop = _plan_stop(view, fulfillment_id)
    if stop.status != StopStatus.PLANNED:
        raise MoveRefused(f"stop {fulfillment_id} is {stop.status} already", stop=fulfillment_id)
    vans = {v.code: v for v in repository.active_vans(session, view.node.id)}  # type: ignore[arg-type]
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
    booked = repository.bookings(session, view.wave, settings)
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
        copies = [copy_stop(old_stops[s], plan.id, route.id, k) for k, s in enumerate(stop_ids)]
        if van_code in changed or before is None:
            _retime(wp, van_code, stop_ids, route, copies)
        session.add_all(copies)
    session.add_all(copy_stop(old_stops[s], plan.id, None, k) for k, s in enumerate(unassigned))
    session.flush()
    total(session, plan)
    return plan


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
