from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from fulfill.deps import (
    AdminCaller,
    IdempotentDep,
    SessionDep,
    StockReader,
    problem_responses,
)
from fulfill.inventory import repository as repo
from fulfill.inventory import service
from fulfill.inventory.schemas import (
    NodeCreate,
    NodePublic,
    ProductCreate,
    ProductPublic,
    StockAdjustments,
    StockLevels,
    StockList,
    StockMovementPublic,
    StockPublic,
)

router = APIRouter(prefix="/v1", tags=["catalog and stock"])


@router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductPublic,
    responses=problem_responses(401, 403, 409, 422),
)
def create_product(
    payload: ProductCreate, caller: AdminCaller, idempotent: IdempotentDep
) -> JSONResponse:
    return idempotent.respond(
        caller,
        payload,
        status.HTTP_201_CREATED,
        lambda: ProductPublic.model_validate(service.create_product(idempotent.session, payload)),
    )


@router.get("/products", response_model=list[ProductPublic], responses=problem_responses(401, 403))
def list_products(
    session: SessionDep,
    _: StockReader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(description="the last sku of the previous page")] = None,
) -> list[ProductPublic]:
    return [ProductPublic.model_validate(p) for p in repo.list_products(session, limit, after)]


@router.post(
    "/nodes",
    status_code=status.HTTP_201_CREATED,
    response_model=NodePublic,
    responses=problem_responses(401, 403, 409, 422),
)
def create_node(
    payload: NodeCreate, caller: AdminCaller, idempotent: IdempotentDep
) -> JSONResponse:
    return idempotent.respond(
        caller,
        payload,
        status.HTTP_201_CREATED,
        lambda: NodePublic.model_validate(service.create_node(idempotent.session, payload)),
    )


@router.get("/nodes", response_model=list[NodePublic], responses=problem_responses(401, 403))
def list_nodes(session: SessionDep, _: StockReader) -> list[NodePublic]:
    return [NodePublic.model_validate(n) for n in repo.list_nodes(session)]


@router.get("/nodes/{code}", response_model=NodePublic, responses=problem_responses(401, 403, 404))
def get_node(code: str, session: SessionDep, _: StockReader) -> NodePublic:
    return NodePublic.model_validate(service.require_node(session, code))


@router.put(
    "/nodes/{code}/stock",
    response_model=list[StockPublic],
    responses=problem_responses(401, 403, 404, 409, 422),
)
def set_stock(
    code: str, levels: StockLevels, session: SessionDep, caller: AdminCaller
) -> list[StockPublic]:
    """Bulk upsert of counted stock: on_hand is replaced; reservations are kept. A PUT is
    idempotent by nature: sending the same counts again changes nothing."""
    result = service.set_stock_levels(session, code, levels.root, caller)
    session.commit()
    return result


@router.post(
    "/nodes/{code}/stock/adjustments",
    status_code=status.HTTP_201_CREATED,
    response_model=list[StockPublic],
    responses=problem_responses(401, 403, 404, 409, 422),
)
def adjust_stock(
    code: str, adjustments: StockAdjustments, caller: AdminCaller, idempotent: IdempotentDep
) -> JSONResponse:
    """Add or remove units with a reason (receipt, damage, loss, ...), kept in the ledger."""
    session = idempotent.session
    return idempotent.respond(
        caller,
        adjustments,
        status.HTTP_201_CREATED,
        lambda: StockList(service.adjust_stock(session, code, adjustments.root, caller)),
    )


@router.get("/stock", response_model=list[StockPublic], responses=problem_responses(401, 403))
def get_stock(
    session: SessionDep,
    _: StockReader,
    sku: str | None = None,
    node: str | None = None,
) -> list[StockPublic]:
    """Per node and sku: on hand, reserved, and available (on hand less reserved)."""
    return service.stock_public(session, sku, node)


@router.get(
    "/stock/movements",
    response_model=list[StockMovementPublic],
    responses=problem_responses(401, 403),
)
def get_movements(
    session: SessionDep,
    _: AdminCaller,
    sku: str | None = None,
    node: str | None = None,
    order_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[StockMovementPublic]:
    """The stock ledger, newest first."""
    return [
        StockMovementPublic(node=code, sku=s, **m.model_dump(exclude={"node_id", "product_id"}))
        for m, code, s in repo.movements(session, sku, node, order_id, limit)
    ]
