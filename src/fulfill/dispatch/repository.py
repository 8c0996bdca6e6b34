"""The dispatch domain's queries: a wave's plans (latest, published, current), what it delivers and
weighs, the vans of a node, and the hours earlier waves' routes have booked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from fulfill.config import Settings
from fulfill.dispatch.models import (
    LiveRoute,
    Plan,
    PlanRoute,
    PlanStatus,
    PlanStop,
    Van,
    Wave,
)
from fulfill.inventory.models import Node, Product
from fulfill.orders.models import Fulfillment, FulfillmentLine, FulfillmentStatus, Order


@dataclass(frozen=True)
class Delivery:
    """What the planner needs of one fulfillment of the wave."""

    fulfillment_id: str
    order_id: str
    lat: float
    lon: float
    window_start: datetime
    window_end: datetime
    parcels: int
    weight_kg: float


def latest_plan(session: Session, wave_id: int) -> Plan | None:
    return session.exec(
        select(Plan).where(Plan.wave_id == wave_id).order_by(col(Plan.version).desc())
    ).first()


def published_plan(session: Session, wave_id: int) -> Plan | None:
    return session.exec(
        select(Plan).where(Plan.wave_id == wave_id, Plan.status == PlanStatus.PUBLISHED)
    ).first()


def current_plan(session: Session, wave_id: int) -> Plan | None:
    """The plan the vans follow if one is published, else the newest draft."""
    return published_plan(session, wave_id) or latest_plan(session, wave_id)


def wave_deliveries(session: Session, wave: Wave) -> list[Delivery]:
    rows = session.exec(
        select(Fulfillment, Order)
        .join(Order, col(Order.id) == Fulfillment.order_id)
        .where(Fulfillment.wave_id == wave.id, Fulfillment.status == FulfillmentStatus.PENDING)
        .order_by(col(Fulfillment.created_at), col(Fulfillment.id))
    ).all()
    weights = _weights(session, [f.id for f, _ in rows])
    return [
        Delivery(
            fulfillment_id=f.id,
            order_id=o.id,
            lat=o.dest_lat,
            lon=o.dest_lon,
            window_start=o.promise_start,
            window_end=o.promise_end,
            parcels=1,
            weight_kg=weights.get(f.id, 0.0),
        )
        for f, o in rows
    ]


def wave_load(session: Session, wave: Wave) -> tuple[int, float]:
    """Parcels and kilograms the wave holds: one parcel per pending fulfillment, as planned."""
    parcels = session.exec(
        select(func.count())
        .select_from(Fulfillment)
        .where(Fulfillment.wave_id == wave.id, Fulfillment.status == FulfillmentStatus.PENDING)
    ).one()
    kg = session.exec(
        select(func.coalesce(func.sum(FulfillmentLine.quantity * Product.weight_kg), 0.0))
        .join(Fulfillment, col(Fulfillment.id) == FulfillmentLine.fulfillment_id)
        .join(Product, col(Product.id) == FulfillmentLine.product_id)
        .where(Fulfillment.wave_id == wave.id, Fulfillment.status == FulfillmentStatus.PENDING)
    ).one()
    return int(parcels), float(kg)


def delivery_of(stop: PlanStop) -> Delivery:
    """A stop of a stored plan as the planner sees it again."""
    return Delivery(
        fulfillment_id=stop.fulfillment_id,
        order_id=stop.order_id,
        lat=stop.lat,
        lon=stop.lon,
        window_start=stop.window_start,
        window_end=stop.window_end,
        parcels=stop.parcels,
        weight_kg=stop.weight_kg,
    )


def _weights(session: Session, fulfillment_ids: Sequence[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for start in range(0, len(fulfillment_ids), 500):
        chunk = fulfillment_ids[start : start + 500]
        rows = session.exec(
            select(FulfillmentLine.fulfillment_id, FulfillmentLine.quantity, Product.weight_kg)
            .join(Product, col(Product.id) == FulfillmentLine.product_id)
            .where(col(FulfillmentLine.fulfillment_id).in_(chunk))
        ).all()
        for fulfillment_id, quantity, weight in rows:
            totals[fulfillment_id] = totals.get(fulfillment_id, 0.0) + quantity * weight
    return totals


def active_vans(session: Session, node_id: int) -> list[Van]:
    return list(
        session.exec(
            select(Van).where(Van.node_id == node_id, col(Van.active)).order_by(col(Van.code))
        ).all()
    )


@dataclass(frozen=True)
class Booked:
    """When a van is free for a wave, as the day's other published plans book it: back from
    the routes of earlier waves and loaded again, and back before the routes of later ones."""

    after: datetime | None = None
    before: datetime | None = None


def bookings(session: Session, wave: Wave, settings: Settings) -> dict[str, Booked]:
    """Each van's hours taken by its routes in the other waves of the day at the wave's node,
    as their published plans have them, or their live plans before any is published (a route
    whose last door is done still has its drive back to the depot ahead)."""
    others = (
        Wave.node_id == wave.node_id,
        Wave.local_date == wave.local_date,
        Wave.id != wave.id,
    )
    published = select(Plan.id).where(Plan.wave_id == Wave.id, Plan.status == PlanStatus.PUBLISHED)
    rows = session.exec(
        select(Van.code, Wave.cutoff_at, PlanRoute.depart_at, PlanRoute.return_at)
        .join(PlanRoute, col(PlanRoute.van_id) == Van.id)
        .join(Plan, col(Plan.id) == PlanRoute.plan_id)
        .join(Wave, col(Wave.id) == Plan.wave_id)
        .where(*others, Plan.status == PlanStatus.PUBLISHED)
    ).all()
    live = session.exec(
        select(LiveRoute.van_code, Wave.cutoff_at, LiveRoute.depart_at, LiveRoute.return_at)
        .join(Wave, col(Wave.id) == LiveRoute.wave_id)
        .where(*others, ~published.exists())
    ).all()
    reload = timedelta(minutes=settings.dispatch_reload_min)
    booked: dict[str, Booked] = {}
    for code, cutoff, depart_at, return_at in [*rows, *live]:
        was = booked.get(code, Booked())
        if cutoff < wave.cutoff_at:
            back = return_at + reload
            booked[code] = Booked(max(was.after or back, back), was.before)
        else:
            gone = depart_at - reload
            booked[code] = Booked(was.after, min(was.before or gone, gone))
    return booked


def published_stop(session: Session, fulfillment_id: str) -> PlanStop | None:
    """The fulfillment's stop in the newest published plan that gave it a route."""
    return session.exec(
        select(PlanStop)
        .join(Plan, col(Plan.id) == PlanStop.plan_id)
        .where(
            PlanStop.fulfillment_id == fulfillment_id,
            Plan.status == PlanStatus.PUBLISHED,
            col(PlanStop.route_id).is_not(None),
        )
        .order_by(col(Plan.id).desc())
    ).first()


def route_positions(session: Session, route_id: int) -> list[tuple[int, str]]:
    """(position, status) of every stop of a route."""
    return [
        (position, status)
        for position, status in session.exec(
            select(PlanStop.position, PlanStop.status).where(PlanStop.route_id == route_id)
        )
    ]


def van_by_code(session: Session, code: str) -> tuple[Van, Node] | None:
    """A van and the node it belongs to."""
    row = session.exec(
        select(Van, Node).join(Node, col(Node.id) == Van.node_id).where(Van.code == code)
    ).first()
    return (row[0], row[1]) if row is not None else None


def vans(session: Session, node_code: str | None) -> list[tuple[Van, Node]]:
    """Every van (of one node when given) with its node, by code."""
    query = select(Van, Node).join(Node, col(Node.id) == Van.node_id).order_by(col(Van.code))
    if node_code is not None:
        query = query.where(Node.code == node_code)
    return [(van, node) for van, node in session.exec(query)]


@dataclass(frozen=True)
class WaveQuery:
    node_code: str | None = None
    local_date: str | None = None
    status: str | None = None
    limit: int = 100


def waves(session: Session, wanted: WaveQuery) -> list[tuple[Wave, Node]]:
    """Waves with their nodes, the latest cutoff first."""
    query = select(Wave, Node).join(Node, col(Node.id) == Wave.node_id)
    if wanted.node_code is not None:
        query = query.where(Node.code == wanted.node_code)
    if wanted.local_date is not None:
        query = query.where(Wave.local_date == wanted.local_date)
    if wanted.status is not None:
        query = query.where(Wave.status == wanted.status)
    ordered = query.order_by(col(Wave.cutoff_at).desc(), col(Node.code)).limit(wanted.limit)
    return [(wave, node) for wave, node in session.exec(ordered)]


def wave_size(session: Session, wave_id: int) -> int:
    """How many fulfillments joined the wave."""
    return session.exec(
        select(func.count()).select_from(Fulfillment).where(Fulfillment.wave_id == wave_id)
    ).one()
