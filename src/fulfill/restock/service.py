"""Restock suggestions: forecast each sku's demand at each node from what it shipped, and say
what to move there from an own node with more than it needs, or to buy in, before it runs out.

A refresh writes one run of suggestions (the previous runs stay, for comparison); the API shows
the newest. Own nodes are refilled by transfer first (short lead time), then by the supplier;
a third party is refilled by the supplier (the shop's inbound shipment to it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from geopy.distance import geodesic
from sqlmodel import Session, col, func, select

from fulfill.config import Settings
from fulfill.inventory.models import Node, Product, Stock
from fulfill.orders.models import Fulfillment, FulfillmentLine, FulfillmentStatus
from fulfill.restock.forecast import Cover, Forecast, cover, forecast
from fulfill.restock.models import RestockSuggestion, SuggestionKind

IDLE = Forecast(0.0, 0.0, "none")


@dataclass
class Position:
    """One sku at one node: its forecast, what it holds, and what it needs."""

    node: Node
    product_id: int
    forecast: Forecast
    cover: Cover
    lead_days: float
    available: int

    @property
    def short(self) -> int:
        """Units to bring it back up to its order-up-to level, once below its reorder point."""
        if self.forecast.daily <= 0 or self.available > self.cover.reorder_point:
            return 0
        return max(0, self.cover.order_up_to - self.available)

    @property
    def spare(self) -> int:
        """Units it can give away and stay above its own order-up-to level."""
        return max(0, self.available - self.cover.order_up_to)


def refresh(session: Session, settings: Settings, *, now: datetime) -> int:
    """Forecast, compare with stock, and store this run's suggestions; returns how many."""
    nodes = {n.id: n for n in session.exec(select(Node).where(col(Node.active))).all()}
    history = demand_history(session, list(nodes.values()), now, settings.restock_history_days)
    stock = {
        (s.node_id, s.product_id): s.on_hand - s.reserved for s in session.exec(select(Stock)).all()
    }
    skus = dict(session.exec(select(Product.id, Product.sku)).all())
    positions: dict[int, list[Position]] = defaultdict(list)
    for (node_id, product_id), days in history.items():
        node = nodes[node_id]
        lead = (
            settings.restock_transfer_lead_days
            if node.node_kind.is_own
            else settings.restock_supplier_lead_days
        )
        f = forecast(days)
        c = cover(f, lead, settings.restock_review_days, settings.restock_service_level)
        available = stock.get((node_id, product_id), 0)
        positions[product_id].append(Position(node, product_id, f, c, lead, available))
    for product_id, node_ids in _stocked_without_demand(stock, history).items():
        positions[product_id] += [
            Position(nodes[n], product_id, IDLE, Cover(0, 0, 0), 0.0, stock[(n, product_id)])
            for n in node_ids
            if n in nodes
        ]
    rows = []
    for product_id, found in positions.items():
        rows += _suggest(found, skus[product_id], now, settings)
    session.add_all(rows)
    session.flush()
    return len(rows)


def demand_history(
    session: Session, nodes: Sequence[Node], now: datetime, days: int
) -> dict[tuple[int, int], list[float]]:
    """Units shipped or promised per (node, product) and local day, oldest first, today out."""
    since = now - timedelta(days=days + 1)
    rows = session.exec(
        select(
            Fulfillment.node_id,
            FulfillmentLine.product_id,
            Fulfillment.created_at,
            FulfillmentLine.quantity,
        )
        .join(Fulfillment, col(Fulfillment.id) == FulfillmentLine.fulfillment_id)
        .where(
            col(Fulfillment.created_at) >= since,
            Fulfillment.status != FulfillmentStatus.CANCELLED,
        )
    ).all()
    zones = {n.id: ZoneInfo(n.timezone) for n in nodes}
    today = {n.id: now.astimezone(zones[n.id]).date() for n in nodes}
    counts: dict[tuple[int, int], dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for node_id, product_id, at, quantity in rows:
        if node_id not in zones:
            continue
        counts[(node_id, product_id)][at.astimezone(zones[node_id]).date()] += quantity
    return {
        key: [per_day.get(today[key[0]] - timedelta(days=k), 0.0) for k in range(days, 0, -1)]
        for key, per_day in counts.items()
    }


def _stocked_without_demand(
    stock: dict[tuple[int, int], int], history: dict[tuple[int, int], list[float]]
) -> dict[int, list[int]]:
    """Nodes holding a sku they have not sold: donors for the nodes that need it."""
    idle: dict[int, list[int]] = defaultdict(list)
    for (node_id, product_id), units in stock.items():
        if units > 0 and (node_id, product_id) not in history:
            idle[product_id].append(node_id)
    return idle


def _suggest(
    positions: list[Position], sku: str, now: datetime, settings: Settings
) -> list[RestockSuggestion]:
    """Transfers from the nearest own node with spare units, then the supplier for the rest."""
    spare = {p.node.id: p.spare for p in positions if p.node.node_kind.is_own}
    made = []
    for need in sorted(positions, key=lambda p: -p.short):
        short = need.short
        if not short:
            continue
        if need.node.node_kind.is_own:
            donors = sorted(
                (
                    p
                    for p in positions
                    if p.node.node_kind.is_own
                    and spare.get(p.node.id, 0) > 0
                    and p.node.id != need.node.id
                ),
                key=lambda p: geodesic((p.node.lat, p.node.lon), (need.node.lat, need.node.lon)).km,
            )
            for donor in donors:
                units = min(short, spare[donor.node.id])
                spare[donor.node.id] -= units
                short -= units
                made.append(
                    _row(
                        need,
                        sku,
                        SuggestionKind.TRANSFER,
                        units,
                        now,
                        donor.node,
                        settings.restock_transfer_lead_days,
                    )
                )
                if not short:
                    break
        if short:
            made.append(
                _row(
                    need,
                    sku,
                    SuggestionKind.REPLENISH,
                    short,
                    now,
                    None,
                    settings.restock_supplier_lead_days,
                )
            )
    return made


def _row(
    need: Position,
    sku: str,
    kind: SuggestionKind,
    units: int,
    now: datetime,
    donor: Node | None,
    lead_days: float,
) -> RestockSuggestion:
    assert need.node.id is not None
    f, c = need.forecast, need.cover
    source = f"from {donor.code}" if donor else "from the supplier"
    reason = (
        f"{need.available} available against a reorder point of {c.reorder_point} "
        f"({f.daily:.2f}/day by {f.method}, {need.lead_days:g} days' lead time, safety stock "
        f"{c.safety_stock}): {units} {source} brings it to {need.available + units}"
    )
    return RestockSuggestion(
        run_at=now,
        product_id=need.product_id,
        sku=sku,
        node_id=need.node.id,
        kind=kind,
        from_node_id=donor.id if donor else None,
        quantity=units,
        daily_demand=round(f.daily, 4),
        method=f.method,
        safety_stock=c.safety_stock,
        reorder_point=c.reorder_point,
        available=need.available,
        lead_days=lead_days,
        reason=reason[:500],
    )


def latest(
    session: Session, node_code: str | None = None, sku: str | None = None
) -> tuple[datetime | None, list[tuple[RestockSuggestion, str, str | None]]]:
    """The newest run's suggestions, with node codes, largest first."""
    run_at = session.exec(select(func.max(RestockSuggestion.run_at))).one()
    if run_at is None:
        return None, []
    statement = select(RestockSuggestion).where(RestockSuggestion.run_at == run_at)
    if sku:
        statement = statement.where(RestockSuggestion.sku == sku)
    codes = dict(session.exec(select(Node.id, Node.code)).all())
    rows = [
        (r, codes[r.node_id], codes.get(r.from_node_id) if r.from_node_id else None)
        for r in session.exec(statement).all()
    ]
    if node_code:
        rows = [r for r in rows if r[1] == node_code]
    return run_at, sorted(rows, key=lambda r: (r[0].sku, r[1], r[0].kind))
