"""The nightly refresh of restock suggestions."""

from __future__ import annotations

from fulfill.config import get_settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.restock.service import refresh as refresh_suggestions
from fulfill.worker import app


@app.task(name="restock.refresh")
def refresh() -> int:
    """Forecast every sku at every node and store this run's suggestions; safe to run twice."""
    settings = get_settings()
    with session_scope(engine_for(settings.resolved_database_url)) as session:
        made = refresh_suggestions(session, settings, now=utcnow())
        session.commit()
    return made
