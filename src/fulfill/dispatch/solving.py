"""Solving a wave: claim its request for a plan, solve it outside any transaction, and keep
the answer as a new version (published at once when the wave publishes itself).

Plans are immutable versions: planning, a move or a re-plan writes a new version of the wave's
plan, so what a dispatcher saw, what was published and what the drivers did stay on record.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.db import session_scope, utcnow
from fulfill.dispatch import live, live_routes, planning, repository
from fulfill.dispatch.models import (
    Plan,
    PlanRoute,
    PlanStop,
    RouteStatus,
    Van,
    Wave,
    WaveStatus,
)
from fulfill.dispatch.planning import WaveProblem
from fulfill.dispatch.plans import copy_stop, get_wave, on_the_road, plan_view, total, unplanned
from fulfill.dispatch.publishing import publish
from fulfill.dispatch.repository import published_plan
from fulfill.dispatch.waves import (
    RESCUE,
    Claim,
    answer_request,
    claim_planning,
    next_plan_number,
    release_planning,
)
from fulfill.inventory.models import Node
from fulfill_routing import Solution, Unserved, solve

log = logging.getLogger(__name__)


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
        source = repository.current_plan(session, wave_id)
        kept = _kept_routes(session, source) if source else []
        kept_vans = {van.code for _, van, _ in kept}
        kept_stops = {s.fulfillment_id for _, _, stops in kept for s in stops}
        deliveries = [
            d
            for d in repository.wave_deliveries(session, wave)
            if d.fulfillment_id not in kept_stops
        ]
        vans = [v for v in repository.active_vans(session, node.id) if v.code not in kept_vans]
        # The wave's first plan starts from its live plan, the one its promises were made against.
        previous = _sequences(session, source) if source else live.sequences(session, wave)
        booked = repository.bookings(session, wave, settings)
        wp = planning.build_problem(
            node, wave, deliveries, vans, settings, previous=previous, booked=booked
        )
        session.expunge_all()
    solution = _solve(wp, settings)
    warnings: list[str] = []
    if wp.problem is not None:  # the plan it starts from stands by: the live plan, or the last
        solution, warnings = solved_or_live(solution, live_routes.as_solution(wp, previous))
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
            session, wave, number, origin, wp, solution, request=claim.version, warnings=warnings
        )
        assert plan.id is not None
        for route, van, stops in kept:
            _copy_route(session, plan.id, route, van, stops)
        total(session, plan)
        # An order that joined meanwhile asked for the next plan, which publishes itself.
        if _publishes_itself(wave, origin, settings) and not unplanned(session, wave, plan):
            publish(session, plan, settings, now=utcnow())
        session.commit()
        return True, plan


def solved_or_live(solved: Solution, kept: Solution) -> tuple[Solution, list[str]]:
    """The solve's answer unless it serves fewer of the wave's stops than the plan it started
    from (the live plan, or the last version), or costs more serving as many: a promise made
    against that plan is never dropped because the solver did not find its place again in time.
    A stop neither serves keeps the reason the plan it started from gives (a van out of
    service, its hours taken), which is why it moves, not the solver's penalty."""
    causes = {u.stop: u.reason for u in kept.unserved if u.reason != live_routes.NO_VAN}
    if (len(solved.unserved), _routes_cost(solved)) <= (len(kept.unserved), _routes_cost(kept)):
        chosen, notes = solved, []
    else:
        chosen = kept.model_copy(update={"seconds": solved.seconds})
        notes = [
            f"kept the plan it started from: the solve served "
            f"{len(solved.unserved) - len(kept.unserved)} fewer stops or cost more "
            f"({_routes_cost(solved) / planning.COST_SCALE:.2f} against "
            f"{_routes_cost(kept) / planning.COST_SCALE:.2f})"
        ]
    if causes:  # a stop the plan it started from served made room for one that lost its van
        served_before = {v.stop for r in kept.routes for v in r.visits}
        first = Counter(causes.values()).most_common(1)[0][0]
        causes |= {
            u.stop: f"made room after {first}" for u in chosen.unserved if u.stop in served_before
        }
    unserved = tuple(
        u.model_copy(update={"reason": causes.get(u.stop, u.reason)}) for u in chosen.unserved
    )
    return chosen.model_copy(update={"unserved": unserved}), notes


def _routes_cost(solution: Solution) -> int:
    return sum(r.cost for r in solution.routes)


def _publishes_itself(wave: Wave, origin: str, settings: Settings) -> bool:
    """The plan made at the cutoff, for an order that joined a planned wave, or for a van taken
    out of service, goes out by itself (unless the settings say a dispatcher publishes)."""
    if wave.status == WaveStatus.OPEN:
        return False
    if origin == RESCUE:
        return settings.dispatch_rescue == "publish"
    return settings.dispatch_auto_publish and origin in ("cutoff", "order")


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
    session.add_all(copy_stop(s, plan_id, copy.id, k) for k, s in enumerate(stops))
    return copy
