"""Which grid each feature lies in (a spatial join every analysis needs)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo._checks import same_projected_crs


def assign_grid(features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, field: str = "code") -> pd.Series:
    """Grid code of each feature (its representative point), ``None`` outside every grid.

    Both frames must be in the same projected CRS. A point on a shared boundary goes to the
    grid listed first. Returns a Series named ``grid_code`` on the features' index.
    """
    same_projected_crs(features, grids)
    if len(features) == 0 or len(grids) == 0:
        return pd.Series([None] * len(features), index=features.index, dtype="object", name="grid_code")
    geoms = features.geometry.to_numpy()
    if (shapely.get_type_id(geoms) == 0).all():  # points: one STRtree query, no join frames
        gi, pi = shapely.STRtree(geoms).query(grids.geometry.to_numpy(), predicate="contains_properly")
        first = np.full(len(features), len(grids), dtype="int64")
        np.minimum.at(first, pi, gi)  # a point on a shared boundary: the grid listed first
        code = grids[field].astype("object").to_numpy()
        out = np.where(first < len(grids), code[np.minimum(first, len(grids) - 1)], None)
        out = pd.Series(out, index=features.index, dtype="object", name="grid_code")
        return out.where(out.notna(), None)
    pts = gpd.GeoDataFrame(geometry=features.geometry.representative_point(), crs=features.crs)
    pts["_row"] = range(len(pts))
    g = grids[[field, grids.geometry.name]].reset_index(drop=True)
    hit = gpd.sjoin(pts, g, how="left", predicate="within")
    hit = hit.sort_values(["_row", "index_right"]).drop_duplicates("_row")
    codes = hit[field].astype("object").where(hit[field].notna(), None)
    return pd.Series(codes.to_numpy(), index=features.index, dtype="object", name="grid_code")
