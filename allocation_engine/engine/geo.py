"""Distances from nodes to a ship-to point.

Haversine on numpy arrays is the hot path (mean Earth radius 6371.0088 km, the IUGG value).
A rule set may ask for the WGS-84 geodesic instead; geopy computes it, and only for the few
candidate nodes of one order because it is a per-point Python call.
"""

from __future__ import annotations

import numpy as np
from geopy.distance import geodesic

from allocation_engine.engine.network import FloatArray

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat: FloatArray, lon: FloatArray, to_lat: float, to_lon: float) -> FloatArray:
    """Great-circle distance in km from each (lat, lon) to one point, all in degrees."""
    phi1 = np.radians(lat)
    phi2 = np.radians(to_lat)
    dphi = phi2 - phi1
    dlambda = np.radians(to_lon - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    distance: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance


def geodesic_km(lat: FloatArray, lon: FloatArray, to_lat: float, to_lon: float) -> FloatArray:
    """WGS-84 ellipsoidal distance in km from each (lat, lon) to one point."""
    return np.array(
        [geodesic((a, b), (to_lat, to_lon)).km for a, b in zip(lat, lon, strict=True)],
        dtype=np.float64,
    )
