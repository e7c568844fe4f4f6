"""assign_grid: a grid covers its boundary; a point shared by several grids goes to the one listed first."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.geo._errors import AnalysisCRSError
from sanigrid.geo.grids import assign_grid
from sanigrid.layers.project import init_project
from sanigrid.web.auth import User
from sanigrid.web.intake import intake

CRS = "EPSG:4548"


def _grids(boxes: dict[str, tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": list(boxes)}, geometry=[shapely.box(*b) for b in boxes.values()], crs=CRS)


def _points(*xy: tuple[float, float], index=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in xy], crs=CRS, index=index)


# A and B side by side, C across the top of both: (100, 100) is a corner of all three
THREE = {"A": (0, 0, 100, 100), "B": (100, 0, 200, 100), "C": (0, 100, 200, 200)}


def test_a_point_on_a_shared_edge_goes_to_the_grid_listed_first():
    pts = _points((100, 50), (150, 100), (50, 50), (0, 30), (250, 50), index=[10, 11, 12, 13, 14])
    got = assign_grid(pts, _grids(THREE))
    assert got.name == "grid_code" and list(got.index) == [10, 11, 12, 13, 14]
    # A|B edge → A; B|C edge → B; inside A → A; on A's outer edge → A (still inside the county); outside → None
    assert got.tolist() == ["A", "B", "A", "A", None]
    flipped = assign_grid(pts, _grids({k: THREE[k] for k in ("C", "B", "A")}))
    assert flipped.tolist() == ["B", "C", "A", "A", None]


@pytest.mark.parametrize("order", list(itertools.permutations("ABC")))
def test_a_vertex_shared_by_three_grids_goes_to_the_first_of_them(order):
    grids = _grids({k: THREE[k] for k in order})
    assert assign_grid(_points((100, 100)), grids).tolist() == [order[0]]


def test_lines_by_their_midpoint_polygons_by_a_point_inside():
    feats = gpd.GeoDataFrame(geometry=[shapely.LineString([(100, 10), (100, 90)]),  # on the A|B edge
                                       shapely.LineString([(100, 50), (200, 50)]),  # in B, from the A|B edge
                                       shapely.box(120, 20, 180, 80),  # inside B
                                       shapely.LineString([(300, 0), (400, 0)])], crs=CRS)  # outside
    # the segment starting on the edge is B's: its midpoint, not its end (which GEOS's point_on_surface picks)
    assert assign_grid(feats, _grids(THREE)).tolist() == ["A", "B", "B", None]


def test_agrees_with_a_covered_by_spatial_join_on_points_snapped_to_the_lattice():
    """Oracle: geopandas' sjoin(predicate="covered_by"), first grid in listed order; half the points on edges."""
    rng = np.random.default_rng(7)
    cells = {f"g{i}{j}": (i * 50.0, j * 50.0, i * 50.0 + 50, j * 50.0 + 50) for i in range(6) for j in range(6)}
    grids = _grids(dict(sorted(cells.items(), key=lambda kv: rng.random())))  # a shuffled listing order
    xy = rng.uniform(-20, 320, (2000, 2))
    xy[::2] = np.round(xy[::2] / 25) * 25  # on edges and corners of the lattice (multiples of 50) half the time
    pts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=CRS)
    g = grids.reset_index(drop=True)
    hit = gpd.sjoin(pts, g, how="left", predicate="covered_by").reset_index()
    hit = hit.sort_values(["index", "index_right"]).drop_duplicates("index").set_index("index")
    expected = hit["code"].astype("object").where(hit["code"].notna(), None).sort_index()
    got = assign_grid(pts, grids)
    assert got.tolist() == expected.tolist()
    on_boundary = shapely.intersects(shapely.union_all(grids.boundary.to_numpy()), pts.geometry.to_numpy())
    assert on_boundary.sum() > 300 and got[on_boundary].notna().all()  # a boundary point always has a grid


def test_empty_inputs_and_the_crs_contract():
    assert assign_grid(_points(), _grids(THREE)).tolist() == []
    assert assign_grid(_points((1, 1)), _grids(THREE).iloc[0:0]).tolist() == [None]
    with pytest.raises(AnalysisCRSError, match="different CRSs"):
        assign_grid(_points((1, 1)).set_crs(4547, allow_override=True), _grids(THREE))


def test_web_intake_accepts_a_report_on_a_boundary_street(tmp_path):
    """The bug: a report exactly on the edge between two grids was refused as "outside the county (0 m …)"."""
    project = init_project(tmp_path / "p")
    lon, lat = 117.22, 28.30
    p = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(CRS).iloc[0]
    x, y = p.x, p.y  # the very coordinates intake computes: the report lies on the shared edge x
    grids = gpd.GeoDataFrame({"code": ["36068100100101", "36068100100102"]},
                             geometry=[shapely.box(x - 400, y - 200, x, y + 200),
                                       shapely.box(x, y - 200, x + 400, y + 200)], crs=CRS)
    project.store.write("grids", grids)
    assert shapely.intersects(grids.geometry.iloc[0].boundary, shapely.Point(x, y))  # truly on the edge
    row = intake(project, category="暴露垃圾", lon=lon, lat=lat, user=User("o", "office"),
                 reported_at=pd.Timestamp("2026-11-20 09:00").to_pydatetime())
    assert row["grid_code"] == "36068100100101"
