"""Waves: same-day fulfillments join the wave of their node's cutoff; at the cutoff the wave
closes and a plan is asked for. A plan asked for is a version number on the wave's row, so that
the work survives any lost task and is done once per version (``claim_planning``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.dispatch.models import Wave, WaveStatus
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment
from fulfill.sourcing.service import next_cutoff


def wave_for(session: Session, node: Node, cutoff_at: datetime) -> Wave:
    """The node's wave for this cutoff, created by whichever order needs it first."""
    assert node.id is not None
    found = _find(session, node.id, cutoff_at)
    if found is not None:
        return found
    local_date = cutoff_at.astimezone(ZoneInfo(node.timezone)).date().isoformat()
    try:
        with session.begin_nested():
            wave = Wave(node_id=node.id, local_date=local_date, cutoff_at=cutoff_at)
            session.add(wave)
        return wave
    except IntegrityError:  # a concurrent order created it first
        found = _find(session, node.id, cutoff_at)
        assert found is not None
        return found


def _find(session: Session, node_id: int, cutoff_at: datetime) -> Wave | None:
    return session.exec(
        select(Wave).where(Wave.node_id == node_id, Wave.cutoff_at == cutoff_at)
    ).first()


def join_wave(session: Session, fulfillment: Fulfillment, node: Node, cutoff_at: datetime) -> Wave:
    wave = wave_for(session, node, cutoff_at)
    fulfillment.wave_id = wave.id
    return wave


def close_due_waves(session: Session, now: datetime) -> list[int]:
    """Close every open wave whose cutoff has passed and ask for its plan."""
    rows = session.exec(
        update(Wave)
        .where(col(Wave.status) == WaveStatus.OPEN, col(Wave.cutoff_at) <= now)
        .values(status=WaveStatus.CLOSED, closed_at=now, version=col(Wave.version) + 1)
        .returning(col(Wave.id))
    ).all()
    return sorted(int(r[0]) for r in rows)


def request_plan(session: Session, wave: Wave) -> int:
    """Ask for a new plan of ``wave``; the version to expect."""
    result = session.exec(
        update(Wave)
        .where(col(Wave.id) == wave.id)
        .values(version=col(Wave.version) + 1)
        .returning(col(Wave.version))
    ).one()
    session.refresh(wave)
    return int(result[0])


def waves_to_plan(session: Session) -> list[int]:
    waves = session.exec(
        select(Wave)
        .where(col(Wave.version) > col(Wave.planned_version))
        .order_by(col(Wave.cutoff_at))
    ).all()
    return [w.id for w in waves if w.id is not None]


def claim_planning(session: Session, wave_id: int, now: datetime, lease_s: int) -> int | None:
    """Take the wave's planning for a while; the version to plan, or None if there is nothing
    to do or another worker holds it."""
    row = session.exec(
        update(Wave)
        .where(
            col(Wave.id) == wave_id,
            col(Wave.version) > col(Wave.planned_version),
            or_(col(Wave.planning_until).is_(None), col(Wave.planning_until) < now),
        )
        .values(planning_until=now + timedelta(seconds=lease_s))
        .returning(col(Wave.version))
    ).first()
    return None if row is None else int(row[0])


def finish_planning(session: Session, wave_id: int, version: int) -> None:
    session.exec(
        update(Wave)
        .where(col(Wave.id) == wave_id)
        .values(
            planned_version=case(
                (col(Wave.planned_version) < version, version), else_=col(Wave.planned_version)
            ),
            planning_until=None,
        )
    )


def next_wave(session: Session, wave: Wave, node: Node, now: datetime) -> Wave | None:
    """The node's next wave later today, for a stop this wave could not serve."""
    later = max(now, wave.cutoff_at + timedelta(seconds=1))
    cutoff = next_cutoff(node, later)
    if cutoff is None:
        return None
    return wave_for(session, node, cutoff)
