from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from fulfill.deps import (
    AdminCaller,
    ClockDep,
    SessionDep,
    SettingsDep,
    StockReader,
    problem_responses,
)
from fulfill.restock import service
from fulfill.restock.models import SuggestionKind

router = APIRouter(prefix="/v1/restock", tags=["restock"])


class Suggestion(BaseModel):
    sku: str
    node: str
    kind: SuggestionKind
    from_node: str | None
    quantity: int
    daily_demand: float
    method: str
    safety_stock: int
    reorder_point: int
    available: int
    lead_days: float
    reason: str


class RestockPage(BaseModel):
    run_at: datetime | None
    items: list[Suggestion]


@router.get("", response_model=RestockPage, responses=problem_responses(401, 403))
def list_suggestions(
    session: SessionDep, caller: StockReader, node: str | None = None, sku: str | None = None
) -> RestockPage:
    """The newest refresh's suggestions: transfers between own nodes and replenishments."""
    run_at, rows = service.latest(session, node, sku)
    return RestockPage(
        run_at=run_at,
        items=[
            Suggestion(
                sku=r.sku,
                node=code,
                kind=SuggestionKind(r.kind),
                from_node=donor,
                quantity=r.quantity,
                daily_demand=r.daily_demand,
                method=r.method,
                safety_stock=r.safety_stock,
                reorder_point=r.reorder_point,
                available=r.available,
                lead_days=r.lead_days,
                reason=r.reason,
            )
            for r, code, donor in rows
        ],
    )


@router.post("/refresh", response_model=RestockPage, responses=problem_responses(401, 403))
def refresh_now(
    session: SessionDep, caller: AdminCaller, settings: SettingsDep, clock: ClockDep
) -> RestockPage:
    """Refresh now instead of waiting for the night (the nightly task runs the same code)."""
    service.refresh(session, settings, now=clock())
    session.commit()
    return list_suggestions(session, caller)
