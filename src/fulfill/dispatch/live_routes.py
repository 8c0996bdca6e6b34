"""A wave's live plan as the planner sees it, apart from its rows: its routes scheduled, a door's
insertion check, a stop inserted, a polished plan merged with what joined since."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from fulfill.config import Settings
from fulfill.dispatch import planning
from fulfill.dispatch.repository import Delivery
from fulfill_routing import (
    Infeasible,
    Insertion,
    Route,
    Solution,
    Unserved,
    best_insertion,
    schedule_route,
)

NO_VAN = "no van of the wave could take it when it joined"
Places = dict[str, tuple[str | None, int]]  # fulfillment: (van, stored position)
StoredKey = tuple[object, ...]


@dataclass(frozen=True)
class LivePlan:
    """A wave's live plan, scheduled: ``wave``'s vehicles are the vans that can still take a
    stop (their hours booked as the day's other waves have them); ``places`` is what the rows
    say of every stop; ``key`` names it in this process's memory."""

    wave: planning.WaveProblem
    solution: Solution
    places: Places
    key: tuple[StoredKey, tuple[object, ...]]

    def route_of(self, van: str) -> Route | None:
        return next((r for r in self.solution.routes if r.vehicle == van), None)


def fit(plan: LivePlan, delivery: Delivery, settings: Settings) -> Insertion:
    """Where ``delivery`` would go in ``plan`` at the least added cost, if anywhere."""
    _, context = planning.with_delivery(plan.wave, delivery, settings)
    return best_insertion(context, plan.solution, delivery.fulfillment_id)


def as_solution(wp: planning.WaveProblem, routes: dict[str, list[str]]) -> Solution:
    """``routes`` scheduled in ``wp``'s problem; a route that no longer fits (its van gone, its
    hours taken) leaves its stops unserved with the reason."""
    problem, context = wp.routing()
    vehicles = {v.id: v for v in problem.vehicles}
    scheduled: list[Route] = []
    unserved: list[Unserved] = []
    placed: set[str] = set()
    for van, planned in routes.items():
        ids = [s for s in planned if s in context.stop_index]
        try:
            if van not in vehicles:
                raise Infeasible(f"{van} is out of service")
            scheduled.append(schedule_route(context, vehicles[van], ids))
            placed.update(ids)
        except Infeasible as exc:
            unserved.extend(Unserved(stop=s, reason=f"its van's route: {exc}") for s in ids)
    unserved.extend(Unserved(stop=s, reason=NO_VAN) for s in wp.deliveries if s not in placed)
    return Solution(
        routes=tuple(scheduled),
        unserved=tuple(u for u in unserved if u.stop in wp.deliveries),
        cost=sum(r.cost for r in scheduled),
        distance=sum(r.distance for r in scheduled),
        engine="live",
    )


def routes_in(places: Places, wanted: Iterable[str]) -> dict[str, list[str]]:
    by_van: dict[str, list[tuple[int, str]]] = {}
    for fulfillment_id in wanted:
        van, position = places.get(fulfillment_id, (None, 0))
        if van is not None:
            by_van.setdefault(van, []).append((position, fulfillment_id))
    return {van: [f for _, f in sorted(stops)] for van, stops in sorted(by_van.items())}


def with_stop(
    plan: LivePlan, delivery: Delivery, placed: Insertion, settings: Settings
) -> LivePlan:
    """``plan`` with ``delivery`` where ``placed`` puts it, its places moved as the rows are."""
    problem, context = planning.with_delivery(plan.wave, delivery, settings)
    wp = replace(
        plan.wave,
        problem=problem,
        context=context,
        deliveries={**plan.wave.deliveries, delivery.fulfillment_id: delivery},
    )
    return placed_in(replace(plan, wave=wp), delivery.fulfillment_id, placed)


def placed_in(plan: LivePlan, stop_id: str, placed: Insertion) -> LivePlan:
    """``plan`` with its stop ``stop_id`` (in its problem, on no route) where ``placed`` puts
    it; the places of the stops after it move down one, as the rows do."""
    assert placed.vehicle is not None and placed.position is not None
    problem, context = plan.wave.routing()
    van, index = placed.vehicle, placed.position
    route = plan.route_of(van)
    ids = [v.stop for v in route.visits] if route is not None else []
    at = plan.places[ids[index]][1] if index < len(ids) else _after_last(plan.places, van)
    ids.insert(index, stop_id)
    vehicle = next(v for v in problem.vehicles if v.id == van)
    routes = [r for r in plan.solution.routes if r.vehicle != van]
    routes.append(schedule_route(context, vehicle, ids))
    places: Places = {
        f: (v, p + 1 if v == van and p >= at else p) for f, (v, p) in plan.places.items()
    }
    places[stop_id] = (van, at)
    return replace(plan, solution=_with_routes(plan.solution, routes), places=places)


def merged(current: LivePlan, polished: dict[str, list[str]]) -> LivePlan | None:
    """``current`` with its routes as ``polished`` has them (a polish of an earlier revision of
    it), the stops placed since put back where they cost least; None if a stop that has a place
    in ``current`` would lose it."""
    known = current.wave.deliveries
    wanted = {van: [s for s in ids if s in known] for van, ids in polished.items()}
    solution = as_solution(current.wave, {van: ids for van, ids in wanted.items() if ids})
    served = {v.stop for r in solution.routes for v in r.visits}
    if any(s not in served for ids in wanted.values() for s in ids):
        return None  # a polished route no longer holds (a van's hours changed meanwhile)
    places: Places = {s: (None, 0) for s in known}
    places.update({v.stop: (r.vehicle, k) for r in solution.routes for k, v in enumerate(r.visits)})
    plan = replace(current, solution=solution.model_copy(update={"unserved": ()}), places=places)
    _, context = plan.wave.routing()
    for route in current.solution.routes:
        for visit in route.visits:
            if visit.stop in served:
                continue
            fit = best_insertion(context, plan.solution, visit.stop)
            if not fit.fits:
                return None
            plan = placed_in(plan, visit.stop, fit)
    return plan


def _with_routes(solution: Solution, routes: list[Route]) -> Solution:
    return solution.model_copy(
        update={
            "routes": tuple(sorted(routes, key=lambda r: r.vehicle)),
            "cost": sum(r.cost for r in routes),
            "distance": sum(r.distance for r in routes),
        }
    )


def _after_last(places: Places, van: str) -> int:
    taken = [p for v, p in places.values() if v == van]
    return max(taken) + 1 if taken else 0
