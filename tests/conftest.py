"""Shared fixtures: small frames and projects made in the tests (never from the internet)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from sanigrid.layers.project import Project, init_project

# a point in the demo town (贵溪, 117.22E 28.30N), CGCS2000 GK zone 39 → EPSG:4548
TOWN_LON, TOWN_LAT = 117.22, 28.30


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project in a temporary folder."""
    return init_project(tmp_path / "county")


@pytest.fixture
def toilets_wgs84() -> gpd.GeoDataFrame:
    pts = [shapely.Point(TOWN_LON + 0.001 * i, TOWN_LAT + 0.0005 * i) for i in range(5)]
    return gpd.GeoDataFrame(
        {"name": [f"公厕{i}" for i in range(5)], "toilet_class": ["二类"] * 5, "seats": [4, 6, 8, 2, 10]},
        geometry=pts, crs=4326,
    )
