"""The dispatcher's JSON API (scope ``dispatcher``), vans (``admin``) and driver events
(``carrier``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from sqlmodel import Session, col, func, select

from fulfill.deps import (
    AdminCaller,
    CarrierCaller,
    ClockDep,
    DispatcherCaller,
    IdempotentDep,
    SessionDep,
    SettingsDep,
    problem_responses,
)
from fulfill.dispatch import editing, planning, plans, progress, publishing
from fulfill.dispatch.models import Plan, PlanStop, Van, Wave
from fulfill.dispatch.schemas import (
    DriverEventAccepted,
    DriverEventIn,
    LockRequest,
    MoveRequest,
    MoveResult,
    PlanPublic,
    PlanRequested,
    PlanSummary,
    Position,
    RoutePublic,
    StopPublic,
    VanCreate,
    VanPublic,
    VanUpdate,
    WavePublic,
    Window,
)
from fulfill.errors import Conflict, NotFound, Unprocessable
from fulfill.inputs import RowId
from fulfill.inventory import repository as inventory_repo
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment

router = APIRouter(prefix="/v1", tags=["dispatch"])

PLAN_TASK = "dispatch.plan_wave"


# Vans.


@router.post(
    "/vans",
    status_code=status.HTTP_201_CREATED,
    response_model=VanPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def create_van(payload: VanCreate, caller: AdminCaller, idempotent: IdempotentDep) -> JSONResponse:
    def create() -> VanPublic:
        session = idempotent.session
        node = inventory_repo.node_by_code(session, payload.node)
        if node is None:
            raise Unprocessable(f"no node with code {payload.node}", field="node")
        if not node.node_kind.is_own:
            raise Unprocessable(f"node {node.code} is a third party: it has no vans", field="node")
        if session.exec(select(Van).where(Van.code == payload.code)).first() is not None:
            raise Conflict(f"van {payload.code} exists", van=payload.code)
        van = Van(**payload.model_dump(exclude={"node"}), node_id=node.id)  # type: ignore[arg-type]
        session.add(van)
        session.flush()
        return _van_public(van, node.code)

    return idempotent.respond(caller, payload, status.HTTP_201_CREATED, create)


@router.get("/vans", response_model=list[VanPublic], responses=problem_responses(401, 403))
def list_vans(session: SessionDep, _: DispatcherCaller, node: str | None = None) -> list[VanPublic]:
    query = select(Van, Node).join(Node, col(Node.id) == Van.node_id).order_by(col(Van.code))
    if node is not None:
        query = query.where(Node.code == node)
    return [_van_public(van, n.code) for van, n in session.exec(query).all()]


@router.patch(
    "/vans/{code}", response_model=VanPublic, responses=problem_responses(401, 403, 404, 422)
)
def update_van(
    code: str, payload: VanUpdate, session: SessionDep, _: DispatcherCaller
) -> VanPublic:
    """Take a van out of service, or bring it back: the plans made from now on follow. A route
    it has started stays on the dispatcher's page until its stops are moved or done."""
    row = session.exec(
        select(Van, Node).join(Node, col(Node.id) == Van.node_id).where(Van.code == code)
    ).first()
    if row is None:
        raise NotFound(f"no van {code}", van=code)
    van, node = row
    van.active = payload.active
    session.add(van)
    session.commit()
    return _van_public(van, node.code)


def _van_public(van: Van, node_code: str) -> VanPublic:
    return VanPublic(**van.model_dump(exclude={"id", "node_id", "created_at"}), node=node_code)


# Waves and plans.


@router.get("/waves", response_model=list[WavePublic], responses=problem_responses(401, 403))
def list_waves(
    session: SessionDep,
    _: DispatcherCaller,
    node: str | None = None,
    local_date: Annotated[str | None, Query(alias="date", pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    wave_status: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WavePublic]:
    query = select(Wave, Node).join(Node, col(Node.id) == Wave.node_id)
    if node is not None:
        query = query.where(Node.code == node)
    if local_date is not None:
        query = query.where(Wave.local_date == local_date)
    if wave_status is not None:
        query = query.where(Wave.status == wave_status)
    rows = session.exec(query.order_by(col(Wave.cutoff_at).desc(), col(Node.code)).limit(limit))
    return [_wave_public(session, wave, n) for wave, n in rows.all()]


@router.get(
    "/waves/{wave_id}", response_model=WavePublic, responses=problem_responses(401, 403, 404)
)
def get_wave(wave_id: RowId, session: SessionDep, _: DispatcherCaller) -> WavePublic:
    wave = plans.get_wave(session, wave_id)
    node = session.get(Node, wave.node_id)
    assert node is not None
    return _wave_public(session, wave, node)


def _wave_public(session: Session, wave: Wave, node: Node) -> WavePublic:
    assert wave.id is not None
    count = session.exec(
        select(func.count()).select_from(Fulfillment).where(Fulfillment.wave_id == wave.id)
    ).one()
    latest = planning.latest_plan(session, wave.id)
    published = planning.published_plan(session, wave.id)
    return WavePublic(
        id=wave.id,
        node=node.code,
        local_date=wave.local_date,
        utc_offset_min=_utc_offset_min(node, wave.cutoff_at),
        cutoff_at=wave.cutoff_at,
        status=wave.status,
        version=wave.version,
        planned_version=wave.planned_version,
        planning=wave.version > wave.planned_version,
        fulfillments=int(count),
        latest_plan=_summary(latest) if latest else None,
        published_plan=_summary(published) if published else None,
    )


def _utc_offset_min(node: Node, at: datetime) -> int:
    """The page shows the node's local times as the server's time zone database has them."""
    offset = at.astimezone(ZoneInfo(node.timezone)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def _summary(plan: Plan) -> PlanSummary:
    assert plan.id is not None
    return PlanSummary(
        id=plan.id,
        version=plan.version,
        status=plan.status,
        origin=plan.origin,
        cost=round(plan.cost, 2),
        distance_km=round(plan.distance_m / 1000, 3),
        vans_used=plan.vans_used,
        stops=plan.stops,
        unassigned=plan.unassigned,
        created_at=plan.created_at,
    )


@router.post(
    "/waves/{wave_id}/plan",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PlanRequested,
    responses=problem_responses(401, 403, 404, 409),
)
def plan_wave_now(
    wave_id: RowId, request: Request, caller: DispatcherCaller, idempotent: IdempotentDep
) -> JSONResponse:
    """Plan the wave now, or again: routes that are locked or on the road are kept, the others
    start from the current plan. The plan appears as the wave's next version."""

    def ask() -> PlanRequested:
        wave = plans.get_wave(idempotent.session, wave_id)
        return PlanRequested(wave=wave_id, version=plans.ask_for_plan(idempotent.session, wave))

    response = idempotent.respond(caller, None, status.HTTP_202_ACCEPTED, ask)
    request.app.state.send_task(PLAN_TASK, wave_id)
    return response


@router.get(
    "/waves/{wave_id}/plan", response_model=PlanPublic, responses=problem_responses(401, 403, 404)
)
def get_wave_plan(
    wave_id: RowId,
    session: SessionDep,
    _: DispatcherCaller,
    published: bool = Query(False, description="the published plan instead of the newest"),
) -> PlanPublic:
    plans.get_wave(session, wave_id)
    plan = (planning.published_plan if published else planning.latest_plan)(session, wave_id)
    if plan is None:
        raise NotFound(f"wave {wave_id} has no {'published ' if published else ''}plan")
    return plan_public(plans.plan_view(session, plan))


@router.get(
    "/plans/{plan_id}", response_model=PlanPublic, responses=problem_responses(401, 403, 404)
)
def get_plan(plan_id: RowId, session: SessionDep, _: DispatcherCaller) -> PlanPublic:
    return plan_public(plans.plan_view(session, plans.get_plan(session, plan_id)))


@router.get(
    "/plans/{plan_id}/geojson",
    responses={200: {"content": {"application/geo+json": {}}}, **problem_responses(401, 403, 404)},
)
def get_plan_geojson(plan_id: RowId, session: SessionDep, _: DispatcherCaller) -> JSONResponse:
    view = plans.plan_view(session, plans.get_plan(session, plan_id))
    return JSONResponse(plan_geojson(view), media_type="application/geo+json")


@router.post(
    "/plans/{plan_id}/routes/{van}/lock",
    response_model=PlanPublic,
    responses=problem_responses(401, 403, 404, 422),
)
def lock_route(
    plan_id: RowId, van: str, payload: LockRequest, session: SessionDep, _: DispatcherCaller
) -> PlanPublic:
    """Lock (or unlock) a van's route: re-plans keep a locked route as it is."""
    plan = plans.get_plan(session, plan_id)
    editing.set_route_lock(session, plan, van, payload.locked)
    session.commit()
    return plan_public(plans.plan_view(session, plan))


@router.post(
    "/plans/{plan_id}/moves",
    status_code=status.HTTP_201_CREATED,
    response_model=MoveResult,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def move_stop(
    plan_id: RowId,
    payload: MoveRequest,
    caller: DispatcherCaller,
    idempotent: IdempotentDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Move a stop to another route or position, as a new plan version. A move that breaks a
    window, a capacity or a shift is refused (409, with the reasons) unless ``force``."""

    def move() -> MoveResult:
        session = idempotent.session
        plan = plans.get_plan(session, plan_id)
        new, warnings = editing.move_stop(
            session,
            plan,
            payload.stop,
            payload.van,
            payload.position,
            force=payload.force,
            settings=settings,
        )
        return MoveResult(plan=plan_public(plans.plan_view(session, new)), warnings=warnings)

    return idempotent.respond(caller, payload, status.HTTP_201_CREATED, move)


@router.post(
    "/plans/{plan_id}/publish",
    response_model=PlanPublic,
    responses=problem_responses(401, 403, 404, 409),
)
def publish_plan(
    plan_id: RowId, session: SessionDep, _: DispatcherCaller, settings: SettingsDep, clock: ClockDep
) -> PlanPublic:
    """Dispatch the routes to their drivers and fix the customers' ETAs. Publishing the
    published plan again changes nothing."""
    plan = publishing.publish(session, plans.get_plan(session, plan_id), settings, now=clock())
    session.commit()
    return plan_public(plans.plan_view(session, plan))


# Driver events.


@router.post(
    "/driver-events",
    response_model=DriverEventAccepted,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def driver_event(
    payload: DriverEventIn,
    session: SessionDep,
    caller: CarrierCaller,
    settings: SettingsDep,
    clock: ClockDep,
) -> DriverEventAccepted:
    """A van's report. The event id makes a replay a no-op (answered with ``replayed``)."""
    report = progress.Report(
        event_id=payload.id,
        kind=payload.type,
        van=payload.van,
        at=payload.at,
        fulfillment_id=payload.stop,
        lat=payload.lat,
        lon=payload.lon,
        proof=payload.proof,
        reason=payload.reason,
        wave=payload.wave,
    )
    applied = progress.record_report(session, caller.name, report, settings, now=clock())
    session.commit()
    return DriverEventAccepted(
        id=payload.id, replayed=applied.replayed, late=applied.late, wave=applied.wave
    )


# Shapes.


def plan_public(view: plans.PlanView) -> PlanPublic:
    plan = view.plan
    summary = _summary(plan)
    return PlanPublic(
        **summary.model_dump(),
        wave=plan.wave_id,
        node=view.node.code,
        utc_offset_min=_utc_offset_min(view.node, view.wave.cutoff_at),
        depot=Position(lat=view.node.lat, lon=view.node.lon, at=plan.created_at),
        engine=plan.engine,
        duration_h=round(plan.duration_s / 3600, 3),
        solve_seconds=plan.solve_seconds,
        warnings=plan.warnings,
        published_at=plan.published_at,
        routes=[
            RoutePublic(
                van=van.code,
                locked=route.locked,
                status=route.status,
                depart_at=route.depart_at,
                return_at=route.return_at,
                distance_km=round(route.distance_m / 1000, 3),
                duration_min=round(route.duration_s / 60, 1),
                cost=round(route.cost, 2),
                load=_load(stops),
                capacity={"parcels": van.capacity_parcels, "kg": van.capacity_kg},
                rest=route.rest,
                last_position=_position(route.last_lat, route.last_lon, route.last_seen_at),
                stops=[_stop_public(s) for s in stops],
            )
            for route, van, stops in view.routes
        ],
        unassigned_stops=[_stop_public(s) for s in view.unassigned],
    )


def _load(stops: list[PlanStop]) -> dict[str, float]:
    return {
        "parcels": sum(s.parcels for s in stops),
        "kg": round(sum(s.weight_kg for s in stops), 3),
    }


def _position(lat: float | None, lon: float | None, at: datetime | None) -> Position | None:
    if lat is None or lon is None or at is None:
        return None
    return Position(lat=lat, lon=lon, at=at)


def _stop_public(stop: PlanStop) -> StopPublic:
    return StopPublic(
        fulfillment=stop.fulfillment_id,
        order=stop.order_id,
        position=stop.position,
        lat=stop.lat,
        lon=stop.lon,
        window=Window(start=stop.window_start, end=stop.window_end),
        eta=stop.eta,
        departure=stop.departure,
        wait_s=stop.wait_s,
        status=stop.status,
        late=stop.late,
        parcels=stop.parcels,
        weight_kg=stop.weight_kg,
        reason=stop.unassigned_reason,
        done_at=stop.done_at,
    )


def plan_geojson(view: plans.PlanView) -> dict[str, Any]:
    """The plan as GeoJSON (RFC 7946: longitude first): the depot, one line per route from
    the depot through its stops and back, and every stop."""
    depot = [view.node.lon, view.node.lat]
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": depot},
            "properties": {"kind": "depot", "node": view.node.code},
        },
    ]
    for route, van, stops in view.routes:
        line = [depot, *([s.lon, s.lat] for s in stops), depot]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": line},
                "properties": {
                    "kind": "route",
                    "van": van.code,
                    "locked": route.locked,
                    "status": route.status,
                    "distance_km": route.distance_m / 1000,
                },
            }
        )
    for _, van, stops in view.routes:
        features.extend(_stop_feature(s, van.code) for s in stops)
    features.extend(_stop_feature(s, None) for s in view.unassigned)
    return {"type": "FeatureCollection", "features": features}


def _stop_feature(stop: PlanStop, van: str | None) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [stop.lon, stop.lat]},
        "properties": {
            "kind": "stop",
            "van": van,
            "fulfillment": stop.fulfillment_id,
            "position": stop.position if van else None,
            "status": stop.status,
            "eta": stop.eta.isoformat() if stop.eta else None,
            "late": stop.late,
            "window_start": stop.window_start.isoformat(),
            "window_end": stop.window_end.isoformat(),
            "reason": stop.unassigned_reason,
        },
    }
