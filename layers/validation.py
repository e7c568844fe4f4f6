"""Row-by-row checks of a layer before it enters the store.

:func:`validate` runs every check on a file read by :func:`layers.importers.read_file` (or on
any GeoDataFrame with catalogue column names) and returns a :class:`ValidationReport`: the rows
that pass, typed as the catalogue says and with their geometry in WGS84 (or the file's projected
CRS); the rows that fail, with the reasons, ready to be written to a rejects file; and every
message. Nothing is dropped silently: a row is either accepted or rejected with a reason.

Checks (``code``: what it finds; errors reject the row, warnings do not)

============== ======== ==========================================================================
code           severity finds
============== ======== ==========================================================================
coordinates    error    a coordinate cell that is not a number or a WKT cell that is not a geometry
empty_geometry error    no geometry (empty coordinates)
swapped        error    latitude and longitude swapped: beyond ±90 latitude, in China only when swapped, or
                        outside the county (or far off) where the swapped pair lies inside
                        (``fix``: swapped back, a warning)
out_of_range   error    longitude beyond ±180 or latitude beyond ±90, or the point (0, 0)
invalid        error    an invalid geometry such as a self-crossing polygon (``fix``: make_valid)
geometry_type  error    a geometry type the layer does not hold (``fix``: single-part multis are
                        unpacked, areas in a point layer become their inside point)
outside        error    outside the county: the ``boundary`` layer (beyond ``validation.boundary_buffer_m``,
                        default 0 m), else the union of the grids (beyond ``validation.outside_buffer_m``)
far            error    no boundary nor grids: farther than ``validation.far_m`` from the layer's median
                        location
outlier        warning  no boundary nor grids: a robust outlier of the layer's spread (median + k·MAD)
missing        error    a required field that is empty, or whose column is not in the file
unparseable    error    a number, date or yes/no value that cannot be read
not_allowed    error    a value not in the field's allowed list (e.g. an unknown problem category); one
                        message per field listing the distinct values with their counts
date_order     error    closed_at before reported_at (a warning when by at most
                        ``validation.date_order_tolerance_s`` seconds)
duplicate_key  error    the layer's key (problem_id, grid code) repeated in the file or the store
duplicate      error    an exact copy (same geometry and values) of an earlier row or a stored feature
pile           warning  ``piles.min_count`` or more records within ``piles.tolerance_m`` of one
                        point: a default geocode (:mod:`layers.piles`); the biggest are named in the
                        notes with their coordinates
============== ======== ==========================================================================
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from sanigrid.layers.catalogue import Field, LayerSpec, spec
from sanigrid.layers.crs import crs_for_lonlat, project_crs, to_wgs84
from sanigrid.layers.dates import parse_date_column, parse_datetime
from sanigrid.layers.piles import find_piles
from sanigrid.layers.settings import Settings

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]

#: Chinese and English names of the checks, for summaries.
CHECKS: dict[str, str] = {
    "coordinates": "坐标无法识别 unreadable coordinates",
    "empty_geometry": "几何为空 empty geometry",
    "swapped": "经纬度颠倒 lat/lon swapped",
    "out_of_range": "坐标超出范围 coordinates out of range",
    "invalid": "几何无效 invalid geometry",
    "geometry_type": "几何类型不符 wrong geometry type",
    "outside": "超出县域范围 outside the county",
    "far": "远离其他要素 far from the rest of the layer",
    "outlier": "位置离群 an outlier location",
    "missing": "必填字段为空 required field missing",
    "unparseable": "无法识别的值 unreadable value",
    "not_allowed": "取值不允许 value not allowed",
    "date_order": "日期顺序错误 dates out of order",
    "duplicate_key": "编号重复 duplicate key",
    "duplicate": "完全重复 exact duplicate",
    "pile": "坐标堆叠(默认定位) pile on one coordinate",
}

#: The columns a rejects file adds in front of the file's own (dropped again when it is re-imported).
REJECT_COLUMNS = ("行号 row", "原因 reasons")

TRUE_WORDS = {"是", "y", "yes", "true", "t", "1", "有", "√", "✓", "✔", "对", "已", "1.0"}
FALSE_WORDS = {"否", "n", "no", "false", "f", "0", "无", "×", "✗", "✘", "没有", "不", "未", "0.0"}
_UNITS = r"(?:米|m|个|座|吨/日|吨/天|t/d|吨|t|户|人|位|处|间|只|平方米|m2|㎡)?"
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*" + _UNITS + r"$", re.IGNORECASE)


@dataclass(frozen=True)
class Issue:
    """One finding about one row (``row`` as the user counts it, ``index`` in the frame)."""

    index: Any
    row: Any
    field: str | None
    code: str
    severity: Severity
    message: str
    count: int = 1  # rows this message stands for (one message for all rows with the same unknown value)

    def as_dict(self) -> dict[str, Any]:
        return {"行号 row": self.row, "字段 field": self.field or "", "检查 check": CHECKS.get(self.code, self.code),
                "级别 severity": "错误 error" if self.severity == "error" else "警告 warning",
                "说明 message": self.message}


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`.

    Attributes
    ----------
    accepted
        Rows without errors: catalogue fields typed (Int64, float, boolean, datetime64, str),
        geometry in WGS84 (EPSG:4326) for degree input, else the file's projected CRS.
    rejects
        Rows with errors: ``行号 row``, ``原因 reasons``, then the file's own columns (and ``wkt``
        for spatial files), so the file can be corrected and imported again.
    issues
        Every message, errors and warnings, in row order.
    notes
        What was assumed or skipped for the file as a whole (CRS guessed, encoding, columns
        not imported, boundary check skipped …).
    """

    kind: str
    source: str
    accepted: gpd.GeoDataFrame
    rejects: pd.DataFrame
    issues: list[Issue]
    notes: list[str]
    total: int
    row_label: str

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def counts(self) -> pd.DataFrame:
        """Rows affected per check and severity (for a summary table)."""
        rows = [{"check": i.code, "name": CHECKS.get(i.code, i.code), "severity": i.severity, "count": i.count}
                for i in self.issues]
        if not rows:
            return pd.DataFrame(columns=["check", "name", "severity", "count"])
        table = (pd.DataFrame(rows).groupby(["check", "name", "severity"], sort=False)["count"].sum()
                 .reset_index())
        return table.sort_values("severity", kind="stable").reset_index(drop=True)  # errors first

    def issues_frame(self) -> pd.DataFrame:
        return pd.DataFrame([i.as_dict() for i in self.issues],
                            columns=["行号 row", "字段 field", "检查 check", "级别 severity", "说明 message"])


# ==================================================================== value parsing


def parse_bool(v: Any) -> bool | None:
    """是/否, Y/N, yes/no, true/false, 1/0, 有/无, √/× → bool; empty → None; else ``ValueError``."""
    if _blank(v):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating) and v in (0, 1):
        return bool(v)
    t = unicodedata.normalize("NFKC", str(v)).strip().casefold()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise ValueError(v)


def parse_number(v: Any, *, integer: bool = False) -> float | int | None:
    """A number from a cell, tolerating thousands separators and a unit (``"6个"``, ``"3.5米"``)."""
    if _blank(v):
        return None
    if isinstance(v, bool | np.bool_):
        raise ValueError(v)
    if isinstance(v, int | float | np.integer | np.floating):
        x = float(v)
    else:
        t = unicodedata.normalize("NFKC", str(v)).strip().replace(",", "").replace(" ", "")
        m = _NUMBER.match(t)
        if not m:
            raise ValueError(v)
        x = float(m.group(1))
    if not math.isfinite(x):
        raise ValueError(v)
    if integer:
        if x != int(x):
            raise ValueError(v)
        return int(x)
    return x


def parse_text(v: Any) -> str | None:
    """A text cell: stripped; integral floats lose their ``.0`` (codes, phone numbers)."""
    if _blank(v):
        return None
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, pd.Timestamp | datetime):
        return pd.Timestamp(v).isoformat(sep=" ")
    t = str(v).strip()
    return t or None


def _blank(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float | np.floating) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "str": parse_text, "int": lambda v: parse_number(v, integer=True), "float": parse_number,
    "bool": parse_bool, "date": parse_datetime, "datetime": parse_datetime,
}
_EXPECT = {"int": "a whole number (e.g. 6)", "float": "a number (e.g. 3.5)",
           "bool": "是/否 (or Y/N, 1/0, true/false)", "date": "a date such as 2026-03-01",
           "datetime": "a date and time such as 2026-03-01 08:30"}


# ==================================================================== the checks


class _Collector:
    """Gathers issues with messages that name the file, the row and the field."""

    def __init__(self, source: str, rows: Sequence[Any], index: Sequence[Any], row_word: str,
                 columns: dict[str, str]):
        self.source, self.rows, self.index, self.row_word = source, list(rows), list(index), row_word
        self.columns = columns  # field → the file's column name
        self.geometry_desc = "geometry"
        self.issues: list[Issue] = []
        self.errors: dict[int, list[str]] = defaultdict(list)

    def field_desc(self, f: Field | str | None) -> str:
        if f is None:
            return self.geometry_desc
        if isinstance(f, str):
            return f"column {f}"
        col = self.columns.get(f.name)
        if col and col != f.name:
            return f"column {col} (field {f.name}, {f.zh})"
        return f"field {f.name} ({f.zh})"

    def add(self, pos: int | np.integer, code: str, severity: Severity, f: Field | str | None, what: str,
            fix: str) -> None:
        pos = int(pos)
        row = self.rows[pos]
        msg = f"{self.source}, {self.row_word} {row}, {self.field_desc(f)}: {what}. Fix: {fix}"
        name = f if isinstance(f, str) or f is None else f.name
        self.issues.append(Issue(self.index[pos], row, name, code, severity, msg))
        if severity == "error":
            self.errors[pos].append(f"{CHECKS.get(code, code).split(' ')[0]}: {what}")

    def add_many(self, positions: Sequence[int], code: str, f: Field, what: str, fix: str,
                 reasons: Sequence[str]) -> None:
        """One error message standing for many rows (each row still gets its own reason)."""
        first = int(positions[0])
        shown = ", ".join(str(self.rows[int(p)]) for p in positions[:8]) + (" …" if len(positions) > 8 else "")
        word = self.row_word + ("s" if len(positions) > 1 else "")
        msg = f"{self.source}, {word} {shown}, {self.field_desc(f)}: {what}. Fix: {fix}"
        self.issues.append(Issue(self.index[first], self.rows[first], f.name, code, "error", msg,
                                 count=len(positions)))
        for p, why in zip(positions, reasons, strict=True):
            self.errors[int(p)].append(f"{CHECKS.get(code, code).split(' ')[0]}: {why}")


def validate(
    kind: str,
    data: Any,
    *,
    settings: Settings | None = None,
    boundary: gpd.GeoSeries | gpd.GeoDataFrame | None = None,
    fix: bool = False,
    existing: gpd.GeoDataFrame | None = None,
    source: str | None = None,
    coords: str | None = None,
    boundary_source: Literal["boundary", "grids"] = "grids",
) -> ValidationReport:
    """Check every row of ``data`` as layer ``kind``.

    Parameters
    ----------
    kind
        Catalogue layer kind.
    data
        A :class:`layers.importers.RawLayer`, or a GeoDataFrame with catalogue column names (rows
        are then numbered 1… in frame order).
    settings
        Project settings: allowed values named by ``allowed_from``, pile thresholds, boundary buffer.
    boundary
        The county's area, in any CRS: the ``boundary`` layer (``boundary_source="boundary"``,
        checked with ``validation.boundary_buffer_m``) or the grids (``validation.outside_buffer_m``).
        ``None``: far-off features are found from the layer's own spread (robust outliers).
    fix
        Repair what can be repaired (swap lat/lon back, make_valid, unpack single-part multis,
        areas to points for point layers) and report it as a warning instead of rejecting.
    existing
        The layer already in the store (for duplicates and keys when appending).
    source, coords
        For a GeoDataFrame: the name used in messages and the system of its degree coordinates
        (``gcj02``/``bd09`` are converted to WGS84).

    Returns
    -------
    ValidationReport
    """
    s = spec(kind)
    settings = settings or Settings()
    if hasattr(data, "frame"):
        raw_frame: gpd.GeoDataFrame = data.frame
        original: pd.DataFrame = data.original
        rows = list(data.rows)
        row_label: str = data.row_label
        notes = list(data.notes)
        pre_issues: list[Issue] = list(data.issues)
        src = data.source
        coords = data.coords
        colmap = data.columns.by_field if data.columns is not None else {}
        cols_absent_note = data.columns is not None
    else:
        raw_frame = data
        original = pd.DataFrame(data.drop(columns=data.geometry.name))
        original["wkt"] = shapely.to_wkt(np.asarray(data.geometry.array), rounding_precision=-1)
        rows = list(range(1, len(data) + 1))
        row_label = "row (1-based position in the table)"
        notes, pre_issues, src = [], [], source or f"{kind} table"
        coords = coords or "wgs84"
        colmap = {}
        cols_absent_note = False
    n = len(raw_frame)
    index = list(raw_frame.index)
    pos_of = {ix: p for p, ix in enumerate(index)}
    col = _Collector(src, rows, index, row_label.split(" ")[0], colmap)
    match = data.columns if hasattr(data, "frame") else None
    if match is not None and match.lon and match.lat and not match.wkt:
        col.geometry_desc = f"columns {match.lon}/{match.lat}"
    elif match is not None and match.wkt:
        col.geometry_desc = f"column {match.wkt}"
    for iss in pre_issues:
        col.issues.append(iss)
        if iss.severity == "error":
            col.errors[pos_of[iss.index]].append(f"{CHECKS.get(iss.code, iss.code).split(' ')[0]}: "
                                                 f"{iss.message.split(': ', 1)[-1].split('. Fix')[0]}")
    unreadable = {pos_of[i.index] for i in pre_issues if i.code == "coordinates"}

    geom = np.asarray(raw_frame.geometry.array, dtype=object).copy() if n else np.empty(0, dtype=object)
    crs = raw_frame.crs
    geographic = crs is None or CRS(crs).is_geographic
    geom, crs = _check_geometry(s, geom, crs, geographic, coords or "wgs84", fix, col, unreadable, notes)

    good = ~(shapely.is_missing(geom) | shapely.is_empty(geom)) if n else np.zeros(0, bool)
    for p in col.errors:
        good[p] = False
    metric_crs = _metric_crs(existing, boundary, crs, geom[good])
    metric = np.full(n, None, dtype=object)
    if good.any():
        metric[good] = np.asarray(gpd.GeoSeries(geom[good], crs=crs).to_crs(metric_crs).array)

    swappable = n > 0 and geographic and coords not in ("gcj02", "bd09")
    vs = settings.validation
    if kind == "boundary":
        pass
    elif boundary is not None and (kind != "grids" or boundary_source == "boundary"):
        buffer_m = vs.boundary_buffer_m if boundary_source == "boundary" else vs.outside_buffer_m
        _check_boundary(boundary, geom, metric, good, crs, metric_crs, buffer_m, col, fix=fix,
                        swappable=swappable, what="county boundary" if boundary_source == "boundary" else
                        "county's grids")
    else:
        _check_spread(geom, metric, good, crs, metric_crs, vs, col, notes, fix=fix, swappable=swappable)

    values = _check_fields(s, raw_frame, settings, col, notes if cols_absent_note else None)
    _check_dates(s, values, settings.validation.date_order_tolerance_s, col)
    _check_keys(s, values, existing, col)
    _check_duplicates(s, values, metric, existing, metric_crs, col)
    if all(g in ("Point", "MultiPoint") for g in s.geometry) or "Point" in s.geometry:
        _check_piles(metric, metric_crs, settings.piles.min_count, settings.piles.tolerance_m, col, notes)

    bad = np.zeros(n, dtype=bool)
    for p in col.errors:
        bad[p] = True
    accepted = gpd.GeoDataFrame(
        {f.name: values[f.name] for f in s.fields if f.name in values},
        geometry=gpd.GeoSeries(geom, index=raw_frame.index), crs=crs, index=raw_frame.index,
    ).iloc[~bad]
    rej = original.iloc[np.flatnonzero(bad)].drop(columns=list(REJECT_COLUMNS), errors="ignore")
    rej.insert(0, "原因 reasons", ["; ".join(col.errors[int(p)]) for p in np.flatnonzero(bad)])
    rej.insert(0, "行号 row", [rows[p] for p in np.flatnonzero(bad)])
    order = {ix: p for p, ix in enumerate(index)}
    issues = sorted(col.issues, key=lambda i: (order.get(i.index, -1), i.severity != "error"))
    log.info("%s: %d rows, %d accepted, %d rejected", src, n, len(accepted), int(bad.sum()))
    return ValidationReport(kind=kind, source=src, accepted=accepted, rejects=rej.reset_index(drop=True),
                            issues=issues, notes=notes, total=n, row_label=row_label)


# ------------------------------------------------------------------ geometry


def _swap_xy(g: np.ndarray) -> np.ndarray:
    return shapely.transform(g, lambda xy: xy[:, ::-1])


def _check_geometry(s: LayerSpec, geom: np.ndarray, crs: Any, geographic: bool, coords: str, fix: bool,
                    col: _Collector, unreadable: set[int], notes: list[str]) -> tuple[np.ndarray, Any]:
    n = len(geom)
    if n == 0:
        return geom, crs
    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    for p in np.flatnonzero(empty):
        if p not in unreadable:
            col.add(p, "empty_geometry", "error", None, "the row has no location (coordinates empty)",
                    "fill in 经度/纬度 (or the geometry), or delete the row if it is not a real feature")
    has = ~empty
    if geographic:
        b = np.asarray(shapely.bounds(geom), dtype="float64")
        minx, miny, maxx, maxy = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        with np.errstate(invalid="ignore"):
            swapped = has & (
                ((np.maximum(np.abs(miny), np.abs(maxy)) > 90) & (np.maximum(np.abs(minx), np.abs(maxx)) <= 90))
                | ((minx >= 3) & (maxx <= 54) & (miny >= 73) & (maxy <= 136)))
        for p in np.flatnonzero(swapped):
            lat, lon = b[p, 0], b[p, 1]
            what = (f"latitude and longitude are swapped (longitude {lon:.6g} is in the latitude column, "
                    f"latitude {lat:.6g} in the longitude column; only the other way round lies in China)")
            if fix:
                col.add(p, "swapped", "warning", None, what + "; swapped back (--fix)",
                        "check the source: the two columns are probably labelled the wrong way round")
            else:
                col.add(p, "swapped", "error", None, what,
                        "exchange the two values (or the column headers), or re-run with --fix to swap them")
        if fix and swapped.any():
            geom[swapped] = _swap_xy(geom[swapped])
            b[swapped] = b[swapped][:, [1, 0, 3, 2]]
            minx, miny, maxx, maxy = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        rest = has & ~(swapped & (not fix))
        with np.errstate(invalid="ignore"):
            out = rest & ((np.abs(minx) > 180) | (np.abs(maxx) > 180) | (np.abs(miny) > 90) | (np.abs(maxy) > 90))
            zero = rest & ~out & (minx == 0) & (maxx == 0) & (miny == 0) & (maxy == 0)
        for p in np.flatnonzero(out):
            col.add(p, "out_of_range", "error", None,
                    f"coordinates ({minx[p]:.6g}, {miny[p]:.6g}) are not a longitude/latitude",
                    "longitude must be within ±180 and latitude within ±90 (decimal degrees); metres need a "
                    "CRS: --coords EPSG:xxxx")
        for p in np.flatnonzero(zero):
            col.add(p, "out_of_range", "error", None, "the location is (0, 0), a placeholder for 'unknown'",
                    "enter the real coordinates")
        ok = has & ~out & ~zero & ~(swapped & (not fix))
        if coords in ("gcj02", "bd09") and ok.any():
            def conv(xy: np.ndarray) -> np.ndarray:
                x, y = to_wgs84(xy[:, 0], xy[:, 1], coords)
                return np.column_stack([x, y])
            geom[ok] = shapely.transform(geom[ok], conv)
            notes.append(f"coordinates converted from {coords.upper()} to WGS84 (exact inverse, < 0.1 m)")
        crs = CRS.from_epsg(4326) if crs is None or coords in ("gcj02", "bd09") else crs
    cand = np.array([p for p in np.flatnonzero(has) if p not in col.errors], dtype=int)
    if len(cand):
        valid = shapely.is_valid(geom[cand])
        for p in cand[~valid]:
            reason = shapely.is_valid_reason(geom[p])
            if fix:
                geom[p] = _make_valid(geom[p], s.geometry)
                col.add(p, "invalid", "warning", None, f"invalid geometry ({reason}); repaired with make_valid (--fix)",
                        "check the repaired shape on the map")
            else:
                col.add(p, "invalid", "error", None, f"invalid geometry ({reason})",
                        "redraw it without self-crossings (QGIS: Vector ▸ Geometry Tools ▸ Fix Geometries), or "
                        "re-run with --fix to repair it with make_valid")
    allowed = set(s.geometry)
    for p in np.flatnonzero(has):
        if p in col.errors:
            continue
        g = geom[p]
        t = g.geom_type
        if t in allowed:
            continue
        fixed = _convert_type(g, allowed) if fix else None
        if fixed is not None:
            geom[p] = fixed
            col.add(p, "geometry_type", "warning", None,
                    f"a {t} in a layer of {'/'.join(s.geometry)}; converted to {fixed.geom_type} (--fix)",
                    "check the converted location")
        else:
            hint = " or re-run with --fix (single-part multis are unpacked, areas become points)" if not fix else ""
            col.add(p, "geometry_type", "error", None, f"a {t}, but layer {s.kind} holds {'/'.join(s.geometry)}",
                    f"import this row into the right layer{hint}")
    return geom, crs


def _make_valid(g: shapely.Geometry, allowed: Sequence[str]) -> shapely.Geometry:
    fixed = shapely.make_valid(g)
    if fixed.geom_type == "GeometryCollection":
        dim = shapely.get_dimensions(g)
        parts = [p for p in shapely.get_parts(fixed) if shapely.get_dimensions(p) == dim]
        fixed = shapely.union_all(parts) if parts else fixed
    return fixed


def _convert_type(g: shapely.Geometry, allowed: set[str]) -> shapely.Geometry | None:
    t = g.geom_type
    if t.startswith("Multi") and t[5:] in allowed and shapely.get_num_geometries(g) == 1:
        return shapely.get_geometry(g, 0)
    if not t.startswith("Multi") and f"Multi{t}" in allowed:
        return shapely.multipolygons([g]) if t == "Polygon" else (
            shapely.multilinestrings([g]) if t == "LineString" else shapely.multipoints([g]))
    if "Point" in allowed and t in ("Polygon", "MultiPolygon"):
        return g.representative_point()
    return None


def _metric_crs(existing: gpd.GeoDataFrame | None, boundary: Any, crs: Any, geoms: np.ndarray) -> CRS:
    for f in (existing, boundary):
        if f is not None and f.crs is not None and CRS(f.crs).is_projected:
            return CRS(f.crs)
    if crs is not None and CRS(crs).is_projected:
        return CRS(crs)
    if len(geoms):
        pts = shapely.centroid(np.asarray(gpd.GeoSeries(geoms, crs=crs or 4326).to_crs(4326).array))
        return crs_for_lonlat(shapely.get_x(pts), shapely.get_y(pts))
    return project_crs(117.0)


def _swapped_fits(geoms: np.ndarray, crs: Any, metric_crs: CRS, fits: Callable[[np.ndarray], np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which degree geometries would fit (``fits`` on their metric form) with x and y exchanged.

    Returns the mask, the swapped geometries and their metric form.
    """
    swapped = _swap_xy(geoms)
    b = np.asarray(shapely.bounds(swapped), dtype="float64").reshape(-1, 4)
    ok = (np.abs(b[:, [1, 3]]) <= 90).all(axis=1) & (np.abs(b[:, [0, 2]]) <= 180).all(axis=1)
    metric = np.full(len(geoms), None, dtype=object)
    mask = np.zeros(len(geoms), dtype=bool)
    if ok.any():
        metric[ok] = np.asarray(gpd.GeoSeries(swapped[ok], crs=crs or 4326).to_crs(metric_crs).array)
        mask[ok] = fits(metric[ok])
    return mask, swapped, metric


def _report_swapped(p: int, where: str, geom: np.ndarray, metric: np.ndarray, swapped: Any, swapped_metric: Any,
                    fix: bool, col: _Collector) -> None:
    x, y = shapely.get_x(shapely.centroid(geom[p])), shapely.get_y(shapely.centroid(geom[p]))
    what = (f"latitude and longitude look swapped: as given ({x:.6g}, {y:.6g}) the location is {where}, "
            f"with the two exchanged it lies where the rest of the county is")
    if fix:
        geom[p], metric[p] = swapped, swapped_metric
        col.add(p, "swapped", "warning", None, what + "; swapped back (--fix)",
                "check the source: the two columns are probably labelled the wrong way round")
    else:
        col.add(p, "swapped", "error", None, what,
                "exchange the two values (or the column headers), or re-run with --fix to swap them")


def _check_boundary(boundary: Any, geom: np.ndarray, metric: np.ndarray, good: np.ndarray, crs: Any,
                    metric_crs: CRS, buffer_m: float, col: _Collector, *, fix: bool, swappable: bool,
                    what: str) -> None:
    """Features not touching the county (``boundary`` grown by ``buffer_m``): ``outside``, or
    ``swapped`` when the exchanged lon/lat pair touches it."""
    area = gpd.GeoSeries(boundary.geometry if hasattr(boundary, "geometry") else boundary).to_crs(metric_crs)
    region = area.union_all()
    zone = region.buffer(buffer_m) if buffer_m > 0 else region
    shapely.prepare(zone)
    pos = np.flatnonzero(good)
    if not len(pos):
        return
    away = pos[~shapely.intersects(zone, metric[pos])]
    if not len(away):
        return
    swap = np.zeros(len(away), dtype=bool)
    if swappable:
        swap, sw, swm = _swapped_fits(geom[away], crs, metric_crs, lambda m: shapely.intersects(zone, m))
    dist = shapely.distance(region, metric[away])
    leak = f" (by more than {buffer_m:g} m)" if buffer_m > 0 else ""
    for i, p in enumerate(away):
        d = float(dist[i])
        where = f"{d:,.0f} m outside the {what}" if np.isfinite(d) else f"outside the {what}"
        if swap[i]:
            _report_swapped(int(p), where, geom, metric, sw[i], swm[i], fix, col)
            continue
        col.add(p, "outside", "error", None, f"the location is {where}{leak}",
                "check the coordinates (a wrong --coords or a typo in a digit moves points far away); if the "
                f"feature really lies outside, extend the {'boundary' if 'boundary' in what else 'grids'} "
                "layer first")


def _centre_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of each geometry's centroid (points read directly: GEOS centroids cost at 10⁶ points)."""
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)  # NaN for anything but a point
    other = shapely.get_type_id(geoms) != 0
    if other.any():
        c = shapely.centroid(geoms[other])
        x[other], y[other] = shapely.get_x(c), shapely.get_y(c)
    return x, y


def _check_spread(geom: np.ndarray, metric: np.ndarray, good: np.ndarray, crs: Any, metric_crs: CRS,
                  vs: Any, col: _Collector, notes: list[str], *, fix: bool, swappable: bool) -> None:
    """Without a boundary: far-off features from the layer's own spread, in metres in ``metric_crs``.

    Distances ``d`` of each feature's centroid to the median location; a feature beyond
    ``vs.far_m`` is rejected (``far``), one beyond ``max(vs.spread_min_m, median(d) + vs.spread_k ×
    1.4826 × MAD(d))`` is a warning (``outlier``). Linear in the number of features.
    """
    pos = np.flatnonzero(good)
    if len(pos) < vs.spread_min_count:
        notes.append(f"far-off check skipped: no county boundary or grids layer, and fewer than "
                     f"{vs.spread_min_count} features to judge the layer's spread (import the boundary first)")
        return
    x, y = _centre_xy(metric[pos])
    fin = np.isfinite(x) & np.isfinite(y)
    mx, my = float(np.median(x[fin])), float(np.median(y[fin]))
    d = np.where(fin, np.hypot(x - mx, y - my), np.inf)
    med = float(np.median(d[fin]))
    mad = float(np.median(np.abs(d[fin] - med)))
    limit = max(vs.spread_min_m, med + vs.spread_k * 1.4826 * mad)
    far, odd = d > vs.far_m, (d > limit) & (d <= vs.far_m)
    notes.append(f"no county boundary or grids layer: far-off features found from the layer's own spread (half lie "
                 f"within {med / 1000:.1f} km of the median location; outliers beyond {limit / 1000:.1f} km are "
                 f"warned, beyond {vs.far_m / 1000:g} km rejected); import the county boundary "
                 "(sanigrid import boundary FILE) for an exact check")
    flagged = np.flatnonzero(far | odd)
    if not len(flagged):
        return
    swap = np.zeros(len(flagged), dtype=bool)
    if swappable:
        swap, sw, swm = _swapped_fits(geom[pos[flagged]], crs, metric_crs,
                                      lambda m: np.hypot(_centre_xy(m)[0] - mx, _centre_xy(m)[1] - my) <= limit)
    for i, k in enumerate(flagged):
        p = int(pos[k])
        km = f"{d[k] / 1000:,.1f} km" if np.isfinite(d[k]) else "very far"
        if swap[i]:
            _report_swapped(p, f"{km} from the rest of the layer", geom, metric, sw[i], swm[i], fix, col)
        elif far[k]:
            col.add(p, "far", "error", None,
                    f"the location is {km} from the median location of the layer's {len(pos)} features, farther "
                    f"than validation.far_m = {vs.far_m / 1000:g} km (no county is that wide)",
                    "check the coordinates (a typo in a digit, a lost minus sign, a wrong --coords); import the "
                    "county boundary first for an exact check")
        else:
            col.add(p, "outlier", "warning", None,
                    f"the location is {km} from the median location of the layer, where half the features lie "
                    f"within {med / 1000:.1f} km: a robust outlier (beyond {limit / 1000:.1f} km)",
                    "check the location; it is imported as it is")


# ------------------------------------------------------------------ attributes


def _check_fields(s: LayerSpec, frame: pd.DataFrame, settings: Settings, col: _Collector,
                  notes: list[str] | None) -> dict[str, pd.Series]:
    n = len(frame)
    values: dict[str, pd.Series] = {}
    for f in s.fields:
        if f.name not in frame.columns:
            if f.required:
                cols = [c for c in col.columns.values()]
                for p in range(n):
                    col.add(p, "missing", "error", f, "required, but the file has no column for it",
                            f"add a column named {f.zh} (or {f.name}), or map an existing one with "
                            f"--map 列名={f.name}" + (f"; mapped columns: {', '.join(cols)}" if cols else ""))
            values[f.name] = pd.Series([None] * n, index=frame.index, dtype="object")
            continue
        allowed = _allowed(f, settings)
        parsed, bad = _parse_column(frame[f.name], f, settings, notes, col)
        raw = frame[f.name].to_numpy(dtype=object)
        for p in np.flatnonzero(bad).tolist():
            col.add(p, "unparseable", "error", f, f"cannot read '{_short(raw[p])}' as {_EXPECT[f.dtype]}",
                    f"write {_EXPECT[f.dtype]}, or leave the cell empty")
        empty = parsed.isna().to_numpy() & ~bad
        if f.required:
            for p in np.flatnonzero(empty).tolist():
                col.add(p, "missing", "error", f, "required, but empty", f"fill in {f.zh}")
        if allowed is not None:
            outside = ~empty & ~bad & ~parsed.isin(allowed).to_numpy()
            if outside.any():
                shown_values = parsed.to_numpy(dtype=object)
                unknown: dict[Any, list[int]] = {}
                for p in np.flatnonzero(outside).tolist():
                    unknown.setdefault(shown_values[p], []).append(p)
                _report_unknown(f, unknown, allowed, col)
            bad = bad | outside
        if bad.any():
            parsed = parsed.mask(bad)
        values[f.name] = parsed
    return values


def _report_unknown(f: Field, unknown: dict[Any, list[int]], allowed: list[str], col: _Collector) -> None:
    """One message for a field's values outside its allowed list: the distinct values with their counts."""
    ranked = sorted(unknown.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
    listed = ", ".join(f"'{_short(v)}' ×{len(ps)}" for v, ps in ranked[:30])
    more = f" and {len(ranked) - 30} more (see the issues file)" if len(ranked) > 30 else ""
    shown = ", ".join(allowed[:20]) + (" …" if len(allowed) > 20 else "")
    if f.allowed_from == "problem_categories":
        where = (f"or add them to the list in sanigrid.toml ({f.allowed_from}; all at once with --add-categories), "
                 f"or map them with --values {f.name}:原值=新值,…")
    elif f.allowed_from == "component_kinds":
        where = (f"or add them to [components] kinds in sanigrid.toml, or map them with --values "
                 f"{f.name}:原值=新值,…")
    else:
        where = f"or map them with --values {f.name}:原值=新值,… (e.g. --values {f.name}:{_short(ranked[0][0], 20)}"\
                f"={allowed[0]})"
    positions = [p for _, ps in ranked for p in ps]
    reasons = [f"'{_short(v)}' is not an allowed value" for v, ps in ranked for _ in ps]
    col.add_many(sorted(positions), "not_allowed", f,
                 f"{len(ranked)} value(s) not allowed, in {len(positions)} row(s): {listed}{more}",
                 f"use one of: {shown}, {where}", [r for _, r in sorted(zip(positions, reasons, strict=True))])


_PLAIN_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$"


def _parse_column(raw: pd.Series, f: Field, settings: Settings, notes: list[str] | None,
                  col: _Collector) -> tuple[pd.Series, np.ndarray]:
    """One column read vectorised: the typed values (on ``raw``'s index) and which cells cannot be read.

    Dates go through :func:`layers.dates.parse_date_column` (the formats used are noted); other
    types are parsed once per distinct value (plain numbers vectorised), so a column of 10⁶ cells
    costs one pass and a parser call per distinct odd spelling.
    """
    index = raw.index
    if f.dtype in ("date", "datetime"):
        dc = parse_date_column(raw, time_zone=settings.project.time_zone)
        bad = np.zeros(len(raw), dtype=bool)
        bad[dc.bad] = True
        if notes is not None and dc.formats:
            notes.append(f"{col.source}: {col.field_desc(f)} read as {dc.describe()}")
        return dc.values.astype("datetime64[ms]"), bad
    codes, uniq = pd.factorize(raw.astype("object"), use_na_sentinel=True)
    m = len(uniq)
    out = np.full(m, None, dtype=object)
    bad_u = np.zeros(m, dtype=bool)
    todo = np.arange(m)
    if f.dtype in ("int", "float") and m:
        u = pd.Series(uniq, dtype="object")
        texts = pd.api.types.infer_dtype(uniq, skipna=True) == "string"
        is_text = np.ones(m, dtype=bool) if texts else u.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        plain = pd.Series(is_text) & u.astype("str").str.match(_PLAIN_NUMBER)
        num = pd.to_numeric(u.where(plain), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        fast = plain.to_numpy() & np.isfinite(num)
        if f.dtype == "int":
            fast &= num == np.floor(num)
            out[fast] = num[fast].astype("int64")
        else:
            out[fast] = num[fast]
        todo = np.flatnonzero(~fast)
    parse = _PARSERS[f.dtype]
    for k in todo:
        try:
            out[k] = parse(uniq[k])
        except (ValueError, TypeError, OverflowError):
            bad_u[k] = True
    known = codes >= 0
    vals = np.full(len(raw), None, dtype=object)
    vals[known] = out[codes[known]]
    bad = np.zeros(len(raw), dtype=bool)
    bad[known] = bad_u[codes[known]]
    return _typed(vals, f.dtype, index), bad


def _allowed(f: Field, settings: Settings) -> list[str] | None:
    if f.allowed is not None:
        return list(f.allowed)
    if f.allowed_from:
        return list(settings.allowed(f.allowed_from))
    return None


def _typed(values: np.ndarray, dtype: str, index: pd.Index) -> pd.Series:
    if dtype == "int":
        return pd.Series(values, index=index, dtype="object").astype("Int64")
    if dtype == "float":
        return pd.Series(values, index=index, dtype="object").astype("float64")
    if dtype == "bool":
        return pd.Series(values, index=index, dtype="object").astype("boolean")
    return pd.Series(values, index=index, dtype="object")


def _check_dates(s: LayerSpec, values: dict[str, pd.Series], tolerance_s: float, col: _Collector) -> None:
    if "reported_at" not in values or "closed_at" not in values:
        return
    rep, clo = pd.to_datetime(values["reported_at"]), pd.to_datetime(values["closed_at"])
    gap_s = ((rep - clo).dt.total_seconds()).to_numpy(dtype="float64", na_value=np.nan)
    f = s.field("closed_at")
    with np.errstate(invalid="ignore"):
        early = gap_s > 0
    rep_t, clo_t = rep.to_numpy(dtype="datetime64[s]"), clo.to_numpy(dtype="datetime64[s]")
    for p in np.flatnonzero(early).tolist():
        if p in col.errors:
            continue
        g = float(gap_s[p])
        human = "" if g < 60 else f" = {g / 60:,.1f} min" if g < 3600 else f" = {g / 3600:,.1f} h" if g < 86_400 \
            else f" = {g / 86_400:,.1f} days"
        by = f"{g:,.0f} s{human}"
        what = (f"closed {str(clo_t[p]).replace('T', ' ')}, {by} before it was reported "
                f"({str(rep_t[p]).replace('T', ' ')})")
        if g <= tolerance_s:
            col.add(p, "date_order", "warning", f, what + f"; within validation.date_order_tolerance_s = "
                    f"{tolerance_s:g} s, so accepted", "nothing, unless the clocks of the two systems should agree")
        else:
            hint = (f"; if the two systems' clocks differ by seconds, set [validation] date_order_tolerance_s = "
                    f"{math.ceil(g)} in sanigrid.toml" if g < 600 else "")
            col.add(p, "date_order", "error", f, what,
                    f"correct one of the two dates (a closing date cannot precede the report){hint}")


def _norm_value(v: Any) -> str:
    if _blank(v):
        return ""
    if isinstance(v, pd.Timestamp | datetime):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, float | np.floating):
        return repr(round(float(v), 6))
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    return str(v)


def _check_keys(s: LayerSpec, values: dict[str, pd.Series], existing: gpd.GeoDataFrame | None,
                col: _Collector) -> None:
    if not s.key or s.key not in values:
        return
    f = s.field(s.key)
    keys = _norm_column(values[s.key], len(values[s.key]))
    stored: set[str] = set()
    if existing is not None and s.key in existing.columns:
        stored = set(_norm_column(existing[s.key], len(existing)).tolist()) - {""}
    in_store, repeats, first = _first_seen(keys, keys == "", stored, col)
    for p in in_store:
        col.add(p, "duplicate_key", "error", f, f"{s.key} {keys[p]} is already in the store",
                "give it a new number, or re-import the whole layer with --replace")
    for p, q in zip(repeats, first, strict=True):
        col.add(p, "duplicate_key", "error", f, f"{s.key} {keys[p]} repeats {col.row_word} {col.rows[q]}",
                "give each record its own number")


def _first_seen(keys: np.ndarray, skip: np.ndarray, stored: set[Any] | np.ndarray,
                col: _Collector) -> tuple[list[int], list[int], list[int]]:
    """Rows whose key is in ``stored``; rows repeating an earlier row's key, and that earlier row.

    Rows already rejected and rows with ``skip`` are passed over (they neither repeat nor are
    repeated). Vectorised: a sort, not a dictionary filled row by row.
    """
    ok = ~np.asarray(skip, dtype=bool)
    if col.errors:
        ok[list(col.errors)] = False
    pos = np.flatnonzero(ok)
    k = keys[pos]
    hit = np.isin(k, np.asarray(list(stored) if isinstance(stored, set) else stored, dtype=k.dtype)) \
        if len(stored) else np.zeros(len(pos), dtype=bool)
    rest, kr = pos[~hit], k[~hit]
    codes, _ = pd.factorize(pd.Series(kr, dtype=kr.dtype if kr.dtype != object else "object"))
    _, first_of = np.unique(codes, return_index=True)
    first = rest[first_of[codes]] if len(rest) else rest
    rep = first != rest
    return pos[hit].tolist(), rest[rep].tolist(), first[rep].tolist()


def _norm_column(col: pd.Series | None, m: int) -> np.ndarray:
    """Values as comparable strings, the same way for a parsed file column and a stored one (vectorised)."""
    if col is None:
        return np.full(m, "", dtype=object)
    col = pd.Series(col).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(col):
        arr = col.dt.tz_localize(None) if getattr(col.dt, "tz", None) is not None else col
        text = np.datetime_as_string(arr.to_numpy(dtype="datetime64[s]"), unit="s").astype(object)
        text[arr.isna().to_numpy()] = ""
        return text
    if pd.api.types.is_bool_dtype(col):
        out = col.astype("object").map({True: "True", False: "False"})
    elif pd.api.types.is_float_dtype(col):
        x = col.round(6).to_numpy(dtype="float64", na_value=np.nan) + 0.0
        out = pd.Series([repr(v) for v in x.tolist()], dtype="object").where(~np.isnan(x), "")
    elif pd.api.types.is_integer_dtype(col):
        ints = col.astype("Int64")
        out = pd.Series(ints.to_numpy(dtype="int64", na_value=0).astype(str).astype(object))
        out[ints.isna().to_numpy()] = ""
    elif pd.api.types.infer_dtype(col.to_numpy(dtype=object), skipna=True) in ("string", "empty"):
        out = col.astype("object")
    else:
        out = col.astype("object").map(_norm_value)
    return out.astype("object").where(out.notna(), "").to_numpy()


def _check_duplicates(s: LayerSpec, values: dict[str, pd.Series], metric: np.ndarray,
                      existing: gpd.GeoDataFrame | None, metric_crs: CRS, col: _Collector) -> None:
    n = len(metric)
    if n == 0:
        return
    present = [name for name, v in values.items() if v.notna().any()]

    def keys_of(geoms: np.ndarray, frame: Any, m: int) -> tuple[np.ndarray, np.ndarray]:
        """A 64-bit hash of the snapped geometry and every value (equal rows, equal hashes), and which
        rows have no geometry."""
        ok = ~shapely.is_missing(geoms)
        out = np.zeros(m, dtype="uint64")
        if not ok.any():
            return out, ~ok
        snapped = shapely.to_wkb(_canonical(geoms[ok]), hex=True)
        h = pd.util.hash_array(np.asarray(snapped, dtype=object))
        for c in present:
            part = pd.util.hash_array(_norm_column(frame[c] if c in frame else None, m)[ok])
            h = (h * np.uint64(0x100000001B3)) ^ part
        out[ok] = h
        return out, ~ok

    with np.errstate(over="ignore"):
        mine, skip = keys_of(metric, values, n)
        stored = np.zeros(0, dtype="uint64")
        if existing is not None and len(existing):
            eg = np.asarray(existing.geometry.to_crs(metric_crs).array, dtype=object)
            theirs, none = keys_of(eg, existing, len(existing))
            stored = theirs[~none]
    in_store, repeats, first = _first_seen(mine, skip, stored, col)
    for p in in_store:
        col.add(p, "duplicate", "error", None, "an exact copy of a feature already in the store",
                "nothing to do if the file was imported before; use --replace to reload the whole layer")
    for p, q in zip(repeats, first, strict=True):
        col.add(p, "duplicate", "error", None,
                f"an exact copy (same location and values) of {col.row_word} {col.rows[q]}",
                "delete the repeated row")


def _canonical(geoms: np.ndarray) -> np.ndarray:
    """Geometries in one spelling, so that the same feature hashes the same however it was stored: single-part
    multis unpacked (the store keeps streets as MultiLineString), snapped to 1 cm, then normalised (a line
    drawn the other way round, rings started elsewhere, parts in another order). Vectorised."""
    g = shapely.set_precision(np.asarray(geoms, dtype=object), 0.01, mode="pointwise")
    kind = shapely.get_type_id(g)
    one = np.isin(kind, (4, 5, 6)) & (shapely.get_num_geometries(g) == 1)
    if one.any():
        g[one] = shapely.get_geometry(g[one], 0)
    shaped = kind != 0  # points have one spelling already: the 10⁵-10⁶-row layers skip the normalising
    if shaped.any():
        g[shaped] = shapely.normalize(g[shaped])
    return g


#: piles named in the notes (the console), largest first
PILES_SHOWN = 5


def _check_piles(metric: np.ndarray, metric_crs: CRS, min_count: int, tol_m: float, col: _Collector,
                 notes: list[str]) -> None:
    pos = np.flatnonzero(shapely.get_type_id(metric) == 0)  # 0 = Point; None gives -1
    if len(pos) < min_count:
        return
    xy = np.column_stack([shapely.get_x(metric[pos]), shapely.get_y(metric[pos])])
    piles = find_piles(xy, min_count=min_count, tolerance_m=tol_m)
    if not len(piles):
        return
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(metric_crs, 4326, always_xy=True).transform(piles.centre[:, 0],
                                                                                 piles.centre[:, 1])
    where = [f"{x:.6f}, {y:.6f} (lon, lat)" for x, y in zip(np.atleast_1d(lon), np.atleast_1d(lat), strict=True)]
    order = np.argsort(piles.label, kind="stable")
    members_of = np.split(pos[order], np.searchsorted(piles.label[order], np.arange(len(piles) + 1)))[1:-1]
    summary = []
    for k, members in enumerate(members_of):
        shown = ", ".join(str(col.rows[p]) for p in members[:8]) + (" …" if len(members) > 8 else "")
        if k < PILES_SHOWN:
            summary.append(f"{len(members):,} at {where[k]} ({col.row_word}s {shown})")
        what = (f"one of {len(members):,} records within {tol_m:g} m of {where[k]} ({col.row_word}s {shown}): "
                "probably a default location (an office address or a map's centre) rather than the real one")
        for p in members:
            col.add(p, "pile", "warning", None, what,
                    "check where these really are and correct the coordinates; they are imported as they are, "
                    "and left out of hotspots and rebounds")
    more = f"; and {len(piles) - PILES_SHOWN} smaller" if len(piles) > PILES_SHOWN else ""
    notes.append(f"{col.source}: {len(piles)} pile(s) of {min_count}+ records on one point (default geocodes?), "
                 f"{int(piles.count.sum()):,} records in all: " + "; ".join(summary) + more)


def _short(v: Any, n: int = 40) -> str:
    t = str(v)
    return t if len(t) <= n else t[: n - 1] + "…"
