"""Small problems for the routing tests, on a line or a grid so that answers are easy to see."""

from __future__ import annotations

from typing import Any

import numpy as np

from fulfill_routing.model import Depot, Matrix, Problem, Stop, TimeWindow, Vehicle


def grid_problem(
    n_stops: int = 8,
    *,
    vehicles: int = 2,
    capacity: tuple[int, ...] = (100,),
    seed: int = 0,
    **problem: Any,
) -> Problem:
    """A depot at the centre of a 100 x 100 grid; travel time equals distance."""
    rng = np.random.default_rng(seed)
    points = np.vstack([[50, 50], rng.integers(0, 100, size=(n_stops, 2))])
    diff = points[:, None, :] - points[None, :, :]
    matrix = np.rint(np.sqrt((diff**2).sum(-1))).astype(np.int64)
    stops = problem.pop("stops", None) or tuple(
        Stop(id=f"s{i}", location=i, service_time=5, demand=(1,) * len(capacity))
        for i in range(1, n_stops + 1)
    )
    fleet = problem.pop("fleet", None) or tuple(
        Vehicle(id=f"v{k}", start_depot="d", capacity=capacity, shift=TimeWindow(start=0, end=1000))
        for k in range(vehicles)
    )
    return Problem(
        depots=(Depot(id="d", location=0),),
        vehicles=fleet,
        stops=stops,
        matrix=Matrix(distances=matrix, durations=matrix),
        **problem,
    )
