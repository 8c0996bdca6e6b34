"""Waves: same-day fulfillments join the wave of their node's cutoff; at the cutoff the wave
closes and a plan is asked for. A plan asked for is a version number on the wave's row, so that
the work survives any lost task and is done once per version (``claim_planning``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.dispatch.models import Wave, WaveStatus
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment
from fulfill.orders.windows import next_cutoff

RESCUE = "rescue"  # who asked for a plan: a van taken out of service, or stalled


def wave_for(session: Session, node: Node, cutoff_at: datetime) -> Wave:
    """The node's wave for this cutoff, created by whichever order needs it first."""
    assert node.id is not None
    found = find_wave(session, node.id, cutoff_at)
    if found is not None:
        return found
    local_date = cutoff_at.astimezone(ZoneInfo(node.timezone)).date().isoformat()
    try:
        with session.begin_nested():
            wave = Wave(node_id=node.id, local_date=local_date, cutoff_at=cutoff_at)
            session.add(wave)
        return wave
    except IntegrityError:  # a concurrent order created it first
        found = find_wave(session, node.id, cutoff_at)
        assert found is not None
        return found


def find_wave(session: Session, node_id: int, cutoff_at: datetime) -> Wave | None:
    return session.exec(
        select(Wave).where(Wave.node_id == node_id, Wave.cutoff_at == cutoff_at)
    ).first()


def join_wave(session: Session, fulfillment: Fulfillment, node: Node, cutoff_at: datetime) -> Wave:
    """Put a same-day fulfillment in its cutoff's wave. A wave already planned (an order that
    crossed the cutoff in flight, or a wave dispatched early) is asked for a new plan."""
    wave = wave_for(session, node, cutoff_at)
    fulfillment.wave_id = wave.id
    if wave.status != WaveStatus.OPEN:
        request_plan(session, wave, "order")
    return wave


def close_due_waves(session: Session, now: datetime) -> list[int]:
    """Close every open wave whose cutoff has passed and ask for its plan."""
    rows = session.exec(
        update(Wave)
        .where(col(Wave.status) == WaveStatus.OPEN, col(Wave.cutoff_at) <= now)
        .values(
            status=WaveStatus.CLOSED,
            closed_at=now,
            version=col(Wave.version) + 1,
            requested_by="cutoff",
        )
        .returning(col(Wave.id))
    ).all()
    return sorted(int(r[0]) for r in rows)


def request_plan(session: Session, wave: Wave, by: str) -> int:
    """Ask for a new plan of ``wave`` (``by``: cutoff, order or dispatcher); the request's
    number, which the wave's ``planned_version`` reaches once it is answered."""
    result = session.exec(
        update(Wave)
        .where(col(Wave.id) == wave.id)
        .values(version=col(Wave.version) + 1, requested_by=by)
        .returning(col(Wave.version))
    ).one()
    session.refresh(wave)
    return int(result[0])


def next_plan_number(session: Session, wave_id: int) -> int:
    row = session.exec(
        update(Wave)
        .where(col(Wave.id) == wave_id)
        .values(plan_seq=col(Wave.plan_seq) + 1)
        .returning(col(Wave.plan_seq))
    ).one()
    return int(row[0])


def waves_to_plan(session: Session) -> list[int]:
    waves = session.exec(
        select(Wave)
        .where(col(Wave.version) > col(Wave.planned_version))
        .order_by(col(Wave.cutoff_at))
    ).all()
    return [w.id for w in waves if w.id is not None]


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a wave's planning: the request to answer and the lease's mark."""

    version: int
    requested_by: str | None
    until: datetime


def claim_planning(session: Session, wave_id: int, now: datetime, lease_s: int) -> Claim | None:
    """Take the wave's planning for a while; None if there is nothing to do or another worker
    holds it."""
    until = now + timedelta(seconds=lease_s)
    row = session.exec(
        update(Wave)
        .where(
            col(Wave.id) == wave_id,
            col(Wave.version) > col(Wave.planned_version),
            or_(col(Wave.planning_until).is_(None), col(Wave.planning_until) < now),
        )
        .values(planning_until=until)
        .returning(col(Wave.version), col(Wave.requested_by))
    ).first()
    return None if row is None else Claim(int(row[0]), row[1], until)


def answer_request(session: Session, wave_id: int, version: int) -> bool:
    """Record request ``version`` as answered; False if an answer to it (or a later one) was
    stored meanwhile, in which case the caller stores nothing."""
    result = session.exec(
        update(Wave)
        .where(col(Wave.id) == wave_id, col(Wave.planned_version) < version)
        .values(planned_version=version)
    )
    return bool(result.rowcount)


def release_planning(session: Session, wave_id: int, claim: Claim) -> None:
    """Give the lease back, unless it expired and another worker holds it now."""
    session.exec(
        update(Wave)
        .where(col(Wave.id) == wave_id, col(Wave.planning_until) == claim.until)
        .values(planning_until=None)
    )


def next_wave(session: Session, wave: Wave, node: Node, now: datetime) -> Wave | None:
    """The node's next wave later today, for a stop this wave could not serve."""
    later = max(now, wave.cutoff_at + timedelta(seconds=1))
    cutoff = next_cutoff(node, later)
    if cutoff is None:
        return None
    return wave_for(session, node, cutoff)
