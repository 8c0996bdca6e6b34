"""Write events with the change that causes them; relay them afterwards, at least once.

Relaying claims due rows with a lease (``next_run_at`` pushed ahead) in one short transaction,
delivers them outside any transaction, and records the outcome in another. A worker that dies
mid-delivery leaves the lease to expire, and the row is delivered again: handlers are idempotent
(each delivery carries the event id).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update
from sqlmodel import Session, col, select

from fulfill.commit_kick import mark_pending
from fulfill.db import utcnow
from fulfill.outbox.models import OutboxEvent, OutboxStatus

log = logging.getLogger(__name__)

Handler = Callable[[OutboxEvent], None]


def enqueue(
    session: Session, topic: str, payload: dict[str, Any], not_before: datetime | None = None
) -> OutboxEvent:
    """Add an event to the session's transaction; it leaves only if that commits, and not
    before ``not_before``."""
    row = OutboxEvent(topic=topic, payload=payload)
    if not_before is not None:
        row.next_run_at = not_before
    session.add(row)
    mark_pending(session)
    return row


def enqueue_many(
    session: Session, topic: str, payloads: Sequence[tuple[dict[str, Any], datetime]]
) -> None:
    """``enqueue`` for a batch of (payload, not before), in one statement."""
    if not payloads:
        return
    now = utcnow()
    session.execute(
        insert(OutboxEvent),
        [
            {
                "topic": topic,
                "payload": payload,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "created_at": now,
                "next_run_at": not_before,
            }
            for payload, not_before in payloads
        ],
    )
    mark_pending(session)


@dataclass(frozen=True)
class RelayResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0


def claim_due(session: Session, limit: int, lease: timedelta) -> list[OutboxEvent]:
    """Take up to ``limit`` due rows for this worker; commits the claim."""
    now = utcnow()
    statement = (
        select(OutboxEvent)
        .where(OutboxEvent.status == OutboxStatus.PENDING, OutboxEvent.next_run_at <= now)
        .order_by(col(OutboxEvent.next_run_at), col(OutboxEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(statement))
    for row in rows:
        row.next_run_at = now + lease
        row.attempts += 1
    session.flush()
    # Detached with their values, so that reading them opens no transaction while handlers
    # (which may write through sessions of their own) run: on SQLite that would hold the lock.
    for row in rows:
        session.expunge(row)
    session.commit()
    return rows


def relay(
    session: Session,
    handlers: dict[str, list[Handler]],
    *,
    limit: int,
    lease: timedelta,
    max_attempts: int,
) -> RelayResult:
    sent = failed = dead = 0
    for row in claim_due(session, limit, lease):
        try:
            for handler in handlers.get(row.topic, []):
                handler(row)
        except Exception as exc:
            gave_up = _record_failure(session, row, exc, max_attempts)
            dead += gave_up
            failed += not gave_up
        else:
            # Recorded as it goes: a worker that dies mid-batch sends again only the one it
            # was sending (its handler recognises the event id), not all it had delivered.
            _record_sent(session, [row.id or 0])
            sent += 1
    return RelayResult(sent=sent, failed=failed, dead=dead)


def backoff(attempts: int, base_s: float = 2.0, cap_s: float = 3600.0) -> timedelta:
    """Exponential backoff with full jitter."""
    return timedelta(seconds=random.uniform(0, min(cap_s, base_s * 2**attempts)))


def replay_dead(session: Session, event_ids: list[int]) -> int:
    """Put dead events back in the queue, for an operator who fixed the cause."""
    result = session.execute(
        update(OutboxEvent)
        .where(col(OutboxEvent.id).in_(event_ids), col(OutboxEvent.status) == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, next_run_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _record_sent(session: Session, event_ids: list[int]) -> None:
    if not event_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        # The mark guards against a worker dying, which a commit the server has taken survives;
        # waiting for the disk as well would hold every delivery after it by a flush.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    session.execute(
        update(OutboxEvent)
        .where(col(OutboxEvent.id).in_(event_ids))
        .values(status=OutboxStatus.SENT, sent_at=utcnow(), last_error=None)
    )
    session.commit()


def _record_failure(session: Session, row: OutboxEvent, exc: Exception, max_attempts: int) -> bool:
    gave_up = row.attempts >= max_attempts
    log.warning("outbox event %s (%s) failed: %s", row.id, row.topic, exc)
    session.execute(
        update(OutboxEvent)
        .where(col(OutboxEvent.id) == row.id)
        .values(
            status=OutboxStatus.DEAD if gave_up else OutboxStatus.PENDING,
            next_run_at=utcnow() + backoff(row.attempts),
            last_error=f"{type(exc).__name__}: {exc}"[:1000],
        )
    )
    session.commit()
    return gave_up
