"""Column mapping: which column of a user's file is which catalogue field.

A column is matched, in this order, by

1. an explicit mapping (``--map 厕所名称=name,等级=toilet_class`` on the command line, or the
   project settings ``[imports.columns.<kind>]``), file column → field name;
2. the field's own name (``name``), its Chinese name (``名称``) or one of its ``aliases`` (Chinese
   and the common English export headers such as ``Created Date``, ``Complaint Type``);

An empty target (``--map Source=``) leaves a column out, so that it is not matched by its name.

comparing names after Unicode NFKC normalisation (full-width letters and brackets become ASCII),
Traditional → Simplified characters (經度 → 经度), case folding, and dropping spaces, underscores and a
trailing bracketed note such as ``(GCJ02)`` or ``（个）``.
Coordinate columns (经度/纬度, lon/lat/lng, x/y …) are recognised the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sanigrid.layers._errors import ImportError_
from sanigrid.layers.catalogue import LayerSpec

LON_NAMES = ("经度", "东经", "lon", "lng", "long", "longitude", "x", "x坐标", "横坐标", "东坐标",
             "point_x", "gps经度", "坐标x")
LAT_NAMES = ("纬度", "北纬", "lat", "latitude", "y", "y坐标", "纵坐标", "北坐标", "point_y", "gps纬度", "坐标y")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "几何", "空间信息")

_NOTE = re.compile(r"[(\[{（【].*?[)\]}）】]\s*$")

#: Traditional → Simplified for the characters of the column names sanigrid knows (經度 緯度 名稱 地址
#: 類別 …, as in Taiwanese, Hong Kong and Macau exports). Header names only: cell values are never changed.
_TRADITIONAL = str.maketrans(
    "經緯稱類別狀態時間編號網區來問題報結電話單廁數標準攤處辦責長戶寬燈業場轉點規礙開牽頭聯繫鄉鎮會發現銷內東橫縱幾資訊"
    "說備註種級設違積廣貼亂擺攤佔車輛環衛圖層淨髒號碼詳細座標經緯",
    "经纬称类别状态时间编号网区来问题报结电话单厕数标准摊处办责长户宽灯业场转点规碍开牵头联系乡镇会发现销内东横纵几资讯"
    "说备注种级设违积广贴乱摆摊占车辆环卫图层净脏号码详细坐标经纬",
)


def norm(name: object) -> str:
    """Normalise a column name for matching (NFKC, Traditional → Simplified characters, lower case, no
    spaces, underscores or trailing note: ``經度`` → ``经度``, ``Created_Date`` → ``createddate``)."""
    s = unicodedata.normalize("NFKC", str(name)).strip().casefold().translate(_TRADITIONAL)
    s = _NOTE.sub("", s).strip()
    return re.sub(r"[\s_]+", "", s)


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
        m = re.fullmatch(r"(.+?)\s*[=:：]\s*(.*)", part)
        if not m:
            raise ImportError_(
                f"column mapping '{part}' is not of the form 文件列名=字段名 (file column=field), "
                "e.g. --map 厕所名称=name,等级=toilet_class"
            )
        out[m.group(1).strip()] = m.group(2).strip()
    return out


def parse_values(texts: str | Iterable[str] | None) -> dict[str, dict[str, str]]:
    """Parse ``"source:Constituent Call=群众举报,Phone=12345; status:Closed=结案"`` into
    ``{"source": {"Constituent Call": "群众举报", "Phone": "12345"}, "status": {"Closed": "结案"}}``.

    One field per ``;`` group (or per ``--values`` option); pairs separated by ``,`` or ``，``.
    """
    out: dict[str, dict[str, str]] = {}
    if not texts:
        return out
    for text in [texts] if isinstance(texts, str) else texts:
        for group in re.split(r"[;；]", text):
            group = group.strip()
            if not group:
                continue
            m = re.fullmatch(r"([^:：=]+?)\s*[:：]\s*(.+)", group, flags=re.S)
            if not m:
                raise ImportError_(
                    f"value mapping '{group}' is not of the form 字段:原值=新值,… (FIELD:FROM=TO,…), "
                    "e.g. --values source:Constituent Call=群众举报,Phone=12345")
            pairs = out.setdefault(m.group(1).strip(), {})
            for part in re.split(r"[,，]", m.group(2)):
                if not part.strip():
                    continue
                kv = re.fullmatch(r"(.+?)\s*=\s*(.*)", part.strip())
                if not kv or not kv.group(1).strip():
                    raise ImportError_(f"value mapping '{part.strip()}' (field {m.group(1).strip()}) is not "
                                       "of the form 原值=新值 (FROM=TO), e.g. Constituent Call=群众举报")
                pairs[kv.group(1).strip()] = kv.group(2).strip()
    return out


def value_key(v: object) -> str:
    """How a cell value is compared with the left side of a value mapping (NFKC, case folded, stripped)."""
    return unicodedata.normalize("NFKC", str(v)).strip().casefold()


@dataclass
class ColumnMatch:
    """The result of matching a file's columns against a layer spec."""

    fields: dict[str, str]  # file column → catalogue field
    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None
    unused: list[str] = field(default_factory=list)  # file columns not imported
    ignored: list[str] = field(default_factory=list)  # columns left out on purpose (``--map Source=``)

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
    ignored: list[str] = []
    for col, target in mapping.items():
        real = col if col in cols else by_norm.get(norm(col))
        if real is None:
            if not target.strip():
                continue  # ignoring a column the file does not have (a saved mapping) is harmless
            raise ImportError_(
                f"{source}: the column mapping names column '{col}', which the file does not have; "
                f"its columns are: {', '.join(cols)}"
            )
        t = special.get(norm(target), target)
        if not t.strip():  # `--map Source=`: the column is not imported, nor matched by its name
            ignored.append(real)
            by_norm = {k: v for k, v in by_norm.items() if v != real}
        elif t == "lon":
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
    used: set[str | None] = {*fields, lon, lat, wkt, *ignored}
    if lon is None:
        lon = _first(cols, LON_NAMES, used)
    if lat is None:
        lat = _first(cols, LAT_NAMES, used)
    if wkt is None:
        wkt = _first(cols, WKT_NAMES, used)
    used = {*fields, lon, lat, wkt, *ignored}
    unused = [c for c in cols if c not in used]
    return ColumnMatch(fields=fields, lon=lon, lat=lat, wkt=wkt, unused=unused, ignored=ignored)


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


def resolve_field(name: str, layer: LayerSpec, match: ColumnMatch | None = None, *, source: str = "the file") -> str:
    """The catalogue field a ``--values`` mapping names: the field itself, its Chinese name or alias, or the
    file column mapped to it."""
    if name in layer.field_names:
        return name
    for f in layer.fields:
        if norm(name) in {norm(c) for c in (f.name, f.zh, *f.aliases)}:
            return f.name
    if match is not None:
        for col, f_name in match.fields.items():
            if norm(col) == norm(name):
                return f_name
    raise ImportError_(f"{source}: the value mapping names field '{name}', which layer '{layer.kind}' does not "
                       f"have; its fields are: {', '.join(layer.field_names)}")


def map_values(frame: Any, values: Mapping[str, Mapping[str, str]], layer: LayerSpec, *,
               match: ColumnMatch | None = None, source: str = "the file") -> tuple[Any, list[str]]:
    """Return a copy of ``frame`` (catalogue column names) with cell values replaced as ``values`` says
    (field → {file value: new value}; compared after NFKC, case folding and stripping; an empty new value
    empties the cell), and notes saying how many cells each field had replaced. Vectorised (one
    dictionary lookup per distinct value)."""
    out = frame.copy()
    notes: list[str] = []
    for name, table in values.items():
        f_name = resolve_field(name, layer, match, source=source)
        if f_name not in out.columns or not table:
            continue
        lookup = {value_key(k): (v if str(v).strip() else None) for k, v in table.items()}
        codes, distinct = pd.factorize(out[f_name].astype("object"), use_na_sentinel=True)
        keys = [value_key(v) for v in distinct]  # one per distinct value, not per cell
        known = np.array([k in lookup for k in keys] + [False], dtype=bool)  # the last entry: NA (code -1)
        hit = known[codes]
        if hit.any():
            cells = out[f_name].to_numpy(dtype=object).copy()
            new = np.array([lookup.get(k) for k in keys], dtype=object)
            cells[hit] = new[codes[hit]]
            out[f_name] = pd.Series(cells, index=out.index, dtype="object")
            notes.append(f"{source}: {int(hit.sum())} value(s) of {f_name} mapped by --values/[imports.values] "
                         f"({len(table)} rule(s))")
    return out, notes
