"""Solver engines. Each turns a problem into vehicle sequences; ``fulfill_routing.solver`` turns
those into a checked solution. An engine lists the features it cannot model, and is never
asked to solve a problem that has one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fulfill_routing.model import Problem
from fulfill_routing.schedule import Context

Sequences = dict[str, list[str]]  # vehicle id -> stop ids in visiting order


@dataclass(frozen=True)
class SolveParams:
    """How long and how to search. ``time_limit_s`` is wall-clock, for the whole solve."""

    time_limit_s: float = 10.0
    seed: int = 0


class Engine(Protocol):
    name: str

    def unsupported(self, problem: Problem) -> list[str]:
        """The problem's features this engine cannot model (empty: it can solve it)."""
        ...

    def solve(self, ctx: Context, params: SolveParams) -> Sequences: ...
