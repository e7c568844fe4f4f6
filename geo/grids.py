"""Which grid each feature lies in (a spatial join every analysis needs)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo._checks import same_projected_crs


def assign_grid(features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, field: str = "code") -> pd.Series:
    """Grid code of each feature, ``None`` outside every grid.

    A point is placed as it is, a line by its midpoint (half its length along it: a street segment cut at a
    grid edge belongs to the grid it runs in, not to the edge its end touches), a polygon by a point inside it.

    Both frames must be in the same projected CRS (metres). A grid holds the points it *covers*, its
    boundary included, so a point on a street that is the edge between two grids (or on a corner shared
    by several) goes to the grid listed first in ``grids``. One STRtree query for all features (linear
    in their number, n log n in the grids'). Returns a Series named ``grid_code`` on the features' index.
    """
    same_projected_crs(features, grids)
    if len(features) == 0 or len(grids) == 0:
        return pd.Series([None] * len(features), index=features.index, dtype="object", name="grid_code")
    geoms = features.geometry.to_numpy()
    types = shapely.get_type_id(geoms)
    if not (types == 0).all():
        lines = np.isin(types, (1, 2, 5))  # LineString, LinearRing, MultiLineString
        geoms = np.where(lines, shapely.line_interpolate_point(np.where(lines, geoms, None), 0.5, normalized=True),
                         shapely.point_on_surface(np.where(lines, None, geoms)))
    code = _codes_at(geoms, grids.geometry.to_numpy(), grids[field].astype("object").to_numpy())
    out = pd.Series(code, index=features.index, dtype="object", name="grid_code")
    return out.where(out.notna(), None)


def _codes_at(points: np.ndarray, grid_geoms: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The code of the first grid covering each point (``None`` outside every grid)."""
    # pairs (grid i, point j) with grid i covering point j: the boundary counts, unlike contains_properly
    gi, pj = shapely.STRtree(points).query(grid_geoms, predicate="covers")
    first = np.full(len(points), len(grid_geoms), dtype="int64")
    np.minimum.at(first, pj, gi)  # several grids cover a point on their shared boundary: the one listed first
    out = np.full(len(points), None, dtype=object)
    hit = first < len(grid_geoms)
    out[hit] = codes[first[hit]]
    return out


def lead_units(grids: gpd.GeoDataFrame, *, field: str = "code") -> dict[Any, Any]:
    """Grid code → the grid's lead unit (牵头单位; ``None`` where the layer has none)."""
    lead = grids["lead_unit"] if "lead_unit" in grids else pd.Series(None, index=grids.index, dtype=object)
    return dict(zip(grids[field].astype("object").tolist(), lead.astype("object").tolist(), strict=True))


class GridIndex:
    """The grids' geometries (prepared) and attributes, kept to place a few points at a time (a web
    report) as :func:`assign_grid` places them, without a frame per call.

    Parameters
    ----------
    grids : the grids layer, in the projected CRS (metres) of the points to place.
    """

    def __init__(self, grids: gpd.GeoDataFrame, *, field: str = "code"):
        self.geoms = np.asarray(grids.geometry.array, dtype=object)
        shapely.prepare(self.geoms)
        self.codes = grids[field].astype("object").to_numpy()
        self.lead_unit = lead_units(grids, field=field)
        self.empty = len(grids) == 0

    def codes_at(self, points: np.ndarray) -> list[str | None]:
        """The grid code of each point (shapely points in the grids' CRS), ``None`` outside every grid."""
        if self.empty or not len(points):
            return [None] * len(points)
        return [None if c is None or c != c else c for c in _codes_at(points, self.geoms, self.codes).tolist()]

    def distance(self, point: shapely.Point) -> float:
        """Metres from ``point`` to the nearest grid."""
        return float(shapely.distance(self.geoms, point).min())
