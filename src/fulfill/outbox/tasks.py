from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from fulfill.config import get_settings
from fulfill.db import engine_for, session_scope
from fulfill.outbox.handlers import handlers_for
from fulfill.outbox.service import relay
from fulfill.worker import app


@app.task(name="outbox.relay")
def relay_outbox() -> dict[str, int]:
    """Relay due outbox events. Safe to run any number of times, concurrently too."""
    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    with session_scope(engine) as session:
        result = relay(
            session,
            handlers_for(settings),
            limit=settings.outbox_batch_size,
            lease=timedelta(seconds=settings.outbox_lease_s),
            max_attempts=settings.outbox_max_attempts,
        )
    return asdict(result)
