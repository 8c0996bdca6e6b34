"""Carrier webhooks, answered fast and applied by a worker.

The API verifies the signature, keeps the delivery as a ``WebhookReceipt`` (its normalised
events) in one short transaction, answers 202 and asks a worker to apply it. A replay of a
delivery already kept is refused (401, nothing stored). The worker applies each receipt once;
a sweep re-sends receipts nobody applied, so a lost task message loses nothing.
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


def keep(session: Session, carrier: str, hook: Webhook, now: datetime) -> WebhookReceipt:
    """Store a verified delivery (committed by the caller); a replay raises ``WebhookReplayed``."""
    receipt = WebhookReceipt(
        carrier=carrier,
        delivery_id=hook.delivery_id[:128],
        events=[e.as_dict() for e in hook.events],
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(receipt)
    except IntegrityError:
        raise WebhookReplayed(
            f"this {carrier} webhook delivery was received already", delivery=hook.delivery_id
        ) from None
    return receipt


def apply_receipt(engine: Engine, receipt_id: int, settings: Settings) -> Applied | None:
    """Apply a kept delivery's events, once; None if it was applied already."""
    with Session(engine, expire_on_commit=False) as session:
        receipt = session.exec(
            select(WebhookReceipt).where(WebhookReceipt.id == receipt_id).with_for_update()
        ).first()
        if receipt is None or receipt.processed_at is not None:
            return None
        now = utcnow()
        events = [CarrierEvent.from_dict(e) for e in receipt.events]
        applied = apply_events(session, receipt.carrier, events, "webhook", now, settings)
        receipt.processed_at = now
        if applied.unknown:
            receipt.note = f"not followed here: {', '.join(applied.unknown[:20])}"
        session.commit()
        return applied


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
    stored = 0
    for shipment in shipments:
        stored += service.record(session, shipment, by_number[shipment.tracking_number],
                                 source=source, now=now, settings=settings).stored  # fmt: skip
    known = {s.tracking_number for s in shipments}
    return Applied(len(events), stored, tuple(sorted(set(by_number) - known)))


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
