"""The storefront's order API: place, list, read and cancel orders, and ask what can be promised."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from fulfill.deps import (
    ClockDep,
    IdempotentDep,
    OrderReader,
    SessionDep,
    SettingsDep,
    StorefrontCaller,
    problem_responses,
)
from fulfill.geocoding import geocoder_for
from fulfill.ordering.cancelling import cancel_order as cancel
from fulfill.ordering.detail import OrderDetail, order_detail
from fulfill.ordering.placing import place_order
from fulfill.ordering.promising import quote
from fulfill.orders import repository as repo
from fulfill.orders.public import get_order as visible_order
from fulfill.orders.public import order_public
from fulfill.orders.schemas import OrderCancel, OrderCreate, OrderPage, OrderQuery
from fulfill.sourcing.schemas import PromiseAnswer, PromiseRequest
from fulfill.tracking import public

router = APIRouter(prefix="/v1/orders", tags=["orders"])
promises_router = APIRouter(prefix="/v1/promises", tags=["sourcing"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderDetail,
    responses=problem_responses(400, 401, 403, 409, 422),
)
def create_order(
    payload: OrderCreate,
    caller: StorefrontCaller,
    settings: SettingsDep,
    clock: ClockDep,
    idempotent: IdempotentDep,
) -> JSONResponse:
    """Place an order: its stock is reserved and its delivery window promised, or a 409 says
    why not (a sku short, with what is left; the service level out of reach)."""

    def place() -> OrderDetail:
        bundle = place_order(
            idempotent.session,
            caller,
            payload,
            settings=settings,
            geocoder=geocoder_for(settings),
            now=clock(),
        )
        return order_detail(bundle, settings)

    return idempotent.respond(caller, payload, status.HTTP_201_CREATED, place)


@router.get("", response_model=OrderPage, responses=problem_responses(401, 403, 422))
def list_orders(
    session: SessionDep,
    caller: OrderReader,
    settings: SettingsDep,
    query: Annotated[OrderQuery, Query()],
) -> OrderPage:
    q = query
    filters = repo.OrderFilters(
        q.status, q.service_level, q.external_id, q.created_from, q.created_to
    )
    orders, next_cursor = repo.page(session, caller, filters, q.cursor, q.limit)
    bundles = repo.bundles(session, orders, with_events=False)
    items = [order_public(b, settings) for b in bundles]
    return OrderPage(items=items, next_cursor=next_cursor)


@router.get("/{order_id}", response_model=OrderDetail, responses=problem_responses(401, 403, 404))
def get_order(
    order_id: str, session: SessionDep, caller: OrderReader, settings: SettingsDep
) -> OrderDetail:
    detail = order_detail(visible_order(session, caller, order_id), settings)
    detail.shipments = public.shipments_of_order(session, order_id)
    return detail


@router.post(
    "/{order_id}/cancel",
    response_model=OrderDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def cancel_order(
    order_id: str,
    caller: StorefrontCaller,
    idempotent: IdempotentDep,
    settings: SettingsDep,
    payload: OrderCancel | None = None,
) -> JSONResponse:
    """Cancel an order that has not shipped; its reservation is released."""
    body = payload or OrderCancel()
    return idempotent.respond(
        caller,
        body,
        status.HTTP_200_OK,
        lambda: order_detail(
            cancel(idempotent.session, caller, order_id, body.reason, settings), settings
        ),
    )


@promises_router.post(
    "", response_model=PromiseAnswer, responses=problem_responses(400, 401, 403, 422)
)
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
