"""Benchmark instances: Solomon / Gehring-Homberger ``.txt`` and VRPLIB ``.vrp``, read with the
``vrplib`` package, and their best known solutions (``.sol``).

Distances follow the convention these best known solutions use (DIMACS / CVRPLIB): the
Euclidean distance truncated to one decimal. We keep integers by counting in tenths, so
distances, travel times, time windows and service times are all multiplied by 10; divide a
reported distance by ``SCALE`` to compare with the literature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import vrplib

from fulfill_routing.errors import InstanceError
from fulfill_routing.model import Depot, Matrix, Problem, Stop, TimeWindow, Vehicle

SCALE = 10


@dataclass(frozen=True)
class BestKnown:
    cost: float
    routes: list[list[int]]

    @property
    def vehicles(self) -> int:
        return len(self.routes)


def read_instance(path: str | Path, instance_format: str | None = None) -> Problem:
    """Read a Solomon ``.txt`` or VRPLIB ``.vrp`` VRPTW instance."""
    path = Path(path)
    fmt = instance_format or ("solomon" if path.suffix.lower() == ".txt" else "vrplib")
    try:
        raw = vrplib.read_instance(str(path), instance_format=fmt, compute_edge_weights=False)
        return _problem(raw, path.stem)
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise InstanceError(f"{path}: not a readable {fmt} VRPTW instance ({exc})") from exc


def read_best_known(path: str | Path) -> BestKnown:
    try:
        raw = vrplib.read_solution(str(path))
        return BestKnown(cost=float(raw["cost"]), routes=[list(map(int, r)) for r in raw["routes"]])
    except (OSError, ValueError, KeyError) as exc:
        raise InstanceError(f"{path}: not a readable solution ({exc})") from exc


def dimacs_matrix(coords: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """floor(10 * euclidean distance), as integers."""
    xy = np.asarray(coords, dtype=np.float64)
    diff = xy[:, None, :] - xy[None, :, :]
    tenths: np.ndarray[Any, np.dtype[np.int64]] = np.floor(
        SCALE * np.sqrt((diff**2).sum(axis=-1)) + 1e-9
    ).astype(np.int64)
    return tenths


def _problem(raw: dict[str, Any], name: str) -> Problem:
    coords = raw["node_coord"]
    n = len(coords)
    depot = int(np.atleast_1d(raw.get("depot", [0]))[0])
    windows = np.asarray(raw.get("time_window", [[0, 10**9]] * n), dtype=np.int64) * SCALE
    service = np.asarray(raw.get("service_time", np.zeros(n)), dtype=np.float64)
    service = np.rint(np.broadcast_to(service, (n,)) * SCALE).astype(np.int64)
    demand = np.asarray(raw["demand"], dtype=np.int64)
    capacity = int(raw["capacity"])
    fleet = int(raw.get("vehicles", n - 1))
    matrix = dimacs_matrix(coords)
    shift = TimeWindow(start=int(windows[depot][0]), end=int(windows[depot][1]))
    return Problem(
        name=str(raw.get("name", name)),
        depots=(Depot(id="depot", location=depot),),
        vehicles=tuple(
            Vehicle(id=f"v{k + 1}", start_depot="depot", capacity=(capacity,), shift=shift)
            for k in range(fleet)
        ),
        stops=tuple(
            Stop(
                id=str(i),
                location=i,
                service_time=int(service[i]),
                time_windows=(TimeWindow(start=int(windows[i][0]), end=int(windows[i][1])),),
                demand=(int(demand[i]),),
            )
            for i in range(n)
            if i != depot
        ),
        matrix=Matrix(distances=matrix, durations=matrix),
    )
