"""Importers: real-world files in, catalogue layers out.

Three steps, each usable on its own (the command line, the web upload and the demo share them):

* :func:`read_file` reads GeoJSON, Shapefile, GeoPackage (any vector format GDAL reads), CSV or
  XLSX with coordinate columns, or OpenStreetMap ``.osm``/``.pbf``; it maps the file's columns to
  catalogue fields (:mod:`layers.columns`) and returns a :class:`RawLayer` whose values are still
  as the user wrote them.
* :func:`layers.validation.validate` checks every row, converts phone-app coordinates to WGS84
  and returns the accepted rows (typed) and the rejected ones with their reasons.
* :func:`import_file` does both for a project and writes the accepted rows to the store in one
  transaction (all or nothing), the rejected rows to a CSV file in ``outputs/``.

Coordinate systems
------------------
``coords`` names the system of *degree* coordinates: ``wgs84`` (also for CGCS2000, which differs
by centimetres), ``cgcs2000``, ``gcj02`` (Amap/Tencent/WeChat) or ``bd09`` (Baidu); or any CRS
pyproj knows (``EPSG:4548``) for files without one. A file's own CRS (.prj, GeoPackage) is used
when present. Without one, the CRS is guessed from the magnitude of the coordinates and the guess
is reported: degrees → WGS84; eastings with a zone number (e.g. 39 512 345 m) → the CGCS2000
3-degree Gauss-Kruger zone it names (or 6-degree for zones 13-23); eastings without a zone
number (≈ 500 000 m) → the project's CRS when it is such a zone, else the user is asked for
``--coords EPSG:45xx``. Columns X = northing, Y = easting (the Chinese surveying convention) are
recognised by magnitude and swapped back, with a note.

OpenStreetMap
-------------
OSM files are read by :mod:`layers.osm` (the same reader the demo uses): features with a broken
geometry are skipped and counted, areas of point facilities become points, tags map to fields.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from sanigrid.layers._errors import CRSError, ImportError_
from sanigrid.layers.catalogue import LayerSpec, spec
from sanigrid.layers.columns import ColumnMatch, bracket_note, header_score, map_values, match_columns
from sanigrid.layers.crs import COORD_SYSTEMS, describe_choice
from sanigrid.layers.osm import OSM_ATTRIBUTION, OSM_SUFFIXES, read_osm
from sanigrid.layers.settings import ProblemCategory, Settings, save_settings
from sanigrid.layers.text import clean_text_columns
from sanigrid.layers.validation import REJECT_COLUMNS, Issue, ValidationReport, validate

if TYPE_CHECKING:
    from sanigrid.layers.project import Project

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
TEXT_ENCODINGS = ("utf-8", "gbk", "gb18030")
IMPORT_LOG = "import_log"


@dataclass
class RawLayer:
    """A file read but not yet checked: catalogue column names, the user's own values.

    Attributes
    ----------
    frame
        Catalogue fields found in the file (values as read) and the geometry in ``crs``
        (raw degrees in ``coords`` for geographic data: GCJ-02/BD-09 are not converted yet).
    original
        The file's own columns, on the same index (written to the rejects file so that it can be
        corrected and imported again).
    rows
        The row label users see for each record (spreadsheet row, feature number or OSM id).
    row_label
        How ``rows`` count, e.g. "row (as numbered in Excel, header = row 1)".
    """

    kind: str
    source: str
    frame: gpd.GeoDataFrame
    original: pd.DataFrame
    rows: pd.Series
    row_label: str
    coords: str = "wgs84"
    notes: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    columns: ColumnMatch | None = None
    encoding: str | None = None

    @property
    def geographic(self) -> bool:
        return self.frame.crs is None or self.frame.crs.is_geographic


@dataclass
class ImportReport:
    """What :func:`import_file` did."""

    kind: str
    path: Path
    validation: ValidationReport
    imported: int
    refused: bool
    replaced: bool
    rejects_path: Path | None
    issues_path: Path | None
    reason: str = ""
    added_categories: list[str] = field(default_factory=list)  # by --add-categories (saved unless refused)
    saved: list[str] = field(default_factory=list)  # what was written into sanigrid.toml

    @property
    def accepted(self) -> int:
        return len(self.validation.accepted)

    @property
    def rejected(self) -> int:
        return len(self.validation.rejects)

    @property
    def warnings(self) -> int:
        return len(self.validation.warnings)


# ==================================================================== reading


def read_file(
    path: str | Path,
    *,
    kind: str,
    coords: str = "wgs84",
    mapping: Mapping[str, str] | None = None,
    layer: str | None = None,
    crs_hint: CRS | str | None = None,
    road_classes: Mapping[str, str | None] | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> RawLayer:
    """Read a file as layer ``kind`` without checking its rows.

    Parameters
    ----------
    path
        GeoJSON, Shapefile, GeoPackage (or another GDAL vector format), CSV/XLSX with coordinate
        columns (经度/纬度, lon/lat, x/y, or a WKT column), or OSM ``.osm``/``.pbf``.
    kind
        The catalogue layer kind (``toilets``, ``problems`` …).
    coords
        The system of degree coordinates (wgs84, cgcs2000, gcj02, bd09) or a CRS such as
        ``EPSG:4548`` for files that carry none.
    mapping
        File column → catalogue field (``{"厕所名称": "name"}``); ``经度``/``纬度``/``wkt`` as a
        target name the coordinate columns.
    layer
        The layer of a GeoPackage or the sheet of an XLSX workbook (default: the only one, or the
        one named like ``kind``, or the first sheet).
    crs_hint
        The project CRS, used for Gauss-Kruger coordinates without a zone number.
    road_classes
        OSM ``highway=*`` → road class (default :data:`sanigrid.layers.osm.OSM_ROAD_CLASS`; empty or ``None`` leaves
        the way out).
    values
        Field → {file value: allowed value}, e.g. ``{"source": {"Constituent Call": "群众举报"}}``
        (:func:`layers.columns.map_values`); the rejects file keeps the file's own values.
    """
    path = Path(path)
    s = spec(kind)
    if not path.exists():
        raise ImportError_(f"{path}: no such file")
    coords_sys, coords_crs = _parse_coords(coords)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        raw = _read_zip(path, kind=kind, coords=coords, mapping=mapping, layer=layer, crs_hint=crs_hint,
                        road_classes=road_classes)
    elif suffix in OSM_SUFFIXES:
        raw = _read_osm(path, kind=kind, road_classes=road_classes)
    elif suffix in TABLE_SUFFIXES:
        raw = _read_table(path, s, coords_sys=coords_sys, coords_crs=coords_crs, mapping=mapping,
                          sheet=layer, crs_hint=crs_hint)
    elif suffix == ".xls":
        raise ImportError_(f"{path}: old .xls workbooks are not read; open it in Excel or WPS and "
                           "save it as .xlsx (or CSV), then import that")
    else:
        raw = _read_vector(path, s, coords_sys=coords_sys, coords_crs=coords_crs, mapping=mapping,
                           layer=layer, crs_hint=crs_hint)
    if coords_sys in ("gcj02", "bd09") and not raw.geographic:
        raise CRSError(f"{path.name}: --coords {coords_sys} applies to longitude/latitude in degrees, "
                       f"but the file is in {raw.frame.crs.to_string()} (metres); drop --coords")
    if values:
        frame, notes = map_values(raw.frame, values, s, match=raw.columns, source=raw.source)
        raw.frame = gpd.GeoDataFrame(frame, geometry=raw.frame.geometry.name, crs=raw.frame.crs)
        raw.notes.extend(notes)
    raw.frame, changed = clean_text_columns(raw.frame)
    if changed:
        raw.notes.append(f"{path.name}: removed control characters (BEL, ESC, NUL …) that spreadsheets and "
                         "the store cannot hold, from "
                         + ", ".join(f"{n} cell(s) of '{c}'" for c, n in changed.items()))
    return raw


_ZIP_INNER = (".shp", ".gpkg", ".geojson", ".json", ".kml", ".csv", ".xlsx", ".osm", ".pbf")


def _read_zip(path: Path, *, kind: str, coords: str, mapping: Mapping[str, str] | None, layer: str | None,
              crs_hint: CRS | str | None, road_classes: Mapping[str, str | None] | None) -> RawLayer:
    """A zipped file (typically a shapefile mailed as .zip): unpack it and read the one data file inside."""
    import tempfile
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ImportError_(f"{path.name}: not a readable zip archive") from None
    with zf, tempfile.TemporaryDirectory(prefix="sanigrid-zip-") as tmp:
        for info in zf.infolist():
            name = info.filename
            if not info.flag_bits & 0x800:  # names not flagged UTF-8 are usually GBK on Chinese Windows
                try:
                    name = name.encode("cp437").decode("gbk")
                except (UnicodeEncodeError, UnicodeDecodeError):
                    pass
            target = Path(tmp) / Path(name).name
            if info.is_dir() or not Path(name).name:
                continue
            target.write_bytes(zf.read(info))
        inner = sorted(p for p in Path(tmp).iterdir() if p.suffix.lower() in _ZIP_INNER)
        if len(inner) != 1:
            found = ", ".join(p.name for p in inner) or "none"
            raise ImportError_(f"{path.name}: expected one data file inside (shp, gpkg, geojson, kml, csv, xlsx, "
                               f"osm), found: {found}; unpack it and import the one you mean")
        raw = read_file(inner[0], kind=kind, coords=coords, mapping=mapping, layer=layer, crs_hint=crs_hint,
                        road_classes=road_classes)
    raw.source = f"{path.name}:{inner[0].name}"
    return raw


def _parse_coords(coords: str | None) -> tuple[str, CRS | None]:
    c = (coords or "wgs84").strip()
    key = c.lower().replace("-", "").replace("_", "")
    if key in COORD_SYSTEMS:
        return key, None
    try:
        crs = CRS.from_user_input(c)
    except Exception:
        raise CRSError(f"--coords '{c}' is neither one of {', '.join(COORD_SYSTEMS)} nor a CRS pyproj "
                       "knows (e.g. EPSG:4548)") from None
    return ("wgs84" if crs.is_geographic else "projected"), crs


# ------------------------------------------------------------------ vector files


def _read_vector(path: Path, s: LayerSpec, *, coords_sys: str, coords_crs: CRS | None,
                 mapping: Mapping[str, str] | None, layer: str | None,
                 crs_hint: CRS | str | None) -> RawLayer:
    notes: list[str] = []
    if path.suffix.lower() == ".shp":
        missing = [ext for ext in (".dbf", ".shx") if not any(
            path.with_suffix(e).exists() for e in (ext, ext.upper()))]
        if ".dbf" in missing:
            raise ImportError_(
                f"{path.name}: its attribute table {path.with_suffix('.dbf').name} is missing beside it, so no "
                "field (name, class …) can be read. Fix: copy all the files of the shapefile together (.shp, .shx, "
                ".dbf, .prj, .cpg), or send them as one .zip")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as e:
        raise ImportError_(f"{path.name}: GDAL cannot open it as a vector file ({e}); import GeoJSON, "
                           "Shapefile, GeoPackage, CSV/XLSX with 经度/纬度 columns, or OSM") from None
    if layer is None:
        if len(layers) == 1:
            layer = layers[0]
        elif s.kind in layers:
            layer = s.kind
        else:
            raise ImportError_(f"{path.name} holds several layers ({', '.join(layers)}); "
                               "choose one with --layer NAME")
    elif layer not in layers:
        raise ImportError_(f"{path.name} has no layer '{layer}'; its layers: {', '.join(layers)}")
    encoding = None
    if path.suffix.lower() == ".shp":
        encoding, note = shapefile_encoding(path)
        if note:
            notes.append(note)
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, encoding=encoding)
    except Exception as e:
        raise ImportError_(f"{path.name}: cannot read layer '{layer}' ({e})") from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        raise ImportError_(f"{path.name}: layer '{layer}' has no geometry; for a table with "
                           "coordinates save it as CSV or XLSX with 经度/纬度 columns")
    frame = frame.reset_index(drop=True)
    geoms = frame.geometry.array
    crs = frame.crs
    if coords_crs is not None:
        if crs is not None and not CRS(crs).equals(coords_crs):
            notes.append(f"the file says {CRS(crs).to_string()}; using {coords_crs.to_string()} as told by --coords")
        crs = coords_crs
    else:
        b = np.asarray(shapely.bounds(np.asarray(geoms)))
        ok = ~np.isnan(b).any(axis=1)
        xs = np.concatenate([b[ok, 0], b[ok, 2]])
        ys = np.concatenate([b[ok, 1], b[ok, 3]])
        metres = ok.any() and CRS(crs).is_geographic if crs is not None else False
        if metres and float(np.median(np.abs(xs))) > 1e4 and float(np.median(np.abs(ys))) > 1e4:
            # e.g. a GeoJSON (WGS84 by definition) exported from Gauss-Kruger data without reprojecting
            notes.append(f"{path.name}: the file says {CRS(crs).to_string()} but its coordinates are metres; "
                         "the CRS is guessed from their size instead")
            crs = None
        if crs is None:
            crs, swap, note = guess_crs(xs, ys, coords=coords_sys, hint=crs_hint, source=path.name)
            notes.append(note)
            if swap:
                geoms = shapely.transform(np.asarray(geoms), lambda xy: xy[:, ::-1])
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    match = match_columns(attrs.columns, s, mapping=mapping, source=path.name)
    if match.unused:
        notes.append(_unused_note(match))
    out = gpd.GeoDataFrame(
        {f: attrs[c].astype("object") for c, f in match.fields.items()},
        geometry=gpd.GeoSeries(np.asarray(geoms), index=attrs.index), crs=crs, index=attrs.index)
    rows = pd.Series(np.arange(1, len(frame) + 1), index=attrs.index)
    original = attrs.copy()
    original["wkt"] = shapely.to_wkt(np.asarray(frame.geometry.array), rounding_precision=-1)
    return RawLayer(
        kind=s.kind, source=path.name, frame=out, original=original, rows=rows,
        row_label="feature (counted from 1 in file order, as in the QGIS attribute table)",
        coords=coords_sys if (crs is None or CRS(crs).is_geographic) else "projected",
        notes=notes, columns=match, encoding=encoding,
    )


def shapefile_encoding(path: str | Path) -> tuple[str, str]:
    """The encoding of a shapefile's DBF: from its ``.cpg``, else detected.

    Detection decodes the DBF records strictly as UTF-8, then GBK, then GB18030 and takes the
    first that succeeds (UTF-8 almost never decodes Chinese GBK text by accident; GB18030 decodes
    nearly anything, so it comes last). Returns the encoding and a note for the user.
    """
    path = Path(path)
    for cpg in (path.with_suffix(".cpg"), path.with_suffix(".CPG")):
        if cpg.exists():
            text = cpg.read_text(encoding="ascii", errors="replace").strip()
            enc = _cpg_encoding(text)
            return enc, f"DBF encoding {enc} (from {cpg.name})"
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return "utf-8", ""
    data = dbf.read_bytes()
    header_len = int.from_bytes(data[8:10], "little") if len(data) >= 10 else len(data)
    body = data[header_len:].rstrip(b"\x1a")
    # field names (11 bytes at the start of each 32-byte descriptor) may be Chinese too
    names = b" ".join(data[32 * i: 32 * i + 11].split(b"\0")[0] for i in range(1, (header_len - 1) // 32))
    sample = names + b" " + body
    if not any(b >= 0x80 for b in sample):
        return "utf-8", ""
    for enc in TEXT_ENCODINGS:
        try:
            sample.decode(enc)
            return enc, (f"DBF encoding {enc.upper()} detected ({path.with_suffix('.cpg').name} missing); "
                         "if names look garbled, add a .cpg file holding the right encoding, e.g. GBK")
        except UnicodeDecodeError:
            continue
    return "latin-1", (f"DBF encoding not recognised (not UTF-8, GBK or GB18030); read as Latin-1; add a "
                       f"{path.with_suffix('.cpg').name} file naming the encoding")


def _cpg_encoding(text: str) -> str:
    t = text.strip().upper().replace(" ", "")
    if t in ("936", "CP936", "ANSI936", "GB2312", "GBK"):
        return "gbk"
    if t in ("54936", "GB18030"):
        return "gb18030"
    if t in ("65001", "UTF8", "UTF-8"):
        return "utf-8"
    if t.isdigit():
        return f"cp{t}"
    return text.strip() or "utf-8"


def guess_crs(
    xs: np.ndarray, ys: np.ndarray, *, coords: str = "wgs84", hint: CRS | str | None = None,
    source: str = "the file",
) -> tuple[CRS, bool, str]:
    """Guess the CRS of coordinates from their magnitude (see the module docstring).

    Returns the CRS, whether x and y must be swapped (X = northing), and a note saying what was
    assumed.
    """
    xs = np.asarray(xs, dtype="float64")
    ys = np.asarray(ys, dtype="float64")
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return CRS.from_epsg(4326), False, "no coordinates to guess the CRS from; assumed WGS84"
    mx, my = float(np.median(np.abs(xs[ok]))), float(np.median(np.abs(ys[ok])))
    if mx <= 180 and my <= 180:
        epsg = 4490 if coords == "cgcs2000" else 4326
        name = {"gcj02": "GCJ-02 degrees (as told by --coords)", "bd09": "BD-09 degrees (as told by --coords)",
                "cgcs2000": "CGCS2000 longitude/latitude (EPSG:4490)"}.get(coords, "WGS84 longitude/latitude")
        return CRS.from_epsg(epsg), False, f"{source}: no CRS in the file; coordinates in degrees, taken as {name}"
    swap = False
    east, north = mx, my
    if 1e6 <= mx < 1e7 and (my < 1e6 or my >= 1e7):
        swap, east, north = True, my, mx
    if not 1e6 <= north < 1e7:
        raise CRSError(f"{source}: coordinates around x={mx:.0f}, y={my:.0f} are neither degrees nor "
                       "Gauss-Kruger metres in China; name the CRS with --coords EPSG:xxxx")
    swap_note = " (X holds northings and Y eastings, the surveying convention: swapped)" if swap else ""
    if east >= 1e7:
        zone = int(east // 1e6)
        if 25 <= zone <= 45:
            epsg, what = 4488 + zone, f"CGCS2000 3-degree Gauss-Kruger zone {zone} (central meridian {3 * zone}°E)"
        elif 13 <= zone <= 23:
            epsg, what = 4478 + zone, f"CGCS2000 6-degree Gauss-Kruger zone {zone} (central meridian {6 * zone - 3}°E)"
        else:
            raise CRSError(f"{source}: eastings around {east:.0f} m carry zone number {zone}, which is not a "
                           "Gauss-Kruger zone over China; name the CRS with --coords EPSG:xxxx")
        crs = CRS.from_epsg(epsg)
        return crs, swap, (f"{source}: no CRS in the file; from the zone number in the eastings assumed {what}, "
                           f"EPSG:{epsg}{swap_note}. If the data are Xian 1980 or Beijing 1954, re-import with "
                           "--coords EPSG:xxxx naming that system")
    if 1e5 <= east < 1e6:
        h = CRS.from_user_input(hint) if hint else None
        code = h.to_epsg() if h is not None and h.is_projected else None
        if h is not None and code is not None and 4534 <= code <= 4554:
            return h, swap, (f"{source}: no CRS in the file; Gauss-Kruger eastings without a zone number, "
                             f"assumed the project's zone {h.to_string()} ({h.name}){swap_note}")
        raise CRSError(
            f"{source}: Gauss-Kruger coordinates without a zone number (eastings around {east:.0f} m) and no "
            "CRS in the file; say which zone with --coords, e.g. EPSG:4548 for CGCS2000 3-degree zone 39 "
            "(117°E; EPSG = 4509 + longitude of the central meridian / 3)"
        )
    raise CRSError(f"{source}: coordinates around x={mx:.0f}, y={my:.0f} are neither degrees nor "
                   "Gauss-Kruger metres; name the CRS with --coords EPSG:xxxx")


def _unused_note(match: ColumnMatch) -> str:
    return ("columns not imported (no matching field): " + ", ".join(match.unused)
            + "; to keep one, map it with --map 列名=字段名")


# ------------------------------------------------------------------ tables


def _read_table(path: Path, s: LayerSpec, *, coords_sys: str, coords_crs: CRS | None,
                mapping: Mapping[str, str] | None, sheet: str | None,
                crs_hint: CRS | str | None) -> RawLayer:
    notes: list[str] = []
    encoding = None
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        grid, sheets, used = _read_xlsx(path, sheet)
        where = "row (as numbered in Excel, header = its own row)"
        if len(sheets) > 1:
            notes.append(f"{path.name}: read sheet '{used}' (sheets: {', '.join(sheets)}; choose with --layer)")
        try:
            return _table_layer(path, s, grid, notes, where, None, coords_sys=coords_sys, coords_crs=coords_crs,
                                mapping=mapping, crs_hint=crs_hint)
        except ImportError_ as e:
            if len(sheets) > 1 and sheet is None:
                raise ImportError_(f"{e} — this was sheet '{used}' of {', '.join(sheets)}; "
                                   "pick the right one with --layer SHEET") from None
            raise
    else:
        grid, encoding = _read_csv(path)
        if encoding != "utf-8":
            notes.append(f"{path.name}: text encoding {encoding.upper()} detected")
        where = "row (line of the CSV file, as numbered in Excel)"
    return _table_layer(path, s, grid, notes, where, encoding, coords_sys=coords_sys, coords_crs=coords_crs,
                        mapping=mapping, crs_hint=crs_hint)


def _table_layer(path: Path, s: LayerSpec, grid: pd.DataFrame, notes: list[str], where: str, encoding: str | None,
                 *, coords_sys: str, coords_crs: CRS | None, mapping: Mapping[str, str] | None,
                 crs_hint: CRS | str | None) -> RawLayer:
    if grid.empty:
        raise ImportError_(f"{path.name}: the file is empty")
    head = _header_row(grid, s)
    if head:
        notes.append(f"{path.name}: header found on row {head + 1} (the rows above it were skipped)")
    header = [_cell_name(v, i) for i, v in enumerate(grid.iloc[head])]
    header = _dedupe(header)
    data = grid.iloc[head + 1:].copy()
    data.columns = header
    blank = _blank_rows(data)
    if blank.any():
        notes.append(f"{path.name}: {int(blank.sum())} empty row(s) skipped")
    data = data[~blank]
    rows = pd.Series(data.index.to_numpy() + 1, index=data.index)  # grid row 0 = spreadsheet row 1
    data = data.reset_index(drop=True)
    rows.index = data.index
    if data.empty:
        raise ImportError_(f"{path.name}: no data rows below the header")
    own = [c for c in REJECT_COLUMNS if c in data.columns]
    if own:  # a corrected rejects file: its row numbers and reasons are not data
        data = data.drop(columns=own)
        notes.append(f"{path.name}: a rejects file; its columns {', '.join(own)} are not imported")
    match = match_columns(data.columns, s, mapping=mapping, source=path.name)
    if match.unused:
        notes.append(_unused_note(match))
    issues: list[Issue] = []
    geoms = np.full(len(data), None, dtype=object)
    if match.wkt is not None:
        for i, v in enumerate(data[match.wkt]):
            if _blank(v):
                continue
            try:
                geoms[i] = shapely.from_wkt(str(v).strip())
            except Exception:
                issues.append(Issue(
                    index=data.index[i], row=int(rows.iloc[i]), field=match.wkt, code="coordinates",
                    severity="error",
                    message=(f"{path.name}, row {rows.iloc[i]}, column {match.wkt}: '{_short(v)}' is not a WKT "
                             "geometry. Fix: write it like POINT (117.2 28.3) or LINESTRING (…), or give "
                             "经度/纬度 columns instead")))
    elif match.lon is not None and match.lat is not None:
        xs = np.full(len(data), np.nan)
        ys = np.full(len(data), np.nan)
        for col, arr in ((match.lon, xs), (match.lat, ys)):
            cells = data[col]
            arr[:] = pd.to_numeric(cells, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            for i in np.flatnonzero(np.isnan(arr)).tolist():  # the rest, one by one: DMS, 117.2E, blanks, errors
                v = cells.iloc[i]
                try:
                    arr[i] = parse_coordinate(v)
                except ValueError:
                    issues.append(Issue(
                        index=data.index[i], row=int(rows.iloc[i]), field=col, code="coordinates",
                        severity="error",
                        message=(f"{path.name}, row {rows.iloc[i]}, column {col}: '{_short(v)}' is not a "
                                 "coordinate. Fix: write decimal degrees such as 117.2213 (or 117°13′17″), "
                                 "or metres for Gauss-Kruger x/y")))
        for note_col in (match.lon, match.lat):
            n = bracket_note(note_col).replace("-", "")
            if n in ("gcj02", "bd09", "火星", "火星坐标", "百度", "高德") and coords_sys == "wgs84":
                notes.append(f"{path.name}: column '{note_col}' says {n} but --coords is wgs84; "
                             "if these are phone-app coordinates re-import with --coords gcj02 or bd09")
                break
        ok = np.isfinite(xs) & np.isfinite(ys)
        if coords_crs is not None:
            crs, swap = coords_crs, False
        else:
            crs, swap, note = guess_crs(xs[ok], ys[ok], coords=coords_sys, hint=crs_hint, source=path.name)
            notes.append(note)
        if swap:
            xs, ys = ys, xs
        geoms[ok] = shapely.points(xs[ok], ys[ok])
    else:
        raise ImportError_(
            f"{path.name}: no coordinate columns found; its columns are: {', '.join(map(str, data.columns))}. "
            "Fix: name them 经度 and 纬度 (or lon/lat, x/y), give a WKT column, or map them with "
            "--map 列名=经度,列名=纬度"
        )
    if match.wkt is not None:
        if coords_crs is not None:
            crs = coords_crs
        else:  # degrees or Gauss-Kruger metres, told apart by magnitude as for x/y columns
            b = np.asarray(shapely.bounds(geoms.astype(object)), dtype="float64").reshape(-1, 4)
            ok = ~np.isnan(b).any(axis=1)
            crs, swap, note = guess_crs(np.concatenate([b[ok, 0], b[ok, 2]]), np.concatenate([b[ok, 1], b[ok, 3]]),
                                        coords=coords_sys, hint=crs_hint, source=path.name)
            notes.append(note)
            if swap:
                geoms = np.asarray(shapely.transform(geoms, lambda xy: xy[:, ::-1]), dtype=object)
    frame = gpd.GeoDataFrame(
        {f: data[c].astype("object") for c, f in match.fields.items()},
        geometry=gpd.GeoSeries(geoms, index=data.index), crs=crs, index=data.index)
    return RawLayer(
        kind=s.kind, source=path.name, frame=frame, original=data, rows=rows, row_label=where,
        coords=coords_sys if CRS(crs).is_geographic else "projected", notes=notes, issues=issues,
        columns=match, encoding=encoding,
    )


def _read_xlsx(path: Path, sheet: str | None) -> tuple[pd.DataFrame, list[str], str]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a core dependency
        raise ImportError_("reading .xlsx needs openpyxl: pip install openpyxl") from None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:
        raise ImportError_(f"{path.name}: cannot open the workbook ({e}); save it again from Excel/WPS") from None
    try:
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in wb.sheetnames:
            ws = wb[sheet]
        else:
            raise ImportError_(f"{path.name} has no sheet '{sheet}'; its sheets: {', '.join(wb.sheetnames)}")
        values = [list(r) for r in ws.iter_rows(values_only=True)]
        sheets, used = list(wb.sheetnames), ws.title
    finally:
        wb.close()
    width = max((len(r) for r in values), default=0)
    return pd.DataFrame([r + [None] * (width - len(r)) for r in values], dtype="object"), sheets, used


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    data = path.read_bytes()
    encoding = "utf-8"
    text = None
    for enc in ("utf-8-sig", "gbk", "gb18030"):
        try:
            text = data.decode(enc)
            encoding = "utf-8" if enc == "utf-8-sig" else enc
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise ImportError_(f"{path.name}: text encoding not recognised (tried UTF-8, GBK, GB18030); "
                           "save the file as UTF-8 CSV from Excel/WPS")
    import csv
    import io

    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=object, keep_default_na=False,
                            skip_blank_lines=False)
    except Exception as e:
        raise ImportError_(f"{path.name}: cannot read it as CSV ({e})") from None
    return frame.astype("object").where(frame != "", None), encoding


def _header_row(grid: pd.DataFrame, s: LayerSpec, max_rows: int = 10) -> int:
    best, best_i = 0, 0
    for i in range(min(max_rows, len(grid))):
        score = header_score(grid.iloc[i].tolist(), s)
        if score > best:
            best, best_i = score, i
    return best_i


def _cell_name(v: Any, i: int) -> str:
    return f"列{i + 1}" if _blank(v) else str(v).strip()


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}.{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


def _blank_rows(data: pd.DataFrame) -> pd.Series:
    """Rows whose every cell is :func:`_blank`, column by column over the rows still in doubt (the
    first column with data settles almost every row, so the cells are not all stripped one by one)."""
    doubt = np.ones(len(data), dtype=bool)
    for c in data.columns:
        idx = np.flatnonzero(doubt)
        if not len(idx):
            break
        cells = data[c].iloc[idx]
        filled = cells.notna().to_numpy().copy()
        if filled.any():
            filled[filled] = ~cells[filled].map(_blank).to_numpy(dtype=bool)
        doubt[idx[filled]] = False
    return pd.Series(doubt, index=data.index)


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _short(v: Any, n: int = 40) -> str:
    t = str(v)
    return t if len(t) <= n else t[: n - 1] + "…"


_DMS = re.compile(
    r"^(?P<h1>[NSEW东西南北]|东经|西经|北纬|南纬)?\s*(?P<d>\d+(?:\.\d+)?)\s*(?:[°度]\s*"
    r"(?:(?P<m>\d+(?:\.\d+)?)\s*['′’分]\s*)?(?:(?P<s>\d+(?:\.\d+)?)\s*(?:[\"″”]|''|′′|秒)\s*)?)?"
    r"(?P<h2>[NSEW东西南北])?$",
    re.IGNORECASE,
)


def parse_coordinate(v: Any) -> float:
    """A coordinate from a cell: numbers, ``"117.2213"``, ``"117.2213E"``, ``"117°13′17″"``, ``"东经117.2"``.

    Returns NaN for an empty cell; raises ``ValueError`` for text that is not a coordinate.
    """
    if _blank(v):
        return float("nan")
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        return float(v)
    t = unicodedata.normalize("NFKC", str(v)).strip().replace(",", "").replace(" ", "")
    try:
        return float(t)
    except ValueError:
        pass
    m = _DMS.match(t)
    if not m:
        raise ValueError(t)
    val = float(m.group("d")) + float(m.group("m") or 0) / 60 + float(m.group("s") or 0) / 3600
    hemi = (m.group("h1") or "") + (m.group("h2") or "")
    if any(h in hemi.upper() for h in ("S", "W", "西", "南")):
        val = -val
    return val


# ------------------------------------------------------------------ OpenStreetMap


def _read_osm(path: Path, *, kind: str, road_classes: Mapping[str, str | None] | None) -> RawLayer:
    """An OSM file as a :class:`RawLayer` (read and mapped by :func:`layers.osm.read_osm`)."""
    got = read_osm(path, kind=kind, road_classes=road_classes)
    frame = got.frame
    original = pd.DataFrame(frame.drop(columns="geometry"))
    original["wkt"] = shapely.to_wkt(np.asarray(frame.geometry.array), rounding_precision=-1) if len(frame) else []
    return RawLayer(kind=kind, source=path.name, frame=frame, original=original,
                    rows=pd.Series(got.ids, index=frame.index, dtype="object"), row_label="OSM element",
                    coords="wgs84", notes=got.notes)


#: layers computed along the street network hold its lines (or places on them): a map of them shows
#: the streets' data too
_NETWORK_DERIVED = ("service_areas", "coverage_gaps", "suggested_sites", "sample_candidates", "sample_selection")


def map_attribution(project: Project, kinds: Iterable[str]) -> str:
    """The credits a map of layers ``kinds`` must print: the project's own, plus OpenStreetMap's
    (ODbL) when any of them came from an OSM file.

    A layer came from OSM when its metadata say so (an import that replaced the layer, the demo) or
    the import log records an ``.osm``/``.pbf`` file imported into it. Analysis layers computed on
    the network count the streets and alleys they were computed on.
    """
    base = project.settings.project.attribution
    if "OpenStreetMap" in base:
        return base
    wanted = set(kinds)
    if wanted & set(_NETWORK_DERIVED):
        wanted |= {"streets", "alleys"}
    store = project.store
    osm = any("OpenStreetMap" in str(store.meta(k).get("params", {}).get("attribution", ""))
              for k in wanted if store.has(k))
    if not osm and store.has(IMPORT_LOG):
        log_ = store.read_table(IMPORT_LOG)
        if {"kind", "file"} <= set(log_.columns):
            files = log_.loc[log_["kind"].isin(sorted(wanted)), "file"].astype(str).str.lower()
            osm = bool(files.str.endswith(OSM_SUFFIXES).any())
    if not osm:
        return base
    return f"{base}; {OSM_ATTRIBUTION}" if base else OSM_ATTRIBUTION


# ==================================================================== importing into a project


def import_file(
    project: Project,
    kind: str,
    path: str | Path,
    *,
    coords: str = "wgs84",
    mapping: Mapping[str, str] | None = None,
    layer: str | None = None,
    strict: bool = False,
    replace: bool = False,
    fix: bool = False,
    write: bool = True,
    values: Mapping[str, Mapping[str, str]] | None = None,
    add_categories: bool = False,
    save_mapping: bool = False,
    defaults: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ImportReport:
    """Read, validate and (unless ``write`` is false) import a file into ``project``'s store.

    The accepted rows are appended to layer ``kind`` (or replace it with ``replace``) in one
    store transaction: if anything fails, the store is left exactly as it was. Rejected rows go
    to ``outputs/rejects_<kind>_<file>_<time>.csv`` (UTF-8 with BOM, so Excel opens it) with
    their reasons, and every message to ``issues_…csv`` beside it. With ``strict`` a file with
    any rejected row is refused as a whole and nothing is written to the store; a file with no
    acceptable row is always refused.

    The column mapping is the project's ``[imports.columns.<kind>]`` overridden by ``mapping``
    (an empty target leaves a column out); the value mapping the project's
    ``[imports.values.<kind>.<field>]`` overridden by ``values``. With ``save_mapping`` both are
    written into ``sanigrid.toml`` after a successful import; with ``add_categories`` every
    problem category of the file that the settings lack is added with the default deadline
    (:attr:`ImportReport.added_categories`). The first import into a project without a ``crs``
    writes the CRS the store chose (Gauss-Kruger zone in China, UTM elsewhere) into the file.

    Outside-the-county features are found with the ``boundary`` layer when there is one, else the
    grids, else the layer's own spread (:func:`layers.validation.validate`).

    ``defaults`` (field → value) fill the cells a file leaves blank, ``overrides`` set a field on
    every row (e.g. the inspection report a batch of problems came in with); both are checked like
    the file's own values.
    """
    path = Path(path)
    s = spec(kind)
    settings = project.settings
    store = project.store
    full_map = dict(settings.imports.columns.get(kind, {}))
    full_map.update(mapping or {})
    full_values = {f: dict(t) for f, t in settings.imports.values.get(kind, {}).items()}
    for f, t in (values or {}).items():
        full_values.setdefault(f, {}).update(t)
    raw = read_file(path, kind=kind, coords=coords, mapping=full_map, layer=layer, crs_hint=store.crs,
                    road_classes=settings.imports.osm_road_class, values=full_values)
    _set_values(raw, s, defaults or {}, overrides or {})
    new_settings = settings.model_copy(deep=True)
    added: list[str] = []
    if add_categories:
        added = _add_categories(new_settings, s, raw)
        if added:
            shown = ", ".join(added[:30]) + (f" … ({len(added)} in all)" if len(added) > 30 else "")
            raw.notes.append(f"--add-categories: {len(added)} new problem categories with the default deadline "
                             f"({ProblemCategory.model_fields['deadline'].default:g} "
                             f"{ProblemCategory.model_fields['unit'].default}): {shown}"
                             + ("" if write else " (not saved: nothing is written by validate)"))
    boundary, boundary_source = county_area(store, kind)
    seen = store.version()  # the store as validated (checked again inside the write transaction)
    existing = store.read(kind) if (not replace and store.has(kind)) else None
    report = validate(kind, raw, settings=new_settings, boundary=boundary, fix=fix, existing=existing,
                      boundary_source=boundary_source)

    def outcome(report: ValidationReport, *, again: tuple[Path | None, Path | None] = (None, None),
                ) -> tuple[bool, str, Path | None, Path | None]:
        """Refused or not, and the rejects and issues files written (a second check rewrites ``again``)."""
        refused, reason = False, ""
        if len(report.accepted) == 0:
            refused, reason = True, "no row of the file can be imported"
        elif strict and len(report.rejects):
            refused, reason = True, f"--strict: {len(report.rejects)} row(s) rejected, so the whole file is refused"
        rejects_path = issues_path = None
        if write and len(report.rejects):
            rejects_path = again[0] or project.new_output_path(issues_file_name(kind, path, prefix="rejects"))
            report.rejects.to_csv(rejects_path, index=False, encoding="utf-8-sig")
        if write and report.issues:
            issues_path = write_issues(report, again[1] or project.new_output_path(issues_file_name(kind, path)))
        for old, new in zip(again, (rejects_path, issues_path), strict=True):
            if old is not None and new is None:
                old.unlink(missing_ok=True)  # the second check found nothing of that kind
        return refused, reason, rejects_path, issues_path

    refused, reason, rejects_path, issues_path = outcome(report)
    imported = 0
    if write and not refused:
        with store.transaction() as tx:
            if not replace and tx.version() != seen:
                # another writer (e.g. the web desk taking reports) changed the store while the file
                # was checked: run the store-side checks (keys, exact copies) again on the store as it
                # is now, under the write lock, so that nothing slips in between the check and the write
                existing = tx.read(kind) if tx.has(kind) else None
                report = validate(kind, raw, settings=new_settings, boundary=boundary, fix=fix, existing=existing,
                                  boundary_source=boundary_source)
                refused, reason, rejects_path, issues_path = outcome(report, again=(rejects_path, issues_path))
            if not refused:
                # keys are numbered from the store as it is inside the transaction
                top = None if replace or not tx.has(kind) or not s.key else tx.max_value(kind, s.key)
                accepted = _assign_keys(report.accepted, s, top)
                log_row = pd.DataFrame({
                    "imported_at": [datetime.now().isoformat(timespec="seconds")], "kind": [kind],
                    "file": [path.name], "coords": [coords], "accepted": [len(accepted)],
                    "rejected": [len(report.rejects)], "warnings": [len(report.warnings)],
                    "replace": [bool(replace)], "rejects_file": [rejects_path.name if rejects_path else ""],
                })
                params = {"source": path.name, "coords": coords, "imported_at": log_row["imported_at"].iloc[0]}
                if path.suffix.lower() in OSM_SUFFIXES:
                    params["attribution"] = OSM_ATTRIBUTION  # the printed map credits OSM (ODbL)
                if replace:
                    tx.write(kind, accepted, params=params)
                else:
                    tx.append(kind, accepted)
                tx.append_table(IMPORT_LOG, log_row)
                imported = len(accepted)
    saved: list[str] = []
    if write and not refused:
        saved = _save_choices(project, new_settings, kind, added=added, mapping=mapping if save_mapping else None,
                              values=values if save_mapping else None, notes=report.notes)
    return ImportReport(kind=kind, path=path, validation=report, imported=imported, refused=refused,
                        replaced=replace and not refused and write, rejects_path=rejects_path,
                        issues_path=issues_path, reason=reason, added_categories=added, saved=saved)


def _set_values(raw: RawLayer, s: LayerSpec, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Fill blank cells of ``raw`` from ``defaults`` and set ``overrides`` on every row (in place)."""
    f = raw.frame
    for name, value in {**defaults, **overrides}.items():
        s.field(name)  # an unknown field is refused, naming the layer's fields
        if name in overrides or name not in f:
            f[name] = pd.Series([value] * len(f), index=f.index, dtype="object")
        else:
            col = f[name].astype("object")
            blank = col.isna() | (col.astype(str).str.strip() == "")
            f[name] = col.where(~blank, value)


def issues_file_name(kind: str, path: str | Path, *, prefix: str = "issues") -> str:
    """``issues_<kind>_<file>_<time>.csv`` (or ``rejects_…``): the name of a report about one file."""
    stem = re.sub(r"[^\w\-]+", "_", Path(path).stem)
    return f"{prefix}_{kind}_{stem}_{datetime.now().strftime('%Y%m%d-%H%M%S')}.csv"


def write_issues(report: ValidationReport, path: Path) -> Path:
    """Every message of ``report`` (errors first) as a CSV that Excel opens (UTF-8 with BOM)."""
    frame = report.issues_frame()
    order = frame["级别 severity"].str.startswith("警告").to_numpy()
    frame.iloc[np.argsort(order, kind="stable")].to_csv(path, index=False, encoding="utf-8-sig")
    return path


def county_area(store: Any, kind: str) -> tuple[gpd.GeoSeries | None, Literal["boundary", "grids"]]:
    """The area a layer ``kind`` is checked against: the ``boundary`` layer, else the union of the grids
    (not for the grids themselves), else ``None`` (the layer's own spread is used)."""
    if kind != "boundary" and store.has("boundary"):
        outline = store.read("boundary")
        if len(outline):
            return gpd.GeoSeries([outline.union_all()], crs=outline.crs), "boundary"
    if kind not in ("grids", "boundary") and store.has("grids"):
        grids = store.read("grids")
        if len(grids):
            return gpd.GeoSeries([grids.union_all()], crs=grids.crs), "grids"
    return None, "grids"


def _add_categories(settings: Settings, s: LayerSpec, raw: RawLayer) -> list[str]:
    """Add to ``settings`` every distinct value of the file's category field that it lacks (in order of
    frequency); return the names added."""
    from sanigrid.layers.validation import parse_text

    added: list[str] = []
    for f in s.fields:
        if f.allowed_from != "problem_categories" or f.name not in raw.frame.columns:
            continue
        names = raw.frame[f.name].map(parse_text).dropna()
        known = set(settings.problem_categories)
        for name in names.value_counts(sort=True).index:
            if name not in known:
                added.append(str(name))
                known.add(name)
    if added:
        settings.problems.categories = [*settings.problems.categories, *(ProblemCategory(name=n) for n in added)]
    return added


def _save_choices(project: Project, settings: Settings, kind: str, *, added: list[str],
                  mapping: Mapping[str, str] | None, values: Mapping[str, Mapping[str, str]] | None,
                  notes: list[str]) -> list[str]:
    """Write into ``sanigrid.toml`` what an import decided: new categories, the mapping asked to be saved, and
    the CRS the store chose on the first import. Returns what was saved (empty: the file is untouched)."""
    saved: list[str] = []
    if added:
        saved.append(f"{len(added)} problem categories")
    if mapping:
        settings.imports.columns = {**settings.imports.columns,
                                    kind: {**settings.imports.columns.get(kind, {}), **mapping}}
        saved.append(f"[imports.columns.{kind}]")
    if values:
        mine = {f: dict(t) for f, t in settings.imports.values.get(kind, {}).items()}
        for f, t in values.items():
            mine.setdefault(f, {}).update(t)
        settings.imports.values = {**settings.imports.values, kind: mine}
        saved.append(f"[imports.values.{kind}]")
    chosen = project.store.crs
    if not settings.project.crs and chosen is not None:
        settings.project.crs = chosen.to_string()
        notes.append(describe_choice(chosen))
        saved.append("[project] crs")
    if saved:
        save_settings(settings, project.settings_path)
        project.settings = settings
    return saved


def _assign_keys(frame: gpd.GeoDataFrame, s: LayerSpec, stored_max: Any) -> gpd.GeoDataFrame:
    """Give rows without an integer key (e.g. ``problem_id``) the next free numbers, above both the
    file's own keys and ``stored_max`` (the store's largest key, read inside the write transaction)."""
    if not s.key or s.field(s.key).dtype != "int" or not len(frame):
        return frame
    out = frame.copy()
    col = out[s.key] if s.key in out.columns else pd.Series(pd.NA, index=out.index, dtype="Int64")
    missing = col.isna()
    if not missing.any():
        return out
    start = 0 if stored_max is None or pd.isna(stored_max) else int(stored_max)
    if col.notna().any():
        start = max(start, int(pd.to_numeric(col, errors="coerce").max()))
    new = pd.Series(np.arange(start + 1, start + 1 + int(missing.sum())), index=out.index[missing])
    out[s.key] = col.astype("Int64").where(~missing, new.reindex(out.index)).astype("Int64")
    return out
