"""Carrier webhooks, answered fast and applied by a worker.

The API verifies the signature, keeps the delivery as a ``WebhookReceipt`` (its normalised
events) in one short transaction, answers 202 and asks a worker to apply what is pending (one
message per 50 ms however many deliveries arrive). A replay of a delivery already kept is
refused (401, nothing stored). The worker applies pending receipts in batches, each once; the
beat sweep asks again for receipts left waiting, so a lost message loses nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.errors import Unauthorized
from fulfill.tracking import service
from fulfill.tracking.models import Shipment, WebhookReceipt
from fulfill_carriers.adapter import CarrierEvent, Webhook

INGEST_TASK = "tracking.ingest"


class WebhookReplayed(Unauthorized):
    code = "webhook-replayed"


@dataclass(frozen=True)
class Applied:
    events: int
    stored: int
    unknown: tuple[str, ...]  # tracking numbers we do not follow
    deliveries: int = 0


def keep(session: Session, carrier: str, hook: Webhook, now: datetime) -> WebhookReceipt:
    """Store a verified delivery, alone in its transaction, and commit it; a replay raises
    ``WebhookReplayed`` and stores nothing."""
    receipt = WebhookReceipt(
        carrier=carrier,
        delivery_id=hook.delivery_id[:128],
        events=[e.as_dict() for e in hook.events],
        received_at=now,
    )
    session.add(receipt)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise WebhookReplayed(
            f"this {carrier} webhook delivery was received already", delivery=hook.delivery_id
        ) from None
    return receipt


def apply_pending(engine: Engine, settings: Settings, limit: int = 100) -> Applied | None:
    """Apply the oldest kept deliveries not applied yet, together: their shipments read and
    locked at once, each event once. None when there was nothing to apply."""
    with Session(engine, expire_on_commit=False) as session:
        receipts = session.exec(
            select(WebhookReceipt)
            .where(col(WebhookReceipt.processed_at).is_(None))
            .order_by(col(WebhookReceipt.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not receipts:
            return None
        now = utcnow()
        by_carrier: dict[str, list[CarrierEvent]] = defaultdict(list)
        for receipt in receipts:
            by_carrier[receipt.carrier] += [CarrierEvent.from_dict(e) for e in receipt.events]
        applied = [
            apply_events(session, carrier, events, "webhook", now, settings)
            for carrier, events in sorted(by_carrier.items())
        ]
        unknown = {n for a in applied for n in a.unknown}
        done = utcnow()  # as late as possible: processed_at - received_at is the lag
        for receipt in receipts:
            receipt.processed_at = done
            mine = {e["tracking_number"] for e in receipt.events} & unknown
            if mine:
                receipt.note = f"not followed here: {', '.join(sorted(mine)[:20])}"
        session.commit()
        return Applied(sum(a.events for a in applied), sum(a.stored for a in applied),
                       tuple(sorted(unknown)), len(receipts))  # fmt: skip


def apply_events(
    session: Session,
    carrier: str,
    events: list[CarrierEvent],
    source: str,
    now: datetime,
    settings: Settings,
) -> Applied:
    """Events of several parcels of one carrier, each to its shipment (locked, in id order)."""
    by_number: dict[str, list[CarrierEvent]] = defaultdict(list)
    for event in events:
        by_number[event.tracking_number].append(event)
    shipments = session.exec(
        select(Shipment)
        .where(Shipment.carrier == carrier, col(Shipment.tracking_number).in_(by_number))
        .order_by(col(Shipment.id))
        .with_for_update()
    ).all()
    known = service.Known.of(
        session, {s.id: by_number[s.tracking_number] for s in shipments}, shipments
    )
    stored = 0
    for shipment in shipments:
        stored += service.record(session, shipment, by_number[shipment.tracking_number],
                                 source=source, now=now, settings=settings,
                                 known=known).stored  # fmt: skip
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
