"""Celery tasks of dispatch. Each is safe to run any number of times, concurrently too: the
wave's row says what is left to plan, and a plan version is stored once."""

from __future__ import annotations

from fulfill.config import get_settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.dispatch import polishing
from fulfill.dispatch.polishing import waves_to_polish
from fulfill.dispatch.silence import watch_silent_vans
from fulfill.dispatch.solving import plan_wave as plan_wave_version
from fulfill.dispatch.waves import close_due_waves, waves_to_plan
from fulfill.worker import app


@app.task(name="dispatch.sweep")
def sweep() -> dict[str, list[int] | list[str]]:
    """Close the waves whose cutoff has passed, ask for every plan not yet made, let the ETAs of
    silent vans slip (and rescue what they carry), and polish the live plans that changed."""
    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    with session_scope(engine) as session:
        now = utcnow()
        closed = close_due_waves(session, now)
        session.commit()
        late = watch_silent_vans(session, settings, now)
        session.commit()
        pending = waves_to_plan(session)
        rough = waves_to_polish(session, now) if settings.dispatch_polish_s > 0 else []
    for wave_id in pending:
        plan_wave.delay(wave_id)
    for wave_id in rough:
        polish_wave.delay(wave_id)
    return {"closed": closed, "to_plan": pending, "late": late, "to_polish": rough}


@app.task(name="dispatch.plan_wave")
def plan_wave(wave_id: int) -> int | None:
    """Plan the wave's newest requested version unless another worker has it; the plan id."""
    settings = get_settings()
    plan = plan_wave_version(engine_for(settings.resolved_database_url), wave_id, settings)
    return None if plan is None else plan.id


@app.task(name="dispatch.polish_wave")
def polish_wave(wave_id: int) -> bool:
    """Polish an open wave's live plan unless another worker is, or it was polished lately."""
    settings = get_settings()
    return polishing.polish_wave(engine_for(settings.resolved_database_url), wave_id, settings)
