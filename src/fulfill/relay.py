"""The outbox relay, as a Celery task: the worker side of the seam ``fulfill.wiring`` wires."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from fulfill.config import get_settings
from fulfill.db import engine_for, session_scope
from fulfill.outbox.service import relay
from fulfill.wiring import outbox_handlers, wire
from fulfill.worker import app

wire()  # a worker imports its task modules when it starts


@app.task(name="outbox.relay")
def relay_outbox() -> dict[str, int]:
    """Relay due outbox events. Safe to run any number of times, concurrently too."""
    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    with session_scope(engine) as session:
        result = relay(
            session,
            outbox_handlers(settings),
            limit=settings.outbox_batch_size,
            lease=timedelta(seconds=settings.outbox_lease_s),
            max_attempts=settings.outbox_max_attempts,
        )
    return asdict(result)
