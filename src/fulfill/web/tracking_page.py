"""The customer's tracking page: ``GET /t/{token}`` (HTML) and ``/t/{token}.json`` (its twin).

Public and without login: the token (128 random bits, one per order) is the only key, so the
page shows nothing personal beyond the first name and the town, never the address, the phone,
the email or the contents. An unknown token is the same 404 as any other missing page, and
every address is rate limited per client, so tokens cannot be searched for.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from limits import parse as parse_rate
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from sqlmodel import Session

from fulfill.client_address import client_address
from fulfill.deps import ClockDep, SessionDep, SettingsDep, problem_responses
from fulfill.dispatch import repository as dispatch_repository
from fulfill.dispatch.models import PlanRoute, RouteStatus, StopStatus
from fulfill.errors import Forbidden, NotFound, TooManyRequests, Unprocessable
from fulfill.notify import cases, wording
from fulfill.notify import repository as notify_repository
from fulfill.notify.announcing import zones_of
from fulfill.notify.models import CaseKind
from fulfill.notify.schemas import (
    CaseOpened,
    PageEvent,
    PageParcel,
    ProblemReport,
    TrackingView,
    VanProgress,
)
from fulfill.orders import repository as orders_repository
from fulfill.orders.models import Order, OrderStatus
from fulfill.tracking import repository as tracking_repository
from fulfill.tracking.models import Shipment, TrackingEvent
from fulfill_carriers import OWN_FLEET, TrackingStatus, label

HERE = Path(__file__).parent
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
)
# The page draws itself from its own styles and posts only to itself; no one may frame it.
CONTENT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": CONTENT_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# A browser says where a post comes from; the page's own form is the only one it may come from.
SAME_SITE = frozenset({"same-origin", "none"})
GONE = "no such tracking page"  # the same words for every token we do not know
# The report's body, read by hand (a form or JSON), as the document shows it.
REPORT_SCHEMA = {
    "type": "object",
    "required": ["kind"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": [k.value for k in CaseKind]},
        "message": {"type": "string", "maxLength": 2000},
    },
}


class PageLimiter:
    """Requests per client address to the public pages, counted where ``storage`` says: Redis
    in production, so every API process counts against one limit."""

    def __init__(self, rate: str, storage: str) -> None:
        self.rate = parse_rate(rate)
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage))

    def check(self, client: str) -> None:
        if not self.limiter.hit(self.rate, "tracking-page", client):
            reset, _ = self.limiter.get_window_stats(self.rate, "tracking-page", client)
            wait = max(1, int(reset - datetime.now().timestamp()) + 1)
            raise TooManyRequests("too many requests to tracking pages; try again soon", wait)


def _limited(request: Request) -> None:
    settings = request.app.state.settings
    limiter: PageLimiter | None = getattr(request.app.state, "page_limiter", None)
    if limiter is None:
        limiter = request.app.state.page_limiter = PageLimiter(
            settings.tracking_page_rate, settings.resolved_rate_limit_storage
        )
    limiter.check(client_address(request, settings.trusted_proxies))


router = APIRouter(tags=["tracking page"], dependencies=[Depends(_limited)])


@router.get("/t/{token}.json", response_model=TrackingView)
def tracking_json(token: str, session: SessionDep, clock: ClockDep) -> TrackingView:
    """The tracking page's data, for the storefront's own pages and apps."""
    return view(session, _order(session, token), clock())


@router.get("/t/{token}", response_class=HTMLResponse, include_in_schema=False)
def tracking_page(
    token: str, session: SessionDep, clock: ClockDep, reported: str | None = None
) -> HTMLResponse:
    order = _order(session, token)
    page = view(session, order, clock())
    lang = wording.language_of(page.language)
    words = wording.PAGE[lang]
    html = templates.get_template("track.html").render(
        page=page,
        token=token,
        reported=reported is not None,
        lang=lang,
        words=words,
        kinds=[(kind, words[kind]) for kind in page.problem_kinds],
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.post(
    "/t/{token}/problems",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseOpened,
    responses={
        303: {"description": "the page's form: back to the page"},
        **problem_responses(403, 404, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": REPORT_SCHEMA},
                "application/x-www-form-urlencoded": {"schema": REPORT_SCHEMA},
            },
        }
    },
)
async def report_problem(
    token: str, request: Request, clock: ClockDep, settings: SettingsDep
) -> Response:
    """Open a case (or add to the open one): JSON ``{"kind", "message"}``, or the page's form,
    which is answered with a redirect back to the page. A browser's post from another site is
    refused: only the page's own form speaks for the customer."""
    _refuse_cross_site(request)
    is_form = request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    )
    report = _report(await request.body(), is_form)
    engine = request.app.state.engine
    with Session(engine, expire_on_commit=False) as session:
        order = _order(session, token)
        case = cases.report(session, order, report, clock())
        session.commit()
    if is_form:
        return RedirectResponse(f"/t/{token}?reported", status_code=status.HTTP_303_SEE_OTHER)
    body = CaseOpened(case=case.id, status=case.status)
    return Response(body.model_dump_json(), status_code=201, media_type="application/json")


def _refuse_cross_site(request: Request) -> None:
    fetched_from = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if fetched_from is not None and fetched_from not in SAME_SITE:
        raise Forbidden("a problem is reported from its tracking page, not from another site")
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        raise Forbidden("a problem is reported from its tracking page, not from another site")


def _report(body: bytes, is_form: bool) -> ProblemReport:
    try:
        if is_form:
            fields = {k: v[0] for k, v in parse_qs(body.decode(), max_num_fields=10).items()}
            return ProblemReport.model_validate(fields)
        return ProblemReport.model_validate_json(body)
    except (ValidationError, UnicodeDecodeError, ValueError) as exc:
        kinds = ", ".join(k.value for k in CaseKind)
        raise Unprocessable(
            f"a report needs a kind ({kinds}) and at most 2000 characters", field="kind"
        ) from exc


def _order(session: Session, token: str) -> Order:
    order = orders_repository.order_by_token(session, token)
    if order is None:
        raise NotFound(GONE)
    return order


def view(session: Session, order: Order, now: datetime) -> TrackingView:
    language = str(order.customer.get("language", "en"))
    zone = zones_of(session, {order.id: order}).get(order.id, "UTC")
    shipments = tracking_repository.shipments_of(session, order.id)
    events = tracking_repository.events_of(session, [s.id for s in shipments], moved_only=True)
    parcels = [_parcel(session, s, events.get(s.id, []), zone, now, language) for s in shipments]
    overall = _overall(order, shipments)
    late = any(p.late for p in parcels)
    headline = wording.status("late" if late and overall != "delivered" else overall, language)
    open_case = notify_repository.open_case_id(session, order.id)
    return TrackingView(
        first_name=wording.first_name(str(order.customer.get("name", ""))),
        town=((order.destination.get("address") or {}).get("city")),
        order_ref=order.external_id,
        language=language,
        status=overall,
        headline=headline,
        promised_window=[order.promise_start, order.promise_end],
        promised_text=wording.window(order.promise_start, order.promise_end, zone, now, language),
        late=late,
        parcels=parcels,
        problem_kinds=[] if order.status == OrderStatus.CANCELLED else [k.value for k in CaseKind],
        open_case=open_case is not None,
    )


def _overall(order: Order, shipments: Any) -> str:
    if order.status == OrderStatus.CANCELLED:
        return "cancelled"
    if not shipments:
        return "confirmed"
    # The parcel furthest from the door speaks for the order.
    return min((TrackingStatus(s.status) for s in shipments), key=lambda s: s.rank).value


def _parcel(
    session: Session,
    shipment: Shipment,
    events: list[TrackingEvent],
    zone: str,
    now: datetime,
    language: str,
) -> PageParcel:
    ours = shipment.carrier == OWN_FLEET
    eta = None
    if shipment.eta is not None and not TrackingStatus(shipment.status).is_terminal:
        eta = list(wording.eta_window(shipment.eta, shipment.eta_source))
    return PageParcel(
        status=shipment.status,
        text=wording.status(shipment.status, language),
        carrier="" if ours else label(shipment.carrier),
        tracking_number=None if ours else shipment.tracking_number,
        eta_window=eta,
        eta_text=wording.window(eta[0], eta[1], zone, now, language) if eta else None,
        late=shipment.late,
        van=_van(session, shipment.fulfillment_id) if ours else None,
        timeline=[
            PageEvent(
                at=e.occurred_at,
                status=e.status,
                at_text=wording.moment(e.occurred_at, zone, language),
                text=wording.status(e.status, language),
                place=None if ours else e.location,
            )
            for e in events
        ],
    )


def _van(session: Session, fulfillment_id: str) -> VanProgress | None:
    """How far the van is along its route: counts only, never where the other doors are."""
    mine = dispatch_repository.published_stop(session, fulfillment_id)
    if mine is None or mine.route_id is None:
        return None
    route = session.get(PlanRoute, mine.route_id)
    stops = dispatch_repository.route_positions(session, mine.route_id)
    done = sum(StopStatus(s).done for _, s in stops)
    before = sum(1 for p, s in stops if p < mine.position and not StopStatus(s).done)
    return VanProgress(
        started=route is not None and route.status != RouteStatus.PLANNED,
        stops_before=before,
        stops_done=done,
        stops_total=len(stops),
    )
