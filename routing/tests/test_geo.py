import numpy as np
import pytest
from geopy.distance import great_circle

from fulfill_routing.geo import haversine_matrix_km

# Edmonton downtown, the airport, Calgary, and a point across the antimeridian.
POINTS = [(53.546, -113.494), (53.310, -113.580), (51.045, -114.072), (-16.5, 179.9)]


def _reference_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(great_circle(a, b).km)


def test_matrix_matches_geopy_great_circle() -> None:
    lats, lons = zip(*POINTS, strict=True)
    matrix = haversine_matrix_km(lats, lons)
    assert matrix.shape == (4, 4)
    for i, a in enumerate(POINTS):
        for j, b in enumerate(POINTS):
            assert matrix[i, j] == pytest.approx(_reference_km(a, b), rel=1e-9, abs=1e-9)


def test_matrix_is_symmetric_with_zero_diagonal() -> None:
    rng = np.random.default_rng(7)
    lats = rng.uniform(53.3, 53.7, 200)
    lons = rng.uniform(-113.7, -113.3, 200)
    matrix = haversine_matrix_km(lats, lons)
    assert np.allclose(matrix, matrix.T)
    assert np.all(np.diag(matrix) == 0)


@pytest.mark.parametrize(
    ("lats", "lons", "message"),
    [
        ([1.0, 2.0], [1.0], "equal length"),
        ([91.0], [0.0], "lats"),
        ([0.0], [180.5], "lons"),
        ([float("nan")], [0.0], "lats"),
    ],
)
def test_bad_coordinates_are_refused(lats: list[float], lons: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        haversine_matrix_km(lats, lons)
