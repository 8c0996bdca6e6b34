"""The outbox's query for people: events in one status (the dead letters by default), newest
first. The relay's own claims stay in ``service``, where their locking is explained."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from fulfill.outbox.models import OutboxEvent, OutboxStatus


def events(
    session: Session, *, status: OutboxStatus, topic: str | None, limit: int
) -> Sequence[OutboxEvent]:
    statement = (
        select(OutboxEvent)
        .where(OutboxEvent.status == status)
        .order_by(col(OutboxEvent.id).desc())
        .limit(limit)
    )
    if topic:
        statement = statement.where(OutboxEvent.topic == topic)
    return session.exec(statement).all()
