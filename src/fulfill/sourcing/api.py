from __future__ import annotations

from fastapi import APIRouter

from fulfill.deps import ClockDep, SessionDep, SettingsDep, StorefrontCaller, problem_responses
from fulfill.geocoding import geocoder_for
from fulfill.sourcing.promise import quote
from fulfill.sourcing.schemas import PromiseAnswer, PromiseRequest

router = APIRouter(prefix="/v1/promises", tags=["sourcing"])


@router.post("", response_model=PromiseAnswer, responses=problem_responses(400, 401, 403, 422))
def promise(
    payload: PromiseRequest,
    session: SessionDep,
    caller: StorefrontCaller,
    settings: SettingsDep,
    clock: ClockDep,
) -> PromiseAnswer:
    """What can be promised for this cart at this destination, per service level: the window,
    the order-by time, the nodes and shipments, the cost, or why not. Nothing is reserved."""
    return quote(session, payload, settings, geocoder_for(settings), payload.at or clock())
