"""Does one more same-day parcel fit a node's wave? Asked on every promise and every order.

Always the planner's insertion check: into the wave's live plan until its cutoff (an empty one
before its first order, so a door no van can reach in its window is refused for time, not for
capacity), then into the plan the vans follow, on a route that has not left yet. Both count the
window, the vans' shifts less the hours other waves book, breaks and loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col

from fulfill.config import Settings
from fulfill.dispatch import live, live_routes, planning, repository
from fulfill.dispatch.models import Plan, PlanRoute, PlanStop, RouteStatus, Van, Wave, WaveStatus
from fulfill.dispatch.recent import Recent
from fulfill.dispatch.repository import Delivery
from fulfill.dispatch.waves import find_wave
from fulfill.inventory.models import Node
from fulfill.orders.windows import PromiseWindow
from fulfill_routing import Infeasible, Solution, best_insertion, schedule_route

NEW_STOP = "new"
# A stored stop as the planner's Delivery, field by field.
_DELIVERY_COLUMNS = [
    col(c)
    for c in (
        PlanStop.fulfillment_id,
        PlanStop.order_id,
        PlanStop.lat,
        PlanStop.lon,
        PlanStop.window_start,
        PlanStop.window_end,
        PlanStop.parcels,
        PlanStop.weight_kg,
    )
]


def same_day_room(
    session: Session,
    node: Node,
    window: PromiseWindow,
    destination: tuple[float, float],
    weight_kg: float,
    settings: Settings,
) -> str | None:
    """None if a parcel of ``weight_kg`` for ``destination`` fits the wave of ``window``'s
    cutoff at ``node``; else why not, in words a storefront can show."""
    assert node.id is not None and window.order_by is not None
    vans = repository.active_vans(session, node.id)
    if not vans:
        return f"{node.code} has no van for same-day delivery"
    new = Delivery(NEW_STOP, NEW_STOP, *destination, window.start, window.end, 1, weight_kg)
    wave = find_wave(session, node.id, window.order_by)
    if wave is None or wave.status == WaveStatus.OPEN:
        return _no_live_insertion(session, node, wave, window.order_by, new, settings)
    assert wave.id is not None
    plan = repository.current_plan(session, wave.id)
    if plan is None:
        return _no_live_insertion(session, node, wave, window.order_by, new, settings)
    return _no_insertion(session, node, wave, plan, vans, new, settings)


def _no_live_insertion(
    session: Session,
    node: Node,
    wave: Wave | None,
    cutoff_at: datetime,
    new: Delivery,
    settings: Settings,
) -> str | None:
    """Why the new stop fits nowhere in the wave's live plan (an empty one if the wave has no
    order yet), if not."""
    if wave is None:
        local_date = cutoff_at.astimezone(ZoneInfo(node.timezone)).date().isoformat()
        assert node.id is not None
        wave = Wave(node_id=node.id, local_date=local_date, cutoff_at=cutoff_at)  # not stored
    plan = live.live_plan(session, node, wave, settings)
    if plan is None:
        return f"{node.code} has no van for same-day delivery"
    fit = live_routes.fit(plan, new, settings)
    return None if fit.fits else f"no place on the wave's vans: {fit.reason}"


def _no_insertion(
    session: Session,
    node: Node,
    wave: Wave,
    plan: Plan,
    vans: list[Van],
    new: Delivery,
    settings: Settings,
) -> str | None:
    """Why the new stop fits no route of the wave's current plan that has not left, if not."""
    routes = session.execute(
        sa.select(col(PlanRoute.status), col(Van.code))
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .where(col(PlanRoute.plan_id) == plan.id)
    ).all()
    on_road = frozenset(code for status, code in routes if status != RouteStatus.PLANNED)
    free = [v for v in vans if v.code not in on_road]
    if not free:
        return "every van of the wave has left"
    booked = repository.bookings(session, wave, settings)
    # The id and the creation time: SQLite may give a rolled-back plan's id to the next one.
    key = (
        plan.id,
        plan.created_at,
        on_road,
        tuple(sorted(booked.items())),
        tuple(live.van_key(v) for v in free),
        live.settings_key(settings),
    )
    base = _PLANS.get(key)
    if base is None:
        planned = _planned(session, node, wave, plan.id, on_road, free, booked, settings)
        base = _PLANS.put(key, planned)
    if base.solution is None:  # a forced move made a route late: project it leniently elsewhere
        return "the wave's current plan is already late; ask the dispatcher"
    _, context = planning.with_delivery(base.wave, new, settings)
    fit = best_insertion(context, base.solution, NEW_STOP)
    return None if fit.fits else f"no place on the wave's vans: {fit.reason}"


@dataclass(frozen=True)
class _Planned:
    """A plan's routes that have not left, scheduled: the same for every promise until the
    plan changes (a new version), a van leaves, or the fleet or settings change."""

    wave: planning.WaveProblem
    solution: Solution | None  # None: a route is already late


def _planned(
    session: Session,
    node: Node,
    wave: Wave,
    plan_id: int | None,
    on_road: frozenset[str],
    free: list[Van],
    booked: dict[str, repository.Booked],
    settings: Settings,
) -> _Planned:
    # Plain columns, not ORM objects: a wave may hold 1,000 stops.
    rows = session.execute(
        sa.select(col(Van.code), *_DELIVERY_COLUMNS)
        .join(PlanRoute, col(PlanRoute.van_id) == Van.id)
        .join(PlanStop, col(PlanStop.route_id) == PlanRoute.id)
        .where(col(PlanRoute.plan_id) == plan_id)
        .order_by(col(Van.code), col(PlanStop.position))
    ).all()
    sequences: dict[str, list[str]] = {}
    deliveries = []
    serving = {v.code for v in free}
    for code, *stop in rows:
        if code not in serving:  # on the road, or a van taken out of service since the plan
            continue
        delivery = Delivery(*stop)
        sequences.setdefault(code, []).append(delivery.fulfillment_id)
        deliveries.append(delivery)
    wp = planning.build_problem(node, wave, deliveries, free, settings, booked=booked)
    problem, context = wp.routing()
    vehicles = {v.id: v for v in problem.vehicles}
    try:
        routes = tuple(
            schedule_route(context, vehicles[code], ids) for code, ids in sequences.items()
        )
    except Infeasible:
        return _Planned(wp, None)
    return _Planned(wp, Solution(routes=routes, cost=0, distance=0, engine="plan"))


_PLANS: Recent[_Planned] = Recent(size=4)  # a 1,000-stop plan's matrices are 16 MB
