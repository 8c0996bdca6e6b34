"""The outbox's dead letters, for an admin: events a receiver refused until we gave up."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fulfill.deps import AdminCaller, SessionDep, problem_responses
from fulfill.inputs import MAX_ROW_ID, CreateModel
from fulfill.outbox import repository
from fulfill.outbox.models import OutboxStatus
from fulfill.outbox.service import replay_dead

router = APIRouter(prefix="/v1/outbox", tags=["operations"])


class OutboxEventPublic(BaseModel):
    id: int
    topic: str
    status: str
    attempts: int
    created_at: datetime
    next_run_at: datetime
    last_error: str | None
    payload: dict[str, Any]


class Replay(CreateModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] = Field(min_length=1, max_length=1000)


class Replayed(BaseModel):
    replayed: int


@router.get("", response_model=list[OutboxEventPublic], responses=problem_responses(401, 403))
def list_events(
    session: SessionDep,
    caller: AdminCaller,
    status: OutboxStatus = OutboxStatus.DEAD,
    topic: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OutboxEventPublic]:
    """Outbox events, the dead letters by default, newest first."""
    rows = repository.events(session, status=status, topic=topic, limit=limit)
    return [OutboxEventPublic.model_validate(row, from_attributes=True) for row in rows]


@router.post("/replay", response_model=Replayed, responses=problem_responses(401, 403, 422))
def replay(body: Replay, session: SessionDep, caller: AdminCaller) -> Replayed:
    """Queue dead events again (after their receiver was fixed); other ids are left alone."""
    count = replay_dead(session, body.ids)
    session.commit()
    return Replayed(replayed=count)
