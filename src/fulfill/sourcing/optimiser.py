"""Which sources ship which units of a cart: OR-Tools CP-SAT over every way to split it.

Pure: no database, no clock. The caller describes the cart and each candidate source (what it
holds, what it can still pick, and what a shipment from it costs); the optimiser returns the
cheapest assignment within its time limit, falls back to a greedy one if the solver has none by
then, and ranks the alternatives with the reason each lost.

Cost of a decision = for each source used: its per-shipment cost + per-unit handling + the
delivery cost of that shipment (a bracket of a rate card by the shipment's weight) + a penalty
for every shipment after the first (customers prefer one parcel).
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

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


# What ranking the alternatives may take after the solver stops, so the whole answer keeps the
# caller's time limit.
ALTERNATIVES_RESERVE_S = 0.004


def decide(
    lines: Sequence[Line],
    sources: Sequence[Source],
    *,
    costs: Costs | None = None,
    time_limit_s: float = 0.05,
) -> Decision:
    """The cheapest way to ship ``lines`` from ``sources``, with ranked alternatives."""
    started = time.perf_counter()
    costs = costs or Costs()
    usable = [s for s in sources if s.brackets and any(s.available.get(ln.sku, 0) for ln in lines)]
    _refuse_shortages(lines, usable)
    greedy = greedy_cheapest(lines, usable, costs)
    singles = [p for p in (_whole_from(lines, s, usable, costs) for s in usable) if p is not None]
    pair = best_pair(lines, usable, costs)
    found = [p for p in (*singles, greedy, pair) if p is not None]
    incumbent = min(found, key=lambda p: p.cost, default=None)
    kept = _could_be_in_an_optimum(lines, usable, singles, incumbent, costs)
    best: Plan | None
    if incumbent is not None and len(kept) == 1 and incumbent.sources == (kept[0].code,):
        best, optimal = incumbent, True  # the bound leaves no other plan that could be cheaper
    else:
        budget = time_limit_s - (time.perf_counter() - started) - ALTERNATIVES_RESERVE_S
        best, optimal = _solve(lines, kept, costs, budget, incumbent)
    found = [p for p in (best, incumbent) if p is not None]
    chosen = min(found, key=lambda p: p.cost, default=None)
    if chosen is None:
        raise NoSource("no source can take the cart within its weight limits and pick capacity")
    notes = () if best is not None else ("the solver had no answer in time: best rule-based plan",)
    singles_by = {p.shipments[0].source: p for p in singles}
    alternatives = _alternatives(lines, sources, costs, chosen, greedy, singles_by)
    return Decision(chosen, alternatives, optimal, time.perf_counter() - started, notes)


def _whole_from(
    lines: Sequence[Line], source: Source, sources: Sequence[Source], costs: Costs
) -> Plan | None:
    return plan_cost(
        lines,
        {source.code: {ln.sku: ln.quantity for ln in lines}},
        sources,
        costs,
        f"all from {source.code}",
    )


def best_pair(lines: Sequence[Line], sources: Sequence[Source], costs: Costs) -> Plan | None:
    """The cheapest plan of two shipments that splits no line (heuristic, exact for few shared
    lines): a strong incumbent, since most carts no one source holds ship best as two parcels."""
    everything = (1 << len(lines)) - 1
    whole = [_lines_held(lines, s) for s in sources]
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
            cost_a = _shipment_cost(lines, sources[a], mask_a)
            cost_b = _shipment_cost(lines, sources[b], mask_b)
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


def _lines_held(lines: Sequence[Line], source: Source) -> int:
    """A bit per line the source holds whole."""
    return sum(
        1 << i for i, ln in enumerate(lines) if source.available.get(ln.sku, 0) >= ln.quantity
    )


def _shipment_cost(lines: Sequence[Line], source: Source, mask: int) -> float:
    """What shipping the lines in ``mask`` from ``source`` costs; infinite if it cannot."""
    units = sum(ln.quantity for i, ln in enumerate(lines) if mask >> i & 1)
    if source.pick_capacity is not None and units > source.pick_capacity:
        return math.inf
    weight = sum(ln.quantity * ln.weight_kg for i, ln in enumerate(lines) if mask >> i & 1)
    delivery = source.delivery_cost(weight)
    if delivery is None:
        return math.inf
    return source.shipment_cost + source.handling_per_unit * units + delivery


def _could_be_in_an_optimum(
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


def _refuse_shortages(lines: Sequence[Line], sources: Sequence[Source]) -> None:
    for line in lines:
        total = sum(s.available.get(line.sku, 0) for s in sources)
        if total < line.quantity:
            raise NoSource(
                f"{line.sku}: {line.quantity} wanted, {total} available at sources that can deliver"
            )


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


def _solve(
    lines: Sequence[Line],
    sources: Sequence[Source],
    costs: Costs,
    time_limit_s: float,
    hint: Plan | None,
) -> tuple[Plan | None, bool]:
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    used: dict[int, cp_model.IntVar] = {}
    tiers: dict[int, list[cp_model.IntVar]] = {}
    objective: list[cp_model.LinearExprT] = []
    for j, source in enumerate(sources):
        used[j] = model.new_bool_var(f"use_{source.code}")
        held = []
        for i, line in enumerate(lines):
            most = min(line.quantity, source.available.get(line.sku, 0))
            if most <= 0:
                continue
            x[i, j] = model.new_int_var(0, most, f"x_{i}_{j}")
            model.add(x[i, j] <= most * used[j])
            held.append((i, x[i, j]))
        if not held:
            model.add(used[j] == 0)
            continue
        units = sum(v for _, v in held)
        model.add(units >= used[j])  # a source used ships something
        if source.pick_capacity is not None:
            model.add(units <= source.pick_capacity)
        grams = sum(round(lines[i].weight_kg * GRAMS) * v for i, v in held)
        brackets = [model.new_bool_var(f"b_{j}_{k}") for k in range(len(source.brackets))]
        tiers[j] = brackets
        model.add(sum(brackets) == used[j])
        model.add(
            grams
            <= sum(
                round(b.max_kg * GRAMS) * z for b, z in zip(source.brackets, brackets, strict=True)
            )
        )
        fixed = round((source.shipment_cost + costs.extra_shipment_penalty) * OBJECTIVE_UNITS)
        objective.append(fixed * used[j])
        objective.extend(
            round(b.cost * OBJECTIVE_UNITS) * z
            for b, z in zip(source.brackets, brackets, strict=True)
        )
        objective.append(round(source.handling_per_unit * OBJECTIVE_UNITS) * units)
    for i, line in enumerate(lines):
        model.add(sum(v for (li, _), v in x.items() if li == i) == line.quantity)
    model.minimize(sum(objective))
    if hint is not None:
        _hint(model, hint, lines, sources, x, used, tiers)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.001, time_limit_s)
    solver.parameters.num_workers = 1  # a cart is small; one worker answers fastest
    # Measured on bench/sourcing.py: presolve costs more than it saves on models this small, and
    # the stronger linear relaxation proves optimality sooner.
    solver.parameters.cp_model_presolve = False
    solver.parameters.linearization_level = 2
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, False
    by_source: dict[str, dict[str, int]] = {}
    for (i, j), var in x.items():
        n = solver.value(var)
        if n:
            by_source.setdefault(sources[j].code, {})[lines[i].sku] = n
    plan = plan_cost(lines, by_source, sources, costs, "cp-sat")
    return plan, status == cp_model.OPTIMAL


def _hint(
    model: cp_model.CpModel,
    hint: Plan,
    lines: Sequence[Line],
    sources: Sequence[Source],
    x: dict[tuple[int, int], cp_model.IntVar],
    used: dict[int, cp_model.IntVar],
    tiers: dict[int, list[cp_model.IntVar]],
) -> None:
    """Start the search from the greedy plan, every variable set: an incumbent at once."""
    shipped = {s.source: s.units for s in hint.shipments}
    weights = {s.source: s.weight_kg for s in hint.shipments}
    for j, source in enumerate(sources):
        model.add_hint(used[j], source.code in shipped)
        tier = _cheapest_tier(source, weights[source.code]) if source.code in shipped else None
        for k, z in enumerate(tiers.get(j, [])):
            model.add_hint(z, k == tier)
        for i, line in enumerate(lines):
            if (i, j) in x:
                model.add_hint(x[i, j], shipped.get(source.code, {}).get(line.sku, 0))


def _cheapest_tier(source: Source, weight_kg: float) -> int | None:
    fitting = [
        (b.cost, k)
        for k, b in enumerate(source.brackets)
        if weight_kg <= b.max_kg + WEIGHT_TOLERANCE
    ]
    return min(fitting)[1] if fitting else None


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


def _alternatives(
    lines: Sequence[Line],
    sources: Sequence[Source],
    costs: Costs,
    chosen: Plan,
    greedy: Plan | None,
    singles: dict[str, Plan],
) -> tuple[Alternative, ...]:
    """Every single source, and the two rules, ranked by cost, each with why it lost."""
    found: list[Alternative] = []
    for source in sources:
        label = f"all from {source.code}"
        if not source.brackets:
            found.append(
                Alternative(
                    label, None, source.unreachable_reason or "cannot deliver at this service level"
                )
            )
            continue
        short = [ln.sku for ln in lines if source.available.get(ln.sku, 0) < ln.quantity]
        if short:
            found.append(Alternative(label, None, f"short of {', '.join(short)}"))
            continue
        plan = singles.get(source.code)  # priced already, when the solver's bound was set
        if plan is None:
            found.append(Alternative(label, None, "over its pick capacity or weight limit"))
        elif plan.sources != chosen.sources or plan.cost > chosen.cost:
            found.append(Alternative(label, plan.cost, _dearer(plan.cost, chosen.cost)))
    rule = nearest_rule(lines, sources, costs)
    for name, plan in (("nearest node rule", rule), ("greedy cheapest per line", greedy)):
        if plan is not None and plan.shipments != chosen.shipments:
            found.append(
                Alternative(
                    f"{name}: {'+'.join(plan.sources)}", plan.cost, _dearer(plan.cost, chosen.cost)
                )
            )
    return tuple(sorted(found, key=lambda a: (a.cost is None, a.cost or 0.0, a.label)))


def _dearer(cost: float, best: float) -> str:
    more = cost - best
    return (
        "costs the same, ships the same way"
        if math.isclose(more, 0, abs_tol=0.005)
        else f"costs {more:.2f} more"
    )
