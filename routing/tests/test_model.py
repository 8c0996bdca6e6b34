from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError
from routing_cases import grid_problem

from fulfill_routing.model import Problem, Stop, TimeWindow, Vehicle


def test_a_problem_round_trips_through_json() -> None:
    problem = grid_problem(
        5,
        pairs=({"pickup": "s1", "delivery": "s2"},),
        fixed_routes={"v0": ("s3",)},
        initial_routes={"v1": ("s4", "s5")},
    )
    text = problem.model_dump_json(by_alias=True)
    again = Problem.model_validate_json(text)
    assert again.model_dump_json(by_alias=True) == text
    assert again.matrix is not None and again.matrix.distances.flags.writeable is False


def _with(**change: Any) -> dict[str, Any]:
    base = grid_problem(3).model_dump(by_alias=True)
    base.update(change)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"vehicles": [{"id": "v", "start_depot": "nowhere", "shift": {"start": 0, "end": 9}}]},
            "vehicles[0].start_depot: no depot 'nowhere'",
        ),
        ({"stops": [{"id": "a", "location": 9}]}, "stops[0].location is 9"),
        ({"stops": [{"id": "a", "location": 1}, {"id": "a", "location": 2}]}, "stops[1].id 'a'"),
        ({"stops": [{"id": "a", "location": 1, "demand": [1, 2]}]}, "stops[0].demand has 2"),
        (
            {"stops": [{"id": "a", "location": 1, "time_windows": [{"start": 9, "end": 3}]}]},
            "ends (3) before it starts (9)",
        ),
        ({"pairs": [{"pickup": "s1", "delivery": "zz"}]}, "pairs[0].delivery: no stop 'zz'"),
        ({"fixed_routes": {"v0": ["s1"], "v1": ["s1"]}}, "stop 's1' is on two routes"),
        ({"matrix": {"distances": [[0, 1], [1, 0]], "durations": [[0]]}}, "shape"),
        ({"matrix": {"distances": [[0, -1], [1, 0]], "durations": [[0, 1], [1, 0]]}}, "negative"),
        ({"matrix": None}, "give a matrix, or locations"),
    ],
)
def test_invalid_problems_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Problem.model_validate(_with(**change))


def test_pairs_must_move_the_same_goods() -> None:
    stops = (Stop(id="p", location=1, demand=(2,)), Stop(id="q", location=2, demand=(3,)))
    with pytest.raises(ValidationError, match="must unload what the pickup loads"):
        grid_problem(2, stops=stops, pairs=({"pickup": "p", "delivery": "q"},))


def test_a_vehicle_without_end_depot_returns_to_its_start() -> None:
    vehicle = Vehicle(id="v", start_depot="d", shift=TimeWindow(start=0, end=1))
    assert vehicle.end == "d"
