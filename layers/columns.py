"""Column mapping: which column of a user's file is which catalogue field.

A column is matched, in this order, by

1. an explicit mapping (``--map 厕所名称=name,等级=toilet_class`` on the command line, or the
   project settings ``[imports.columns.<kind>]``), file column → field name;
2. the field's own name (``name``), its Chinese name (``名称``) or one of its ``aliases``;

comparing names after Unicode NFKC normalisation (full-width letters and brackets become ASCII),
case folding, and dropping spaces and a trailing bracketed note such as ``(GCJ02)`` or ``（个）``.
Coordinate columns (经度/纬度, lon/lat/lng, x/y …) are recognised the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sanigrid.layers._errors import ImportError_
from sanigrid.layers.catalogue import LayerSpec

LON_NAMES = ("经度", "东经", "lon", "lng", "long", "longitude", "x", "x坐标", "横坐标", "东坐标",
             "point_x", "gps经度", "坐标x")
LAT_NAMES = ("纬度", "北纬", "lat", "latitude", "y", "y坐标", "纵坐标", "北坐标", "point_y", "gps纬度", "坐标y")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "几何", "空间信息")

_NOTE = re.compile(r"[(\[{（【].*?[)\]}）】]\s*$")


def norm(name: object) -> str:
    """Normalise a column name for matching (NFKC, lower case, no spaces or trailing note)."""
    s = unicodedata.normalize("NFKC", str(name)).strip().casefold()
    s = _NOTE.sub("", s).strip()
    return re.sub(r"\s+", "", s)


def bracket_note(name: object) -> str:
    """The bracketed note at the end of a column name, e.g. ``经度(GCJ02)`` → ``gcj02``."""
    m = _NOTE.search(unicodedata.normalize("NFKC", str(name)).strip())
    return m.group(0).strip("()[]{}（）【】 ").casefold() if m else ""


def parse_mapping(text: str | None) -> dict[str, str]:
    """Parse ``"厕所名称=name, 等级=toilet_class"`` into ``{"厕所名称": "name", ...}``.

    Separators may be ``,`` ``;`` ``，`` or ``；``; ``:`` works like ``=``.
    """
    out: dict[str, str] = {}
    if not text:
        return out
    for part in re.split(r"[,;，；]", text):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(.+?)\s*[=:：]\s*(.+)", part)
        if not m:
            raise ImportError_(
                f"column mapping '{part}' is not of the form 文件列名=字段名 (file column=field), "
                "e.g. --map 厕所名称=name,等级=toilet_class"
            )
        out[m.group(1).strip()] = m.group(2).strip()
    return out


@dataclass
class ColumnMatch:
    """The result of matching a file's columns against a layer spec."""

    fields: dict[str, str]  # file column → catalogue field
    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None
    unused: list[str] = field(default_factory=list)  # file columns not imported

    @property
    def by_field(self) -> dict[str, str]:
        return {f: c for c, f in self.fields.items()}


def match_columns(
    columns: Iterable[object],
    layer: LayerSpec,
    *,
    mapping: Mapping[str, str] | None = None,
    source: str = "the file",
) -> ColumnMatch:
    """Match file columns to the fields of ``layer`` (see the module docstring for the order).

    An explicit mapping naming a column the file lacks, or a field the layer lacks, is an error
    (a typo should not pass silently). A field claimed by two columns keeps the first and the
    other column is reported as unused.
    """
    cols = [str(c) for c in columns]
    mapping = dict(mapping or {})
    known = set(layer.field_names)
    by_norm: dict[str, str] = {}
    for c in cols:
        by_norm.setdefault(norm(c), c)
    fields: dict[str, str] = {}
    taken: set[str] = set()
    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None
    special = {"经度": "lon", "lon": "lon", "纬度": "lat", "lat": "lat", "wkt": "wkt"}
    for col, target in mapping.items():
        real = col if col in cols else by_norm.get(norm(col))
        if real is None:
            raise ImportError_(
                f"{source}: the column mapping names column '{col}', which the file does not have; "
                f"its columns are: {', '.join(cols)}"
            )
        t = special.get(norm(target), target)
        if t == "lon":
            lon = real
        elif t == "lat":
            lat = real
        elif t == "wkt":
            wkt = real
        elif t not in known:
            raise ImportError_(
                f"{source}: the column mapping sends '{col}' to '{target}', which is not a field of "
                f"layer '{layer.kind}'; its fields are: {', '.join(layer.field_names)} "
                "(or 经度/纬度/wkt for coordinates)"
            )
        else:
            if t in taken:
                continue
            fields[real] = t
            taken.add(t)
    for f in layer.fields:
        if f.name in taken:
            continue
        for cand in (f.name, f.zh, *f.aliases):
            hit = by_norm.get(norm(cand))
            if hit is not None and hit not in fields and hit not in (lon, lat, wkt):
                fields[hit] = f.name
                taken.add(f.name)
                break
    used: set[str | None] = {*fields, lon, lat, wkt}
    if lon is None:
        lon = _first(cols, LON_NAMES, used)
    if lat is None:
        lat = _first(cols, LAT_NAMES, used)
    if wkt is None:
        wkt = _first(cols, WKT_NAMES, used)
    used = {*fields, lon, lat, wkt}
    unused = [c for c in cols if c not in used]
    return ColumnMatch(fields=fields, lon=lon, lat=lat, wkt=wkt, unused=unused)


def _first(cols: list[str], names: Iterable[str], used: set[str | None]) -> str | None:
    """The column matching the earliest of ``names`` (经度 before x when a file has both)."""
    by_norm: dict[str, str] = {}
    for c in cols:
        if c not in used:
            by_norm.setdefault(norm(c), c)
    for n in names:
        if norm(n) in by_norm:
            return by_norm[norm(n)]
    return None


def header_score(cells: Iterable[object], layer: LayerSpec) -> int:
    """How many cells of a row look like column names of ``layer`` (to find the header row)."""
    names = {norm(n) for f in layer.fields for n in (f.name, f.zh, *f.aliases)}
    names |= {norm(n) for n in (*LON_NAMES, *LAT_NAMES, *WKT_NAMES)}
    return sum(1 for c in cells if c is not None and str(c).strip() and norm(c) in names)
