"""Does one more same-day parcel fit a node's wave? Asked on every promise and every order.

Before anything is planned, the wave's vans bound it: their parcels and kilograms against what
the wave holds already. Once the wave has a plan, the planner's insertion check decides whether
the new door fits a route that has not left yet (its window, the vans' shifts, the loads).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import planning
from fulfill.dispatch.models import PlanRoute, PlanStop, RouteStatus, Van, Wave
from fulfill.dispatch.planning import Delivery, delivery_of
from fulfill.dispatch.waves import find_wave
from fulfill.inventory.models import Node
from fulfill.sourcing.windows import PromiseWindow
from fulfill_routing.insertion import best_insertion
from fulfill_routing.model import Solution
from fulfill_routing.schedule import Infeasible, schedule_route

NEW_STOP = "new"


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
    vans = planning.active_vans(session, node.id)
    if not vans:
        return f"{node.code} has no van for same-day delivery"
    wave = find_wave(session, node.id, window.order_by)
    held = planning.wave_deliveries(session, wave) if wave is not None else []
    full = _over_capacity(vans, held, weight_kg)
    if full or wave is None:
        return full
    assert wave.id is not None
    plan = planning.current_plan(session, wave.id)
    if plan is None:
        return None
    return _no_insertion(session, node, wave, plan.id, vans, destination, window, weight_kg,
                         settings)  # fmt: skip


def _over_capacity(vans: list[Van], held: list[Delivery], weight_kg: float) -> str | None:
    parcels = sum(d.parcels for d in held) + 1
    kg = sum(d.weight_kg for d in held) + weight_kg
    if parcels > sum(v.capacity_parcels for v in vans):
        return f"the wave's vans are full ({parcels - 1} parcels)"
    if kg > sum(v.capacity_kg for v in vans):
        return f"the wave's vans are full ({kg - weight_kg:.0f} kg)"
    return None


def _no_insertion(
    session: Session,
    node: Node,
    wave: Wave,
    plan_id: int | None,
    vans: list[Van],
    destination: tuple[float, float],
    window: PromiseWindow,
    weight_kg: float,
    settings: Settings,
) -> str | None:
    rows = session.exec(
        select(PlanRoute, Van, PlanStop)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .join(PlanStop, col(PlanStop.route_id) == PlanRoute.id)
        .where(PlanRoute.plan_id == plan_id)
        .order_by(col(Van.code), col(PlanStop.position))
    ).all()
    on_road = {van.code for route, van, _ in rows if route.status != RouteStatus.PLANNED}
    free = [v for v in vans if v.code not in on_road]
    if not free:
        return "every van of the wave has left"
    sequences: dict[str, list[str]] = {}
    deliveries = []
    for _, van, stop in rows:
        if van.code in on_road:
            continue
        sequences.setdefault(van.code, []).append(stop.fulfillment_id)
        deliveries.append(delivery_of(stop))
    new = Delivery(NEW_STOP, NEW_STOP, *destination, window.start, window.end, 1, weight_kg)
    wp = planning.build_problem(node, wave, [*deliveries, new], free, settings)
    problem, context = wp.routing()
    vehicles = {v.id: v for v in problem.vehicles}
    try:
        routes = tuple(
            schedule_route(context, vehicles[code], ids) for code, ids in sequences.items()
        )
    except Infeasible:  # a forced move made a route late: project it leniently elsewhere
        return "the wave's current plan is already late; ask the dispatcher"
    solution = Solution(routes=routes, cost=0, distance=0, engine="plan")
    fit = best_insertion(context, solution, NEW_STOP)
    return None if fit.fits else f"no van of the wave can reach it in time: {fit.reason}"
