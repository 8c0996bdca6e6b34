"""What a shipment from a node costs at a service level: the cost model of sourcing.

Pure, so that the service and ``bench/sourcing.py`` price a shipment the same way: own vans by
distance for same day, a carrier rate card by weight and zone for own nodes otherwise, and the
third party's fee by weight and speed.
"""

from __future__ import annotations

from dataclasses import dataclass

from fulfill.config import SourcingCosts
from fulfill.sourcing.plans import Bracket

SAME_DAY, NEXT_DAY, STANDARD = "same_day", "next_day", "standard"
THIRD_PARTY = "third_party"


@dataclass(frozen=True)
class Terms:
    """A node's price for one shipment; no brackets and a reason when it cannot ship at all."""

    shipment_cost: float
    handling_per_unit: float
    brackets: tuple[Bracket, ...]
    reason: str | None = None


def terms(
    kind: str, level: str, distance_km: float, same_day_radius_km: float, costs: SourcingCosts
) -> Terms:
    shipment = costs.shipment.get(kind, 0.0)
    handling = costs.handling_per_unit.get(kind, 0.0)
    if level == SAME_DAY:
        if kind == THIRD_PARTY:
            return Terms(shipment, handling, (), "third parties do not deliver same day")
        if distance_km > same_day_radius_km:
            reason = f"{distance_km:.1f} km away, beyond its same-day radius of "
            return Terms(shipment, handling, (), reason + f"{same_day_radius_km:g} km")
        drop = round(costs.same_day_base + costs.same_day_per_km * distance_km, 2)
        return Terms(shipment, handling, (Bracket(costs.same_day_max_kg, drop),))
    if kind == THIRD_PARTY:
        factor = costs.third_party_speed_factor.get(level, 1.0)
        card = costs.third_party_fees
    else:
        factor = costs.carrier_speed_factor.get(level, 1.0)
        card = costs.carrier_rates[carrier_zone(distance_km, costs)]
    return Terms(
        shipment, handling, tuple(Bracket(kg, round(cost * factor, 2)) for kg, cost in card)
    )


def carrier_zone(distance_km: float, costs: SourcingCosts) -> int:
    """0 for the nearest zone; beyond the last limit, the last zone."""
    for zone, limit in enumerate(costs.carrier_zone_limits_km):
        if distance_km < limit:
            return zone
    return min(len(costs.carrier_zone_limits_km), len(costs.carrier_rates) - 1)
