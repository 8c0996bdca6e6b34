"""Rescue: a van taken out of service, or standing still past the silent-van rule, does not keep
its customers' parcels. Its stops still to deliver are planned at once onto the vans that can
reach them within their windows: a rescue wave at the node, whose vans leave after a reload
(the node picks the order again), with the hours the day's other routes book. The rescued stops
come off the stranded van's route in a new version of its plan, and the rescue plan is published
at once, or left for the dispatcher to publish, as the setting says.

A broken-down van's other stops leave it too, and move on as a stop no van serves does (the next
wave today, or a carrier), with the breakdown as the recorded cause. A stalled van keeps the
stops no other van can reach in time: it may still get there first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import live, planning, repository
from fulfill.dispatch.models import (
    LiveStop,
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
from fulfill.dispatch.plans import copy_stop, lock_wave, plan_view, total
from fulfill.dispatch.publishing import publish
from fulfill.dispatch.repository import delivery_of
from fulfill.dispatch.waves import RESCUE, next_plan_number, request_plan
from fulfill.inventory.models import Node
from fulfill.orders import timeline
from fulfill.orders.models import Fulfillment, FulfillmentStatus
from fulfill.orders.repository import record_event
from fulfill_routing import Solution, solve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stranded:
    """Stops of a van's route in a published plan that the van will not deliver in time.
    ``broken``: none of its stops stays with it."""

    plan: Plan
    van: Van
    stop_ids: tuple[str, ...]
    cause: str
    broken: bool


def rescue(session: Session, stranded: Stranded, settings: Settings, now: datetime) -> list[str]:
    """Plan the stranded stops onto other vans; the fulfillments rescued. Nothing changes when
    rescue is off, or when a stalled van's stops have nowhere better to go."""
    if settings.dispatch_rescue == "off":
        return []
    lock_wave(session, stranded.plan.wave_id)
    # A rescue a moment ago (another van of the wave) published a newer version: build on it.
    current = repository.published_plan(session, stranded.plan.wave_id)
    if current is None:
        return []
    stranded = replace(stranded, plan=current)
    view = plan_view(session, stranded.plan)
    stops = _still_to_deliver(session, view.routes, stranded)
    if not stops:
        return []
    node = view.node
    wave = _rescue_wave(node, now)
    wp, solution = _solved(session, node, wave, [delivery_of(s) for s in stops], stranded, settings)
    served = {v.stop for r in solution.routes for v in r.visits}
    leaving = [s for s in stops if s.fulfillment_id in served or stranded.broken]
    if not leaving:
        return []
    _back_to_pending(session, [s.fulfillment_id for s in leaving])
    if served:
        session.add(wave)
        session.flush()
        _move_to(session, wave, served, stranded, now)
        kept = replace(wp, deliveries={k: v for k, v in wp.deliveries.items() if k in served})
        assert wave.id is not None
        number = next_plan_number(session, wave.id)
        plan = planning.store_plan(
            session, wave, number, RESCUE, kept, solution.model_copy(update={"unserved": ()})
        )
        wave.planned_version = wave.version
        if settings.dispatch_rescue == "publish":
            publish(session, plan, settings, now=now)
    reasons = {s: _reason(s in served, wave, stranded) for s in (x.fulfillment_id for x in leaving)}
    version = _without(session, stranded, reasons)
    publish(session, version, settings, now=now)
    log.info(
        "rescue of %s (%s): %d of %d stops to other vans",
        stranded.van.code,
        stranded.cause,
        len(served),
        len(stops),
    )
    return sorted(served)


def stranded_by(session: Session, van: Van, cause: str) -> list[Stranded]:
    """The routes a van taken out of service leaves stranded: those under way in a published
    plan, with their stops still to deliver."""
    rows = session.exec(
        select(PlanRoute, Plan)
        .join(Plan, col(Plan.id) == PlanRoute.plan_id)
        .where(
            PlanRoute.van_id == van.id,
            Plan.status == PlanStatus.PUBLISHED,
            PlanRoute.status == RouteStatus.STARTED,
        )
    ).all()
    found = []
    for route, plan in rows:
        ids = session.exec(
            select(PlanStop.fulfillment_id)
            .where(PlanStop.route_id == route.id, PlanStop.status == StopStatus.PLANNED)
            .order_by(col(PlanStop.position))
        ).all()
        if ids:
            found.append(Stranded(plan, van, tuple(ids), cause, broken=True))
    return found


def replan_waiting(session: Session, van: Van) -> list[int]:
    """Ask again for the plans of the waves in which a van taken out of service has a route
    that has not left: their other vans take its stops (published by themselves, as a rescue)."""
    waves = session.exec(
        select(Wave)
        .join(Plan, col(Plan.wave_id) == Wave.id)
        .join(PlanRoute, col(PlanRoute.plan_id) == Plan.id)
        .where(
            PlanRoute.van_id == van.id,
            Plan.status == PlanStatus.PUBLISHED,
            PlanRoute.status == RouteStatus.PLANNED,
        )
    ).all()
    for wave in waves:
        request_plan(session, wave, RESCUE)
    return [w.id for w in waves if w.id is not None]


def rehome_open_waves(session: Session, van: Van, settings: Settings) -> int:
    """The stops a van taken out of service had in the live plans of its node's open waves go
    to the other vans where they fit; how many did."""
    node = session.get(Node, van.node_id)
    assert node is not None
    waves = session.exec(
        select(Wave)
        .where(Wave.node_id == van.node_id, Wave.status == WaveStatus.OPEN)
        .where(col(Wave.id).in_(select(LiveStop.wave_id).where(LiveStop.van_code == van.code)))
    ).all()
    return sum(live.rehome(session, node, wave, settings) for wave in waves)


def _still_to_deliver(
    session: Session, routes: list[tuple[PlanRoute, Van, list[PlanStop]]], stranded: Stranded
) -> list[PlanStop]:
    """The stranded stops the van has not reached, whose order still wants them delivered."""
    wanted = set(stranded.stop_ids)
    stops = [
        s
        for route, van, route_stops in routes
        if van.code == stranded.van.code
        for s in route_stops
        if s.fulfillment_id in wanted and s.status == StopStatus.PLANNED
    ]
    pending = set(
        session.exec(
            select(Fulfillment.id).where(
                col(Fulfillment.id).in_([s.fulfillment_id for s in stops]),
                col(Fulfillment.status).in_(
                    [FulfillmentStatus.PENDING, FulfillmentStatus.OUT_FOR_DELIVERY]
                ),
                Fulfillment.wave_id == stranded.plan.wave_id,
            )
        ).all()
    )
    return [s for s in stops if s.fulfillment_id in pending]


def _rescue_wave(node: Node, now: datetime) -> Wave:
    """A wave of the node that closes now, already asked for (and given) its one plan."""
    assert node.id is not None
    local_date = now.astimezone(ZoneInfo(node.timezone)).date().isoformat()
    return Wave(
        node_id=node.id,
        local_date=local_date,
        cutoff_at=now,
        status=WaveStatus.CLOSED,
        version=1,
        requested_by=RESCUE,
        closed_at=now,
    )


def _solved(
    session: Session,
    node: Node,
    wave: Wave,
    deliveries: list[repository.Delivery],
    stranded: Stranded,
    settings: Settings,
) -> tuple[planning.WaveProblem, Solution]:
    assert node.id is not None
    vans = [v for v in repository.active_vans(session, node.id) if v.code != stranded.van.code]
    booked = repository.bookings(session, wave, settings)
    wp = planning.build_problem(node, wave, deliveries, vans, settings, booked=booked)
    if wp.problem is None:
        return wp, Solution(routes=(), cost=0, distance=0, engine="none")
    limit = settings.dispatch_rescue_time_limit_s
    return wp, solve(wp.problem, engine=settings.dispatch_engine, time_limit_s=limit)


def _move_to(
    session: Session, wave: Wave, served: set[str], stranded: Stranded, now: datetime
) -> None:
    """The rescued fulfillments join the rescue wave; their timelines say so (the customer's
    promise stands, so nobody is told anything bad)."""
    rows = session.exec(select(Fulfillment).where(col(Fulfillment.id).in_(sorted(served)))).all()
    entries = []
    for fulfillment in rows:
        fulfillment.wave_id = wave.id
        session.add(fulfillment)
        data = {
            "fulfillment": fulfillment.id,
            "from_wave": stranded.plan.wave_id,
            "from_van": stranded.van.code,
            "wave": wave.id,
            "cause": stranded.cause,
        }
        record_event(session, fulfillment.order_id, "delivery.rescued", data, at=now)
        entries.append((fulfillment.order_id, "delivery.rescued", data, now))
    timeline.publish(session, entries)


def _back_to_pending(session: Session, fulfillment_ids: list[str]) -> None:
    """Off the stranded van, a parcel waits for its next van (picked again at the node)."""
    for fulfillment in session.exec(
        select(Fulfillment).where(col(Fulfillment.id).in_(fulfillment_ids))
    ).all():
        fulfillment.status = FulfillmentStatus.PENDING
        session.add(fulfillment)
    session.flush()


def _reason(rescued: bool, wave: Wave, stranded: Stranded) -> str:
    if rescued:
        return f"rescued ({stranded.cause}): another van takes it on wave {wave.id}"
    return f"{stranded.cause}; no other van can reach it in its window"


def _without(session: Session, stranded: Stranded, reasons: dict[str, str]) -> Plan:
    """The next version of the stranded van's plan, its routes as they are but with the
    leaving stops out of every route, each with its reason."""
    view = plan_view(session, stranded.plan)
    assert view.wave.id is not None
    old = view.plan
    plan = Plan(
        wave_id=old.wave_id,
        version=next_plan_number(session, view.wave.id),
        origin=RESCUE,
        engine=old.engine,
        stops=old.stops,
        warnings=[f"{stranded.van.code}: {stranded.cause}"],
    )
    session.add(plan)
    session.flush()
    assert plan.id is not None
    out: list[PlanStop] = list(view.unassigned)
    for route, _, stops in view.routes:
        copy = PlanRoute(**route.model_dump(exclude={"id", "plan_id"}), plan_id=plan.id)
        session.add(copy)
        session.flush()
        assert copy.id is not None
        staying = [s for s in stops if s.fulfillment_id not in reasons]
        session.add_all(copy_stop(s, plan.id, copy.id, k) for k, s in enumerate(staying))
        out += [s for s in stops if s.fulfillment_id in reasons]
    for k, stop in enumerate(out):
        moved = copy_stop(stop, plan.id, None, k)
        moved.unassigned_reason = reasons.get(stop.fulfillment_id, moved.unassigned_reason)
        session.add(moved)
    session.flush()
    total(session, plan)
    return plan
