"""Great-circle distances between many points at once.

The default travel-time provider needs a full matrix for a wave; numpy's broadcasting computes
a 1,000 x 1,000 haversine matrix in milliseconds, where a Python loop over geopy would take
seconds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from geopy.distance import EARTH_RADIUS

EARTH_RADIUS_KM: float = EARTH_RADIUS  # geopy's mean radius, so both agree to the metre

FloatArray = npt.NDArray[np.float64]


def haversine_matrix_km(lats: npt.ArrayLike, lons: npt.ArrayLike) -> FloatArray:
    """Distances in km between every pair of points given in degrees.

    Parameters
    ----------
    lats, lons
        Latitudes in [-90, 90] and longitudes in [-180, 180], of equal length.

    Raises
    ------
    ValueError
        If the arrays differ in shape or hold coordinates outside their range.
    """
    return haversine_between_km(lats, lons, lats, lons)


def haversine_between_km(
    from_lats: npt.ArrayLike,
    from_lons: npt.ArrayLike,
    to_lats: npt.ArrayLike,
    to_lons: npt.ArrayLike,
) -> FloatArray:
    """Distances in km from each of the first points (rows) to each of the second (columns)."""
    lat1, lon1 = _validated(from_lats, from_lons)
    lat2, lon2 = _validated(to_lats, to_lons)
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi1[:, None] - phi2[None, :]
    dlam = np.radians(lon1)[:, None] - np.radians(lon2)[None, :]
    a = (
        np.sin(dphi / 2) ** 2
        + np.cos(phi1)[:, None] * np.cos(phi2)[None, :] * np.sin(dlam / 2) ** 2
    )
    result: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return result


def _validated(lats: npt.ArrayLike, lons: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lat = np.asarray(lats, dtype=np.float64)
    lon = np.asarray(lons, dtype=np.float64)
    if lat.ndim != 1 or lat.shape != lon.shape:
        raise ValueError(
            f"lats and lons must be 1-d of equal length, got {lat.shape} and {lon.shape}"
        )
    if not np.all(np.isfinite(lat)) or np.any(np.abs(lat) > 90):
        raise ValueError("lats must be finite and within [-90, 90]")
    if not np.all(np.isfinite(lon)) or np.any(np.abs(lon) > 180):
        raise ValueError("lons must be finite and within [-180, 180]")
    return lat, lon
