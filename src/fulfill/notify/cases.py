"""Cases: a problem a customer reported from their tracking page, and its thread.

The thread is the whole story of the order in one place, in time order: every timeline entry
(placed, sourced, planned, scanned, alerted), every notice on every channel with the words the
customer read, and every message of the case. Support staff read and answer it through the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.errors import Conflict, NotFound
from fulfill.notify.models import Case, CaseMessage, CaseStatus, Notice
from fulfill.notify.phrasing import rendered
from fulfill.notify.schemas import CasePublic, ProblemReport, ThreadItem
from fulfill.orders.models import Order, OrderEvent
from fulfill.orders.repository import record_event

CUSTOMER = "customer"


def report(session: Session, order: Order, problem: ProblemReport, now: datetime) -> Case:
    """Open a case for the order, or add to its open case of the same kind."""
    case = session.exec(
        select(Case)
        .where(Case.order_id == order.id, Case.kind == problem.kind, Case.status == CaseStatus.OPEN)
        .with_for_update()
    ).first()
    if case is None:
        case = Case(order_id=order.id, kind=problem.kind, opened_at=now)
        session.add(case)
        session.flush()
        record_event(session, order.id, "case.opened", {"case": case.id, "kind": case.kind}, at=now)
    body = problem.message.strip() or f"({problem.kind.value})"
    session.add(CaseMessage(case_id=case.id, at=now, author=CUSTOMER, body=body))
    return case


def get(session: Session, case_id: str, for_update: bool = False) -> Case:
    statement = select(Case).where(Case.id == case_id)
    if for_update:
        statement = statement.with_for_update()
    case = session.exec(statement).first()
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def answer(session: Session, case_id: str, author: str, body: str, now: datetime) -> Case:
    """A note from support staff on the case's thread."""
    case = get(session, case_id)
    session.add(CaseMessage(case_id=case.id, at=now, author=author, body=body))
    return case


def close(session: Session, case_id: str, author: str, resolution: str, now: datetime) -> Case:
    case = get(session, case_id, for_update=True)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(f"case {case_id} is closed already", case=case_id)
    case.status, case.closed_at, case.resolution = CaseStatus.CLOSED, now, resolution
    session.add(case)
    record_event(
        session,
        case.order_id,
        "case.closed",
        {"case": case.id, "by": author, "resolution": resolution},
        at=now,
    )
    return case


def listed(session: Session, status: str | None, limit: int) -> list[Case]:
    statement = select(Case).order_by(col(Case.opened_at).desc()).limit(limit)
    if status:
        statement = statement.where(Case.status == status)
    return list(session.exec(statement))


def public(session: Session, cases: Sequence[Case]) -> list[CasePublic]:
    ids = {c.order_id for c in cases}
    refs = dict(
        session.exec(select(Order.id, Order.external_id).where(col(Order.id).in_(ids))).all()
    )
    return [
        CasePublic(
            id=c.id,
            order=c.order_id,
            order_ref=refs.get(c.order_id, ""),
            kind=c.kind,
            status=c.status,
            opened_at=c.opened_at,
            closed_at=c.closed_at,
            resolution=c.resolution,
        )
        for c in cases
    ]


def thread(session: Session, case: Case, settings: Settings) -> list[ThreadItem]:
    """The order's timeline, its notices (with their words) and the case's messages, merged."""
    items = [
        ThreadItem(at=e.at, type="event", kind=e.kind, data=e.data)
        for e in session.exec(select(OrderEvent).where(OrderEvent.order_id == case.order_id)).all()
        if not e.kind.startswith("notice.")  # the notices below say it with their words
    ]
    for notice in session.exec(select(Notice).where(Notice.order_id == case.order_id)).all():
        said = rendered(notice, settings, notice.sent_at or notice.triggered_at)
        items.append(
            ThreadItem(
                at=notice.sent_at or notice.created_at,
                type="notice",
                kind=notice.kind,
                channel=notice.channel,
                status=notice.status,
                subject=said.subject,
                text=said.sms if notice.channel == "sms" else said.text,
                data={"notice": notice.id, "error": notice.error}
                if notice.error
                else {"notice": notice.id},
            )
        )
    for message in session.exec(select(CaseMessage).where(CaseMessage.case_id == case.id)).all():
        items.append(
            ThreadItem(
                at=message.at,
                type="message",
                kind="message",
                author=message.author,
                text=message.body,
            )
        )
    return sorted(items, key=lambda item: item.at)
