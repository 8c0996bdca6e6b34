"""Which nodes ship a cart: the optimiser over what every node offers right now.

``source_cart`` describes each active node to the optimiser (what it holds and can still pick,
what a shipment from it costs at the service level, and why it cannot take part when it cannot),
asks for the cheapest plan that keeps the promise, and checks that same-day shipments still fit
their wave's vans; a node whose wave is full offers its next wave today instead (a later window),
or is closed, and the cart is decided again. Nothing is reserved here: the caller reserves, and
sources again if a concurrent order took the units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geopy.distance import geodesic
from sqlalchemy import and_, or_
from sqlmodel import Session, col, func, select

from fulfill.config import Settings
from fulfill.dispatch.room import same_day_room
from fulfill.errors import Conflict, OutOfStock
from fulfill.fulfillers.models import ThirdPartyHealth
from fulfill.inventory import repository as inventory_repo
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment, FulfillmentLine, FulfillmentStatus, ServiceLevel
from fulfill.orders.windows import PromiseWindow, promise_window
from fulfill.sourcing import costs as pricing
from fulfill.sourcing.optimiser import decide
from fulfill.sourcing.plans import Costs, Decision, Line, NoSource, Shipment, Source


class ServiceLevelUnavailable(Conflict):
    code = "service-level-unavailable"


class NoFeasibleSplit(Conflict):
    code = "no-feasible-split"


@dataclass(frozen=True)
class CartLine:
    product_id: int
    sku: str
    quantity: int
    weight_kg: float


@dataclass(frozen=True)
class Offer:
    """What one node offers this cart: the optimiser's view of it, and its window."""

    node: Node
    distance_km: float
    window: PromiseWindow | None
    source: Source

    @property
    def open(self) -> bool:
        return bool(self.source.brackets)

    def closed(self, reason: str) -> Offer:
        return replace(self, source=replace(self.source, brackets=(), unreachable_reason=reason))


@dataclass(frozen=True)
class Sourcing:
    level: ServiceLevel
    decision: Decision
    offers: dict[str, Offer]
    currency: str

    def shipments(self) -> list[tuple[Node, PromiseWindow, Shipment]]:
        """Each shipment with its node and window, in node id order (the order locks go in)."""
        found = []
        for shipment in self.decision.chosen.shipments:
            offer = self.offers[shipment.source]
            assert offer.window is not None
            found.append((offer.node, offer.window, shipment))
        return sorted(found, key=lambda x: x[0].id or 0)

    @property
    def promise(self) -> PromiseWindow:
        """The order's promise: the latest window of its shipments, so that every one keeps it,
        to be ordered by the earliest of their order-by times."""
        windows = [w for _, w, _ in self.shipments()]
        latest = max(windows, key=lambda w: (w.end, w.start))
        deadlines = [w.order_by for w in windows if w.order_by is not None]
        return PromiseWindow(latest.start, latest.end, min(deadlines) if deadlines else None)

    def record(self) -> dict[str, Any]:
        """The decision as it is stored on the order, so that a person can see why."""
        d = self.decision
        return {
            "service_level": self.level.value,
            "method": d.chosen.method,
            "optimal": d.optimal,
            "seconds": round(d.seconds, 4),
            "cost": d.chosen.fulfillment_cost,
            "currency": self.currency,
            "shipments": [
                {
                    "node": s.source,
                    "units": s.units,
                    "weight_kg": s.weight_kg,
                    "cost": s.cost,
                    "distance_km": round(self.offers[s.source].distance_km, 2),
                }
                for s in d.chosen.shipments
            ],
            "alternatives": [
                {"option": a.label, "cost": a.cost, "reason": a.reason} for a in d.alternatives
            ],
            "notes": list(d.notes),
        }


@dataclass(frozen=True)
class Ask:
    """What is being sourced: the cart, its door, the service level and the moment; without a
    ``postal`` address third parties (which need one) are not asked, and nodes in
    ``refused_by`` have refused this order already."""

    lines: Sequence[CartLine]
    destination: tuple[float, float]
    level: ServiceLevel
    now: datetime
    postal: bool = True
    refused_by: frozenset[str] = frozenset()


def source_cart(session: Session, ask: Ask, settings: Settings) -> Sourcing:
    """The cheapest way to ship the cart at its level; a 409 that says why if there is none."""
    offers = {
        o.node.code: o if o.node.code not in ask.refused_by else o.closed("it refused this order")
        for o in _offers(session, ask, settings)
    }
    first_full: dict[str, str] = {}  # why each node's earliest wave had no room
    while True:
        decision = _decide(ask.lines, list(offers.values()), ask.level, settings)
        full = _full_waves(session, decision, offers, ask, settings)
        if not full:
            return Sourcing(ask.level, decision, offers, settings.sourcing_currency)
        for code, reason in full.items():
            why = first_full.setdefault(code, reason)
            offers[code] = _later_wave(offers[code], ask, settings) or offers[code].closed(why)


def _decide(
    lines: Sequence[CartLine], offers: list[Offer], level: ServiceLevel, settings: Settings
) -> Decision:
    open_offers = [o for o in offers if o.open]
    if not open_offers:
        raise ServiceLevelUnavailable(
            f"{level.value} is not available for this destination now",
            service_level=level.value,
            nodes={o.node.code: o.source.unreachable_reason for o in offers},
        )
    for line in sorted(lines, key=lambda ln: ln.sku):
        total = sum(o.source.available.get(line.sku, 0) for o in open_offers)
        if total < line.quantity:
            short = OutOfStock(
                line.sku,
                line.quantity,
                max(total, 0),
                f"only {max(total, 0)} of {line.sku} available for {level.value} "
                f"delivery here, {line.quantity} requested",
            )
            # Nodes that hold it but cannot ship it now, with why: the rest of the story.
            held = {
                o.node.code: o.source.unreachable_reason
                for o in offers
                if not o.open and o.source.available.get(line.sku, 0) > 0
            }
            if held:
                short.extensions["nodes"] = held
            raise short
    try:
        return decide(
            [Line(ln.sku, ln.quantity, ln.weight_kg) for ln in lines],
            [o.source for o in offers],
            costs=Costs(settings.sourcing_costs.extra_shipment_penalty),
            time_limit_s=settings.sourcing_time_limit_s,
        )
    except NoSource as exc:
        raise NoFeasibleSplit(f"the cart cannot ship at {level.value}: {exc}") from None


def _full_waves(
    session: Session, decision: Decision, offers: dict[str, Offer], ask: Ask, settings: Settings
) -> dict[str, str]:
    """Same-day shipments whose wave has no room left, with why."""
    if ask.level is not ServiceLevel.SAME_DAY or not settings.same_day_room_check:
        return {}
    full = {}
    for shipment in decision.chosen.shipments:
        offer = offers[shipment.source]
        assert offer.window is not None
        reason = same_day_room(
            session, offer.node, offer.window, ask.destination, shipment.weight_kg, settings
        )
        if reason is not None:
            full[shipment.source] = reason
    return full


def _later_wave(offer: Offer, ask: Ask, settings: Settings) -> Offer | None:
    """The node's offer from its next wave later today, when the one before has no room."""
    assert offer.window is not None and offer.window.order_by is not None
    later = promise_window(offer.node, ask.level, offer.window.order_by, settings)
    return replace(offer, window=later) if later is not None else None


def _offers(session: Session, ask: Ask, settings: Settings) -> list[Offer]:
    lines, destination, level, now = ask.lines, ask.destination, ask.level, ask.now
    nodes = inventory_repo.active_nodes(session)
    available = inventory_repo.available_by_node(session, [ln.product_id for ln in lines])
    picked = _picked_today(session, [n for n in nodes if n.pick_capacity_per_day is not None], now)
    down = _third_parties_down(session, now, settings)
    offers = []
    for node in sorted(nodes, key=lambda n: n.code):
        assert node.id is not None
        distance = geodesic((node.lat, node.lon), destination).km
        terms = pricing.terms(
            node.kind, level.value, distance, node.same_day_radius_km, settings.sourcing_costs
        )
        window = promise_window(node, level, now, settings)
        reason = terms.reason or down.get(node.id)
        if reason is None and not node.node_kind.is_own:
            reason = _third_party_reason(ask.postal, settings)
        if reason is None and window is None:
            reason = _no_window_reason(node, level)
        capacity = None
        if node.pick_capacity_per_day is not None:
            capacity = max(0, node.pick_capacity_per_day - picked.get(node.id, 0))
        source = Source(
            code=node.code,
            available={ln.sku: max(0, available.get((node.id, ln.product_id), 0)) for ln in lines},
            shipment_cost=terms.shipment_cost,
            handling_per_unit=terms.handling_per_unit,
            brackets=terms.brackets if reason is None else (),
            pick_capacity=capacity,
            distance_km=round(distance, 3),
            unreachable_reason=reason,
        )
        offers.append(Offer(node, distance, window, source))
    return offers


def _third_party_reason(postal: bool, settings: Settings) -> str | None:
    if not settings.mcf_url:
        return "no third-party API is configured"
    if not postal:
        return "a third party needs a postal address, not only coordinates"
    return None


def _no_window_reason(node: Node, level: ServiceLevel) -> str:
    if level is ServiceLevel.SAME_DAY and node.same_day_radius_km <= 0:
        return "does not deliver same day"
    if level is ServiceLevel.SAME_DAY:
        return "no wave cutoff left today"
    return f"cannot promise {level.value}"


def _picked_today(session: Session, nodes: Sequence[Node], now: datetime) -> dict[int, int]:
    """Units already taken for each node's local day (its pick capacity is per local day)."""
    if not nodes:
        return {}
    since_midnight = [
        and_(
            col(Fulfillment.node_id) == node.id, col(Fulfillment.created_at) >= _midnight(node, now)
        )
        for node in nodes
    ]
    rows = session.exec(
        select(Fulfillment.node_id, func.sum(FulfillmentLine.quantity))
        .join(Fulfillment, col(Fulfillment.id) == FulfillmentLine.fulfillment_id)
        .where(or_(*since_midnight), Fulfillment.status != FulfillmentStatus.CANCELLED)
        .group_by(col(Fulfillment.node_id))
    ).all()
    return {node_id: int(units or 0) for node_id, units in rows}


def _midnight(node: Node, now: datetime) -> datetime:
    """The start of the node's local day, in UTC."""
    tz = ZoneInfo(node.timezone)
    return datetime.combine(now.astimezone(tz).date(), time(0, 0), tzinfo=tz).astimezone(UTC)


def _third_parties_down(session: Session, now: datetime, settings: Settings) -> dict[int, str]:
    """Third-party nodes that failed their last call recently: not offered until retried."""
    since = now - timedelta(seconds=settings.mcf_retry_after_s)
    rows = session.exec(
        select(ThirdPartyHealth).where(
            col(ThirdPartyHealth.down_since).is_not(None), col(ThirdPartyHealth.checked_at) >= since
        )
    ).all()
    return {
        row.node_id: f"not answering since {row.down_since:%Y-%m-%d %H:%M} UTC ({row.last_error})"
        for row in rows
    }
