"""Dispatch as the API shows it: vans, waves with their plans' summaries, plans with their
routes and stops, and a plan as GeoJSON for the map."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from fulfill.dispatch import plans, repository
from fulfill.dispatch.models import Plan, PlanStop, Van, Wave
from fulfill.dispatch.schemas import (
    PlanPublic,
    PlanSummary,
    Position,
    RoutePublic,
    StopPublic,
    VanPublic,
    WavePublic,
    Window,
)
from fulfill.inventory.models import Node


def van_public(van: Van, node_code: str) -> VanPublic:
    return VanPublic(**van.model_dump(exclude={"id", "node_id", "created_at"}), node=node_code)


def wave_public(session: Session, wave: Wave, node: Node) -> WavePublic:
    assert wave.id is not None
    count = repository.wave_size(session, wave.id)
    latest = repository.latest_plan(session, wave.id)
    published = repository.published_plan(session, wave.id)
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
