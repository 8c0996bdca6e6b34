"""Publishing a plan: the drivers' routes leave through the outbox, the customers' ETAs are fixed,
and a stop no van serves moves to a later wave or a carrier, with the reason on its timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import live, planning
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
from fulfill.dispatch.plans import (
    PlanView,
    left_since,
    lock_wave,
    plan_view,
    require_newest,
    unplanned,
)
from fulfill.dispatch.repository import delivery_of, published_plan
from fulfill.dispatch.waves import (
    next_wave,
    request_plan,
    wave_for,
)
from fulfill.errors import Conflict
from fulfill.inventory.models import Node
from fulfill.orders import timeline
from fulfill.orders.models import Fulfillment, FulfillmentStatus, Order
from fulfill.orders.repository import record_event
from fulfill.orders.windows import next_cutoff
from fulfill.outbox.service import enqueue
from fulfill.tracking import following
from fulfill.tracking.shipping import request_shipment


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


def publish(session: Session, plan: Plan, settings: Settings, *, now: datetime) -> Plan:
    """Send the plan to the drivers and fix the customers' ETAs; a stop no van serves moves to
    the next wave today, or to a carrier or the next day, with the reason on its timeline.

    Only the newest version is published, and only if it knows every order of the wave; what
    drivers reported on the plan it replaces is carried over."""
    if plan.status == PlanStatus.PUBLISHED:
        return plan
    if plan.status == PlanStatus.SUPERSEDED:
        raise Conflict(f"plan {plan.id} was superseded by a later version", plan=plan.id)
    wave = lock_wave(session, plan.wave_id)
    require_newest(session, plan, "publish")
    missing = unplanned(session, wave, plan)
    if missing:
        raise Conflict(
            f"{len(missing)} order(s) joined the wave after this plan was made: re-plan first",
            fulfillments=missing[:20],
        )
    current = published_plan(session, plan.wave_id)
    left = left_since(session, current, plan)
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
    to_deliver = _to_deliver(session, view)
    for route, van, stops in view.routes:
        active = [s for s in stops if s.fulfillment_id in to_deliver]
        enqueue(session, "route.dispatched", _route_message(view, route, van, active))
        for stop in active:
            if stop.status == StopStatus.PLANNED:
                eta = planning.in_hand(stop.eta, settings) if stop.eta else None
                following.follow_own_fleet(session, stop.fulfillment_id, eta, now)
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


def _to_deliver(session: Session, view: PlanView) -> set[str]:
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
        else:
            _join_live_plan(session, later, stop, settings)
    session.add(fulfillment)
    record_event(session, stop.order_id, kind, data, at=now)
    timeline.publish(session, [(stop.order_id, kind, data, now)])


def _join_live_plan(session: Session, wave: Wave, stop: PlanStop, settings: Settings) -> None:
    """A moved stop takes a place in its new wave's live plan, or waits there without one
    for that wave's cutoff plan."""
    order = session.get(Order, stop.order_id)
    node = session.get(Node, wave.node_id)
    assert order is not None and node is not None
    moved = replace(
        delivery_of(stop), window_start=order.promise_start, window_end=order.promise_end
    )
    live.join(session, live.Joining(node, wave, moved), settings)


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
