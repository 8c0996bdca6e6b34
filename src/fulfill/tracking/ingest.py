"""Carrier webhooks, answered fast and applied by a worker.

The API verifies the signature, keeps the delivery as a ``WebhookReceipt`` (its normalised
events) in one short transaction, answers 202 and asks a worker to apply what is pending (one
message per 50 ms however many deliveries arrive). A delivery kept already (a carrier's retry
after a lost answer, or a replay of what was signed) is answered as kept and stored no second
time: a 401 would read to the carrier as a wrong secret. The worker applies pending receipts in
batches, each once; the beat sweep asks again for receipts left waiting, so a lost message loses
nothing. Events for a parcel not followed yet wait and are tried again; a delivery that cannot be
applied at all is set aside with the reason, its events kept.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from fulfill.db import utcnow
from fulfill.tracking import carriers, recording
from fulfill.tracking.models import Shipment, WebhookReceipt
from fulfill_carriers import CarrierEvent, Webhook

INGEST_TASK = "tracking.ingest"
# Events for a parcel not followed (yet) are tried again this often, doubling, this many times.
UNKNOWN_BACKOFF = timedelta(seconds=30)
UNKNOWN_TRIES = 6

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    events: int
    stored: int
    unknown: tuple[str, ...]  # tracking numbers we do not follow
    deliveries: int = 0


def keep(session: Session, carrier: str, hook: Webhook, now: datetime) -> tuple[int, bool]:
    """Store a verified delivery, alone in its transaction, and commit it: its receipt's id,
    and whether it is new (a delivery kept before stores nothing and answers the first id)."""
    delivery = hook.delivery_id[:128]
    events = [e.as_dict() for e in hook.events]
    receipt = WebhookReceipt(carrier=carrier, delivery_id=delivery, events=events, received_at=now)
    session.add(receipt)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        first = session.exec(
            select(WebhookReceipt.id).where(
                WebhookReceipt.carrier == carrier, WebhookReceipt.delivery_id == delivery
            )
        ).one()
        assert first is not None
        return first, False
    assert receipt.id is not None
    return receipt.id, True


def apply_pending(engine: Engine, limit: int = 100, now: datetime | None = None) -> Applied | None:
    """Apply the oldest kept deliveries that are due, together: their shipments read and locked
    at once, each event once. None when nothing was due. A batch that fails is applied again
    one delivery at a time, so one bad delivery never holds up the others."""
    now = now or utcnow()
    with Session(engine, expire_on_commit=False) as session:
        receipts = _due(session, now, limit)
        if not receipts:
            return None
        ids = [r.id for r in receipts if r.id is not None]
        try:
            applied = _apply(session, receipts, now)
            session.commit()
            return applied
        except Exception:
            session.rollback()
            log.warning(
                "a batch of %d webhook deliveries failed; one by one now", len(ids), exc_info=True
            )
    return _one_by_one(engine, ids, now)


def _due(
    session: Session, now: datetime, limit: int, ids: list[int] | None = None
) -> list[WebhookReceipt]:
    query = select(WebhookReceipt).where(
        col(WebhookReceipt.processed_at).is_(None),
        or_(col(WebhookReceipt.retry_at).is_(None), col(WebhookReceipt.retry_at) <= now),
    )
    if ids is not None:
        query = query.where(col(WebhookReceipt.id).in_(ids))
    return list(
        session.exec(
            query.order_by(col(WebhookReceipt.id)).limit(limit).with_for_update(skip_locked=True)
        ).all()
    )


def _apply(session: Session, receipts: list[WebhookReceipt], now: datetime) -> Applied:
    by_carrier: dict[str, list[CarrierEvent]] = defaultdict(list)
    for receipt in receipts:
        receipt.attempts += 1
        by_carrier[receipt.carrier] += [CarrierEvent.from_dict(e) for e in receipt.events]
    applied = [
        apply_events(session, carrier, events, "webhook", now)
        for carrier, events in sorted(by_carrier.items())
    ]
    unknown = {n for a in applied for n in a.unknown}
    done = utcnow()  # as late as possible: processed_at - received_at is the lag
    for receipt in receipts:
        waiting = sorted({e["tracking_number"] for e in receipt.events} & unknown)
        if waiting and receipt.attempts < UNKNOWN_TRIES:
            # Perhaps not followed yet (the carrier answered before we recorded the parcel):
            # the known parcels' events are applied, the rest wait and are tried again.
            receipt.retry_at = now + UNKNOWN_BACKOFF * 2 ** (receipt.attempts - 1)
            receipt.note = f"waiting for {', '.join(waiting[:20])} to be followed"
            continue
        receipt.processed_at = done
        if waiting:
            receipt.note = f"not followed here: {', '.join(waiting[:20])}"
    return Applied(
        sum(a.events for a in applied),
        sum(a.stored for a in applied),
        tuple(sorted(unknown)),
        len(receipts),
    )


def _one_by_one(engine: Engine, ids: list[int], now: datetime) -> Applied:
    events = stored = 0
    unknown: list[str] = []
    for receipt_id in ids:
        with Session(engine, expire_on_commit=False) as session:
            receipts = _due(session, now, 1, [receipt_id])
            if not receipts:
                continue
            try:
                applied = _apply(session, receipts, now)
                session.commit()
            except Exception as exc:
                session.rollback()
                _set_aside(session, receipt_id, exc)
                continue
        events, stored = events + applied.events, stored + applied.stored
        unknown += applied.unknown
    return Applied(events, stored, tuple(unknown), len(ids))


def _set_aside(session: Session, receipt_id: int, exc: Exception) -> None:
    """A delivery that cannot be applied stays kept, with why, for a person to look at."""
    log.error("webhook delivery %s cannot be applied: %s", receipt_id, exc)
    receipt = session.get(WebhookReceipt, receipt_id)
    if receipt is not None:
        receipt.processed_at = utcnow()
        receipt.note = f"could not be applied: {type(exc).__name__}: {exc}"[:2000]
        session.commit()


def apply_events(
    session: Session,
    carrier: str,
    events: list[CarrierEvent],
    source: str,
    now: datetime,
) -> Applied:
    """Events of several parcels of one carrier, each to its shipment (locked, in id order)."""
    by_number: dict[str, list[CarrierEvent]] = defaultdict(list)
    for event in events:
        by_number[event.tracking_number].append(event)
    query = select(Shipment).where(col(Shipment.tracking_number).in_(by_number))
    if carrier not in carriers.aggregators():  # an aggregator reports parcels of any carrier
        query = query.where(Shipment.carrier == carrier)
    shipments = session.exec(query.order_by(col(Shipment.id)).with_for_update()).all()
    known = recording.Known.of(
        session, {s.id: by_number[s.tracking_number] for s in shipments}, shipments
    )
    stored = 0
    for shipment in shipments:
        stored += recording.record(
            session,
            shipment,
            by_number[shipment.tracking_number],
            source=source,
            now=now,
            known=known,
        ).stored
    known.write(session)
    found = {s.tracking_number for s in shipments}
    return Applied(len(events), stored, tuple(sorted(set(by_number) - found)))


def unapplied(
    session: Session, older_than: timedelta, now: datetime, limit: int = 1000
) -> list[int]:
    """Receipts kept for a while and not applied: their task message was lost."""
    ids = session.exec(
        select(WebhookReceipt.id)
        .where(
            col(WebhookReceipt.processed_at).is_(None),
            col(WebhookReceipt.received_at) < now - older_than,
        )
        .order_by(col(WebhookReceipt.received_at))
        .limit(limit)
    ).all()
    return [i for i in ids if i is not None]
