"""OpenStreetMap files (``.osm`` XML, ``.pbf``): the one reader of the importer and the demo.

GDAL's OSM driver turns a file into layers of ``points`` (tagged nodes), ``lines`` (open ways)
and ``multipolygons`` (closed ways that are areas, and multipolygon relations).
:func:`read_elements` reads one of them *as OSM is*: a feature whose geometry cannot be built (a
way whose nodes are missing from the extract, a ring of two points) or is invalid (a
self-intersecting multipolygon) is skipped and counted, never a reason to refuse the layer.
:func:`read_osm` maps the elements to a catalogue layer by their tags:

========================  ==========================================================================
layer                     OSM features
========================  ==========================================================================
``streets``               ``highway=*`` lines, ``road_class`` from the setting ``[imports]
                          osm_road_class`` (default :data:`OSM_ROAD_CLASS`); ``bridge``,
                          ``tunnel`` and ``layer`` kept, so the network joins streets only at
                          the same level. Pedestrian areas (``highway=pedestrian`` + ``area=yes``,
                          or any highway area) become their outline, a walkable line
``alleys``                ``highway=living_street``, ``highway=service`` + ``service=alley``,
                          ``highway=pedestrian``/``footway`` with a name (areas: their outline)
``toilets``               ``amenity=toilets``; ``opening_hours`` → ``hours``
``markets``               ``amenity=marketplace``
``transfer_stations``     ``amenity=waste_transfer_station``, ``amenity=recycling`` +
                          ``recycling_type=centre``
``collection_points``     ``amenity=waste_disposal``, ``amenity=recycling`` + ``recycling_type=container``
========================  ==========================================================================

Facilities mapped as areas (a toilet block drawn as a building, a market square) become a point:
the centroid when it lies inside the area, else a point on its surface. Every feature keeps its
``osm_id`` (``node/…``, ``way/…``, ``relation/…``). Coordinates stay WGS84 (EPSG:4326).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from sanigrid.layers._errors import ImportError_
from sanigrid.layers.catalogue import spec
from sanigrid.layers.settings import ImportSettings

log = logging.getLogger(__name__)

OSM_SUFFIXES = (".osm", ".pbf")
OSM_KINDS = ("streets", "alleys", "toilets", "markets", "transfer_stations", "collection_points")
#: the credit every map showing OSM data must carry (ODbL 1.0 §4.3)
OSM_ATTRIBUTION = "© OpenStreetMap 贡献者 (contributors), ODbL 1.0"
#: OSM ``highway=*`` → road class of the ``streets`` layer: the default of the setting
#: ``[imports] osm_road_class`` (CJJ 37 urban road classes on OSM China's tagging: 主干路 on
#: trunk/primary, 次干路 on secondary, 支路 on tertiary/unclassified, 街巷 on residential,
#: living_street, service and footways). ``None`` leaves the way out: motorways and their links (no
#: pedestrians) and ways that are not usable streets (construction, proposed, platforms …). Any
#: other value becomes 其他.
OSM_ROAD_CLASS: dict[str, str | None] = {k: (v or None) for k, v in ImportSettings().osm_road_class.items()}
#: ``highway=pedestrian`` is a pedestrian shopping street (步行街): counted as busy (繁华街道).
OSM_BUSY_HIGHWAYS = ("pedestrian",)
OSM_LAYERS = ("points", "lines", "multipolygons")
_POINT_KINDS = ("toilets", "markets", "transfer_stations", "collection_points")
_PAVED = {"paved", "asphalt", "concrete", "concrete:plates", "concrete:lanes", "paving_stones",
          "sett", "cobblestone", "metal", "wood", "bricks", "unhewn_cobblestone"}
_UNPAVED = {"unpaved", "dirt", "earth", "ground", "gravel", "fine_gravel", "grass", "mud", "sand",
            "compacted", "pebblestone"}
_ID_COLUMNS = ("osm_id", "osm_way_id")


@dataclass
class OsmElements:
    """One GDAL OSM layer as read: ``osm_id``, ``tags`` (dict) and geometry (EPSG:4326).

    Treat it as read-only (small files are cached, so the same object may be handed out again).
    ``broken`` lists the ids of the features skipped because their geometry could not be built
    or is invalid (they are not in ``frame``).
    """

    layer: str
    frame: gpd.GeoDataFrame
    broken: list[str] = field(default_factory=list)


@dataclass
class OsmLayer:
    """OSM features mapped to catalogue layer ``kind``: fields as in the catalogue, WGS84."""

    kind: str
    frame: gpd.GeoDataFrame
    ids: list[str]
    notes: list[str]
    broken: list[str] = field(default_factory=list)


def read_elements(path: str | Path, layer: str) -> OsmElements:
    """Read one layer (``points``, ``lines`` or ``multipolygons``) of an OSM file, tolerantly.

    Geometries come as WKB and are built one by one: a feature whose geometry GEOS cannot build
    (e.g. a way with nodes missing from the extract, a ring of fewer than four points), or an
    area that is not valid, is skipped and its id listed in ``broken``. Tags of every feature
    (GDAL's columns and ``other_tags``) are in one dict per row.

    Raises
    ------
    ImportError_
        GDAL cannot open the file or the layer at all.
    """
    path = Path(path)
    if layer not in OSM_LAYERS:
        raise ValueError(f"OSM layer must be one of {OSM_LAYERS}, not {layer!r}")
    st = path.stat() if path.exists() else None
    if st is not None and st.st_size <= _CACHE_MAX_BYTES:  # small extracts (the demo's) are parsed once
        return _read_cached(str(path.resolve()), st.st_mtime_ns, st.st_size, layer)
    return _read_elements(path, layer)


#: files up to this size keep their parsed layers in memory (GDAL parses an XML file per layer read)
_CACHE_MAX_BYTES = 16 * 2**20


@functools.lru_cache(maxsize=len(OSM_LAYERS))
def _read_cached(path: str, _mtime_ns: int, _size: int, layer: str) -> OsmElements:
    return _read_elements(Path(path), layer)


def _read_elements(path: Path, layer: str) -> OsmElements:
    try:
        meta, _fids, wkb, values = pyogrio.raw.read(path, layer=layer, TAGS_FORMAT="JSON")
    except Exception as e:  # GDAL's own errors: the file is not OSM, or truncated
        raise ImportError_(f"{path.name}: GDAL cannot read it as OpenStreetMap ({e})") from None
    names = list(meta["fields"])
    n = len(wkb) if wkb is not None else 0
    cols = {nm: values[i] for i, nm in enumerate(names)}
    ids = _element_ids(layer, cols, n)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if n else np.array([], dtype=object)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if layer == "multipolygons" and n:
        bad |= ~shapely.is_valid(geoms)
    tags = [_tags({nm: cols[nm][i] for nm in names}) for i in range(n)]
    keep = ~bad
    frame = gpd.GeoDataFrame(
        {"osm_id": np.asarray(ids, dtype=object)[keep], "tags": np.asarray(tags + [None], dtype=object)[:-1][keep]},
        geometry=gpd.GeoSeries(geoms[keep], crs=4326), crs=4326)
    broken = [ids[i] for i in np.flatnonzero(bad)]
    if broken:
        log.info("%s %s: %d broken geometries skipped", path.name, layer, len(broken))
    return OsmElements(layer=layer, frame=frame.reset_index(drop=True), broken=broken)


def _element_ids(layer: str, cols: Mapping[str, np.ndarray], n: int) -> list[str]:
    osm_id = cols.get("osm_id", np.full(n, None, dtype=object))
    if layer == "points":
        return [f"node/{_id(v)}" for v in osm_id]
    if layer == "lines":
        return [f"way/{_id(v)}" for v in osm_id]
    way = cols.get("osm_way_id", np.full(n, None, dtype=object))
    return [f"way/{_id(w)}" if _id(w) else f"relation/{_id(r)}" for r, w in zip(osm_id, way, strict=True)]


def _id(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return ""
    try:
        return str(int(float(v)))
    except (TypeError, ValueError):
        return str(v)


def _tags(rec: Mapping[str, Any]) -> dict[str, str]:
    """GDAL's tag columns and ``other_tags`` (JSON, or the HSTORE text of older GDAL) as one dict."""
    tags: dict[str, str] = {}
    other = rec.get("other_tags")
    if isinstance(other, str) and other.strip():
        try:
            other = json.loads(other)
        except json.JSONDecodeError:
            other = dict(re.findall(r'"([^"]+)"=>"([^"]*)"', other))
    if isinstance(other, Mapping):
        tags.update({str(k): str(v) for k, v in other.items() if v is not None})
    for k, v in rec.items():
        if k in ("other_tags", "z_order", *_ID_COLUMNS) or v is None:
            continue
        if isinstance(v, float) and math.isnan(v):
            continue
        if isinstance(v, str) and not v.strip():
            continue
        tags[k] = str(v)
    return tags


def read_osm(path: str | Path, *, kind: str, road_classes: Mapping[str, str | None] | None = None) -> OsmLayer:
    """Read an OpenStreetMap ``.osm`` or ``.pbf`` file as layer ``kind`` (see the module docstring).

    Parameters
    ----------
    path
        The OSM file.
    kind
        One of :data:`OSM_KINDS`.
    road_classes
        ``highway=*`` → the streets' road class (default :data:`OSM_ROAD_CLASS`; empty or ``None``
        leaves the way out; values not listed become 其他).

    Returns
    -------
    OsmLayer
        The catalogue fields of ``kind`` (plus ``osm_id``) in EPSG:4326, the OSM id of each row
        and the notes for the user: what was mapped, what was left out, what was broken.
    """
    path = Path(path)
    classes = OSM_ROAD_CLASS if road_classes is None else road_classes
    if kind not in OSM_KINDS:
        raise ImportError_(f"{path.name}: OSM files can be imported as {', '.join(OSM_KINDS)}, not '{kind}'")
    s = spec(kind)
    layers = ("lines", "multipolygons") if kind in ("streets", "alleys") else ("points", "multipolygons")
    records: list[dict[str, Any]] = []
    geoms: list[Any] = []
    ids: list[str] = []
    skipped: dict[str, int] = {}
    broken: list[str] = []
    areas = 0
    for layer in layers:
        el = read_elements(path, layer)
        for oid, tags, geom in zip(el.frame["osm_id"], el.frame["tags"], el.frame.geometry, strict=True):
            if layer == "multipolygons" and kind in ("streets", "alleys") and "highway" not in tags:
                continue  # buildings, land use …: not ways at all
            row = _map(kind, tags, skipped, classes)
            if row is None:
                continue
            if layer == "multipolygons" and kind in ("streets", "alleys"):
                geom = shapely.line_merge(shapely.boundary(geom))  # a pedestrian area: walk along its edge
                areas += 1
            elif kind in _POINT_KINDS and geom.geom_type != "Point":
                c = shapely.centroid(geom)
                geom = c if shapely.within(c, geom) else shapely.point_on_surface(geom)
            row["osm_id"] = oid
            records.append(row)
            geoms.append(geom)
            ids.append(oid)
        broken.extend(el.broken)
    notes = [f"{path.name}: {len(records)} OSM features mapped to {kind} ({s.zh}); {OSM_ATTRIBUTION}"]
    if skipped:
        notes.append("OSM ways left out: " + ", ".join(f"highway={k} ×{v}" for k, v in sorted(skipped.items())))
    if areas:
        notes.append(f"pedestrian areas (highway=* + area=yes) taken as their outline, a walkable line: ×{areas}")
    if broken:
        shown = ", ".join(broken[:10]) + (" …" if len(broken) > 10 else "")
        notes.append(f"OSM features with a broken geometry skipped (fix them in OSM): ×{len(broken)} ({shown})")
    fields = [f.name for f in s.fields if any(f.name in r for r in records)]
    if "osm_id" not in fields:
        fields.append("osm_id")
    index = pd.RangeIndex(len(records))
    frame = gpd.GeoDataFrame({k: pd.Series([r.get(k) for r in records], index=index, dtype="object") for k in fields},
                             geometry=gpd.GeoSeries(geoms, index=index), crs=4326, index=index)
    return OsmLayer(kind=kind, frame=frame, ids=ids, notes=notes, broken=broken)


def _bool(v: str | None) -> bool | None:
    if v is None:
        return None
    return {"yes": True, "no": False, "limited": True, "designated": True}.get(v.lower())


def _float(v: str | None) -> float | None:
    if v is None:
        return None
    m = re.match(r"\s*(\d+(?:\.\d+)?)", v)
    return float(m.group(1)) if m else None


def _level_tags(t: Mapping[str, str]) -> dict[str, Any]:
    """``bridge``/``tunnel`` (any value but ``no``) and the integer ``layer`` of a way."""
    layer = t.get("layer")
    try:
        lv: int | None = int(float(layer.split(";")[0])) if layer is not None else None
    except ValueError:
        lv = None
    return {"bridge": t.get("bridge", "no").lower() != "no", "tunnel": t.get("tunnel", "no").lower() != "no",
            "layer": lv}


def _map(kind: str, t: Mapping[str, str], skipped: dict[str, int],
         classes: Mapping[str, str | None]) -> dict[str, Any] | None:
    name = t.get("name") or t.get("name:zh") or None
    amenity = t.get("amenity")
    if kind == "streets":
        hw = t.get("highway")
        if hw is None:
            return None
        cls = classes.get(hw, "其他")
        if not cls:
            skipped[hw] = skipped.get(hw, 0) + 1
            return None
        return {"name": name, "road_class": cls, "busy": True if hw in OSM_BUSY_HIGHWAYS else None, **_level_tags(t)}
    if kind == "alleys":
        if not is_alley(t):
            return None
        surface = (t.get("surface") or "").lower()
        hardened = True if surface in _PAVED else False if surface in _UNPAVED else None
        return {"name": name, "hardened": hardened, "lit": _bool(t.get("lit")), "width_m": _float(t.get("width"))}
    if kind == "toilets" and amenity == "toilets":
        return {"name": name, "address": t.get("addr:street"), "accessible": _bool(t.get("wheelchair")),
                "hours": t.get("opening_hours")}
    if kind == "markets" and amenity == "marketplace":
        return {"name": name, "address": t.get("addr:street")}
    if kind == "transfer_stations" and (
            amenity == "waste_transfer_station" or (amenity == "recycling" and t.get("recycling_type") == "centre")):
        return {"name": name, "address": t.get("addr:street")}
    if kind == "collection_points" and (
            amenity == "waste_disposal" or (amenity == "recycling" and t.get("recycling_type") == "container")):
        return {"name": name, "address": t.get("addr:street")}
    return None


def is_alley(tags: Mapping[str, str]) -> bool:
    """The alley rule: a living street, a service alley, or a named pedestrian street or footway."""
    hw = tags.get("highway")
    named = bool(tags.get("name") or tags.get("name:zh"))
    return hw == "living_street" or (hw == "service" and tags.get("service") == "alley") or (
        hw in ("pedestrian", "footway") and named)
