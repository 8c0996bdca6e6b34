"""The simple rules sourcing is measured against, and falls back to: the cheapest source per line
(greedy) and the nearest node that holds the whole cart."""

from __future__ import annotations

from collections.abc import Sequence

from fulfill.sourcing.plans import (
    Costs,
    Line,
    Plan,
    Source,
    plan_cost,
)


def greedy_cheapest(lines: Sequence[Line], sources: Sequence[Source], costs: Costs) -> Plan | None:
    """Each line, largest first, whole from the source where it adds least to the cost so far
    (split over sources only when no single one holds it)."""
    taken: dict[str, dict[str, int]] = {}
    for line in sorted(lines, key=lambda ln: -ln.quantity * ln.weight_kg):
        left = line.quantity
        while left:
            best: tuple[float, str, int] | None = None
            base = plan_cost(lines, taken, sources, Costs(0.0), "partial") if taken else None
            for source in sources:
                room = source.available.get(line.sku, 0) - taken.get(source.code, {}).get(
                    line.sku, 0
                )
                n = min(left, room)
                if n <= 0:
                    continue
                trial = {code: dict(units) for code, units in taken.items()}
                trial.setdefault(source.code, {})[line.sku] = (
                    trial.get(source.code, {}).get(line.sku, 0) + n
                )
                added = _partial_cost(lines, trial, sources, costs)
                if added is None:
                    continue
                score = (added - (base.cost if base else 0.0)) / n + (0 if n == left else 1e6)
                if best is None or score < best[0]:
                    best = (score, source.code, n)
            if best is None:
                return None
            _, code, n = best
            taken.setdefault(code, {})[line.sku] = taken.get(code, {}).get(line.sku, 0) + n
            left -= n
    return plan_cost(lines, taken, sources, costs, "greedy")


def _partial_cost(
    lines: Sequence[Line], taken: dict[str, dict[str, int]], sources: Sequence[Source], costs: Costs
) -> float | None:
    """The cost of what is assigned so far, as if the cart were only that."""
    partial = [
        Line(ln.sku, sum(u.get(ln.sku, 0) for u in taken.values()), ln.weight_kg) for ln in lines
    ]
    partial = [ln for ln in partial if ln.quantity]
    plan = plan_cost(partial, taken, sources, costs, "partial")
    return None if plan is None else plan.cost


def nearest_rule(lines: Sequence[Line], sources: Sequence[Source], costs: Costs) -> Plan | None:
    """What most shops do: the nearest source that has everything, else split by nearness."""
    ordered = sorted(sources, key=lambda s: (s.distance_km, s.code))
    for source in ordered:
        whole = {source.code: {ln.sku: ln.quantity for ln in lines}}
        plan = plan_cost(lines, whole, sources, costs, "nearest")
        if plan is not None:
            return plan
    taken: dict[str, dict[str, int]] = {}
    for line in lines:
        left = line.quantity
        for source in ordered:
            n = min(
                left,
                source.available.get(line.sku, 0) - taken.get(source.code, {}).get(line.sku, 0),
            )
            if n > 0:
                taken.setdefault(source.code, {})[line.sku] = (
                    taken.get(source.code, {}).get(line.sku, 0) + n
                )
                left -= n
            if not left:
                break
    return plan_cost(lines, taken, sources, costs, "nearest-split")
