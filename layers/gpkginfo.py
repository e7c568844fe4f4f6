"""The layer list of a GeoPackage store, read with :mod:`sqlite3` alone (no GIS library imported).

``sanigrid layers`` and the web's layer list ask only what the GeoPackage's own tables already say:
the count from ``gpkg_ogr_contents`` (kept by GDAL's triggers; ``COUNT(*)`` where it is missing), the
extent from ``gpkg_contents`` (from the layer's R-tree where that has none: float32 boxes, rounded
outwards), the CRS from ``gpkg_spatial_ref_sys``, and sanigrid's metadata table. Nothing here
imports numpy, pyproj or pandas, so the command starts in the time of the interpreter.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanigrid.layers._errors import SettingsError
from sanigrid.layers.catalogue import CATALOGUE

SETTINGS_NAME = "sanigrid.toml"  # a project folder's settings file
STORE_NAME = "sanigrid.gpkg"  # and its GeoPackage store
META_TABLE = "sanigrid_meta"  # the store's per-layer metadata (updated_at, synthetic, params)


@dataclass(frozen=True)
class LayerInfo:
    """A summary row of ``sanigrid layers``."""

    kind: str
    title: str
    count: int
    crs: str | None
    bounds: tuple[float, float, float, float] | None
    updated_at: str | None
    synthetic: bool
    params: dict[str, Any]
    #: when the layer was last written, as the GeoPackage records it (``gpkg_contents.last_change``, set on
    #: every write, to the millisecond); ``None`` where the backend has no such record
    last_change: str | None = None


def gpkg_layer_info(path: str | Path, *, con: sqlite3.Connection | None = None) -> list[LayerInfo]:
    """One row per catalogue layer in the GeoPackage at ``path``, in catalogue order ([] if no file).

    Read in one connection (``con``, e.g. the store's kept one; else a new one), no feature read (see
    the module's docstring).
    """
    path = Path(path)
    if not path.exists():
        return []
    own = con is None
    if con is None:
        con = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        kinds = [k for k in CATALOGUE if k in present]
        meta = ({r[0]: r[1:] for r in con.execute(f"SELECT kind, updated_at, synthetic, params FROM {META_TABLE}")}
                if META_TABLE in present else {})
        counts = ({r[0]: r[1] for r in con.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents")}
                  if "gpkg_ogr_contents" in present else {})
        extent = {r[0]: r[1:] for r in con.execute(
            "SELECT c.table_name, c.min_x, c.min_y, c.max_x, c.max_y, g.column_name, s.organization, "
            "s.organization_coordsys_id, c.last_change FROM gpkg_contents c "
            "LEFT JOIN gpkg_geometry_columns g ON g.table_name = c.table_name "
            "LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = c.srs_id")}
        out = []
        for kind in kinds:
            s = CATALOGUE[kind]
            n = counts.get(kind)
            if n is None:
                n = con.execute(f'SELECT COUNT(*) FROM "{kind}"').fetchone()[0]
            minx, miny, maxx, maxy, geom, org, code, changed = extent.get(kind, (None,) * 8)
            rtree = f"rtree_{kind}_{geom}"
            if None in (minx, miny, maxx, maxy) and geom and rtree in present:
                minx, miny, maxx, maxy = con.execute(
                    f'SELECT MIN(minx), MIN(miny), MAX(maxx), MAX(maxy) FROM "{rtree}"').fetchone()
            bounds = (minx, miny, maxx, maxy)
            updated_at, synthetic, params = meta.get(kind, (None, 0, None))
            out.append(LayerInfo(
                kind=kind, title=f"{s.zh} {s.en}", count=int(n),
                crs=f"{str(org).upper()}:{code}" if org and code is not None and int(code) > 0 else None,
                bounds=(float(minx), float(miny), float(maxx), float(maxy)) if n and None not in bounds else None,
                updated_at=updated_at, synthetic=bool(synthetic), params=json.loads(params or "{}"),
                last_change=changed,
            ))
        return out
    finally:
        if own:
            con.close()


def peek_project(root: str | Path) -> tuple[str, Path] | None:
    """The county's name and the GeoPackage of the project at ``root``, from its settings file read with
    :mod:`tomllib` alone (not validated), for a listing that must start at once; ``None`` when the listing
    needs the full settings: no settings file, no name in it, or a PostGIS store (``project.store_url``)."""
    spath = Path(root) / SETTINGS_NAME
    if not spath.exists():
        return None
    project = settings_toml_data(spath).get("project")
    if not isinstance(project, dict) or project.get("store_url") or not isinstance(project.get("name"), str):
        return None
    return project["name"], Path(root) / STORE_NAME


def settings_toml_data(path: Path) -> dict[str, Any]:
    """The settings file's TOML as a dict (not validated); a file that is not TOML says so and where."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not valid TOML ({e}); fix the line it names") from None
