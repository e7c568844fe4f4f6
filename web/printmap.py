"""Printed maps (PNG or PDF) styled from the layer catalogue: title, north arrow, scale bar, legend,
date and attribution, on A4 or A3 landscape paper.

:func:`draw_map` draws a sheet (a matplotlib figure), :func:`render_map` saves it; :func:`county_print`
makes the county's themed maps (:data:`THEMES`: ranking, coverage of one facility kind, hot spots, back
alleys) for ``/map.pdf`` and ``sanigrid print``. ``sanigrid sample`` prints one map per sample category
and a grid's page its own map (``web.gridpage.print_map``).

Matplotlib runs headless (the Agg canvas, no pyplot, so it is safe in a web worker). Chinese text needs
a CJK font: the first one found among :data:`CJK_FONTS` (Debian/Ubuntu: ``apt-get install
fonts-noto-cjk``); without one a warning is logged and Chinese characters print as boxes.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from sanigrid.layers import projects
from sanigrid.layers.catalogue import CATALOGUE, Style
from sanigrid.layers.project import Project
from sanigrid.web._errors import Invalid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: paper sizes in millimetres, landscape (width, height)
PAPER_MM: dict[str, tuple[float, float]] = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}
#: CJK fonts tried in order (family names as matplotlib's font manager knows them)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Noto Sans CJK JP", "Noto Sans CJK TC",
             "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC",
             "Droid Sans Fallback", "AR PL UMing CN")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed CJK font, or ``None`` (logged once as a warning)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    log.warning("no Chinese (CJK) font found for printed maps; Chinese text will show as boxes. "
                "Install one, e.g. `apt-get install fonts-noto-cjk`, then delete matplotlib's font cache")
    return None


def _style(kind: str) -> tuple[Style, str]:
    s = CATALOGUE.get(kind)
    return (s.style, s.zh) if s is not None else (Style(), kind)


def crs_zh(crs: Any) -> str:
    """The coordinate system in Chinese words, with its EPSG code (the 坐标系 line of a print)."""
    if crs is None:
        return ""
    name, epsg = str(crs.name), crs.to_epsg()
    code = f" (EPSG:{epsg})" if epsg else ""
    m = re.match(r"CGCS2000 / (3|6)-degree Gauss-Kruger (?:zone (\d+)|CM (\d+)E)", name)
    if m:
        where = f"第{m.group(2)}带" if m.group(2) else f"中央经线东经{m.group(3)}°"
        return f"2000国家大地坐标系 (CGCS2000) {m.group(1)}度带高斯-克吕格投影 {where}{code}"
    m = re.match(r"WGS 84 / UTM zone (\d+)([NS])", name)
    if m:
        half = "北半球" if m.group(2) == "N" else "南半球"
        return f"WGS 84 UTM投影 第{m.group(1)}带 ({half}){code}"
    if name in ("WGS 84", "CGCS2000"):
        return f"{name} 经纬度{code}"
    return name + code


def _by_facility(kind: str, frame: gpd.GeoDataFrame, style: Style,
                 zh: str) -> list[tuple[gpd.GeoDataFrame, Style, str]]:
    """A layer holding several facility kinds as one part per kind, each in its kind's colour and named
    by it (覆盖盲区(公厕)); any other layer, or a layer of one kind (the coverage theme of that kind, named by
    it already), as it is: in its own style, so that the gaps do not take the colour of the facilities."""
    if kind not in BY_FACILITY or "facility_kind" not in frame or frame["facility_kind"].nunique() <= 1:
        return [(frame, style, zh)]
    parts = []
    for fk, part in frame.groupby(frame["facility_kind"].astype(str), sort=False):
        own = CATALOGUE.get(fk)
        colour = own.style.color if own is not None else style.color
        parts.append((part, replace(style, color=colour, fill_color=colour if style.fill_color else None, by=None),
                      f"{zh}({own.zh if own is not None else fk})"))
    return parts


def _by_build_status(frame: gpd.GeoDataFrame, style: Style,
                     zh: str) -> list[tuple[gpd.GeoDataFrame, Style, str]]:
    """Facilities with build projects: the built ones in the layer's style, and 规划, 在建 and 停用 each as a
    part of its own in the style of :data:`sanigrid.layers.projects.STATUS_STYLE` (公厕(规划) hollow and
    dashed), as on the web map."""
    if projects.STATUS_FIELD not in frame:
        return [(frame, style, zh)]
    status = frame[projects.STATUS_FIELD].astype("string").fillna(projects.BUILT).to_numpy()
    parts = [(frame[~np.isin(status, list(projects.STATUS_STYLE))], style, zh)]
    for word, opts in projects.STATUS_STYLE.items():
        parts.append((frame[status == word], replace(style, **opts), f"{zh}({word})"))
    return [p for p in parts if len(p[0])]


def _street_names(ax, streets: gpd.GeoDataFrame, *, mm_per_unit: float, scale: float) -> list[str]:
    """Write street names along their streets (each name once per stretch of ≥ 30 mm of paper, labels of
    one name at least 60 mm apart); returns the names written."""
    from matplotlib import patheffects

    if "name" not in streets:
        return []
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    written: list[str] = []
    placed: dict[str, list[tuple[float, float]]] = {}
    named = streets[streets["name"].notna() & (streets["name"].astype(str).str.len() > 0)]
    for name, geom in sorted(zip(named["name"].astype(str), named.geometry, strict=True),
                             key=lambda t: -t[1].length):
        length_mm = geom.length * mm_per_unit
        if length_mm < 30 or geom.geom_type not in ("LineString", "MultiLineString"):
            continue
        line = max(geom.geoms, key=lambda g: g.length) if geom.geom_type == "MultiLineString" else geom
        mid = line.interpolate(0.5, normalized=True)
        if not (x0 <= mid.x <= x1 and y0 <= mid.y <= y1):
            continue
        if any(math.hypot(mid.x - px, mid.y - py) * mm_per_unit < 60 for px, py in placed.get(name, [])):
            continue
        a = line.interpolate(max(0.0, 0.5 - 0.05), normalized=True)
        b = line.interpolate(min(1.0, 0.5 + 0.05), normalized=True)
        angle = math.degrees(math.atan2(b.y - a.y, b.x - a.x))
        if angle > 90:
            angle -= 180
        elif angle < -90:
            angle += 180
        ax.text(mid.x, mid.y, name, rotation=angle, rotation_mode="anchor", ha="center", va="center",
                fontsize=6.5 * scale, color="#222222", zorder=8, clip_on=True,
                path_effects=[patheffects.withStroke(linewidth=2.2, foreground="white")])
        placed.setdefault(name, []).append((mid.x, mid.y))
        written.append(name)
    return written


def _field_zh(kind: str, name: str) -> str:
    s = CATALOGUE.get(kind)
    return next((f.zh for f in s.fields if f.name == name), name) if s is not None else name


def _nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k metres) near a fifth of ``span_m``."""
    target = max(span_m / 5.0, 1e-9)
    exp = 10 ** math.floor(math.log10(target))
    return max((m * exp for m in (1, 2, 5, 10) if m * exp <= target), default=exp)


def _value_label(v: object) -> str:
    return ("是" if v else "否") if isinstance(v, bool | np.bool_) else str(v)


def render_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    path_or_buffer: str | Path | io.BytesIO,
    dpi: int = 200,
    fmt: str | None = None,
    **options: Any,
) -> None:
    """Draw a sheet with :func:`draw_map` (``options``: its keywords) and save it as PNG or PDF.

    ``path_or_buffer``: a file (format from the suffix) or a binary buffer (``fmt``, default PNG).
    """
    from matplotlib import rc_context

    fmt = fmt or (Path(path_or_buffer).suffix.lstrip(".") if isinstance(path_or_buffer, str | Path) else "png")
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).parent.mkdir(parents=True, exist_ok=True)
    with rc_context(_rc()):  # generic font names are resolved when drawing: save inside the same settings
        draw_map(layers, **options).savefig(path_or_buffer, format=fmt or "png", dpi=dpi)


def _rc() -> Any:  # a dict of rcParams (matplotlib types its keys as a Literal of every parameter name)
    """matplotlib settings of a printed sheet: the CJK font first, a plain minus sign."""
    font = cjk_font()
    return {"axes.unicode_minus": False, "font.family": "sans-serif",
            "font.sans-serif": [font, "DejaVu Sans"] if font else ["DejaVu Sans"]}


def draw_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    title: str,
    paper: str = "A4",
    bbox: tuple[float, float, float, float] | None = None,
    attribution: str = "",
    subtitle: str = "",
    labels: Mapping[str, str] | None = None,
    legend_titles: Mapping[str, str] | None = None,
    map_date: date | None = None,
    street_label_max_scale: float | None = None,
) -> Figure:
    """Draw layers on a landscape sheet; returns the figure (its texts, legend and patches can be read).

    Parameters
    ----------
    layers
        Layer kind → frame, drawn in order (first at the bottom). Each is styled from its catalogue
        spec (colour, width, fill, marker size, colour by a field's values); an unknown kind gets the
        default style and its key as the legend entry. All frames share one CRS; a projected CRS in
        metres is expected (geographic frames are reprojected to their UTM zone for the scale bar).
    title
        Printed at the top; ``subtitle`` below it.
    paper
        ``"A4"`` or ``"A3"`` (landscape).
    bbox
        Map extent ``(minx, miny, maxx, maxy)`` in the layers' CRS (degrees for WGS84 layers); default:
        all layers plus a margin.
    attribution
        Data credits printed at the bottom (e.g. ``settings.project.attribution``).
    labels
        Layer kind → column whose values are written beside each feature (e.g. pick numbers).
    legend_titles
        Layer kind → legend text replacing the catalogue's Chinese name.
    map_date
        Printed as 制图日期 (default: today).
    street_label_max_scale
        Street names are written along the streets when the map's scale is 1:N or larger, N this
        value (default: the setting ``[web] street_label_max_scale``).
    """
    import matplotlib.figure
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    if paper not in PAPER_MM:
        raise ValueError(f"paper must be one of {', '.join(PAPER_MM)}, not {paper!r}")
    frames = {k: v for k, v in layers.items() if v is not None and len(v) and v.crs is not None}
    crs = next((f.crs for f in frames.values()), None)
    if crs is not None and not crs.is_projected:
        from pyproj import Transformer

        geographic = crs
        crs = next(iter(frames.values())).estimate_utm_crs()
        log.info("printed map: geographic layers reprojected to %s for a metric scale bar", crs.to_string())
        if bbox is not None:
            bbox = Transformer.from_crs(geographic, crs, always_xy=True).transform_bounds(*bbox)
    frames = {k: (v if v.crs.equals(crs) else v.to_crs(crs)) for k, v in frames.items()}
    legend_titles = dict(legend_titles or {})

    w_mm, h_mm = PAPER_MM[paper]
    with rc_context(_rc()):
        fig = matplotlib.figure.Figure(figsize=(w_mm / 25.4, h_mm / 25.4))
        FigureCanvasAgg(fig)
        scale = w_mm / 297.0  # type sizes grow with the paper
        ax = fig.add_axes((0.04, 0.10, 0.70, 0.78))
        ax.set_xticks([])
        ax.set_yticks([])
        handles: list = []
        for kind, frame in frames.items():
            style, zh = _style(kind)
            name = legend_titles.get(kind, zh)
            for whole, whole_style, whole_name in _by_facility(kind, frame, style, name):
                for part, part_style, part_name in _by_build_status(whole, whole_style, whole_name):
                    handles += _draw(ax, part, part_style, part_name, Line2D, Patch,
                                     field_zh=_field_zh(kind, (part_style.by or {}).get("field", "")))
            if labels and kind in labels and labels[kind] in frame:
                pts = frame.geometry.representative_point()
                for x, y, text in zip(pts.x, pts.y, frame[labels[kind]], strict=True):
                    ax.annotate(str(text), (x, y), xytext=(4, 4), textcoords="offset points",
                                fontsize=7 * scale, color="#111111", fontweight="bold")
        ax.set_xlabel("")
        ax.set_ylabel("")
        if bbox is None and frames:
            b = np.array([f.total_bounds for f in frames.values()])
            bbox = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        # metres equal both ways; the frame keeps its size on the paper and the extent grows to fill it
        ax.set_aspect("equal", adjustable="datalim")
        if bbox is not None:
            _set_extent(ax, bbox, margin=0.05)
        fig.text(0.04, 0.95, title, fontsize=18 * scale, fontweight="bold", va="center")
        if subtitle:
            fig.text(0.04, 0.91, subtitle, fontsize=10 * scale, va="center", color="#333333")
        if handles:
            leg = fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.76, 0.88), frameon=True,
                             fontsize=9 * scale, title="图例", title_fontsize=10 * scale)
            leg.get_frame().set_edgecolor("#999999")
        if bbox is not None:
            _north_arrow(ax, scale)
            _scale_bar(ax, Rectangle, scale)
            x0, x1 = ax.get_xlim()
            pos = ax.get_position()
            ratio = (x1 - x0) / (pos.width * w_mm / 1000.0)
            fig.text(0.76, 0.16, f"比例尺 约1:{_round_scale(ratio):,}", fontsize=9 * scale)
            if street_label_max_scale is None:
                from sanigrid.layers.settings import WebSettings

                street_label_max_scale = float(WebSettings.model_fields["street_label_max_scale"].default)
            if "streets" in frames and ratio <= street_label_max_scale:
                _street_names(ax, frames["streets"], mm_per_unit=1000.0 / ratio, scale=scale)
        crs_text = crs_zh(crs)
        fig.text(0.76, 0.13, f"坐标系: {crs_text}", fontsize=7 * scale, color="#333333", wrap=True)
        fig.text(0.76, 0.10, f"制图日期: {(map_date or date.today()).isoformat()}", fontsize=9 * scale)
        if attribution:
            fig.text(0.04, 0.05, attribution, fontsize=7 * scale, color="#444444")
    return fig


def _round_scale(ratio: float) -> int:
    exp = 10 ** max(0, math.floor(math.log10(max(ratio, 1))) - 1)
    return int(round(ratio / exp) * exp)


def _set_extent(ax, bbox: tuple[float, float, float, float], *, margin: float) -> None:
    """Fit the extent (plus a margin) to the axes' aspect so that one metre is one metre both ways."""
    minx, miny, maxx, maxy = bbox
    w, h = max(maxx - minx, 1.0), max(maxy - miny, 1.0)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    pos = ax.get_position()
    fw, fh = ax.figure.get_size_inches()
    aspect = (pos.height * fh) / (pos.width * fw)
    if h / w > aspect:
        w = h / aspect
    else:
        h = w * aspect
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)


def _draw(ax, frame: gpd.GeoDataFrame, style: Style, name: str, line_cls, patch_cls, *, field_zh: str) -> list:
    """Plot one layer; returns its legend handles."""
    if style.by and "ramp" in style.by and style.by.get("field") in frame:
        return _draw_ramp(ax, frame, style, name, patch_cls, field_zh=field_zh)
    geom_type = frame.geometry.geom_type.fillna("").str.replace("Multi", "")
    groups: list[tuple[str, gpd.GeoDataFrame, str]] = []
    by = style.by or {}
    values = by.get("values", {})
    if by and by.get("field") in frame:
        col = frame[by["field"]].astype("object")
        seen = False
        for value, color in values.items():
            mask = col.map(lambda v, value=value: _same(v, value)).to_numpy(bool)
            if mask.any():
                text = f"{field_zh}: {_value_label(value)}" if isinstance(value, bool) else _value_label(value)
                groups.append((f"{name}({text})", frame[mask], color))
                seen |= True
        other = ~col.isin(list(values)).to_numpy(bool)
        if other.any():
            groups.append((name if not seen else f"{name}(其他)", frame[other], style.color))
    else:
        groups.append((name, frame, style.color))
    handles = []
    for label, part, color in groups:
        kinds = set(geom_type[part.index])
        fill = style.fill_color or color if not by else color
        if "Polygon" in kinds:
            poly = part[geom_type[part.index] == "Polygon"]
            poly.plot(ax=ax, facecolor=_rgba(fill, style.fill_opacity), edgecolor=color,
                      linewidth=style.weight * 0.5, linestyle="--" if style.dash else "-")
            handles.append(patch_cls(facecolor=_rgba(fill, style.fill_opacity), edgecolor=color, label=label,
                                     linestyle="--" if style.dash else "-"))
        if "LineString" in kinds:
            lines = part[geom_type[part.index] == "LineString"]
            lines.plot(ax=ax, color=color, linewidth=style.weight * 0.6, linestyle="--" if style.dash else "-")
            handles.append(line_cls([], [], color=color, linewidth=style.weight * 0.6, label=label,
                                    linestyle="--" if style.dash else "-"))
        if "Point" in kinds:
            pts = part[geom_type[part.index] == "Point"]
            size = (style.radius * 1.6) ** 2
            hollow = style.fill_opacity == 0  # e.g. a planned facility: its outline only
            face = "none" if hollow else _rgba(fill, max(style.fill_opacity, 0.6))
            pts.plot(ax=ax, color=face, edgecolor=color, markersize=size, zorder=5,
                     linewidth=1.2 if hollow else 0.6, linestyle="--" if style.dash else "-")
            handles.append(line_cls([], [], marker="o", linestyle="", markerfacecolor="none" if hollow else
                                    _rgba(fill, 0.9), markeredgecolor=color, markersize=style.radius * 1.4,
                                    label=label))
    return handles


def _draw_ramp(ax, frame: gpd.GeoDataFrame, style: Style, name: str, patch_cls, *, field_zh: str) -> list:
    """Areas (or any geometry) coloured along the style's ramp by a numeric field; a legend stop per colour."""
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    by = style.by or {}
    values = pd.to_numeric(frame[by["field"]], errors="coerce")
    ok = values.notna().to_numpy()
    if not ok.any():
        return []
    lo, hi = float(values[ok].min()), float(values[ok].max())
    cmap = LinearSegmentedColormap.from_list("ramp", list(by["ramp"]))
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    colours = [cmap(norm(v), alpha=max(style.fill_opacity, 0.5)) for v in values[ok]]
    frame[ok].plot(ax=ax, color=colours, edgecolor=style.color, linewidth=style.weight * 0.5)
    stops = np.linspace(lo, hi, len(by["ramp"]))
    if np.allclose(values[ok], np.round(values[ok])):  # whole numbers (a rank): whole stops, each once
        stops = np.unique(np.round(stops))
    return [patch_cls(facecolor=cmap(norm(v), alpha=max(style.fill_opacity, 0.5)), edgecolor=style.color,
                      label=f"{field_zh or name} {v:.0f}") for v in stops]


def _same(v: object, value: object) -> bool:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return False
    return bool(v == value)


def _rgba(color: str, alpha: float) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgba

    return to_rgba(color, alpha)


def _north_arrow(ax, scale: float) -> None:
    box = {"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#999999", "alpha": 0.9}
    ax.text(0.955, 0.80, "北\nN", transform=ax.transAxes, ha="center", va="top", fontsize=10 * scale,
            fontweight="bold", bbox=box, zorder=11)
    ax.annotate("", xy=(0.955, 0.97), xytext=(0.955, 0.82), xycoords="axes fraction", zorder=12,
                arrowprops={"facecolor": "black", "edgecolor": "white", "width": 4 * scale,
                            "headwidth": 12 * scale, "headlength": 12 * scale})


def _scale_bar(ax, rect_cls, scale: float) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    ax.add_patch(rect_cls((bx - 0.01 * (x1 - x0), by - 0.6 * h), length + 0.02 * (x1 - x0), 4.2 * h,
                          facecolor="white", edgecolor="none", alpha=0.8, zorder=9))
    for i in range(4):
        ax.add_patch(rect_cls((bx + i * length / 4, by), length / 4, h, facecolor="black" if i % 2 == 0 else "white",
                              edgecolor="black", linewidth=0.6, zorder=10))
    unit, div = ("千米", 1000.0) if length >= 1000 else ("米", 1.0)
    for frac in (0.0, 0.5, 1.0):
        ax.text(bx + frac * length, by + 1.5 * h, f"{frac * length / div:g}", ha="center", va="bottom",
                fontsize=7 * scale, zorder=11)
    ax.text(bx + length + 0.012 * (x1 - x0), by, unit, ha="left", va="bottom", fontsize=7 * scale, zorder=11)


# ---------------------------------------------------------------- the county's themed maps
@dataclass(frozen=True)
class Theme:
    zh: str
    kinds: tuple[str, ...]  # bottom to top; FACILITY stands for the facility kind of the coverage theme
    needs: str  # the layer without which the theme says nothing
    hint: str  # the command that makes it


FACILITY = "{facility}"
#: analysis layers that hold several facility kinds (column ``facility_kind``): printed one kind at a time
BY_FACILITY = ("service_areas", "coverage_gaps", "suggested_sites")

THEMES: dict[str, Theme] = {
    "ranking": Theme("网格排名", ("scorecard", "streets"), "scorecard", "sanigrid rank"),
    "coverage": Theme("设施覆盖与盲区", ("grids", "service_areas", "streets", "alleys", "coverage_gaps", FACILITY,
                                   "suggested_sites"), "service_areas", "sanigrid coverage KIND"),
    "problems": Theme("问题冷热点与聚集区", ("gi_cells", "grids", "streets", "hotspot_clusters"), "gi_cells",
                      "sanigrid hotspots"),
    "alleys": Theme("背街小巷", ("grids", "streets", "alleys"), "alleys", "sanigrid import alleys FILE"),
}


def _layer(project: Project, kind: str, facility_kind: str) -> gpd.GeoDataFrame:
    frame = project.store.read(kind)
    if "facility_kind" in frame and kind in BY_FACILITY:
        frame = frame[frame["facility_kind"] == facility_kind]
    if kind == "service_areas" and "dissolved" in frame:
        frame = frame[frame["dissolved"].fillna(False).astype(bool)]
    if kind == "gi_cells" and "label" in frame:
        frame = frame[frame["label"] != "不显著"]
    return frame


def county_print(project: Project, *, theme: str, paper: str = "A3", fmt: str = "pdf",
                 facility_kind: str = "toilets") -> bytes:
    """The county map of ``theme`` as PDF or PNG bytes (landscape ``paper``).

    ``facility_kind`` (the coverage theme): any kind with a ``[facilities]`` preset in the settings.
    """
    from sanigrid.layers.importers import map_attribution

    if theme not in THEMES:
        raise Invalid(f"未知专题「{theme}」; 可选: {', '.join(THEMES)} (unknown theme)")
    t = THEMES[theme]
    settings = project.settings
    if theme == "coverage" and facility_kind not in settings.facilities:
        raise Invalid(f"未知设施类型「{facility_kind}」; 可选: {', '.join(settings.facilities)} "
                      "(no [facilities] preset of this kind in sanigrid.toml)")
    if not project.store.has(t.needs) or not len(project.store.read(t.needs, columns=[])):
        raise Invalid(f"「{CATALOGUE[t.needs].zh}」图层为空: 先运行 `{t.hint}` (layer {t.needs} is empty)")
    layers = {}
    for kind in (facility_kind if k == FACILITY else k for k in t.kinds):
        if project.store.has(kind):
            frame = _layer(project, kind, facility_kind)
            if len(frame):
                layers[kind] = frame
    if project.store.has("boundary"):  # the county's official outline, drawn over everything
        outline = project.store.read("boundary")
        if len(outline):
            layers["boundary"] = outline
    bounds = next((project.store.read(k).total_bounds for k in ("boundary", "grids")
                   if project.store.has(k) and len(project.store.read(k, columns=[]))), None)
    subtitle = ""
    titles: dict[str, str] = {}
    if theme == "coverage":
        preset = settings.facilities[facility_kind]
        name = settings.facility_title(facility_kind)
        subtitle = f"{name} 服务半径 {preset.radius_m:.0f} 米 · 依据 {preset.source}"
        titles = {k: f"{CATALOGUE[k].zh}({name})" for k in BY_FACILITY}
    elif theme == "ranking":
        meta = project.store.meta("scorecard").get("params", {})
        start, end = str(meta.get("start") or "")[:10], str(meta.get("end") or "")[:10]
        subtitle = "排名 1 为最好" + (f" · 统计期 {start} 至 {end}" if start and end else "")
    buf = io.BytesIO()
    render_map(layers, title=f"{settings.project.name} {t.zh}", path_or_buffer=buf, paper=paper,
               bbox=tuple(bounds) if bounds is not None and len(bounds) == 4 else None,
               attribution=map_attribution(project, layers), subtitle=subtitle, legend_titles=titles,
               labels={"scorecard": "rank"} if theme == "ranking" else None,
               map_date=date.today(), dpi=150, fmt=fmt,
               street_label_max_scale=settings.web.street_label_max_scale)
    return buf.getvalue()
