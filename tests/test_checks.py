"""The CRS contract of the analyses (geo/_checks.py): metres only, one CRS for all inputs, both CRSs named."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from sanigrid.geo._checks import projected, same_projected_crs
from sanigrid.geo._errors import AnalysisCRSError
from sanigrid.geo.coverage import coverage
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.hotspots import clusters

GK = "EPSG:4548"  # CGCS2000 / 3-degree Gauss-Kruger CM 117E, metres


def _pts(crs, *xy):
    return gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in xy], crs=crs)


def test_geographic_input_to_a_planar_measure_is_refused_with_the_fix():
    with pytest.raises(AnalysisCRSError) as e:
        projected(_pts(4326, (117.2, 28.3)), "toilets")
    msg = str(e.value)
    assert msg.startswith("toilets is in EPSG:4326, a geographic CRS (degrees)") and "to_crs" in msg
    with pytest.raises(AnalysisCRSError, match="toilets has no CRS"):
        projected(_pts(None, (1, 2)), "toilets")
    projected(_pts(GK, (500_000, 3_130_000)), "toilets")  # metres: accepted


def test_two_layers_in_different_crss_are_named_both():
    a, b = _pts(GK, (500_000, 3_130_000)), _pts("EPSG:4547", (500_000, 3_130_000))
    with pytest.raises(AnalysisCRSError) as e:
        same_projected_crs(a, a, b)
    assert str(e.value) == ("inputs are in different CRSs: input 1 in EPSG:4548, input 3 in EPSG:4547; "
                            "reproject them to one CRS first")
    with pytest.raises(AnalysisCRSError, match="input 2 is in EPSG:4490, a geographic CRS"):
        same_projected_crs(a, _pts(4490, (117.2, 28.3)))
    same_projected_crs(a, a.copy())  # one CRS: accepted


def test_the_analyses_apply_the_contract():
    streets = gpd.GeoDataFrame(geometry=[shapely.LineString([(500_000, 3_130_000), (500_500, 3_130_000)])], crs=GK)
    wgs = _pts(4326, (117.0, 28.3))
    with pytest.raises(AnalysisCRSError, match="geographic CRS"):
        coverage(wgs, streets, None, kind="toilets", radius_m=300)
    with pytest.raises(AnalysisCRSError, match="input 1 in EPSG:4547, input 2 in EPSG:4548"):
        coverage(_pts("EPSG:4547", (500_100, 3_130_000)), streets, None, kind="toilets", radius_m=300)
    grids = gpd.GeoDataFrame({"code": ["G"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(AnalysisCRSError, match="geographic"):
        assign_grid(wgs, grids)
    with pytest.raises(AnalysisCRSError, match="geographic"):
        clusters(wgs.assign(reported_at="2026-11-01", category="x", status="立案"), eps_m=50, min_samples=2)
