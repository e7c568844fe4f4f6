"""Input checks shared by the analyses: CRS contracts (metres, one CRS for all inputs)."""

from __future__ import annotations

import geopandas as gpd

from sanigrid.geo._errors import AnalysisCRSError


def projected(frame: gpd.GeoDataFrame, name: str = "input") -> None:
    """Refuse a frame that is not in a projected CRS in metres."""
    if frame.crs is None:
        raise AnalysisCRSError(f"{name} has no CRS; analyses need the project's projected CRS in metres")
    if not frame.crs.is_projected:
        raise AnalysisCRSError(
            f"{name} is in {frame.crs.to_string()}, a geographic CRS (degrees); distances need metres: "
            "reproject it to the project CRS (e.g. frame.to_crs(store.crs)) first"
        )


def same_projected_crs(*frames: gpd.GeoDataFrame) -> None:
    """Refuse inputs in different CRSs, naming both."""
    for i, f in enumerate(frames):
        projected(f, f"input {i + 1}")
    first = frames[0].crs
    for i, f in enumerate(frames[1:], start=2):
        if not f.crs.equals(first):
            raise AnalysisCRSError(
                f"inputs are in different CRSs: input 1 in {first.to_string()}, input {i} in "
                f"{f.crs.to_string()}; reproject them to one CRS first"
            )
