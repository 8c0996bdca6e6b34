"""The dispatcher's JSON API (scope ``dispatcher``), vans (``admin``) and driver events
(``carrier``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

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
from fulfill.dispatch import editing, plans, progress, publishing, repository, rescue
from fulfill.dispatch.models import Van
from fulfill.dispatch.schemas import (
    DriverEventAccepted,
    DriverEventIn,
    LockRequest,
    MoveRequest,
    MoveResult,
    PlanPublic,
    PlanRequested,
    VanCreate,
    VanPublic,
    VanUpdate,
    WavePublic,
)
from fulfill.dispatch.views import plan_geojson, plan_public, van_public, wave_public
from fulfill.errors import Conflict, NotFound, Unprocessable
from fulfill.inputs import RowId
from fulfill.inventory import repository as inventory_repo
from fulfill.inventory.models import Node

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
        if repository.van_by_code(session, payload.code) is not None:
            raise Conflict(f"van {payload.code} exists", van=payload.code)
        van = Van(**payload.model_dump(exclude={"node"}), node_id=node.id)  # type: ignore[arg-type]
        session.add(van)
        session.flush()
        return van_public(van, node.code)

    return idempotent.respond(caller, payload, status.HTTP_201_CREATED, create)


@router.get("/vans", response_model=list[VanPublic], responses=problem_responses(401, 403))
def list_vans(session: SessionDep, _: DispatcherCaller, node: str | None = None) -> list[VanPublic]:
    return [van_public(van, n.code) for van, n in repository.vans(session, node)]


@router.patch(
    "/vans/{code}", response_model=VanPublic, responses=problem_responses(401, 403, 404, 422)
)
def update_van(
    code: str,
    payload: VanUpdate,
    session: SessionDep,
    _: DispatcherCaller,
    settings: SettingsDep,
    clock: ClockDep,
) -> VanPublic:
    """Take a van out of service, or bring it back: the plans made from now on follow. The stops
    of a route it has started go to the vans that can still reach them in their windows (the
    rescue, published at once unless the settings leave it to a dispatcher); the others move
    on to the next wave or a carrier, with the breakdown as their cause."""
    row = repository.van_by_code(session, code)
    if row is None:
        raise NotFound(f"no van {code}", van=code)
    van, node = row
    taken_out = van.active and not payload.active
    van.active = payload.active
    session.add(van)
    if taken_out:
        for stranded in rescue.stranded_by(session, van, "van out of service"):
            rescue.rescue(session, stranded, settings, clock())
        rescue.replan_waiting(session, van)
        rescue.rehome_open_waves(session, van, settings)
    session.commit()
    return van_public(van, node.code)


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
    wanted = repository.WaveQuery(node, local_date, wave_status, limit)
    return [wave_public(session, wave, n) for wave, n in repository.waves(session, wanted)]


@router.get(
    "/waves/{wave_id}", response_model=WavePublic, responses=problem_responses(401, 403, 404)
)
def get_wave(wave_id: RowId, session: SessionDep, _: DispatcherCaller) -> WavePublic:
    wave = plans.get_wave(session, wave_id)
    node = session.get(Node, wave.node_id)
    assert node is not None
    return wave_public(session, wave, node)


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
    plan = (repository.published_plan if published else repository.latest_plan)(session, wave_id)
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
