"""Polishing an open wave's live plan in the background: orders are inserted one by one where
they cost least, and routes built that way zig-zag across the city and use up the vans' hours
long before the vans are full. Each polish re-plans the wave from its live plan (a warm start,
bounded in time) outside any transaction, and keeps the answer only if every stop that had a
place keeps one and it costs less; the orders that joined meanwhile are put back into the
polished routes by insertion. One polish per wave at a time and at most one per
``dispatch_polish_every_s`` (the wave's ``polish_until``), so bursts of orders coalesce.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.db import session_scope, utcnow
from fulfill.dispatch import live, live_routes, planning
from fulfill.dispatch.models import Wave, WaveStatus
from fulfill.dispatch.plans import lock_wave
from fulfill.inventory.models import Node
from fulfill_routing import Solution, solve

log = logging.getLogger(__name__)


def waves_to_polish(session: Session, now: datetime) -> list[int]:
    """Open waves whose live plan changed since its last polish, and may be polished now."""
    rows = session.exec(
        select(Wave.id).where(
            Wave.status == WaveStatus.OPEN,
            col(Wave.live_rev).is_not(None),
            or_(col(Wave.polished_rev).is_(None), col(Wave.polished_rev) != Wave.live_rev),
            or_(col(Wave.polish_until).is_(None), col(Wave.polish_until) < now),
        )
    ).all()
    return sorted(int(r) for r in rows if r is not None)


def polish_wave(
    engine: Engine, wave_id: int, settings: Settings, now: datetime | None = None
) -> bool:
    """Polish the wave's live plan once if it is due; whether a better plan was kept."""
    if settings.dispatch_polish_s <= 0:
        return False
    now = now or utcnow()
    lease = now + timedelta(
        seconds=max(settings.dispatch_polish_every_s, 4 * settings.dispatch_polish_s)
    )
    with session_scope(engine) as session:
        claimed = _claim(session, wave_id, now, lease)
        session.commit()
    if not claimed:
        return False
    with session_scope(engine) as session:
        wave, node = _wave_and_node(session, wave_id)
        plan = (
            live.live_plan(session, node, wave, settings)
            if wave.status == WaveStatus.OPEN
            else None
        )
        session.expunge_all()
    if plan is None or not plan.solution.routes:
        return False
    polished = polished_routes(plan, settings)
    with session_scope(engine) as session:
        kept = _keep(session, wave_id, polished, settings)
        session.commit()
    return kept


def _claim(session: Session, wave_id: int, now: datetime, until: datetime) -> bool:
    result = session.exec(
        update(Wave)
        .where(
            col(Wave.id) == wave_id,
            col(Wave.status) == WaveStatus.OPEN,
            or_(col(Wave.polish_until).is_(None), col(Wave.polish_until) < now),
        )
        .values(polish_until=until)
    )
    return bool(result.rowcount)


def _wave_and_node(session: Session, wave_id: int) -> tuple[Wave, Node]:
    wave = session.get(Wave, wave_id)
    assert wave is not None
    node = session.get(Node, wave.node_id)
    assert node is not None
    return wave, node


def polished_routes(plan: live_routes.LivePlan, settings: Settings) -> dict[str, list[str]]:
    """The wave re-planned from its live plan within the polish's time."""
    problem, _ = plan.wave.routing()
    start = {r.vehicle: tuple(v.stop for v in r.visits) for r in plan.solution.routes}
    warm = problem.model_copy(update={"initial_routes": start})
    answer: Solution = solve(warm, engine="ortools", time_limit_s=settings.dispatch_polish_s)
    return {r.vehicle: [v.stop for v in r.visits] for r in answer.routes if r.visits}


def _keep(
    session: Session, wave_id: int, polished: dict[str, list[str]], settings: Settings
) -> bool:
    """Under the wave's lock: the polished routes with the orders that joined meanwhile, if
    that costs less than the live plan as it stands and no stop loses its place."""
    wave = lock_wave(session, wave_id)
    session.refresh(wave)
    node = session.get(Node, wave.node_id)
    assert node is not None
    if wave.status != WaveStatus.OPEN:
        return False
    current = live.live_plan(session, node, wave, settings)
    if current is None:
        return False
    better = live_routes.merged(current, polished)
    placed = sum(len(r.visits) for r in current.solution.routes)
    if better is None or not improves(better.solution, current.solution, placed):
        wave.polished_rev = wave.live_rev
        session.add(wave)
        return False
    live.store_all(session, wave, better)
    wave.polished_rev = wave.live_rev
    session.add(wave)
    log.info(
        "wave %s: live plan polished, %.2f to %.2f",
        wave_id,
        current.solution.cost / planning.COST_SCALE,
        better.solution.cost / planning.COST_SCALE,
    )
    return True


def improves(better: Solution, current: Solution, placed: int) -> bool:
    served = sum(len(r.visits) for r in better.routes)
    return served > placed or (served == placed and better.cost < current.cost)
