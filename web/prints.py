"""County-wide printable maps by theme (排名, 覆盖, 热点, 背街小巷): A3/A4 landscape PDF or PNG for meetings.

Each theme is a list of layers drawn bottom to top with their catalogue styles (web/printmap.py adds
title, legend, north arrow, scale bar, date and attribution). Analysis layers that hold several facility
kinds are filtered to one kind; layers not in the store are skipped and named in the subtitle.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import geopandas as gpd

from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.layers.importers import map_attribution
from sanigrid.layers.project import Project
from sanigrid.web._errors import Invalid


@dataclass(frozen=True)
class Theme:
    zh: str
    kinds: tuple[str, ...]
    needs: str  # the layer without which the theme says nothing
    hint: str  # the command that makes it


THEMES: dict[str, Theme] = {
    "ranking": Theme("网格排名", ("scorecard", "streets"), "scorecard", "sanigrid rank"),
    "coverage": Theme("设施覆盖与盲区", ("grids", "service_areas", "streets", "alleys", "coverage_gaps", "markets",
                                   "transfer_stations", "toilets", "suggested_sites"), "service_areas",
                      "sanigrid coverage KIND"),
    "problems": Theme("问题冷热点与聚集区", ("gi_cells", "grids", "streets", "hotspot_clusters"), "gi_cells",
                      "sanigrid hotspots"),
    "alleys": Theme("背街小巷", ("grids", "streets", "alleys"), "alleys", "sanigrid import alleys FILE"),
}


def _layer(project: Project, kind: str, facility_kind: str) -> gpd.GeoDataFrame:
    frame = project.store.read(kind)
    if "facility_kind" in frame and kind in ("service_areas", "coverage_gaps", "suggested_sites"):
        frame = frame[frame["facility_kind"] == facility_kind]
    if kind == "service_areas" and "dissolved" in frame:
        frame = frame[frame["dissolved"].fillna(False).astype(bool)]
    if kind == "gi_cells" and "label" in frame:
        frame = frame[frame["label"] != "不显著"]
    if kind in ("markets", "transfer_stations", "toilets") and facility_kind != kind:
        frame = frame.iloc[0:0]
    return frame


def county_print(project: Project, *, theme: str, paper: str = "A3", fmt: str = "pdf",
                 facility_kind: str = "toilets") -> bytes:
    """The county map of ``theme`` as PDF or PNG bytes (landscape ``paper``)."""
    from sanigrid.web.printmap import render_map

    if theme not in THEMES:
        raise Invalid(f"未知专题「{theme}」; 可选: {', '.join(THEMES)} (unknown theme)")
    t = THEMES[theme]
    if not project.store.has(t.needs) or not len(project.store.read(t.needs, columns=[])):
        raise Invalid(f"「{CATALOGUE[t.needs].zh}」图层为空: 先运行 `{t.hint}` (layer {t.needs} is empty)")
    layers = {}
    for kind in t.kinds:
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
    if theme == "coverage":
        preset = project.settings.facilities.get(facility_kind)
        if preset is None:
            raise Invalid(f"未知设施类型「{facility_kind}」; 可选: {', '.join(project.settings.facilities)}")
        subtitle = f"{preset.zh or facility_kind} 服务半径 {preset.radius_m:.0f} 米 · 依据 {preset.source}"
    elif theme == "ranking":
        meta = project.store.meta("scorecard").get("params", {})
        start, end = str(meta.get("start") or "")[:10], str(meta.get("end") or "")[:10]
        subtitle = "排名 1 为最好" + (f" · 统计期 {start} 至 {end}" if start and end else "")
    buf = io.BytesIO()
    render_map(layers, title=f"{project.settings.project.name} {t.zh}", path_or_buffer=buf, paper=paper,
               bbox=tuple(bounds) if bounds is not None and len(bounds) == 4 else None,
               attribution=map_attribution(project, layers), subtitle=subtitle,
               labels={"scorecard": "rank"} if theme == "ranking" else None,
               map_date=date.today(), dpi=150, fmt=fmt)
    return buf.getvalue()
