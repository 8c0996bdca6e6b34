"""The notify domain's queries that its API and the pages read: notices by order and status,
which of them a fallback took over, and an order's open case."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from fulfill.notify.models import Case, CaseStatus, Notice, NoticeStatus


def notices(
    session: Session, *, order_id: str | None, status: NoticeStatus | None, limit: int
) -> Sequence[Notice]:
    """Notices, newest first, of one order and in one status when given."""
    statement = select(Notice).order_by(col(Notice.created_at).desc()).limit(limit)
    if order_id:
        statement = statement.where(Notice.order_id == order_id)
    if status:
        statement = statement.where(Notice.status == status)
    return session.exec(statement).all()


def taken_over(session: Session, notice_ids: Sequence[str]) -> set[str]:
    """Those of the notices that another channel's notice fell back from."""
    if not notice_ids:
        return set()
    found = session.exec(select(Notice.fallback_of).where(col(Notice.fallback_of).in_(notice_ids)))
    return {notice_id for notice_id in found if notice_id is not None}


def open_case_id(session: Session, order_id: str) -> str | None:
    return session.exec(
        select(Case.id).where(Case.order_id == order_id, Case.status == CaseStatus.OPEN)
    ).first()
