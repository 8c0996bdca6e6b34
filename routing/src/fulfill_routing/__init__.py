"""Route planner for same-day delivery waves: a pure library.

Everything a caller needs is here: the problem and solution models, ``solve`` (OR-Tools and
PyVRP side by side, the better valid plan kept), the scheduling ``Context`` with its checks of a
route, the cheapest insertion of one stop, the checker, travel-time providers, the benchmark
readers, and the errors (``fulfill_routing.errors``).
"""

from fulfill_routing.checker import assert_valid, check
from fulfill_routing.cities import city_wave
from fulfill_routing.errors import (
    Infeasible,
    InstanceError,
    InvalidSolution,
    NoValidSolution,
    OsrmError,
    UnsupportedFeature,
)
from fulfill_routing.geo import haversine_between_km, haversine_matrix_km
from fulfill_routing.insertion import Insertion, best_insertion
from fulfill_routing.model import (
    Break,
    Depot,
    Location,
    Matrix,
    PickupDelivery,
    Problem,
    Route,
    RouteBreak,
    Solution,
    Stop,
    TimeWindow,
    Unserved,
    Vehicle,
    Visit,
)
from fulfill_routing.readers import SCALE, BestKnown, read_best_known, read_instance
from fulfill_routing.schedule import Context, Projection, projected, schedule_route
from fulfill_routing.solver import build_solution, matrices, solve
from fulfill_routing.travel import (
    GreatCircle,
    OsrmTable,
    SpeedProfile,
    TravelTimeProvider,
    with_location,
)

__all__ = [
    "SCALE",
    "BestKnown",
    "Break",
    "Context",
    "Depot",
    "GreatCircle",
    "Infeasible",
    "Insertion",
    "InstanceError",
    "InvalidSolution",
    "Location",
    "Matrix",
    "NoValidSolution",
    "OsrmError",
    "OsrmTable",
    "PickupDelivery",
    "Problem",
    "Projection",
    "Route",
    "RouteBreak",
    "Solution",
    "SpeedProfile",
    "Stop",
    "TimeWindow",
    "TravelTimeProvider",
    "Unserved",
    "UnsupportedFeature",
    "Vehicle",
    "Visit",
    "assert_valid",
    "best_insertion",
    "build_solution",
    "check",
    "city_wave",
    "haversine_between_km",
    "haversine_matrix_km",
    "matrices",
    "projected",
    "read_best_known",
    "read_instance",
    "schedule_route",
    "solve",
    "with_location",
]
