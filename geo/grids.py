"""Which grid each feature lies in (a spatial join every analysis needs)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo._checks import same_projected_crs


def assign_grid(features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, field: str = "code") -> pd.Series:
    """Grid code of each feature (its representative point), ``None`` outside every grid.

    Both frames must be in the same projected CRS (metres). A grid holds the points it *covers*, its
    boundary included, so a point on a street that is the edge between two grids (or on a corner shared
    by several) goes to the grid listed first in ``grids``. One STRtree query for all features (linear
    in their number, n log n in the grids'). Returns a Series named ``grid_code`` on the features' index.
    """
    same_projected_crs(features, grids)
    if len(features) == 0 or len(grids) == 0:
        return pd.Series([None] * len(features), index=features.index, dtype="object", name="grid_code")
    geoms = features.geometry.to_numpy()
    if not (shapely.get_type_id(geoms) == 0).all():  # lines and polygons: their representative point
        geoms = shapely.point_on_surface(geoms)
    # pairs (grid i, point j) with grid i covering point j: the boundary counts, unlike contains_properly
    gi, pj = shapely.STRtree(geoms).query(grids.geometry.to_numpy(), predicate="covers")
    first = np.full(len(features), len(grids), dtype="int64")
    np.minimum.at(first, pj, gi)  # several grids cover a point on their shared boundary: the one listed first
    code = grids[field].astype("object").to_numpy()
    out = pd.Series(np.where(first < len(grids), code[np.minimum(first, len(grids) - 1)], None),
                    index=features.index, dtype="object", name="grid_code")
    return out.where(out.notna(), None)
