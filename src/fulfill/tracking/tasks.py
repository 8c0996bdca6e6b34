"""Celery side of tracking: apply a kept webhook delivery, poll the carriers due, and sweep for
shipments that went quiet. Each is safe to run twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fulfill.config import get_settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.tracking import carriers, ingest, polling, sweeping
from fulfill.worker import app

# Receipts nobody applied within this long lost their task message: it is sent again.
RESEND_AFTER = timedelta(seconds=30)


@app.task(name=ingest.INGEST_TASK)
def apply_pending() -> dict[str, Any]:
    """Apply what webhooks brought, batch after batch, until nothing is pending."""
    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    deliveries = events = 0
    while (applied := ingest.apply_pending(engine)) is not None:
        deliveries, events = deliveries + applied.deliveries, events + applied.events
    return {"deliveries": deliveries, "events": events}


@app.task(name="tracking.poll")
def poll() -> dict[str, Any]:
    settings = get_settings()
    configured = carriers.configured(settings)
    try:
        report = polling.poll_due(
            engine_for(settings.resolved_database_url), configured, settings, utcnow()
        )
    finally:
        carriers.close(configured)
    return {
        "shipments": report.shipments,
        "calls": report.calls,
        "events": report.events,
        "failed_calls": report.failed_calls,
        "skipped": report.skipped,
    }


@app.task(name="tracking.sweep")
def sweep() -> dict[str, int]:
    """Alerts for quiet shipments and passed ETAs; receipts whose task was lost, sent again."""
    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    now = utcnow()
    with session_scope(engine) as session:
        raised = sweeping.sweep(session, now)
        lost = ingest.unapplied(session, RESEND_AFTER, now)
        session.commit()
    if lost:
        apply_pending.delay()
    return {"alerts": len(raised), "waiting": len(lost)}
