"""The sourcing optimiser against brute force, and its rules for splits, shortages and reasons."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from fulfill.sourcing.optimiser import decide
from fulfill.sourcing.plans import Bracket, Costs, Line, NoSource, Plan, Source, plan_cost
from fulfill.sourcing.rules import greedy_cheapest, nearest_rule

CARD = (Bracket(2.0, 6.0), Bracket(10.0, 9.0), Bracket(30.0, 15.0))


def source(code: str, stock: dict[str, int], **kw: object) -> Source:
    values: dict[str, object] = {"shipment_cost": 2.0, "handling_per_unit": 0.5, "brackets": CARD}
    values.update(kw)
    return Source(code=code, available=stock, **values)  # type: ignore[arg-type]


def splits(quantity: int, parts: int) -> Iterator[tuple[int, ...]]:
    for cut in itertools.combinations_with_replacement(range(quantity + 1), parts - 1):
        bounds = (0, *cut, quantity)
        yield tuple(b - a for a, b in itertools.pairwise(bounds))


def brute_force(lines: Sequence[Line], sources: Sequence[Source], costs: Costs) -> Plan | None:
    best = None
    per_line = [list(splits(ln.quantity, len(sources))) for ln in lines]
    for choice in itertools.product(*per_line):
        by_source: dict[str, dict[str, int]] = {}
        for line, amounts in zip(lines, choice, strict=True):
            for s, n in zip(sources, amounts, strict=True):
                if n:
                    by_source.setdefault(s.code, {})[line.sku] = n
        plan = plan_cost(lines, by_source, sources, costs, "brute")
        if plan is not None and (best is None or plan.cost < best.cost):
            best = plan
    return best


def random_case(
    seed: int, nodes: tuple[int, int], most_units: int
) -> tuple[list[Line], list[Source], Costs]:
    rng = np.random.default_rng(seed)
    skus = [f"S{k}" for k in range(int(rng.integers(1, 4)))]
    lines = [
        Line(sku, int(rng.integers(1, most_units + 1)), float(rng.choice([0.3, 1.5, 4.0, 9.0])))
        for sku in skus
    ]
    sources = []
    for j in range(int(rng.integers(*nodes))):
        stock = {sku: int(rng.integers(0, 4)) for sku in skus}
        card = tuple(
            Bracket(b.max_kg, round(b.cost * float(rng.uniform(0.5, 2.0)), 2)) for b in CARD
        )
        capacity = int(rng.integers(1, 8)) if rng.random() < 0.3 else None
        sources.append(
            source(
                f"N{j}",
                stock,
                brackets=card,
                pick_capacity=capacity,
                shipment_cost=float(rng.uniform(0, 5)),
                handling_per_unit=float(rng.uniform(0, 1)),
            )
        )
    return lines, sources, Costs(extra_shipment_penalty=float(rng.uniform(0, 6)))


def assert_matches_brute_force(lines: list[Line], sources: list[Source], costs: Costs) -> None:
    expected = brute_force(lines, sources, costs)
    if expected is None:
        with pytest.raises(NoSource):
            decide(lines, sources, costs=costs, time_limit_s=1.0)
        return
    decision = decide(lines, sources, costs=costs, time_limit_s=1.0)
    assert decision.optimal
    assert decision.chosen.cost == pytest.approx(expected.cost, abs=0.011)


@pytest.mark.parametrize("seed", range(40))
def test_the_optimiser_matches_brute_force_on_small_random_carts(seed: int) -> None:
    assert_matches_brute_force(*random_case(seed, nodes=(2, 4), most_units=3))


@pytest.mark.parametrize("seed", range(40, 100))
def test_pruning_sources_by_the_split_bound_never_loses_the_optimum(seed: int) -> None:
    """Four to six nodes: enough for the bound and the best pair to decide what the model holds."""
    assert_matches_brute_force(*random_case(seed, nodes=(4, 7), most_units=2))


def test_a_single_source_the_bound_proves_best_skips_the_solver() -> None:
    lines = [Line("A", 1, 0.3), Line("B", 1, 0.3)]
    near = source("NEAR", {"A": 5, "B": 5}, shipment_cost=0.5)
    far = [source(f"FAR{k}", {"A": 5}, shipment_cost=9.0) for k in range(3)]
    decision = decide(lines, [near, *far])
    assert decision.optimal
    assert decision.chosen.sources == ("NEAR",)
    assert decision.chosen.method == "all from NEAR"


def test_a_cart_one_node_holds_ships_whole_when_splitting_costs_more() -> None:
    lines = [Line("TEA", 2, 0.3), Line("MUG", 1, 0.4)]
    near = source("NEAR", {"TEA": 5, "MUG": 5}, brackets=(Bracket(30, 5.0),))
    far = source("FAR", {"TEA": 5}, brackets=(Bracket(30, 4.5),))
    decision = decide(lines, [near, far])
    assert decision.chosen.sources == ("NEAR",) and len(decision.chosen.shipments) == 1
    labels = {a.label: a.reason for a in decision.alternatives}
    assert labels["all from FAR"] == "short of MUG"


def test_a_cart_no_node_holds_is_split_by_quantity() -> None:
    lines = [Line("TEA", 5, 0.3)]
    sources = [source("A", {"TEA": 3}), source("B", {"TEA": 2})]
    decision = decide(lines, sources)
    units = {s.source: s.units["TEA"] for s in decision.chosen.shipments}
    assert units == {"A": 3, "B": 2}
    assert decision.chosen.cost == pytest.approx((2 + 1.5 + 6) + (2 + 1.0 + 6) + 4.0)


def test_the_optimiser_beats_the_nearest_rule_when_the_nearest_node_is_dear() -> None:
    lines = [Line("TEA", 1, 0.3)]
    near = source("NEAR", {"TEA": 1}, distance_km=1, brackets=(Bracket(30, 12.0),))
    far = source("FAR", {"TEA": 1}, distance_km=9, brackets=(Bracket(30, 7.0),))
    decision = decide(lines, [near, far])
    assert decision.chosen.sources == ("FAR",)
    rule = nearest_rule(lines, [near, far], Costs())
    assert rule is not None and rule.sources == ("NEAR",)
    assert (
        next(a for a in decision.alternatives if a.label.startswith("nearest")).reason
        == "costs 5.00 more"
    )


def test_weight_brackets_and_pick_capacity_are_respected() -> None:
    heavy = [Line("SACK", 4, 9.0)]  # 36 kg: over the 30 kg card, so two shipments
    sources = [source("A", {"SACK": 4}), source("B", {"SACK": 4}, pick_capacity=1)]
    decision = decide(heavy, sources)
    weights = sorted(s.weight_kg for s in decision.chosen.shipments)
    assert all(w <= 30 for w in weights) and sum(weights) == 36
    assert {s.source: s.units["SACK"] for s in decision.chosen.shipments}["B"] == 1


def test_a_shortage_names_the_sku_and_what_is_left() -> None:
    with pytest.raises(NoSource, match="TEA: 5 wanted, 3 available"):
        decide(
            [Line("TEA", 5, 0.3)], [source("A", {"TEA": 3}), source("B", {"TEA": 9}, brackets=())]
        )


def test_greedy_is_a_valid_plan_never_cheaper_than_the_optimum() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        skus = [f"S{k}" for k in range(5)]
        lines = [Line(s, int(rng.integers(1, 4)), float(rng.uniform(0.2, 3))) for s in skus]
        sources = [
            source(
                f"N{j}",
                {s: int(rng.integers(0, 6)) for s in skus},
                shipment_cost=float(rng.uniform(1, 4)),
            )
            for j in range(6)
        ]
        try:
            decision = decide(lines, sources, time_limit_s=1.0)
        except NoSource:
            continue
        greedy = greedy_cheapest(lines, sources, Costs())
        assert greedy is not None and greedy.cost >= decision.chosen.cost - 0.011


def test_the_bound_allows_every_shipment_the_weight_tolerance() -> None:
    """Three 1 kg parcels whose float weight is a hair over the 1 kg bracket each still fit it:
    the bound must not drop them for the one source that takes all three."""
    cheap = (Bracket(1.0, 1.0), Bracket(30.0, 50.0))
    free = {"shipment_cost": 0.0, "handling_per_unit": 0.0}
    small = [source(f"N{k}", {"A": 1}, brackets=cheap, **free) for k in range(3)]
    big = source("E", {"A": 3}, brackets=(Bracket(30.0, 10.0),), **free)
    lines = [Line("A", 3, 1.0000000004)]
    decision = decide(lines, [*small, big], costs=Costs(extra_shipment_penalty=0.0))
    assert decision.chosen.cost == pytest.approx(3.0)
    assert len(decision.chosen.shipments) == 3
