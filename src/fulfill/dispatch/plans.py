"""A wave's plan versions as read and guarded: the view of one, what is missing from it, which vans
are on the road, and the locks every change of a plan takes first."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from fulfill.dispatch.models import (
    Plan,
    PlanRoute,
    PlanStop,
    RouteStatus,
    Van,
    Wave,
)
from fulfill.dispatch.repository import latest_plan
from fulfill.dispatch.waves import (
    request_plan,
)
from fulfill.errors import Conflict, NotFound
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment, FulfillmentStatus


@dataclass
class PlanView:
    """A plan with its rows, as the API and the page read it."""

    plan: Plan
    wave: Wave
    node: Node
    routes: list[tuple[PlanRoute, Van, list[PlanStop]]]
    unassigned: list[PlanStop] = field(default_factory=list)


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


def left_since(session: Session, current: Plan | None, plan: Plan) -> list[str]:
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


def ask_for_plan(session: Session, wave: Wave) -> int:
    """Plan the wave now (it stays open until its cutoff if it is open); the request's number,
    which the wave's ``planned_version`` reaches when the plan is stored."""
    return request_plan(session, wave, "dispatcher")


def lock_wave(session: Session, wave_id: int) -> Wave:
    """The wave's row, locked for this transaction: publications and moves of one wave queue
    up instead of each building on a version the other is replacing."""
    wave = session.exec(select(Wave).where(Wave.id == wave_id).with_for_update()).first()
    if wave is None:
        raise NotFound(f"no wave {wave_id}")
    return wave


def require_newest(session: Session, plan: Plan, action: str) -> None:
    newest = latest_plan(session, plan.wave_id)
    if newest is not None and newest.id != plan.id:
        raise Conflict(
            f"plan {plan.id} is version {plan.version}; {action} the newest version "
            f"({newest.version}, plan {newest.id})",
            plan=plan.id,
            newest=newest.id,
        )


def route_of(session: Session, plan: Plan, van_code: str) -> PlanRoute:
    row = session.exec(
        select(PlanRoute)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .where(PlanRoute.plan_id == plan.id, Van.code == van_code)
    ).first()
    if row is None:
        raise NotFound(f"plan {plan.id} has no route for van {van_code}", van=van_code)
    return row


def copy_stop(stop: PlanStop, plan_id: int, route_id: int | None, position: int) -> PlanStop:
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


def total(session: Session, plan: Plan) -> None:
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
