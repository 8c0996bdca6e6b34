"""Periodic housekeeping tasks."""

from __future__ import annotations

from datetime import timedelta

from fulfill.config import get_settings
from fulfill.db import engine_for, session_scope
from fulfill.idempotency import purge_expired
from fulfill.worker import app


@app.task(name="maintenance.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    settings = get_settings()
    with session_scope(engine_for(settings.resolved_database_url)) as session:
        purged = purge_expired(session, timedelta(hours=settings.idempotency_ttl_hours))
        session.commit()
    return purged
