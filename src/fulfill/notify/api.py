"""Support staff's API: notices and their dead letters, cases with their threads, and the
service figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status

from fulfill.auth import Caller
from fulfill.deps import (
    AdminCaller,
    ClockDep,
    SessionDep,
    SettingsDep,
    SupportCaller,
    problem_responses,
)
from fulfill.errors import Unprocessable
from fulfill.inputs import UtcDatetime
from fulfill.notify import cases, repository, sending
from fulfill.notify.figures import service_figures
from fulfill.notify.models import CaseStatus, Notice, NoticeStatus
from fulfill.notify.schemas import (
    CaseClose,
    CaseMessageCreate,
    CasePublic,
    NoticePublic,
    ServiceFigures,
)

router = APIRouter(prefix="/v1", tags=["notices and cases"])


@router.get("/notices", response_model=list[NoticePublic], responses=problem_responses(401, 403))
def list_notices(
    session: SessionDep,
    caller: SupportCaller,
    order: str | None = None,
    status_: Annotated[NoticeStatus | None, Query(alias="status")] = None,
    dead: Annotated[bool, Query(description="only notices no channel took")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NoticePublic]:
    """Notices, newest first. ``dead=true`` is the dead-letter list: failed on every channel
    the customer allows, replayable with ``POST /v1/notices/{id}/replay``."""
    wanted = NoticeStatus.FAILED if dead else status_
    found = repository.notices(session, order_id=order, status=wanted, limit=limit)
    taken_over = repository.taken_over(session, [n.id for n in found])
    rows = [_public(n, n.status == NoticeStatus.FAILED and n.id not in taken_over) for n in found]
    return [r for r in rows if r.dead] if dead else rows


@router.post(
    "/notices/{notice_id}/replay",
    response_model=NoticePublic,
    responses=problem_responses(401, 403, 404, 409),
)
def replay_notice(
    notice_id: str, session: SessionDep, caller: AdminCaller, clock: ClockDep
) -> NoticePublic:
    """Send a dead letter again on its channel, after the cause was fixed."""
    notice = sending.replay(session, notice_id, clock())
    session.commit()
    return _public(notice, dead=False)


def _public(notice: Notice, dead: bool) -> NoticePublic:
    return NoticePublic(
        id=notice.id,
        order=notice.order_id,
        shipment=notice.shipment_id,
        kind=notice.kind,
        channel=notice.channel,
        status=notice.status,
        language=notice.language,
        trigger=notice.trigger,
        triggered_at=notice.triggered_at,
        not_before=notice.not_before,
        sent_at=notice.sent_at,
        attempts=notice.attempts,
        error=notice.error,
        fallback_of=notice.fallback_of,
        dead=dead,
    )


@router.get("/cases", response_model=list[CasePublic], responses=problem_responses(401, 403))
def list_cases(
    session: SessionDep,
    caller: SupportCaller,
    status_: Annotated[CaseStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CasePublic]:
    """Cases customers opened from their tracking page, newest first."""
    return cases.public(session, cases.listed(session, status_, limit))


@router.get(
    "/cases/{case_id}", response_model=CasePublic, responses=problem_responses(401, 403, 404)
)
def get_case(
    case_id: str, session: SessionDep, caller: SupportCaller, settings: SettingsDep
) -> CasePublic:
    """A case with its thread: the order's whole story and every message on every channel."""
    case = cases.get(session, case_id)
    found = cases.public(session, [case])[0]
    found.thread = cases.thread(session, case, settings)
    return found


@router.post(
    "/cases/{case_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=CasePublic,
    responses=problem_responses(401, 403, 404, 422),
)
def answer_case(
    case_id: str,
    body: CaseMessageCreate,
    session: SessionDep,
    caller: SupportCaller,
    clock: ClockDep,
) -> CasePublic:
    """A note from support staff on the case's thread."""
    case = cases.answer(session, case_id, _author(caller), body.body, clock())
    session.commit()
    return cases.public(session, [case])[0]


@router.post(
    "/cases/{case_id}/close",
    response_model=CasePublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def close_case(
    case_id: str, body: CaseClose, session: SessionDep, caller: SupportCaller, clock: ClockDep
) -> CasePublic:
    case = cases.close(session, case_id, _author(caller), body.resolution, clock())
    session.commit()
    return cases.public(session, [case])[0]


def _author(caller: Caller) -> str:
    return f"staff:{caller.name}"[:64]


@router.get(
    "/metrics/service", response_model=ServiceFigures, responses=problem_responses(401, 403, 422)
)
def figures(
    session: SessionDep,
    caller: SupportCaller,
    clock: ClockDep,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
) -> ServiceFigures:
    """How the customers were served, over a period (default: the last 24 hours): time from
    each alert to the first notice, late deliveries told before their window ended, notices
    per order, cases."""
    until = until or clock()
    since = since or until - timedelta(days=1)
    if since >= until:
        raise Unprocessable("since must be before until", field="since")
    return service_figures(session, since, until)
