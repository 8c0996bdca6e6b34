"""What sourcing decides over: the cart's lines, the nodes that could ship them with their rate
brackets, and the plans, shipments and decisions it answers with, priced one way (``plan_cost``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# The objective counts hundredths of a cent: a handling rate like 0.001 a unit still counts.
OBJECTIVE_UNITS = 10_000


# A weight this far over a bracket's limit still fits it (float sums of line weights).
WEIGHT_TOLERANCE = 1e-9


GRAMS = 1000


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    weight_kg: float


@dataclass(frozen=True)
class Bracket:
    """A shipment up to ``max_kg`` costs ``cost`` to deliver."""

    max_kg: float
    cost: float


@dataclass(frozen=True)
class Source:
    code: str
    available: dict[str, int]  # sku -> units free to promise
    shipment_cost: float
    handling_per_unit: float
    brackets: tuple[Bracket, ...]  # empty: cannot deliver this cart at this service level
    pick_capacity: int | None = None  # units it can still pick for the wave or day
    distance_km: float = 0.0
    unreachable_reason: str | None = None

    def delivery_cost(self, weight_kg: float) -> float | None:
        """The cheapest bracket the weight fits (cards are usually monotone, not always)."""
        fitting = [b.cost for b in self.brackets if weight_kg <= b.max_kg + WEIGHT_TOLERANCE]
        return min(fitting, default=None)


@dataclass(frozen=True)
class Shipment:
    source: str
    units: dict[str, int]
    weight_kg: float
    cost: float


@dataclass(frozen=True)
class Plan:
    """One way to ship the cart, with its total cost (penalty included)."""

    shipments: tuple[Shipment, ...]
    cost: float
    method: str

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s.source for s in self.shipments)

    @property
    def fulfillment_cost(self) -> float:
        """What the shop pays: the cost without the penalty for extra shipments."""
        return round(sum(s.cost for s in self.shipments), 2)


@dataclass(frozen=True)
class Alternative:
    label: str
    cost: float | None
    reason: str


@dataclass(frozen=True)
class Decision:
    chosen: Plan
    alternatives: tuple[Alternative, ...]
    optimal: bool
    seconds: float
    notes: tuple[str, ...] = field(default=())


class NoSource(Exception):
    """No combination of sources can ship the cart; the message says what is short."""


@dataclass(frozen=True)
class Costs:
    extra_shipment_penalty: float = 4.0


def lines_held(lines: Sequence[Line], source: Source) -> int:
    """A bit per line the source holds whole."""
    return sum(
        1 << i for i, ln in enumerate(lines) if source.available.get(ln.sku, 0) >= ln.quantity
    )


def shipment_cost(lines: Sequence[Line], source: Source, mask: int) -> float:
    """What shipping the lines in ``mask`` from ``source`` costs; infinite if it cannot."""
    units = sum(ln.quantity for i, ln in enumerate(lines) if mask >> i & 1)
    if source.pick_capacity is not None and units > source.pick_capacity:
        return math.inf
    weight = sum(ln.quantity * ln.weight_kg for i, ln in enumerate(lines) if mask >> i & 1)
    delivery = source.delivery_cost(weight)
    if delivery is None:
        return math.inf
    return source.shipment_cost + source.handling_per_unit * units + delivery


def plan_cost(
    lines: Sequence[Line],
    by_source: dict[str, dict[str, int]],
    sources: Sequence[Source],
    costs: Costs,
    method: str,
) -> Plan | None:
    """The cost of shipping ``by_source`` (source -> sku -> units); None if impossible."""
    weights = {ln.sku: ln.weight_kg for ln in lines}
    index = {s.code: s for s in sources}
    shipments = []
    for code, asked in by_source.items():
        units = {sku: n for sku, n in asked.items() if n > 0}
        if not units:
            continue
        source = index[code]
        count = sum(units.values())
        if any(source.available.get(sku, 0) < n for sku, n in units.items()):
            return None
        if source.pick_capacity is not None and count > source.pick_capacity:
            return None
        weight = sum(weights[sku] * n for sku, n in units.items())
        delivery = source.delivery_cost(weight)
        if delivery is None:
            return None
        cost = source.shipment_cost + source.handling_per_unit * count + delivery
        shipments.append(Shipment(code, units, round(weight, 3), round(cost, 2)))
    shipped = {ln.sku: sum(u.units.get(ln.sku, 0) for u in shipments) for ln in lines}
    if any(shipped[ln.sku] != ln.quantity for ln in lines):
        return None
    total = sum(s.cost for s in shipments) + costs.extra_shipment_penalty * max(
        0, len(shipments) - 1
    )
    return Plan(tuple(sorted(shipments, key=lambda s: s.source)), round(total, 2), method)


def cheapest_tier(source: Source, weight_kg: float) -> int | None:
    fitting = [
        (b.cost, k)
        for k, b in enumerate(source.brackets)
        if weight_kg <= b.max_kg + WEIGHT_TOLERANCE
    ]
    return min(fitting)[1] if fitting else None
