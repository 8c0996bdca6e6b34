"""Shortcuts that keep the solver small: the best plan of two sources by enumeration, and a bound on
what splitting a cart can save, so that sources that cannot be in an optimum are left out."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence

from fulfill.sourcing.plans import (
    WEIGHT_TOLERANCE,
    Costs,
    Line,
    Plan,
    Source,
    lines_held,
    plan_cost,
    shipment_cost,
)


def best_pair(lines: Sequence[Line], sources: Sequence[Source], costs: Costs) -> Plan | None:
    """The cheapest plan of two shipments that splits no line (heuristic, exact for few shared
    lines): a strong incumbent, since most carts no one source holds ship best as two parcels."""
    everything = (1 << len(lines)) - 1
    whole = [lines_held(lines, s) for s in sources]
    best: tuple[float, int, int, int] | None = None
    for a, b in itertools.combinations(range(len(sources)), 2):
        if whole[a] | whole[b] != everything or not whole[a] or not whole[b]:
            continue
        shared = whole[a] & whole[b]
        for to_a in _subsets_to_try(shared):
            mask_a = (whole[a] & ~shared) | to_a
            mask_b = everything & ~mask_a
            if not mask_a or not mask_b:
                continue
            cost_a = shipment_cost(lines, sources[a], mask_a)
            cost_b = shipment_cost(lines, sources[b], mask_b)
            total = cost_a + cost_b + costs.extra_shipment_penalty
            if best is None or total < best[0]:
                best = (total, a, b, mask_a)
    if best is None:
        return None
    _, a, b, mask_a = best
    by_source: dict[str, dict[str, int]] = {sources[a].code: {}, sources[b].code: {}}
    for i, line in enumerate(lines):
        code = sources[a].code if mask_a >> i & 1 else sources[b].code
        by_source[code][line.sku] = line.quantity
    return plan_cost(lines, by_source, sources, costs, "best pair")


# A pair shares at most this many lines before only its two extremes are priced.
SHARED_LINES_ENUMERATED = 3


def _subsets_to_try(shared: int) -> list[int]:
    bits = [1 << i for i in range(shared.bit_length()) if shared >> i & 1]
    if len(bits) > SHARED_LINES_ENUMERATED:
        return [0, shared]
    return [sum(c) for r in range(len(bits) + 1) for c in itertools.combinations(bits, r)]


def could_be_in_an_optimum(
    lines: Sequence[Line],
    sources: Sequence[Source],
    singles: Sequence[Plan],
    incumbent: Plan | None,
    costs: Costs,
) -> list[Source]:
    """Drop the sources that no plan cheaper than ``incumbent`` can use, so the model stays small.

    A source is kept if shipping everything from it alone is cheap enough, or if the least a
    split that uses it can cost (``SplitBound``) is.
    """
    if incumbent is None or len(sources) < 3:
        return list(sources)
    alone = {p.shipments[0].source: p.cost for p in singles}
    split = SplitBound(lines, sources, costs, incumbent.cost)
    return [
        s
        for s in sources
        if alone.get(s.code, math.inf) <= incumbent.cost + ROUNDING or split.could_use(s)
    ]


# Plan costs are summed from shipment costs rounded to the cent: a bound allows for that.
ROUNDING = 0.005


# Beyond this many shipments the weight bound is not worth its arithmetic: keep the source.
MOST_SHIPMENTS_BOUNDED = 6


class SplitBound:
    """A lower bound on any plan of two or more shipments that uses a given source.

    The cart's weight must travel: the source ships some of it (at least what only it holds, at
    most what it holds and the others cannot), and the other shipments carry the rest. Every
    shipment costs at least the cheapest bracket, of any source, that its weight fits, plus that
    source's shipment cost; every unit at least the lowest handling. The bound relaxes who the
    other shippers are and what they hold, so it never exceeds a real plan's cost.
    """

    def __init__(
        self, lines: Sequence[Line], sources: Sequence[Source], costs: Costs, ceiling: float
    ) -> None:
        self.lines = lines
        self.penalty = costs.extra_shipment_penalty
        self.ceiling = ceiling
        self.weight = sum(ln.quantity * ln.weight_kg for ln in lines)
        self.units = sum(ln.quantity for ln in lines)
        self.least_handling = min(s.handling_per_unit for s in sources)
        self.held = {ln.sku: sum(s.available.get(ln.sku, 0) for s in sources) for ln in lines}
        self.steps = _frontier(
            (b.max_kg, s.shipment_cost + b.cost) for s in sources for b in s.brackets
        )
        self.cheapest = self.steps[0][1]
        self.others = [self.steps]  # others[k - 1]: the frontier of k shipments together

    def could_use(self, source: Source) -> bool:
        lightest = min(
            (ln.weight_kg for ln in self.lines if source.available.get(ln.sku, 0)), default=None
        )
        if lightest is None:
            return False
        only_here = sum(
            max(0, ln.quantity - (self.held[ln.sku] - source.available.get(ln.sku, 0)))
            * ln.weight_kg
            for ln in self.lines
        )
        lacking = sum(
            max(0, ln.quantity - source.available.get(ln.sku, 0)) * ln.weight_kg
            for ln in self.lines
        )
        least, most = max(lightest, only_here), self.weight - lacking
        handling = self.least_handling * self.units + source.handling_per_unit - self.least_handling
        # Each further shipment adds at least this to the floor and ROUNDING to the allowance.
        grows = self.cheapest + self.penalty >= ROUNDING
        for shipments in range(2, self.units + 1):
            floor = shipments * self.cheapest + (shipments - 1) * self.penalty + handling
            if grows and floor > self.ceiling + ROUNDING * (shipments + 1):
                return False  # more shipments only cost more
            if shipments > MOST_SHIPMENTS_BOUNDED:
                return True
            rest_frontier = self._together(shipments - 1)
            for bracket in source.brackets:
                if bracket.max_kg + WEIGHT_TOLERANCE < least:
                    continue
                rest = self.weight - min(bracket.max_kg, most)
                # Every shipment may pass its bracket by the tolerance delivery_cost allows.
                others = _cheapest_covering(rest_frontier, rest - shipments * WEIGHT_TOLERANCE)
                total = source.shipment_cost + bracket.cost + others
                total += (shipments - 1) * self.penalty + handling
                if total <= self.ceiling + ROUNDING * (shipments + 1):
                    return True
        return False

    def _together(self, count: int) -> list[tuple[float, float]]:
        while len(self.others) < count:
            last = self.others[-1]
            self.others.append(_frontier((a + m, c + d) for a, c in last for m, d in self.steps))
        return self.others[count - 1]


def _frontier(steps: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """(capacity kg, cost) pairs no other pair beats on both, by capacity: costs then rise too."""
    kept: list[tuple[float, float]] = []
    for capacity, cost in sorted(steps, key=lambda st: (-st[0], st[1])):
        if not kept or cost < kept[-1][1]:
            kept.append((capacity, cost))
    return kept[::-1]


def _cheapest_covering(frontier: Sequence[tuple[float, float]], weight: float) -> float:
    """The least cost of a frontier entry that carries ``weight``; infinite if none does."""
    k = bisect.bisect_left(frontier, weight, key=lambda st: st[0])
    return frontier[k][1] if k < len(frontier) else math.inf
