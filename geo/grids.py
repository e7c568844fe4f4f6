"""Which grid each feature lies in (a spatial join every analysis needs)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo._checks import same_projected_crs


def assign_grid(features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, field: str = "code") -> pd.Series:
    """Grid code of each feature (its representative point), ``None`` outside every grid.

    Both frames must be in the same projected CRS. A point on a shared boundary goes to the
    grid listed first. Returns a Series named ``grid_code`` on the features' index.
    """
    same_projected_crs(features, grids)
    if len(features) == 0 or len(grids) == 0:
        return pd.Series([None] * len(features), index=features.index, dtype="object", name="grid_code")
    pts = gpd.GeoDataFrame(geometry=features.geometry.representative_point(), crs=features.crs)
    pts["_row"] = range(len(pts))
    g = grids[[field, grids.geometry.name]].reset_index(drop=True)
    hit = gpd.sjoin(pts, g, how="left", predicate="within")
    hit = hit.sort_values(["_row", "index_right"]).drop_duplicates("_row")
    codes = hit[field].astype("object").where(hit[field].notna(), None)
    return pd.Series(codes.to_numpy(), index=features.index, dtype="object", name="grid_code")
