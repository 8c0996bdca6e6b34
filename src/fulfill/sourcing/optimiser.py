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

import math
import time
from collections.abc import Sequence

from ortools.sat.python import cp_model

from fulfill.sourcing.bounds import best_pair, could_be_in_an_optimum
from fulfill.sourcing.plans import (
    GRAMS,
    OBJECTIVE_UNITS,
    Alternative,
    Costs,
    Decision,
    Line,
    NoSource,
    Plan,
    Source,
    cheapest_tier,
    plan_cost,
)
from fulfill.sourcing.rules import greedy_cheapest, nearest_rule

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
    kept = could_be_in_an_optimum(lines, usable, singles, incumbent, costs)
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


def _refuse_shortages(lines: Sequence[Line], sources: Sequence[Source]) -> None:
    for line in lines:
        total = sum(s.available.get(line.sku, 0) for s in sources)
        if total < line.quantity:
            raise NoSource(
                f"{line.sku}: {line.quantity} wanted, {total} available at sources that can deliver"
            )


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
        tier = cheapest_tier(source, weights[source.code]) if source.code in shipped else None
        for k, z in enumerate(tiers.get(j, [])):
            model.add_hint(z, k == tier)
        for i, line in enumerate(lines):
            if (i, j) in x:
                model.add_hint(x[i, j], shipped.get(source.code, {}).get(line.sku, 0))


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
