"""Which grid each feature lies in (a spatial join every analysis needs)."""

from __future__ import annotations

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
    # pairs (grid i, point j) with grid i covering point j: the boundary counts, unlike contains_properly
    gi, pj = shapely.STRtree(geoms).query(grids.geometry.to_numpy(), predicate="covers")
    first = np.full(len(features), len(grids), dtype="int64")
    np.minimum.at(first, pj, gi)  # several grids cover a point on their shared boundary: the one listed first
    code = grids[field].astype("object").to_numpy()
    out = pd.Series(np.where(first < len(grids), code[np.minimum(first, len(grids) - 1)], None),
                    index=features.index, dtype="object", name="grid_code")
    return out.where(out.notna(), None)
