"""sanigrid analyses: pure functions on GeoDataFrames in the project CRS (metres)."""
