"""The live plan of an open wave: the plan every same-day promise of the wave is made against.

From the wave's first order to its cutoff, each same-day fulfillment that joins is inserted at
once where it costs least, on a van that can still reach its door within its window (the
planner's insertion check: the vans' shifts less the hours the day's other waves book, breaks,
loads, the loading after the cutoff and the handover at the door). The rows are the truth:
``live_stops`` (van and position), ``live_routes`` (when each route leaves and is back) and the
wave's ``live_rev``, which changes with every write. Each process keeps the last few live plans
scheduled, keyed by that revision, so a promise against a 1,000-stop wave costs one insertion
check, not a read of the wave and its matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlmodel import Session, col

from fulfill.config import Settings
from fulfill.dispatch import planning, repository
from fulfill.dispatch.live_routes import (
    LivePlan,
    Places,
    StoredKey,
    as_solution,
    fit,
    placed_in,
    routes_in,
    with_stop,
)
from fulfill.dispatch.models import LiveRoute, LiveStop, Van, Wave
from fulfill.dispatch.recent import Recent
from fulfill.dispatch.repository import Booked, Delivery
from fulfill.inventory.models import Node
from fulfill.orders.models import new_id
from fulfill_routing import Insertion, best_insertion


@dataclass(frozen=True)
class _Stored:
    """What the rows say, with the wave's matrices: the same until ``live_rev`` changes."""

    wave: planning.WaveProblem
    places: Places


@dataclass(frozen=True)
class Joining:
    """A same-day fulfillment entering a wave's live plan."""

    node: Node
    wave: Wave
    delivery: Delivery


def live_plan(
    session: Session, node: Node, wave: Wave, settings: Settings, joining: str | None = None
) -> LivePlan | None:
    """The wave's live plan as stored now (without the fulfillment ``joining`` it, which this
    transaction may have written already); None when the node has no active van."""
    assert node.id is not None
    vans = repository.active_vans(session, node.id)
    if not vans:
        return None
    # A wave no order has joined yet is not stored: its node and cutoff name it.
    named = wave.id if wave.id is not None else (node.id, wave.cutoff_at)
    stored_key = (named, wave.live_rev, tuple(van_key(v) for v in vans), settings_key(settings))
    booked = repository.bookings(session, wave, settings)
    key = (stored_key, tuple(sorted(booked.items())))
    found = _PLANS.get(key)
    if found is not None:
        return found
    stored = _STORED.get(stored_key)
    if stored is None:
        stored = _STORED.put(stored_key, _read(session, node, wave, vans, settings, joining))
    return _PLANS.put(key, _scheduled(stored, vans, booked, key))


def join(session: Session, joining: Joining, settings: Settings) -> Insertion:
    """Insert the fulfillment into its wave's live plan, under the wave's row lock so that two
    orders cannot both take the last place. A stop that fits nowhere is stored without a van
    (the cutoff's plan places it or says why) and the insertion says why it did not fit."""
    node, wave, delivery = joining.node, joining.wave, joining.delivery
    assert wave.id is not None
    _lock(session, wave)
    plan = live_plan(session, node, wave, settings, joining=delivery.fulfillment_id)
    placed = (
        fit(plan, delivery, settings)
        if plan is not None
        else Insertion(fits=False, reason=f"{node.code} has no van for same-day delivery")
    )
    _forget(session, delivery.fulfillment_id)
    if plan is None or not placed.fits:
        session.add(LiveStop(fulfillment_id=delivery.fulfillment_id, wave_id=wave.id))
        _touch(session, wave)
        return placed
    grown = with_stop(plan, delivery, placed, settings)
    _store(session, wave, grown, delivery.fulfillment_id)
    _touch(session, wave)
    _remember(wave, grown)
    return placed


def rehome(session: Session, node: Node, wave: Wave, settings: Settings) -> int:
    """Give the stops of the wave's live plan that have no place now (their van taken out of
    service, say) the place that costs least; those that fit nowhere wait for the cutoff's plan
    with the reason. How many found a place."""
    _lock(session, wave)
    plan = live_plan(session, node, wave, settings)
    if plan is None:
        return 0
    placed = {v.stop for r in plan.solution.routes for v in r.visits}
    _, context = plan.wave.routing()
    found = 0
    for stop in plan.wave.deliveries:
        if stop in placed:
            continue
        fit = best_insertion(context, plan.solution, stop)
        if fit.fits:
            plan = placed_in(plan, stop, fit)
            found += 1
    if found:
        store_all(session, wave, plan)
    return found


def leave(session: Session, fulfillment_id: str, wave_id: int | None) -> None:
    """The fulfillment is no longer in the wave's live plan (cancelled, or moved)."""
    _forget(session, fulfillment_id)
    if wave_id is not None:
        wave = session.get(Wave, wave_id)
        if wave is not None:
            _touch(session, wave)


def sequences(session: Session, wave: Wave) -> dict[str, list[str]]:
    """Each van's stops in the wave's live plan, in order (those still to deliver)."""
    wanted = [d.fulfillment_id for d in repository.wave_deliveries(session, wave)]
    return routes_in(_places(session, wave), wanted)


def settings_key(settings: Settings) -> tuple[object, ...]:
    """The settings a wave's problem is built from."""
    return (
        settings.travel,
        settings.travel_circuity,
        settings.osrm_url,
        settings.dispatch_loading_min,
        settings.dispatch_reload_min,
        settings.dispatch_service_s,
        settings.dispatch_handover_s,
        settings.dispatch_slack_min,
        settings.dispatch_unassigned_penalty,
    )


def van_key(van: Van) -> tuple[object, ...]:
    return tuple(van.model_dump().values())


def _read(
    session: Session,
    node: Node,
    wave: Wave,
    vans: list[Van],
    settings: Settings,
    joining: str | None,
) -> _Stored:
    deliveries = [
        d for d in repository.wave_deliveries(session, wave) if d.fulfillment_id != joining
    ]
    wp = planning.build_problem(node, wave, deliveries, vans, settings)
    return _Stored(wp, _places(session, wave))


def _places(session: Session, wave: Wave) -> dict[str, tuple[str | None, int]]:
    rows = session.execute(
        sa.select(
            col(LiveStop.fulfillment_id), col(LiveStop.van_code), col(LiveStop.position)
        ).where(col(LiveStop.wave_id) == wave.id)
    ).all()
    return {f: (van, position) for f, van, position in rows}


def _scheduled(
    stored: _Stored,
    vans: list[Van],
    booked: dict[str, Booked],
    key: tuple[StoredKey, tuple[object, ...]],
) -> LivePlan:
    """The stored routes scheduled with the vans' hours as booked now. A van whose route no
    longer fits them takes no new stop (its stops wait for the cutoff's plan)."""
    wp = planning.with_bookings(stored.wave, vans, booked)
    routes = routes_in(stored.places, wp.deliveries)
    solution = as_solution(wp, routes)
    broken = set(routes) - {r.vehicle for r in solution.routes}
    if broken:
        problem, _ = wp.routing()
        wp = planning.with_vehicles(wp, [v for v in problem.vehicles if v.id not in broken])
    return LivePlan(wp, solution.model_copy(update={"unserved": ()}), stored.places, key)


def store_all(session: Session, wave: Wave, plan: LivePlan) -> None:
    """Write ``plan`` as the wave's live plan, every row anew."""
    assert wave.id is not None
    session.execute(sa.delete(LiveStop).where(col(LiveStop.wave_id) == wave.id))
    session.execute(sa.delete(LiveRoute).where(col(LiveRoute.wave_id) == wave.id))
    session.flush()
    session.add_all(
        LiveStop(fulfillment_id=f, wave_id=wave.id, van_code=van, position=position)
        for f, (van, position) in plan.places.items()
        if f in plan.wave.deliveries
    )
    clock = plan.wave.clock
    session.add_all(
        LiveRoute(
            wave_id=wave.id,
            van_code=r.vehicle,
            depart_at=clock.at(r.start),
            return_at=clock.at(r.end),
        )
        for r in plan.solution.routes
    )
    _touch(session, wave)
    _remember(wave, plan)


def _store(session: Session, wave: Wave, grown: LivePlan, fulfillment_id: str) -> None:
    van, at = grown.places[fulfillment_id]
    assert van is not None and wave.id is not None
    session.execute(
        sa.update(LiveStop)
        .where(
            col(LiveStop.wave_id) == wave.id,
            col(LiveStop.van_code) == van,
            col(LiveStop.position) >= at,
        )
        .values(position=col(LiveStop.position) + 1)
    )
    session.add(LiveStop(fulfillment_id=fulfillment_id, wave_id=wave.id, van_code=van, position=at))
    route = grown.route_of(van)
    assert route is not None
    clock = grown.wave.clock
    session.merge(
        LiveRoute(
            wave_id=wave.id,
            van_code=van,
            depart_at=clock.at(route.start),
            return_at=clock.at(route.end),
        )
    )


def _remember(wave: Wave, grown: LivePlan) -> None:
    """Keep the grown plan for this process under the wave's new revision (a rolled-back one
    is never asked for again: revisions are unique)."""
    stored_key, booked_key = grown.key
    new_key = (stored_key[0], wave.live_rev, *stored_key[2:])
    _STORED.put(new_key, _Stored(grown.wave, grown.places))
    _PLANS.put((new_key, booked_key), replace(grown, key=(new_key, booked_key)))


def _lock(session: Session, wave: Wave) -> None:
    """Take the wave's row until the transaction ends (SQLite's writers queue anyway)."""
    session.execute(sa.select(col(Wave.id)).where(col(Wave.id) == wave.id).with_for_update())
    session.refresh(wave)


def _touch(session: Session, wave: Wave) -> None:
    wave.live_rev = new_id()
    session.add(wave)
    session.flush()


def _forget(session: Session, fulfillment_id: str) -> None:
    session.execute(sa.delete(LiveStop).where(col(LiveStop.fulfillment_id) == fulfillment_id))


_STORED: Recent[_Stored] = Recent(size=4)  # a 1,000-stop wave's matrices are 16 MB
_PLANS: Recent[LivePlan] = Recent(size=8)
