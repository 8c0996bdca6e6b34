"""What the demo reads from the service's database as the day runs: whether the service still has
work the clock must wait for, and the figures a dispatcher would glance at."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from fulfill.demo.stack import LEASE_S
from fulfill.dispatch.models import Wave, WaveStatus
from fulfill.notify.models import Notice, NoticeStatus
from fulfill.outbox.models import OutboxEvent, OutboxStatus
from fulfill.tracking.models import Shipment, WebhookReceipt
from fulfill_carriers import TrackingStatus


def busy(engine: Engine, now: datetime) -> bool:
    """Whether the service has work the clock must wait for: events due or being relayed (claimed,
    with a lease that ends beyond any retry's backoff), webhooks due to be applied (not those
    waiting to be tried again later), waves past their cutoff without a plan."""
    in_flight = now + timedelta(seconds=LEASE_S / 2)
    with Session(engine) as session:
        relaying = session.exec(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.status == OutboxStatus.PENDING,
                (col(OutboxEvent.next_run_at) <= now)
                | ((col(OutboxEvent.attempts) > 0) & (col(OutboxEvent.next_run_at) > in_flight)),
            )
        ).one()
        applying = session.exec(
            select(func.count())
            .select_from(WebhookReceipt)
            .where(
                col(WebhookReceipt.processed_at).is_(None),
                col(WebhookReceipt.retry_at).is_(None) | (col(WebhookReceipt.retry_at) <= now),
            )
        ).one()
        planning = session.exec(
            select(func.count())
            .select_from(Wave)
            .where(Wave.status == WaveStatus.CLOSED, col(Wave.planned_version) < col(Wave.version))
        ).one()
    return bool(relaying or applying or planning)


def figures_so_far(engine: Engine) -> dict[str, int]:
    """What a dispatcher would glance at: parcels delivered, late ones, notices sent."""
    counts = {
        "delivered": select(func.count())
        .select_from(Shipment)
        .where(Shipment.status == TrackingStatus.DELIVERED),
        "late": select(func.count()).select_from(Shipment).where(col(Shipment.late)),
        "notices": select(func.count())
        .select_from(Notice)
        .where(Notice.status == NoticeStatus.SENT),
    }
    with Session(engine) as session:
        return {name: session.exec(query).one() for name, query in counts.items()}
