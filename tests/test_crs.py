"""GCJ-02 / BD-09 conversions and the Gauss-Kruger zone choice.

Published point pairs:

* wandergis/coordtransform (MIT), ``test/app.js``: the point (116.404, 39.915) through every
  transform. Its inverses (gcj02towgs84, bd09togcj02) are the one-step approximations, so ours
  (exact, iterated) must agree only to about a metre, while its forward transforms must agree
  to floating-point precision.
* googollee/eviltransform (MIT), ``python/test.py``: WGS84 → GCJ-02 in Shanghai, Shenzhen and
  Beijing, and BD-09 → WGS84 in Zhejiang. eviltransform scales the offset with the WGS84 radius
  (6378137 m) instead of Krasovsky's 6378245 m, a relative difference of 1.7e-5 on an offset of
  a few hundred metres: a centimetre. Its BD-09 pairs are NOT used: its ``bd2gcj`` multiplies by
  ``math.pi`` where Baidu's transform (and wandergis, and STANDARDS.md) use ``x_pi = π·3000/180``,
  so those pairs belong to a different transform (they differ from Baidu's by 10-40 m).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from pyproj import Geod

from sanigrid.layers._errors import CRSError
from sanigrid.layers.crs import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    gk_epsg,
    gk_zone,
    project_crs,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")
FLOAT_DEG = 1e-9  # forward formulas: same arithmetic, rounding only
EVIL_M = 0.05  # eviltransform uses a slightly different radius: ~1 cm
APPROX_INVERSE_M = 3.0  # one-step approximate inverses of other libraries
ROUND_TRIP_M = 0.1  # the bound for our exact inverses


def dist_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# wandergis/coordtransform test/app.js: input (116.404, 39.915)
def test_coordtransform_forward_pairs():
    assert_allclose(wgs84_to_gcj02(116.404, 39.915), (116.41024449916938, 39.91640428150164), atol=FLOAT_DEG)
    assert_allclose(gcj02_to_bd09(116.404, 39.915), (116.41036949371029, 39.92133699351021), atol=FLOAT_DEG)


def test_coordtransform_inverse_pairs_within_their_approximation():
    lon, lat = gcj02_to_wgs84(116.404, 39.915)
    assert dist_m(lon, lat, 116.39775550083061, 39.91359571849836) < APPROX_INVERSE_M
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    assert dist_m(lon, lat, 116.39762729119315, 39.90865673957631) < APPROX_INVERSE_M


# googollee/eviltransform python/test.py: (wgs lat, wgs lng, gcj lat, gcj lng)
EVIL_WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVIL_WGS_GCJ)
def test_eviltransform_wgs_to_gcj(wlat, wlon, glat, glon):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert dist_m(lon, lat, glon, glat) < EVIL_M
    # and our exact inverse brings the published GCJ-02 point back to the WGS84 one
    lon, lat = gcj02_to_wgs84(glon, glat)
    assert dist_m(lon, lat, wlon, wlat) < EVIL_M


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20260301)
    n = 20_000
    return rng.uniform(73.7, 134.7, n), rng.uniform(18.2, 53.5, n)


def test_gcj02_round_trip_many_points(china_points):
    lon, lat = china_points
    glon, glat = wgs84_to_gcj02(lon, lat)
    offset = dist_m(lon, lat, glon, glat)
    assert offset.min() > 1 and offset.max() < 1500  # a real offset everywhere in China
    back = gcj02_to_wgs84(glon, glat)
    assert dist_m(lon, lat, *back).max() < ROUND_TRIP_M
    # and the other way round: GCJ-02 → WGS84 → GCJ-02
    w = gcj02_to_wgs84(lon, lat)
    assert dist_m(lon, lat, *wgs84_to_gcj02(*w)).max() < ROUND_TRIP_M


def test_bd09_round_trip_many_points(china_points):
    lon, lat = china_points
    blon, blat = wgs84_to_bd09(lon, lat)
    assert dist_m(lon, lat, *bd09_to_wgs84(blon, blat)).max() < ROUND_TRIP_M
    g = gcj02_to_wgs84(lon, lat)  # any GCJ-02 points
    assert dist_m(*g, *bd09_to_gcj02(*gcj02_to_bd09(*g))).max() < ROUND_TRIP_M


def test_identity_outside_china():
    lon = np.array([2.35, -74.0, 151.2, 37.6, 139.7, 100.5])
    lat = np.array([48.85, 40.7, -33.9, 55.75, 35.7 + 25, 13.75 - 13.5])  # Paris … and south of the box
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert_allclose(glon, lon, atol=0)
    assert_allclose(glat, lat, atol=0)
    assert_allclose(np.column_stack(gcj02_to_wgs84(lon, lat)), np.column_stack([lon, lat]), atol=0)


def test_to_wgs84_dispatch():
    assert_allclose(to_wgs84(117.2, 28.3, "WGS-84"), (117.2, 28.3))
    assert_allclose(to_wgs84(117.2, 28.3, "cgcs2000"), (117.2, 28.3))
    g = wgs84_to_gcj02(117.2, 28.3)
    assert dist_m(*to_wgs84(*g, "gcj02"), 117.2, 28.3) < ROUND_TRIP_M
    b = wgs84_to_bd09(117.2, 28.3)
    assert dist_m(*to_wgs84(*b, "bd09"), 117.2, 28.3) < ROUND_TRIP_M
    with pytest.raises(CRSError, match="unknown coordinate system"):
        to_wgs84(117.2, 28.3, "mars")


def test_gauss_kruger_zones():
    # STANDARDS.md: lon 117.2 → zone 39 → EPSG:4548, or 4527 with the zone number in the easting
    assert gk_zone(117.2) == 39
    assert gk_epsg(117.2) == 4548 and gk_epsg(117.2, zone_prefix=True) == 4527
    assert gk_epsg(75.0) == 4534 and gk_epsg(135.0) == 4554
    assert gk_zone(118.49) == 39 and gk_zone(118.51) == 40
    crs = project_crs(117.2)
    assert crs.to_epsg() == 4548 and "117" in crs.to_wkt()
    with pytest.raises(CRSError, match="swapped"):
        gk_zone(28.3)
    with pytest.raises(CRSError, match="not a projected CRS"):
        project_crs(117.2, "EPSG:4490")


def test_peer_library_eviltransform_as_oracle(china_points):
    """eviltransform (PyPI, MIT) on 500 random points: forward to ~1 cm. Its "exact" inverse is a
    30-step bisection that stops within 1e-6° of the target in GCJ-02 space, leaving up to ~0.3 m
    (measured) in WGS84; ours reproduces the forward transform to well under a millimetre."""
    evil = pytest.importorskip("eviltransform")
    lon, lat = china_points[0][:500], china_points[1][:500]
    theirs = np.array([evil.wgs2gcj(b, a)[::-1] for a, b in zip(lon, lat, strict=True)])
    assert dist_m(*wgs84_to_gcj02(lon, lat), theirs[:, 0], theirs[:, 1]).max() < EVIL_M
    glon, glat = wgs84_to_gcj02(lon, lat)
    theirs = np.array([evil.gcj2wgs_exact(b, a)[::-1] for a, b in zip(glon, glat, strict=True)])
    ours = np.column_stack(gcj02_to_wgs84(glon, glat))
    assert dist_m(ours[:, 0], ours[:, 1], theirs[:, 0], theirs[:, 1]).max() < 0.5  # their stopping error
    assert dist_m(ours[:, 0], ours[:, 1], lon, lat).max() < 1e-3


@pytest.mark.parametrize("epsg", [4490, 4547, 4549, 32650, 3857, 2436])
def test_a_pipeline_transformer_moves_points_as_from_crs_does(epsg):
    """layers.crs.transformer holds from_crs's own operation as a pipeline (cheap in a new thread)."""
    import threading

    from pyproj import CRS, Transformer

    from sanigrid.layers.crs import transformer, wgs84_wkt

    rng = np.random.default_rng(epsg)
    lon, lat = rng.uniform(114.0, 120.0, 200), rng.uniform(24.0, 32.0, 200)
    dst = CRS.from_epsg(epsg)
    want = Transformer.from_crs(CRS.from_epsg(4326), dst, always_xy=True).transform(lon, lat)
    t = transformer(wgs84_wkt(), dst.to_wkt())
    got: list = []
    th = threading.Thread(target=lambda: got.append(t.transform(lon, lat)))  # pyproj remakes it per thread
    th.start()
    th.join()
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want))
    back = transformer(dst.to_wkt(), wgs84_wkt()).transform(*want)
    np.testing.assert_allclose(np.asarray(back), np.asarray([lon, lat]), atol=1e-9)


def test_a_lonlat_box_in_the_store_crs_is_the_densified_edges_box():
    from pyproj import CRS, Transformer

    from sanigrid.web.features import bbox_to_store

    crs = CRS.from_epsg(4549)
    box = (117.1, 28.2, 117.3, 28.4)
    want = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True).transform_bounds(*box)
    np.testing.assert_allclose(bbox_to_store(box, crs), want, rtol=0, atol=1e-6)
