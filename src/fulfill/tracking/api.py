"""Carrier webhooks (authenticated by their signature, not a key) and shipments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse

from fulfill.deps import ClockDep, OrderReader, SessionDep, problem_responses
from fulfill.errors import FulfillError, NotFound, Unauthorized
from fulfill.orders.repository import get_visible
from fulfill.tracking import carriers, ingest, public
from fulfill.tracking.models import Shipment
from fulfill.tracking.schemas import ShipmentPublic, WebhookAccepted
from fulfill_carriers import Carrier, WebhookRefused

router = APIRouter(prefix="/v1", tags=["tracking"])


# The body is read raw (its signature covers the exact bytes), so it is declared by hand.
WEBHOOK_PAYLOAD = {"type": "object", "description": "the carrier's own payload, as it signs it"}
WEBHOOK_BODY = {"required": True, "content": {"application/json": {"schema": WEBHOOK_PAYLOAD}}}


async def _raw_body(request: Request) -> bytes:
    """The exact bytes a signature covers, read on the event loop (the route runs in a thread);
    ``request_guard`` has refused a body over the API's limit before it is read whole."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


@router.post(
    "/carriers/{carrier}/webhooks",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses={
        200: {"model": WebhookAccepted, "description": "kept before; stored no second time"},
        **problem_responses(400, 401, 404, 413),
    },
    openapi_extra={"requestBody": WEBHOOK_BODY},
)
def receive_webhook(
    carrier: str, request: Request, body: RawBody, session: SessionDep, clock: ClockDep
) -> WebhookAccepted | JSONResponse:
    """A carrier's tracking webhook, in its own format and signature. Verified and kept at once,
    applied by a worker moments later. A delivery kept before (a carrier's retry, a replay of what
    was signed) is a 200 naming the first receipt, and is stored no second time."""
    adapter = _webhook_carrier(request, carrier)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        hook = adapter.parse_webhook(body, headers)
    except WebhookRefused as exc:
        if exc.status == 401:
            raise Unauthorized(str(exc)) from None
        raise FulfillError(str(exc)) from None
    receipt, new = ingest.keep(session, carrier, hook, clock())
    accepted = WebhookAccepted(receipt=receipt, events=len(hook.events), already_kept=not new)
    if not new:
        return JSONResponse(accepted.model_dump(), status_code=status.HTTP_200_OK)
    request.app.state.kick_tracking()
    return accepted


def _webhook_carrier(request: Request, code: str) -> Carrier:
    """The app's adapters, made once: webhooks need no HTTP client but their secrets."""
    found: dict[str, Carrier] | None = getattr(request.app.state, "carriers", None)
    if found is None:
        found = request.app.state.carriers = carriers.configured(request.app.state.settings)
    adapter = found.get(code)
    if adapter is None or code == carriers.OWN_FLEET:
        raise NotFound(f"no carrier {code} takes webhooks here")
    return adapter


@router.get(
    "/shipments/{shipment_id}",
    response_model=ShipmentPublic,
    responses=problem_responses(401, 403, 404),
)
def get_shipment(shipment_id: str, session: SessionDep, caller: OrderReader) -> ShipmentPublic:
    """A shipment's status, ETA, late flag, timeline (every event, the carrier's code kept)
    and alerts."""
    shipment = session.get(Shipment, shipment_id)
    if shipment is None or get_visible(session, caller, shipment.order_id) is None:
        raise NotFound(f"no shipment {shipment_id}")
    return public.shipments_public(session, [shipment])[0]
