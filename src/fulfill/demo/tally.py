"""What the demo day brings and counts: the trouble it injects at local hours, and the tally of what
the storefront and the drivers saw."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trouble:
    """What goes wrong today, at local hours."""

    carrier_outage: tuple[float, float] = (11.0, 12.0)
    stock_out: float = 12.0  # the warehouse's best seller is found missing
    breakdown: float = 14.0  # the van with the most stops left stops for good
    traffic: tuple[float, float, float] = (16.5, 18.5, 1.6)  # from, to, travel time factor
    jam: tuple[float, int] = (17.0, 150)  # at, minutes: the busiest van stands in a jam


@dataclass
class Tally:
    placed: Counter[str] = field(default_factory=Counter)  # by service level
    refused: Counter[str] = field(default_factory=Counter)  # by problem type
    downgraded: int = 0  # placed at a slower level than asked: the one asked was full
    driver_events: Counter[str] = field(default_factory=Counter)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # the service's figures, as they change

    @property
    def orders(self) -> int:
        return sum(self.placed.values()) + sum(self.refused.values())
