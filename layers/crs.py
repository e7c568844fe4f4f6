"""Coordinate systems: the project's Gauss-Kruger zone, and the Chinese phone-app systems.

* CGCS2000 3-degree Gauss-Kruger zones: zone ``n = round(lon / 3)``; EPSG ``4509 + n`` is the
  zone without the zone number in the false easting (central meridian ``3n``°E, EPSG:4534-4554),
  ``4488 + n`` the one with it (EPSG:4513-4533). See STANDARDS.md.
* GCJ-02 (Amap, Tencent, WeChat) is an obfuscated offset of WGS84 applied inside China's bounding
  box; BD-09 (Baidu) is a further transform of GCJ-02. pyproj cannot express either. The forward
  transforms are closed formulas; the inverses are solved by fixed-point iteration until the
  forward transform of the answer reproduces the input to better than ``tol_deg`` (1e-9° is about
  0.1 mm), so both directions are exact to well under 0.1 m.

All functions take and return numpy arrays (or scalars) of longitudes and latitudes in degrees.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS

from sanigrid.layers._errors import CRSError

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"
COORD_SYSTEMS = ("wgs84", "cgcs2000", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0


@lru_cache(maxsize=64)
def transformer(src_wkt: str, dst_wkt: str) -> Any:
    """A pyproj ``Transformer`` between two CRSs (given as WKT), in x/y (lon/lat) order: the operation
    ``Transformer.from_crs`` picks, held as its PROJ pipeline.

    pyproj remakes a transformer in each thread that uses it; one made from CRSs searches the PROJ
    database again there (0.1-0.8 s), one made from a pipeline does not (under a millisecond). A server's
    worker threads come and go, so each new one paid that search on its first request.
    """
    from pyproj import Transformer

    best = Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)
    definition = best.definition
    if not definition or "unavailable" in definition.lower():
        return best
    return Transformer.from_pipeline(definition)


_WKT: dict[int, tuple[CRS, str]] = {}


def crs_wkt(crs: CRS) -> str:
    """A CRS's WKT, kept per CRS object (writing it out costs a few hundred microseconds a call)."""
    hit = _WKT.get(id(crs))
    if hit is None or hit[0] is not crs:
        if len(_WKT) > 256:  # kept for the few CRS objects a process reuses, not for every one it made
            _WKT.clear()
        hit = _WKT[id(crs)] = (crs, crs.to_wkt())
    return hit[1]


@lru_cache(maxsize=1)
def wgs84_wkt() -> str:
    """The WKT of WGS84 (EPSG:4326), made once."""
    return CRS.from_epsg(4326).to_wkt()


def gk_zone(lon: float) -> int:
    """Return the CGCS2000 3-degree Gauss-Kruger zone number for a longitude in degrees."""
    if not 73.5 <= lon <= 136.5:
        raise CRSError(
            f"longitude {lon:.4f} is outside China's 3-degree Gauss-Kruger zones (75°E-135°E); "
            "check that the data are in degrees and not swapped with latitude"
        )
    return int(np.floor(lon / 3.0 + 0.5))


def gk_epsg(lon: float, *, zone_prefix: bool = False) -> int:
    """EPSG code of the CGCS2000 3-degree GK zone for ``lon`` (e.g. 117.2 → 4548, or 4527 prefixed)."""
    n = gk_zone(lon)
    return 4488 + n if zone_prefix else 4509 + n


#: China's extent for the Gauss-Kruger zones: longitudes of zones 25-45 and latitudes of its territory.
GK_LON = (73.5, 136.5)
GK_LAT = (3.0, 54.0)


def in_gk_zones(lon: float, lat: float | None = None) -> bool:
    """Whether a point lies where the CGCS2000 3-degree Gauss-Kruger zones apply (China)."""
    if not GK_LON[0] <= lon <= GK_LON[1]:
        return False
    return lat is None or GK_LAT[0] <= lat <= GK_LAT[1]


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone of a point: 326zz north of the equator, 327zz south.

    Zone ``zz = floor((lon + 180) / 6) + 1`` (1-60). The Norway and Svalbard exceptions are not
    applied: the regular zone is still a metric, conformal CRS there (scale error < 0.1 %).
    """
    zone = min(60, max(1, int(np.floor((float(lon) + 180.0) / 6.0)) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def metric_crs(text: str | CRS, *, what: str = "the project CRS") -> CRS:
    """Parse a configured CRS and check that it is projected with metre axes.

    Feet (``ESRI:102649``), degrees (``EPSG:4326``) and unknown codes (``FOO``) raise
    :class:`CRSError` with what to use instead.
    """
    hint = ("use a projected CRS in metres: a CGCS2000 Gauss-Kruger zone in China (EPSG:4534-4554, e.g. "
            "EPSG:4548 at 117°E), elsewhere the UTM zone of the county (EPSG:326zz north, 327zz south, "
            "zz = floor((lon + 180) / 6) + 1, e.g. EPSG:32630 for London), or leave it blank to have it "
            "chosen from the data")
    try:
        crs = CRS.from_user_input(text)
    except Exception:
        raise CRSError(f"{what} '{text}' is not a coordinate system pyproj knows; {hint}") from None
    if not crs.is_projected:
        raise CRSError(f"{what} {crs.to_string()} ({crs.name}) is in degrees, not a projected CRS; {hint}")
    units = {a.unit_name for a in crs.axis_info}
    if not units or not units <= {"metre", "meter"}:
        raise CRSError(f"{what} {crs.to_string()} ({crs.name}) measures in {', '.join(sorted(units)) or 'no unit'}, "
                       f"not metres, so every distance would be wrong; {hint}")
    return crs


def project_crs(lon: float, configured: str | None = None, *, lat: float | None = None) -> CRS:
    """The project CRS: the configured one (checked: projected, metres), else one chosen for the data.

    Inside China (see :func:`in_gk_zones`) the CGCS2000 3-degree Gauss-Kruger zone of ``lon``;
    anywhere else the WGS 84 UTM zone of (``lon``, ``lat``) (north when ``lat`` is not given).
    """
    if configured:
        return metric_crs(configured)
    if in_gk_zones(lon, lat):
        return CRS.from_epsg(gk_epsg(lon))
    return CRS.from_epsg(utm_epsg(lon, 0.0 if lat is None else lat))


def crs_for_lonlat(lon: ArrayLike, lat: ArrayLike) -> CRS:
    """The project CRS for data at these WGS84 positions: :func:`project_crs` at their median."""
    x, y = _arrays(lon, lat)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise CRSError("no coordinates to choose the project CRS from; set [project] crs in sanigrid.toml")
    return project_crs(float(np.median(x[ok])), lat=float(np.median(y[ok])))


def describe_choice(crs: CRS) -> str:
    """A sentence saying which CRS was chosen and why, for the import report."""
    code = crs.to_epsg()
    why = ("the CGCS2000 Gauss-Kruger zone of the data" if code and 4534 <= code <= 4554
           else "the UTM zone of the data (outside China's Gauss-Kruger zones)")
    return (f"project CRS chosen: {crs.to_string()} ({crs.name}), {why}; written to sanigrid.toml [project] crs "
            "(edit it before the first import to use another projected CRS in metres)")


def _out_of_china(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _dlat(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    r += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return r


def _dlon(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    r += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return r


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 → GCJ-02 (identity outside China's bounding box)."""
    lon, lat = _arrays(lon, lat)
    dlat = _dlat(lon - 105.0, lat - 35.0)
    dlon = _dlon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = _out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 → BD-09."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 → BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(forward, lon: ArrayLike, lat: ArrayLike, tol_deg: float, max_iter: int = 30):
    """Solve forward(x) = target by fixed-point iteration; the Jacobian is close to identity."""
    tlon, tlat = _arrays(lon, lat)
    x, y = tlon.copy(), tlat.copy()
    for _ in range(max_iter):
        fx, fy = forward(x, y)
        ex, ey = fx - tlon, fy - tlat
        x, y = x - ex, y - ey
        if np.all(np.abs(ex) < tol_deg) and np.all(np.abs(ey) < tol_deg):
            break
    return x, y


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-10
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 → WGS84, iterated until the forward transform reproduces the input (< 0.1 m)."""
    return _invert(wgs84_to_gcj02, lon, lat, tol_deg)


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-10
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 → GCJ-02, exact inverse of :func:`gcj02_to_bd09` by iteration."""
    return _invert(gcj02_to_bd09, lon, lat, tol_deg)


def bd09_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-10
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 → WGS84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat, tol_deg=tol_deg), tol_deg=tol_deg)


def _convert(lon: ArrayLike, lat: ArrayLike, coords: str, table: dict) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # noqa: E501
    key = coords.lower().replace("-", "").replace("_", "")
    if key in ("wgs84", "cgcs2000", "4326", "4490"):
        return _arrays(lon, lat)
    if key in table:
        return table[key](lon, lat)
    raise CRSError(f"unknown coordinate system '{coords}'; use one of {', '.join(COORD_SYSTEMS)}")


def to_wgs84(
    lon: ArrayLike, lat: ArrayLike, coords: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert lon/lat given in ``coords`` (wgs84, cgcs2000, gcj02, bd09) to WGS84.

    CGCS2000 geographic coordinates are taken as WGS84 (they differ by centimetres).
    """
    return _convert(lon, lat, coords, {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84})


def from_wgs84(
    lon: ArrayLike, lat: ArrayLike, coords: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert WGS84 lon/lat to ``coords`` (for display on GCJ-02 or BD-09 basemaps)."""
    return _convert(lon, lat, coords, {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09})


def shift_geometries(geoms, coords: str):
    """Return WGS84 shapely geometries moved into ``coords`` (vertex by vertex)."""
    import shapely

    def fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = from_wgs84(xy[:, 0], xy[:, 1], coords)
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms), fn)
