"""The demo county: real streets of Guixi (贵溪) from OpenStreetMap, every other layer synthetic.

:func:`make_demo_layers` builds, deterministically from a seed, every input layer of a county
project on the streets of ``layers/data/guixi-center.osm`` (© OpenStreetMap contributors, ODbL
1.0): streets, back alleys, about 50 grids with proper unit-grid codes, toilets, transfer
stations, collection points, markets, residential compounds, sample-point candidates and a few
thousand problem reports over six months with a lifecycle history.

The synthetic layers are made to have something to find:

* facilities leave two districts under-served (the east edge around 大岩苏家/早闲公园 and the
  south-west edge of the old town around 西街/南街), so coverage analyses find gaps;
* a few toilets are below the class the standard asks for (三类 on a main road, by a market)
  and one is a dry toilet (旱厕) in the urban village 花园村;
* unhardened alleys cluster in two old quarters;
* problems have true hotspots (two markets, a night-market street, the railway station, an
  urban village), a pile of reports at one default coordinate (the city government: what a
  hotline geocoder returns when it cannot place a call), rebound chains (the same category
  re-reported within ~40 m within 25 days after a closure), overdue open cases and grids
  that are much worse than others.

Besides the catalogue fields, ``problems.demo_truth`` says which pattern made each report
(``background``, ``hotspot``, ``pile``, ``rebound``) so analyses can be checked against the truth;
``alleys.source`` says ``OSM`` or ``synthetic``; ``sample_points.subtype`` names the 五小 kind.
Grid codes: county 360681 + 3-digit 街道 + 3-digit 社区 + 2-digit grid; grids are numbered
within their community, and communities within their 街道, by :func:`grid_order`.

Everything is in the demo CRS, CGCS2000 3-degree Gauss-Kruger zone 39 (EPSG:4548), metres.
This module only makes frames; writing them to a store is :func:`scripts.demo.build_demo`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely.ops import substring

from sanigrid.layers.settings import Settings

log = logging.getLogger(__name__)

OSM_PATH = Path(__file__).parent / "data" / "guixi-center.osm"
OSM_BOUNDS = (117.19116, 28.28171, 117.25519, 28.32252)  # lon/lat of the extract (WGS84)
DEMO_CRS = "EPSG:4548"
COUNTY_CODE = "360681"
COUNTY_NAME = "贵溪市(演示)"
OSM_SOURCE = "OpenStreetMap guixi-center.osm, © OpenStreetMap contributors, ODbL 1.0"
ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0 (streets); other layers synthetic"
START = pd.Timestamp("2026-05-16 00:00:00")
END = pd.Timestamp("2026-11-15 23:59:59")
AS_OF = pd.Timestamp("2026-11-16 00:00:00")  # statuses are as at the end of the six months
ROW_M = 400.0  # height of a numbering row (grids are numbered west→east within rows north→south)

# OSM highway → catalogue road class; ways not listed here are not streets
ROAD_CLASS = {
    "motorway": "主干路", "trunk": "主干路", "primary": "主干路", "secondary": "主干路",
    "motorway_link": "主干路", "trunk_link": "主干路", "primary_link": "主干路",
    "secondary_link": "主干路", "tertiary": "次干路", "tertiary_link": "次干路",
    "residential": "支路", "unclassified": "支路",
}
ALLEY_HIGHWAYS = ("living_street", "service", "footway", "path", "pedestrian", "track", "steps")
BUSY_STREETS = ("北大街", "信州路", "雄石路", "站前路", "永泰路", "建设路")
NIGHT_MARKET_STREET = "永泰路"
DEFAULT_GEOCODE = "贵溪市人民政府"

# communities (OSM place nodes of the extract) and the sub-district (街道) each belongs to here;
# the assignment is part of the synthetic data, not the real administrative map
STREET_OFFICES: dict[str, tuple[str, ...]] = {
    "东门街道": ("北街社区", "西街社区", "南街社区", "东街社区", "城北社区", "江边社区", "信江社区"),
    "雄石街道": ("雄石社区", "木丝岭社区", "烧箕山社区", "发电厂社区", "白果社区"),
    "花园街道": ("花园社区", "四建社区", "炼厂社区", "化肥厂社区"),
}
LEAD_UNITS = (
    "县住建局", "县卫健委", "县教育局", "县城管局", "县市场监管局", "县公安局", "县财政局",
    "县交通运输局", "县自然资源局", "县生态环境局", "县农业农村局", "县水利局", "县民政局",
    "县人社局", "县文广旅局", "县商务局", "县发改委", "县审计局", "县统计局", "县应急管理局",
    "县税务局", "县供电公司", "县自来水公司", "县人民医院", "县融媒体中心",
)
SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余")
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "建国", "建华", "志强", "海燕", "小红", "春梅", "国平", "文斌")
ALLEY_WORDS = ("井头", "打铁", "槐树", "石板", "仓前", "书院", "油坊", "米行", "县前", "竹篙", "水井",
               "豆腐", "染坊", "盐仓", "花墙", "学前", "祠堂", "古井", "钟楼", "柴市")
CN_NUM = "一二三四五六七八九十"
COMPOUND_WORDS = ("信江", "东方", "阳光", "锦绣", "金色", "银河", "翠竹", "桂花", "龙虎", "华府", "天一",
                  "滨江", "幸福", "和平", "建设", "文化", "电厂", "冶炼", "铜都", "雄石", "状元", "凤凰")
COMPOUND_SUFFIX = ("小区", "花园", "苑", "家园", "新村", "公寓", "宿舍")

# category weights of the background (unknown categories in a county's settings get 2)
CATEGORY_WEIGHT = {
    "暴露垃圾": 12, "积存垃圾渣土": 5, "私搭乱建": 3, "道路破损": 5, "非法小广告": 10, "乱设广告": 3,
    "占道经营": 12, "店外经营": 9, "机动车乱停放": 9, "非机动车乱停放": 7, "乱堆物料": 7,
    "沿街晾挂": 3, "乱拉乱挂": 3, "乱排污水": 3, "公厕脏乱": 3, "其他": 4,
}
SOURCES = ("巡查", "群众举报", "12345", "督查", "暗访", "其他")
SOURCE_P = (0.45, 0.15, 0.15, 0.1, 0.1, 0.05)
REBOUND_CATEGORIES = ("暴露垃圾", "占道经营", "乱堆物料", "积存垃圾渣土", "非法小广告", "乱排污水")


@dataclass
class DemoData:
    """The demo's layers (by kind), free tables (by name) and the parameters that made them."""

    layers: dict[str, gpd.GeoDataFrame]
    tables: dict[str, pd.DataFrame]
    params: dict[str, Any] = field(default_factory=dict)


def demo_settings(base: Settings | None = None) -> Settings:
    """Settings of the demo project: name, county code, CRS and the ODbL attribution."""
    s = (base or Settings()).model_copy(deep=True)
    s.project.name = COUNTY_NAME
    s.project.county_code = COUNTY_CODE
    s.project.crs = DEMO_CRS
    s.project.population = 120_000
    s.project.attribution = ATTRIBUTION
    # the demo town's few arterials: its secondary roads act as main roads here; recorded in the
    # project's settings so that importing the OSM file into the demo gives the same classes
    s.imports.osm_road_class = {**s.imports.osm_road_class, **ROAD_CLASS}
    s.imports.osm_road_class_source = "demo: OSM secondary treated as 主干路 in this county town"
    return s


def bounds_polygon(crs: str = DEMO_CRS) -> shapely.Polygon:
    """The extract's bounds as a polygon in ``crs``."""
    return gpd.GeoSeries([shapely.box(*OSM_BOUNDS)], crs=4326).to_crs(crs).iloc[0]


def read_osm(path: str | Path = OSM_PATH, *, crs: str = DEMO_CRS) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame,
                                                                             gpd.GeoDataFrame]:
    """Highway lines, named points and polygons of the extract, clipped to its bounds, in ``crs``."""
    clip = shapely.box(*OSM_BOUNDS)
    lines = gpd.read_file(path, layer="lines", columns=["osm_id", "name", "highway"])
    lines = lines[lines["highway"].notna()]
    lines = lines.clip(clip).explode(index_parts=False)
    lines = lines[lines.geom_type == "LineString"].to_crs(crs)
    lines = lines[lines.length > 1.0].reset_index(drop=True)
    points = gpd.read_file(path, layer="points", columns=["osm_id", "name", "other_tags"])
    points = points[points["name"].notna()].clip(clip).to_crs(crs).reset_index(drop=True)
    polys = gpd.read_file(path, layer="multipolygons", columns=["osm_way_id", "name", "natural", "building"])
    polys = polys.to_crs(crs).reset_index(drop=True)
    return lines, points, polys


# ------------------------------------------------------------------------ geometry helpers
def _along(lines: np.ndarray, rng: np.random.Generator, n: int, weights: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random points along ``lines`` (length-weighted × weights): (x, y, line index)."""
    length = shapely.length(lines)
    w = length if weights is None else length * weights
    idx = rng.choice(len(lines), size=n, p=w / w.sum())
    d = rng.random(n) * length[idx]
    pts = shapely.line_interpolate_point(lines[idx], d)
    return shapely.get_x(pts), shapely.get_y(pts), idx


def _beside(lines: np.ndarray, rng: np.random.Generator, n: int, *, offset_m: float | np.ndarray,
            inside: shapely.Geometry | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random points along ``lines``, moved ``offset_m`` to the side (kept only ``inside``)."""
    x, y, idx = _along(lines, rng, n)
    nx, ny = _normal_at(lines, idx, x, y)
    x, y = x + nx * offset_m, y + ny * offset_m
    if inside is None:
        return x, y
    ok = _within(x, y, inside)
    return x[ok], y[ok]


def _normal_at(lines: np.ndarray, idx: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal of ``lines[idx]`` at the points (x, y) on them."""
    d = shapely.line_locate_point(lines[idx], shapely.points(x, y))
    ln = shapely.length(lines[idx])
    a = shapely.line_interpolate_point(lines[idx], np.clip(d - 2, 0, ln))
    b = shapely.line_interpolate_point(lines[idx], np.clip(d + 2, 0, ln))
    tx, ty = shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)
    norm = np.hypot(tx, ty)
    norm[norm == 0] = 1
    return -ty / norm, tx / norm


def _insert_vertices(line: shapely.LineString, pts: list[shapely.Point]) -> shapely.LineString:
    """``line`` with the points (lying on it) inserted as vertices, so networks node there."""
    coords = np.asarray(line.coords)
    seg = np.hypot(*np.diff(coords[:, :2], axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    new = np.array([[p.x, p.y] for p in pts])
    dist = shapely.line_locate_point(line, shapely.points(new))
    allc = np.vstack([coords[:, :2], new])
    alld = np.concatenate([cum, dist])
    order = np.argsort(alld, kind="stable")
    allc, alld = allc[order], alld[order]
    keep = np.concatenate([[True], np.diff(alld) > 1e-6])
    return shapely.LineString(allc[keep])


def _greedy_spaced(x: np.ndarray, y: np.ndarray, spacing: np.ndarray, limit: int) -> np.ndarray:
    """Indices of candidates kept in order so that each is ≥ its spacing from every kept one."""
    kept: list[int] = []
    kx = np.empty(limit)
    ky = np.empty(limit)
    for i in range(len(x)):
        n = len(kept)
        if n and np.min(np.hypot(kx[:n] - x[i], ky[:n] - y[i])) < spacing[i]:
            continue
        kx[n], ky[n] = x[i], y[i]
        kept.append(i)
        if len(kept) >= limit:
            break
    return np.array(kept, dtype=int)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.char.add(rng.choice(list(SURNAMES), n), rng.choice(list(GIVEN), n))


def _nearest_named(x: np.ndarray, y: np.ndarray, streets: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Name of the nearest named street and a house number along it (odd/even by side)."""
    named = streets[streets["name"].notna()].reset_index(drop=True)
    pts = shapely.points(x, y)
    tree = shapely.STRtree(named.geometry.to_numpy())
    idx = tree.query_nearest(pts, all_matches=False, return_distance=False)
    j = np.empty(len(pts), dtype=int)
    j[idx[0]] = idx[1]
    d = shapely.line_locate_point(named.geometry.to_numpy()[j], pts)
    number = (np.floor(d / 15).astype(int) * 2 + 1 + (np.arange(len(pts)) % 2)).astype(str)
    return named["name"].to_numpy()[j].astype(str), number


def _address(x: np.ndarray, y: np.ndarray, streets: gpd.GeoDataFrame) -> np.ndarray:
    name, number = _nearest_named(x, y, streets)
    return np.char.add(np.char.add(name, number), "号")


def _point_of(points: gpd.GeoDataFrame, name: str, fallback: tuple[float, float]) -> np.ndarray:
    hit = points[points["name"] == name]
    if len(hit):
        g = hit.geometry.iloc[0]
        return np.array([g.x, g.y])
    return np.array(fallback, dtype=float)


def _snap(xy: np.ndarray, lines: np.ndarray, offset_m: float = 0.0) -> np.ndarray:
    """Points moved onto the nearest of ``lines`` (then ``offset_m`` off it, to the side they were)."""
    xy = np.atleast_2d(xy)
    pts = shapely.points(xy)
    tree = shapely.STRtree(lines)
    idx = tree.query_nearest(pts, all_matches=False, return_distance=False)
    j = np.empty(len(pts), dtype=int)
    j[idx[0]] = idx[1]
    on = shapely.line_interpolate_point(lines[j], shapely.line_locate_point(lines[j], pts))
    ox, oy = shapely.get_x(on), shapely.get_y(on)
    if offset_m:
        dx, dy = xy[:, 0] - ox, xy[:, 1] - oy
        dn = np.hypot(dx, dy)
        nx, ny = _normal_at(lines, j, ox, oy)
        sx = np.where(dn > 0, dx / np.where(dn > 0, dn, 1), nx)
        sy = np.where(dn > 0, dy / np.where(dn > 0, dn, 1), ny)
        ox, oy = ox + sx * offset_m, oy + sy * offset_m
    return np.column_stack([ox, oy])


def _within(x: np.ndarray, y: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    shapely.prepare(area)
    return shapely.contains_xy(area, x, y)


# ------------------------------------------------------------------------ the layers
def _streets(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    s = lines[lines["highway"].isin(list(ROAD_CLASS))].copy()
    s["road_class"] = s["highway"].map(ROAD_CLASS)
    s["busy"] = s["name"].isin(BUSY_STREETS)
    s["osm_id"] = s["osm_id"].astype(str)
    s["name"] = s["name"].astype(object).where(s["name"].notna(), None)
    return gpd.GeoDataFrame(s[["name", "road_class", "busy", "osm_id", "highway", "geometry"]],
                            crs=lines.crs).reset_index(drop=True)


def _town_area(lines: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, clip: shapely.Polygon) -> shapely.Geometry:
    """The built-up town: local streets and buildings buffered, closed, small pieces and water removed."""
    local = lines[lines["highway"].isin(["tertiary", "residential", "unclassified", "living_street",
                                         "service"])]
    bld = polys[polys["building"].notna()]
    core = shapely.union_all(np.concatenate([
        shapely.buffer(local.geometry.to_numpy(), 190, quad_segs=4),
        shapely.buffer(bld.geometry.to_numpy(), 120, quad_segs=4),
    ]))
    core = shapely.buffer(shapely.buffer(core, 120, quad_segs=4), -150, quad_segs=4)
    water = shapely.union_all(polys.loc[polys["natural"] == "water"].geometry.to_numpy())
    area = shapely.intersection(shapely.difference(core, shapely.buffer(water, 10)), clip)
    parts = [p for p in shapely.get_parts(area) if p.area > 250_000]
    return shapely.make_valid(shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0])


def _alleys(streets: gpd.GeoDataFrame, lines: gpd.GeoDataFrame, town: shapely.Geometry,
            quarters: np.ndarray, rng: np.random.Generator) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Back alleys: the extract's service ways and living streets, plus synthetic lanes off the
    local streets (some running through to the next street). Returns (alleys, streets with the
    alley junctions inserted as vertices)."""
    crs = streets.crs
    base_mask = streets["road_class"].isin(["次干路", "支路"]).to_numpy()
    base = streets.geometry.to_numpy()
    sl = shapely.length(base)
    # stations along the local streets every 55–130 m
    cand_line, cand_d = [], []
    for i in np.flatnonzero(base_mask):
        d = rng.uniform(20, 70)
        while d < sl[i] - 15:
            cand_line.append(i)
            cand_d.append(d)
            d += rng.uniform(55, 130)
    li = np.array(cand_line)
    p0 = shapely.line_interpolate_point(base[li], np.array(cand_d))
    x0, y0 = shapely.get_x(p0), shapely.get_y(p0)
    nx, ny = _normal_at(base, li, x0, y0)
    side = rng.choice([-1.0, 1.0], len(li))
    length = rng.uniform(45, 170, len(li))
    x1, y1 = x0 + side * nx * length, y0 + side * ny * length
    bend = rng.random(len(li)) < 0.35
    turn = rng.choice([-1.0, 1.0], len(li)) * rng.uniform(0.9, 1.6, len(li))  # radians
    c, s = np.cos(turn), np.sin(turn)
    dx, dy = side * nx, side * ny
    bx, by = dx * c - dy * s, dx * s + dy * c
    l2 = rng.uniform(25, 70, len(li))
    x2, y2 = x1 + bx * l2, y1 + by * l2
    geoms = [shapely.LineString([(a, b), (c_, d_), (e, f)]) if bn else shapely.LineString([(a, b), (c_, d_)])
             for a, b, c_, d_, e, f, bn in zip(x0, y0, x1, y1, x2, y2, bend, strict=True)]
    cand = np.array(geoms, dtype=object)
    inside = shapely.within(cand, town)
    cand, li, x0, y0 = cand[inside], li[inside], x0[inside], y0[inside]
    # truncate at the first street crossed (the lane then joins two streets)
    tree = shapely.STRtree(base)
    pairs = tree.query(cand, predicate="intersects")
    ends: dict[int, tuple[float, shapely.Point, int]] = {}
    for a, b in zip(*pairs, strict=True):
        if b == li[a]:
            continue
        inter = shapely.intersection(cand[a], base[b])
        for p in shapely.get_parts(inter):
            p = shapely.get_point(p, 0) if p.geom_type != "Point" else p
            d = shapely.line_locate_point(cand[a], p)
            if d > 5 and (a not in ends or d < ends[a][0]):
                ends[a] = (d, p, b)
    for a, (d, _p, _b) in ends.items():
        cand[a] = substring(cand[a], 0, d)
    # keep lanes that do not cross one another (greedy, in random order)
    order = rng.permutation(len(cand))
    accepted: list[int] = []
    for a in order:
        g = cand[a]
        if shapely.length(g) < 30:
            continue
        if accepted and np.any(shapely.intersects(g, cand[accepted])):
            continue
        accepted.append(a)
    accepted.sort()
    acc = np.array(accepted, dtype=int)
    # junctions become vertices of the streets
    attach: dict[int, list[shapely.Point]] = {}
    for a in acc:
        attach.setdefault(int(li[a]), []).append(shapely.Point(x0[a], y0[a]))
        if a in ends:
            attach.setdefault(int(ends[a][2]), []).append(ends[a][1])
    new_geoms = streets.geometry.to_numpy().copy()
    for si, pts in attach.items():
        new_geoms[si] = _insert_vertices(new_geoms[si], pts)
    streets = streets.set_geometry(gpd.GeoSeries(new_geoms, crs=crs, index=streets.index))
    syn = cand[acc]
    # names: "<street><n>巷" off named streets, else "<word><n>巷"
    base_names = streets["name"].to_numpy()[li[acc]]
    counter: dict[str, int] = {}
    names = []
    for bn in base_names:
        key = bn if isinstance(bn, str) else rng.choice(list(ALLEY_WORDS))
        counter[key] = counter.get(key, 0) + 1
        k = counter[key]
        num = CN_NUM[k - 1] if k <= 10 else str(k)
        names.append(f"{key}{num}巷")
    osm = lines[lines["highway"].isin(list(ALLEY_HIGHWAYS))]
    osm = osm[shapely.intersects(osm.geometry.to_numpy(), town)]
    osm_names = [n if isinstance(n, str) else f"{rng.choice(list(ALLEY_WORDS))}巷" for n in osm["name"]]
    geom = np.concatenate([osm.geometry.to_numpy(), syn])
    n = len(geom)
    mid = shapely.line_interpolate_point(geom, 0.5, normalized=True)
    mx, my = shapely.get_x(mid), shapely.get_y(mid)
    dq = np.min(np.hypot(mx[:, None] - quarters[:, 0], my[:, None] - quarters[:, 1]), axis=1)
    old = dq < 520
    hardened = rng.random(n) >= np.where(old, 0.7, 0.04)
    lit = rng.random(n) < np.where(hardened, 0.9, 0.45)
    width = np.round(np.where(old, rng.uniform(1.2, 3.5, n), rng.uniform(2.0, 6.0, n)), 1)
    alleys = gpd.GeoDataFrame({
        "name": osm_names + names, "hardened": hardened, "lit": lit, "width_m": width,
        "source": ["OSM"] * len(osm) + ["synthetic"] * len(syn),
    }, geometry=gpd.GeoSeries(geom, crs=crs))
    return alleys, streets


def _lloyd(x: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25) -> np.ndarray:
    """k-means centres of the points (Lloyd's iterations): seeds of roughly equal-area grids."""
    pts = np.column_stack([x, y])
    centres = pts[rng.choice(len(pts), k, replace=False)]
    for _ in range(iters):
        lab = cKDTree(centres).query(pts)[1]
        sums = np.zeros_like(centres)
        np.add.at(sums, lab, pts)
        cnt = np.bincount(lab, minlength=k)[:, None]
        centres = np.where(cnt > 0, sums / np.maximum(cnt, 1), centres)
    return centres


def _numbering(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Order (0-based) of features numbered west→east within rows of ROW_M counted north→south."""
    row = np.floor((cy.max() - cy) / ROW_M)
    return np.argsort(np.lexsort((cx, row)), kind="stable")


def grid_order(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """1-based numbers of grids from their centroids: rows of ``ROW_M`` metres from the
    northernmost centroid southwards, west→east within a row (STANDARDS.md, unit-grid codes)."""
    return _numbering(np.asarray(cx, float), np.asarray(cy, float)) + 1


def _grids(town: shapely.Geometry, points: gpd.GeoDataFrame, local: np.ndarray, rng: np.random.Generator,
           k: int) -> gpd.GeoDataFrame:
    """Grids: Voronoi cells of k-means centres of half area, half lane length (so grids are smaller
    where lanes are dense, as grids follow households), clipped to the town."""
    crs = points.crs
    minx, miny, maxx, maxy = town.bounds
    sx = rng.uniform(minx, maxx, 30_000)
    sy = rng.uniform(miny, maxy, 30_000)
    ok = _within(sx, sy, town)
    lx, ly, _ = _along(local, rng, 4000)
    inside = _within(lx, ly, town)
    centres = _lloyd(np.concatenate([sx[ok][:4000], lx[inside]]), np.concatenate([sy[ok][:4000], ly[inside]]),
                     k, rng)
    vor = shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=shapely.box(minx - 500, miny - 500,
                                                                                        maxx + 500, maxy + 500))
    cells = np.array(shapely.get_parts(vor))
    cells = shapely.intersection(cells, town)
    cells = cells[~shapely.is_empty(cells) & (shapely.area(cells) > 20_000)]
    # drop slivers of multi-part cells smaller than 5 % of the cell (they join a neighbour's gap)
    fixed = []
    for c in cells:
        parts = [p for p in shapely.get_parts(c) if p.geom_type == "Polygon"]
        big = max(p.area for p in parts)
        parts = [p for p in parts if p.area >= 0.05 * big]
        fixed.append(parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts))
    cells = np.array(fixed, dtype=object)
    cen = shapely.centroid(cells)
    cx, cy = shapely.get_x(cen), shapely.get_y(cen)
    # community: nearest community place node
    comm_names = [c for cs in STREET_OFFICES.values() for c in cs]
    cpts = points[points["name"].isin(comm_names)].drop_duplicates("name")
    cxy = np.column_stack([cpts.geometry.x, cpts.geometry.y])
    lab = cKDTree(cxy).query(np.column_stack([cx, cy]))[1]
    community = cpts["name"].to_numpy()[lab].astype(object)
    office_of = {c: o for o, cs in STREET_OFFICES.items() for c in cs}
    office = np.array([office_of[c] for c in community], dtype=object)
    frame = gpd.GeoDataFrame({"street_office": office, "community": community, "cx": cx, "cy": cy},
                             geometry=gpd.GeoSeries(cells, crs=crs))
    codes = np.empty(len(frame), dtype=object)
    for oi, (_o, comms) in enumerate(STREET_OFFICES.items(), start=1):
        present = [c for c in comms if (frame["community"] == c).any()]
        # communities numbered by the same rule, on the mean centroid of their grids
        ccx = np.array([frame.loc[frame["community"] == c, "cx"].mean() for c in present])
        ccy = np.array([frame.loc[frame["community"] == c, "cy"].mean() for c in present])
        cnum: np.ndarray = grid_order(ccx, ccy) if present else np.array([], dtype=int)
        for c, ci in zip(present, cnum, strict=True):
            m = (frame["community"] == c).to_numpy()
            g = grid_order(frame.loc[m, "cx"].to_numpy(), frame.loc[m, "cy"].to_numpy())
            codes[np.flatnonzero(m)] = [f"{COUNTY_CODE}{oi:03d}{ci:03d}{gi:02d}" for gi in g]
    frame["code"] = codes
    frame = frame.sort_values("code").reset_index(drop=True)
    n = len(frame)
    num = frame["code"].str[-2:].astype(int)
    frame["name"] = frame["community"] + "第" + num.astype(str) + "网格"
    frame["lead_unit"] = [LEAD_UNITS[i % len(LEAD_UNITS)] for i in rng.permutation(n)]
    frame["head"] = _names(rng, n)
    frame["phone"] = [f"1380000{v:04d}" for v in rng.choice(10_000, n, replace=False)]
    return frame.drop(columns=["cx", "cy"])


def _markets(points: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    spec = [  # name, near place, offset, standardized, polygon
        ("东门农贸市场", "东门街道办事处", (90, -40), True, True),
        ("花园农贸市场", "花园社区", (-60, 60), True, True),
        ("雄石菜市场", "雄石社区", (40, -50), True, False),
        ("西街菜市场", "西街社区", (30, 30), False, False),
        ("城北农贸市场", "城北社区", (50, 0), True, True),
        ("白果菜市场", "白果社区", (-40, -30), False, False),
        ("江边水产市场", "江边社区", (0, 40), True, False),
    ]
    local = streets.loc[streets["road_class"] != "主干路"].geometry.to_numpy()
    rows = []
    for name, place, off, std, poly in spec:
        xy = _point_of(points, place, (521000, 3130500)) + np.array(off)
        p = _snap(xy, local, offset_m=45)[0]
        if poly:
            w, h = rng.uniform(50, 80), rng.uniform(35, 55)
            g = shapely.box(p[0] - w / 2, p[1] - h / 2, p[0] + w / 2, p[1] + h / 2)
        else:
            g = shapely.Point(p)
        rows.append({"name": name, "standardized": std, "stalls": int(rng.integers(60, 320)), "geometry": g,
                     "x": p[0], "y": p[1]})
    m = gpd.GeoDataFrame(rows, crs=streets.crs)
    m["address"] = _address(m["x"].to_numpy(), m["y"].to_numpy(), streets)
    return m.drop(columns=["x", "y"])


def _in_gap(x: np.ndarray, y: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Inside one of the under-served districts (circles: x, y, radius)."""
    return np.any(np.hypot(x[:, None] - gaps[:, 0], y[:, None] - gaps[:, 1]) < gaps[:, 2], axis=1)


def _toilets(net: np.ndarray, main: np.ndarray, markets: gpd.GeoDataFrame, town: shapely.Geometry,
             gaps: np.ndarray, village: np.ndarray, streets: gpd.GeoDataFrame, rng: np.random.Generator
             ) -> gpd.GeoDataFrame:
    mk = shapely.centroid(markets.geometry.to_numpy())
    mxy = np.column_stack([shapely.get_x(mk), shapely.get_y(mk)])
    # a toilet by most markets first, then spaced ones along the network
    near_mk = _snap(mxy[:5] + rng.normal(0, 25, (5, 2)), net, offset_m=8)
    x, y = _beside(net, rng, 4000, offset_m=8, inside=town)
    spacing = np.where(_in_gap(x, y, gaps), 5000.0, rng.uniform(300, 420, len(x)))
    allx = np.concatenate([near_mk[:, 0], [village[0]], x])
    ally = np.concatenate([near_mk[:, 1], [village[1]], y])
    sp = np.concatenate([np.full(6, 300.0), spacing])
    keep = _greedy_spaced(allx, ally, sp, 60)
    tx, ty = allx[keep], ally[keep]
    n = len(tx)
    pts = shapely.points(tx, ty)
    d_main = shapely.distance(pts[:, None], main[None, :]).min(axis=1) if len(main) else np.full(n, 1e9)
    d_mk = np.hypot(tx[:, None] - mxy[:, 0], ty[:, None] - mxy[:, 1]).min(axis=1)
    cls = np.where(rng.random(n) < 0.5, "二类", "三类").astype(object)
    cls[d_main < 50] = "二类"
    cls[d_mk < 120] = "一类"
    cls[rng.random(n) < 0.12] = "一类"
    # deliberate shortfalls: one market toilet and one main-road toilet stay 三类; one dry toilet
    by_market = np.flatnonzero(d_mk < 120)
    if len(by_market) > 1:
        cls[by_market[1]] = "三类"
    on_main = np.flatnonzero((d_main < 50) & (d_mk >= 120))
    if len(on_main):
        cls[on_main[0]] = "三类"
    village_i = np.flatnonzero((tx == village[0]) & (ty == village[1]))
    if len(village_i):
        cls[village_i[0]] = "旱厕"
    seats = np.where(cls == "一类", rng.integers(10, 20, n), np.where(cls == "二类", rng.integers(6, 12, n),
                                                                    rng.integers(2, 7, n)))
    accessible = np.where(cls == "一类", True, np.where(cls == "二类", rng.random(n) < 0.7, rng.random(n) < 0.15))
    hours = rng.choice(["全天", "06:00-22:00", "05:30-23:00"], n, p=[0.45, 0.4, 0.15])
    prefix = _nearest_named(tx, ty, streets)[0]
    names = [f"{p}公厕" for p in prefix]
    seen: dict[str, int] = {}
    for i, nm in enumerate(names):
        seen[nm] = seen.get(nm, 0) + 1
        if seen[nm] > 1:
            names[i] = nm.replace("公厕", f"{seen[nm]}号公厕")
    if len(village_i):
        names[village_i[0]] = "花园村旱厕"
    return gpd.GeoDataFrame({
        "name": names, "address": _address(tx, ty, streets), "toilet_class": cls, "seats": seats,
        "accessible": accessible, "hours": hours,
    }, geometry=gpd.GeoSeries(pts, crs=streets.crs))


def _transfer_stations(points: gpd.GeoDataFrame, net: np.ndarray, streets: gpd.GeoDataFrame,
                       rng: np.random.Generator) -> gpd.GeoDataFrame:
    spec = [("城北垃圾中转站", "城北社区", (120, 60), 20.0), ("发电厂垃圾中转站", "发电厂社区", (-80, 60), 30.0),
            ("雄石垃圾中转站", "雄石社区", (100, 80), 15.0), ("花园垃圾中转站", "花园街道", (-150, -450), 40.0),
            ("炼厂垃圾中转站", "炼厂社区", (150, -1200), 25.0)]
    xy = np.array([_point_of(points, p, (521000, 3130500)) + np.array(o) for _, p, o, _ in spec])
    xy = _snap(xy, net, offset_m=15)
    return gpd.GeoDataFrame({
        "name": [s[0] for s in spec], "address": _address(xy[:, 0], xy[:, 1], streets),
        "capacity_tpd": [s[3] for s in spec],
    }, geometry=gpd.GeoSeries(shapely.points(xy), crs=streets.crs))


def _collection_points(net: np.ndarray, town: shapely.Geometry, gaps: np.ndarray, streets: gpd.GeoDataFrame,
                       rng: np.random.Generator) -> gpd.GeoDataFrame:
    x, y = _beside(net, rng, 6000, offset_m=4, inside=town)
    spacing = np.where(_in_gap(x, y, gaps), 450.0, rng.uniform(130, 200, len(x)))
    keep = _greedy_spaced(x, y, spacing, 180)
    x, y = x[keep], y[keep]
    n = len(x)
    return gpd.GeoDataFrame({
        "name": [f"收集点{i + 1:03d}" for i in range(n)], "address": _address(x, y, streets),
        "bins": rng.integers(2, 9, n),
    }, geometry=gpd.GeoSeries(shapely.points(x, y), crs=streets.crs))


def _residents(lines_all: np.ndarray, local: np.ndarray, town: shapely.Geometry, streets: gpd.GeoDataFrame,
               rng: np.random.Generator, target: int = 120) -> gpd.GeoDataFrame:
    x, y, idx = _along(local, rng, 1500)
    nx, ny = _normal_at(local, idx, x, y)
    side = rng.choice([-1.0, 1.0], len(x))
    w = rng.uniform(60, 170, len(x))  # along the street
    h = rng.uniform(50, 120, len(x))  # away from it
    off = 12 + h / 2
    cx, cy = x + side * nx * off, y + side * ny * off
    tx, ty = ny, -nx  # street direction
    corners = np.stack([
        np.column_stack([cx + tx * w / 2 + nx * h / 2, cy + ty * w / 2 + ny * h / 2]),
        np.column_stack([cx - tx * w / 2 + nx * h / 2, cy - ty * w / 2 + ny * h / 2]),
        np.column_stack([cx - tx * w / 2 - nx * h / 2, cy - ty * w / 2 - ny * h / 2]),
        np.column_stack([cx + tx * w / 2 - nx * h / 2, cy + ty * w / 2 - ny * h / 2]),
    ], axis=1)
    polys = shapely.polygons(corners)
    ok = shapely.within(polys, town)
    tree = shapely.STRtree(lines_all)
    hits = tree.query(shapely.buffer(polys, 5, quad_segs=2), predicate="intersects")
    ok[np.unique(hits[0])] = False
    polys, cx, cy = polys[ok], cx[ok], cy[ok]
    accepted: list[int] = []
    for i in range(len(polys)):
        if accepted and np.any(shapely.intersects(shapely.buffer(polys[i], 10, quad_segs=2), polys[accepted])):
            continue
        accepted.append(i)
        if len(accepted) >= target:
            break
    polys, cx, cy = polys[accepted], cx[accepted], cy[accepted]
    n = len(polys)
    area = shapely.area(polys)
    households = np.maximum(40, (area / 25 * rng.uniform(0.5, 1.1, n))).astype(int)
    population = (households * rng.uniform(2.5, 3.1, n)).astype(int)
    names, seen = [], set()
    for _ in range(n):
        while True:
            nm = f"{rng.choice(list(COMPOUND_WORDS))}{rng.choice(list(COMPOUND_SUFFIX))}"
            if nm not in seen:
                break
            nm = f"{nm}{CN_NUM[int(rng.integers(1, 9))]}期"
            if nm not in seen:
                break
        seen.add(nm)
        names.append(nm)
    return gpd.GeoDataFrame({"name": names, "address": _address(cx, cy, streets), "households": households,
                             "population": population}, geometry=gpd.GeoSeries(polys, crs=streets.crs))


def _sample_points(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame],
                   busy: np.ndarray, net: np.ndarray, town: shapely.Geometry, rng: np.random.Generator
                   ) -> gpd.GeoDataFrame:
    streets = layers["streets"]
    rows: list[tuple[str, str, float, float]] = []

    def add(cat: str, names: Any, xy: np.ndarray) -> None:
        xy = np.atleast_2d(xy)
        for nm, (px, py) in zip(names, xy, strict=True):
            rows.append((cat, str(nm), float(px), float(py)))

    def near(place: str, n: int, spread: float) -> np.ndarray:
        c = _point_of(points, place, (521000, 3130500))
        return _snap(c + rng.normal(0, spread, (n, 2)), net, offset_m=20)

    gov = _point_of(points, DEFAULT_GEOCODE, (523549, 3131248))
    add("医院", ["贵溪市人民医院", "贵溪市中医院", "贵溪市妇幼保健院", "东门街道社区卫生服务中心",
               "花园街道社区卫生服务中心"],
        np.vstack([near("信江社区", 1, 150), near("花园社区", 1, 200), near("北街社区", 1, 150),
                   near("东门街道办事处", 1, 150), near("四建社区", 1, 150)]))
    osm_school = points[points["other_tags"].fillna("").str.contains('"amenity"=>"school"')]
    add("学校", osm_school["name"], np.column_stack([osm_school.geometry.x, osm_school.geometry.y]))
    ninth = polys[polys["name"] == "贵溪市第九中学"]
    if len(ninth):
        c = ninth.geometry.iloc[0].representative_point()
        add("学校", ["贵溪市第九中学"], np.array([c.x, c.y]))
    extra_schools = ["贵溪市第一中学", "贵溪市实验小学", "东门小学", "雄石小学", "花园小学", "城北小学",
                     "信江幼儿园", "花园幼儿园", "机关幼儿园"]
    places = ["烧箕山社区", "城北社区", "东街社区", "雄石社区", "四建社区", "北街社区", "信江社区", "花园社区",
              "白果社区"]
    add("学校", extra_schools, np.vstack([near(p, 1, 150) for p in places]))
    add("车站", ["贵溪火车站", "贵溪汽车站", "城区公交总站"],
        np.vstack([_point_of(points, "贵溪", (520557, 3130954)), near("木丝岭社区", 1, 100),
                   near("白果社区", 1, 150)]))
    add("建筑工地", [f"{w}项目工地" for w in rng.choice(list(COMPOUND_WORDS), 8, replace=False)],
        np.vstack([near("白果社区", 3, 350), near("四建社区", 3, 500), near("雄石社区", 2, 300)]))
    mk = layers["markets"]
    c = shapely.centroid(mk.geometry.to_numpy())
    add("农贸市场", mk["name"], np.column_stack([shapely.get_x(c), shapely.get_y(c)]))
    res = layers["residents"]
    c = shapely.centroid(res.geometry.to_numpy())
    add("居民小区", res["name"], np.column_stack([shapely.get_x(c), shapely.get_y(c)]))
    al = layers["alleys"]
    pick = np.sort(rng.choice(len(al), min(60, len(al)), replace=False))
    c = shapely.line_interpolate_point(al.geometry.to_numpy()[pick], 0.5, normalized=True)
    add("背街小巷", al["name"].to_numpy()[pick], np.column_stack([shapely.get_x(c), shapely.get_y(c)]))
    for kind, cat in (("toilets", "公厕"), ("transfer_stations", "垃圾中转站")):
        f = layers[kind]
        add(cat, f["name"], np.column_stack([f.geometry.x, f.geometry.y]))
    main = streets[streets["road_class"].isin(["主干路", "次干路"]) & streets["name"].notna()]
    main = main.assign(_len=main.length).sort_values("_len", ascending=False).drop_duplicates("name")
    c = shapely.line_interpolate_point(main.geometry.to_numpy(), 0.5, normalized=True)
    inside = _within(shapely.get_x(c), shapely.get_y(c), shapely.buffer(town, 300))
    add("主次干道", main["name"].to_numpy()[inside], np.column_stack([shapely.get_x(c), shapely.get_y(c)])[inside])
    comm = points[points["name"].str.endswith("社区")]
    add("社区居委会", comm["name"] + "居委会", _snap(np.column_stack([comm.geometry.x, comm.geometry.y]),
                                                   net, offset_m=15))
    vil = points[points["name"].isin(["花园村", "柏里村", "黄坑村"])]
    add("城中村", vil["name"], np.column_stack([vil.geometry.x, vil.geometry.y]))
    add("机关单位", ["贵溪市人民政府"], gov)
    bureaus = ["县住建局", "县城管局", "县卫健委", "县教育局", "县市场监管局", "县公安局", "县财政局", "县交通运输局",
               "县生态环境局", "县商务局", "东门街道办事处", "雄石街道办事处", "花园街道办事处"]
    add("机关单位", bureaus, np.vstack([_snap(gov + rng.normal(0, 350, (10, 2)), net, offset_m=20),
                                    near("东门街道办事处", 1, 20), near("雄石社区", 1, 80),
                                    near("花园街道", 1, 40)]))
    hotels = [f"{w}{s}" for w, s in zip(rng.choice(list(COMPOUND_WORDS), 12, replace=False),
                                        rng.choice(["宾馆", "大酒店", "饭店", "商务酒店"], 12), strict=True)]
    add("宾馆饭店", hotels, np.vstack([near("信江社区", 6, 300), near("花园社区", 6, 350)]))
    # 五小场所 along the busy streets and around the markets
    kinds = {"小餐饮店": ("小吃", "面馆", "米粉店", "快餐", "烧烤"), "小食品店": ("便利店", "副食店", "超市"),
             "小浴室": ("浴室",), "小美容美发": ("美发", "美容院"), "小歌舞厅": ("KTV",), "小旅店": ("旅社", "招待所")}
    flat = [(k, s) for k, ss in kinds.items() for s in ss]
    n5 = 140
    x, y, idx = _along(busy, rng, n5)
    nx, ny = _normal_at(busy, idx, x, y)
    side = rng.choice([-1.0, 1.0], n5)
    x, y = x + side * nx * 12, y + side * ny * 12
    pick = rng.integers(0, len(flat), n5)
    names5 = [f"{sn}记{flat[p][1]}" for sn, p in zip(rng.choice(list(SURNAMES), n5), pick, strict=True)]
    add("五小场所", names5, np.column_stack([x, y]))
    sp = pd.DataFrame(rows, columns=["category", "name", "x", "y"])
    sp["address"] = _address(sp["x"].to_numpy(), sp["y"].to_numpy(), streets)
    sp["subtype"] = None
    sp.loc[sp["category"] == "五小场所", "subtype"] = [flat[p][0] for p in pick]
    return gpd.GeoDataFrame(sp.drop(columns=["x", "y"]), geometry=gpd.GeoSeries(
        shapely.points(sp["x"].to_numpy(), sp["y"].to_numpy()), crs=streets.crs))


def _grid_of(x: np.ndarray, y: np.ndarray, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Row number of the grid holding each point (-1 outside): a plain spatial join."""
    pts = gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(x, y), crs=grids.crs))
    hit = gpd.sjoin(pts, grids[["geometry"]].reset_index(drop=True), how="left", predicate="within")
    hit = hit[~hit.index.duplicated(keep="first")]
    return np.array(hit["index_right"].fillna(-1).astype(int).to_numpy(), dtype=int)


def _assign_codes(frame: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> np.ndarray:
    rp = shapely.point_on_surface(frame.geometry.to_numpy())
    gi = _grid_of(shapely.get_x(rp), shapely.get_y(rp), grids)
    codes = grids["code"].to_numpy()
    return np.array([codes[i] if i >= 0 else None for i in gi], dtype=object)


# ------------------------------------------------------------------------ problems
Deadlines = Callable[[pd.Series, pd.Series], pd.Series]


def _times(rng: np.random.Generator, n: int, *, evening: bool = False, early: bool = False) -> np.ndarray:
    """Report times: days with a rising campaign trend (or in the first three months), daytime hours."""
    span = (END.normalize() - START).days + 1
    if early:
        day = rng.uniform(0, 90, n)
    else:
        u = rng.random(n)  # density ∝ 1 + 0.8 t: inverse CDF
        a = 0.4
        day = span * (-1 + np.sqrt(1 + 4 * a * u * (1 + a))) / (2 * a)
    day = np.floor(day)
    hour = rng.uniform(18, 23.5, n) if evening else np.clip(rng.normal(12.5, 3.2, n), 6.5, 21.5)
    secs = np.round((day * 24 + hour) * 3600)
    return (START.to_datetime64() + secs.astype("int64").astype("timedelta64[s]")).astype("datetime64[ms]")


@dataclass
class _Cases:
    x: np.ndarray
    y: np.ndarray
    category: np.ndarray
    source: np.ndarray
    reported: np.ndarray  # datetime64[ms]
    slow: np.ndarray  # closure-time multiplier (grid performance)
    force_close: np.ndarray  # bool: must be closed (a rebound predecessor)


def _lifecycle(c: _Cases, deadline: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Event times of each case: 派遣, 处置, 核查(1), [返工, 处置, 核查], 结案; NaT when not reached."""
    n = len(c.x)
    h = np.timedelta64(3_600_000, "ms")
    t0 = c.reported
    allowed = np.maximum((deadline - t0) / h, 1.0)  # hours
    f = np.exp(rng.normal(np.log(0.55), 0.65, n)) * c.slow
    f = np.where(c.force_close, np.minimum(f, 0.9), f)
    total = np.maximum(allowed * f, 1.5)  # hours from report to closure
    rework = (rng.random(n) < 0.08 * c.slow) & ~c.force_close
    total = np.where(rework, total * 1.7, total)
    stuck = (rng.random(n) < 0.035 * c.slow) & ~c.force_close
    stuck_at = rng.choice([1, 2], n)  # stuck after 派遣 (1) or 处置 (2)

    def at(hours: np.ndarray) -> np.ndarray:
        return t0 + (np.round(hours * 3600).astype("int64") * 1000).astype("timedelta64[ms]")

    t1 = at(np.minimum(rng.exponential(1.0, n) + 0.1, total * 0.2))
    t2 = at(np.minimum((t1 - t0) / h + rng.exponential(1.5, n) + 0.1, total * 0.4))
    t3 = at(np.where(rework, total * 0.5, total * 0.85))
    t3b = at(total * 0.55)
    t3c = at(total * 0.6)
    t3d = at(total * 0.85)
    t4 = at(total)
    nat = np.datetime64("NaT", "ms")
    ev = {"派遣": t1, "处置": t2, "核查": t3, "返工": np.where(rework, t3b, nat),
          "处置2": np.where(rework, t3c, nat), "核查2": np.where(rework, t3d, nat), "结案": t4}
    for k in ("处置", "核查", "返工", "处置2", "核查2", "结案"):
        ev[k] = np.where(stuck & ((stuck_at == 1) | (k != "处置")), nat, ev[k])
    return ev


_SEQ = (("立案", "派遣", "派遣"), ("派遣", "处置", "处置"), ("处置", "核查", "核查"), ("核查", "返工", "返工"),
        ("返工", "处置", "处置2"), ("处置", "核查", "核查2"), ("核查", "结案", "结案"))
_ACTORS = {"派遣": "区指挥中心", "处置": "责任单位", "核查": "网格员", "返工": "网格员", "结案": "区指挥中心"}
_NOTES = {"派遣": "派遣至责任单位", "处置": "开始处置", "核查": "处置完毕, 待核查", "返工": "核查未通过, 返工",
          "结案": "核查通过, 结案"}


def _status_and_history(ids: np.ndarray, reported: np.ndarray, source: np.ndarray,
                        ev: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Status and closed_at at AS_OF, and the history rows (events up to AS_OF)."""
    asof = AS_OF.to_datetime64()
    status = np.full(len(ids), "立案", dtype=object)
    frames = [pd.DataFrame({"problem_id": ids, "from_status": None, "to_status": "立案", "at": reported,
                            "actor": np.char.add("上报:", source.astype(str)), "note": "立案"})]
    for frm, to, key in _SEQ:
        t = ev[key]
        ok = ~np.isnat(t) & (t <= asof)
        status[ok] = to
        if ok.any():
            frames.append(pd.DataFrame({"problem_id": ids[ok], "from_status": frm, "to_status": to, "at": t[ok],
                                        "actor": _ACTORS[to], "note": _NOTES[to]}))
    closed = np.where(status == "结案", ev["结案"], np.datetime64("NaT", "ms"))
    hist = pd.concat(frames, ignore_index=True)
    hist["at"] = hist["at"].astype("datetime64[ms]")
    hist = hist.sort_values(["problem_id", "at"], kind="stable").reset_index(drop=True)
    return status, closed, hist


def _problems(n_total: int, grids: gpd.GeoDataFrame, net: np.ndarray, anchors: dict[str, np.ndarray],
              night_street: shapely.LineString, settings: Settings, deadlines: Deadlines, rng: np.random.Generator,
              streets: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, Any]]:
    cats = np.array(settings.problem_categories, dtype=object)
    w = np.array([CATEGORY_WEIGHT.get(c, 2) for c in cats], dtype=float)
    w /= w.sum()

    def cat_pick(n: int, names: tuple[str, ...] | None = None) -> np.ndarray:
        if names:
            names = tuple(c for c in names if c in set(cats)) or tuple(cats)
            return rng.choice(np.array(names, dtype=object), n)
        return rng.choice(cats, n, p=w)

    # grid performance: most grids ~1, a few much worse (more reports, slower closure)
    ng = len(grids)
    heat = np.exp(rng.normal(0, 0.45, ng))
    bad = rng.choice(ng, max(2, ng // 12), replace=False)
    heat[bad] *= 3.5
    slow_g = np.clip(np.exp(rng.normal(0, 0.2, ng)), 0.7, 1.5)
    slow_g[bad] *= 1.8
    n_pile = int(round(0.03 * n_total))
    n_chain_sites = max(3, n_total // 200)
    chain_len = rng.integers(2, 5, n_chain_sites)  # 2–4 reports at a site
    n_follow = int((chain_len - 1).sum())
    hot = [  # anchor, share, spread (m), categories, evening
        ("东门农贸市场", 0.07, 45, ("占道经营", "暴露垃圾", "乱堆物料", "店外经营"), False),
        ("花园农贸市场", 0.04, 40, ("占道经营", "非机动车乱停放", "暴露垃圾"), False),
        ("贵溪站", 0.04, 60, ("机动车乱停放", "非法小广告", "占道经营"), False),
        ("花园村", 0.04, 70, ("私搭乱建", "积存垃圾渣土", "乱堆物料", "暴露垃圾", "乱排污水"), False),
    ]
    n_night = int(round(0.06 * n_total))
    n_hot = [int(round(s * n_total)) for _, s, _, _, _ in hot]
    n_bg = n_total - n_pile - n_follow - n_night - sum(n_hot) - n_chain_sites
    if n_bg < 0:
        raise ValueError(f"n_problems={n_total} is too small for the demo's structure; use ≥ 300")
    xs, ys, cs, srcs, ts, kinds = [], [], [], [], [], []

    def push(x: np.ndarray, y: np.ndarray, c: np.ndarray, t: np.ndarray, kind: str, src: np.ndarray | None = None):
        xs.append(x)
        ys.append(y)
        cs.append(c)
        ts.append(t)
        srcs.append(src if src is not None else rng.choice(SOURCES, len(x), p=SOURCE_P))
        kinds.append(np.full(len(x), kind, dtype=object))

    # background along the network, thinned by grid heat
    cand = 4 * n_bg + 200
    x, y = _beside(net, rng, cand, offset_m=rng.normal(0, 6, cand))
    g = _grid_of(x, y, grids)
    keep = (g >= 0) & (rng.random(cand) < np.where(g >= 0, heat[np.maximum(g, 0)], 0) / heat.max())
    sel = np.flatnonzero(keep)
    if len(sel) < n_bg:  # not enough after thinning: top up uniformly among those inside
        extra = np.setdiff1d(np.flatnonzero(g >= 0), sel)
        sel = np.concatenate([sel, rng.choice(extra, n_bg - len(sel), replace=False)])
    sel = np.sort(rng.choice(sel, n_bg, replace=False))
    push(x[sel], y[sel], cat_pick(n_bg), _times(rng, n_bg), "background")
    # hotspots
    for (anchor, _s, spread, hc, evening), n in zip(hot, n_hot, strict=True):
        c = anchors[anchor]
        push(c[0] + rng.normal(0, spread, n), c[1] + rng.normal(0, spread, n), cat_pick(n, hc),
             _times(rng, n, evening=evening), "hotspot")
    # night market street: along the street, evenings
    ls = night_street
    d = rng.random(n_night) * ls.length
    p = shapely.line_interpolate_point(ls, d)
    sx, sy = shapely.get_x(p), shapely.get_y(p)
    nx, ny = _normal_at(np.array([ls]), np.zeros(n_night, dtype=int), sx, sy)
    o = rng.normal(0, 7, n_night)
    push(sx + nx * o, sy + ny * o, cat_pick(n_night, ("店外经营", "占道经营", "暴露垃圾", "乱排污水", "沿街晾挂")),
         _times(rng, n_night, evening=True), "hotspot")
    # the pile: hotline calls the geocoder could not place land on the government's coordinate
    gov = anchors[DEFAULT_GEOCODE]
    push(np.full(n_pile, gov[0]), np.full(n_pile, gov[1]), cat_pick(n_pile), _times(rng, n_pile), "pile",
         rng.choice(np.array(["12345", "群众举报"], dtype=object), n_pile, p=[0.75, 0.25]))
    # first reports of the rebound chains: background spots, early in the period
    site = rng.choice(len(x), n_chain_sites * 3, replace=False)
    site = site[g[site] >= 0][:n_chain_sites]
    chain_cat = cat_pick(len(site), REBOUND_CATEGORIES)
    push(x[site], y[site], chain_cat, _times(rng, len(site), early=True), "rebound")
    X, Y = np.concatenate(xs), np.concatenate(ys)
    # anything that fell outside every grid (a hotspot spilling over water) moves onto the network
    gi = _grid_of(X, Y, grids)
    out = np.flatnonzero(gi < 0)
    if len(out):
        inside = np.flatnonzero(g >= 0)
        rep = rng.choice(inside, len(out))
        X[out], Y[out] = x[rep], y[rep]
        gi[out] = g[rep]
    cases = _Cases(X, Y, np.concatenate(cs), np.concatenate(srcs), np.concatenate(ts),
                   slow_g[gi], np.zeros(len(X), dtype=bool))
    kind = np.concatenate(kinds)
    cases.force_close[kind == "rebound"] = True
    n_first = len(X)
    chain_first = np.flatnonzero(kind == "rebound")
    remaining = chain_len[: len(chain_first)] - 1
    dl = deadlines(pd.Series(cases.category), pd.Series(cases.reported)).to_numpy().astype("datetime64[ms]")
    ev = _lifecycle(cases, dl, rng)
    evs = [ev]
    dls = [dl]
    # rebound rounds: the same category reported again near the spot 1–25 days after each closure
    prev = chain_first
    prev_closed = ev["结案"][prev]
    all_cases = [cases]
    offset = n_first
    while len(prev) and (remaining > 0).any():
        go = remaining > 0
        prev, prev_closed, remaining = prev[go], prev_closed[go], remaining[go]
        m = len(prev)
        days = rng.uniform(1, 25, m)
        t = prev_closed + (np.round(days * 86_400).astype("int64") * 1000).astype("timedelta64[ms]")
        ang = rng.uniform(0, 2 * np.pi, m)
        r = rng.uniform(0, 35, m)
        allx = np.concatenate([c.x for c in all_cases])
        ally = np.concatenate([c.y for c in all_cases])
        allc = np.concatenate([c.category for c in all_cases])
        alls = np.concatenate([c.slow for c in all_cases])
        nc = _Cases(allx[prev] + r * np.cos(ang), ally[prev] + r * np.sin(ang), allc[prev],
                    rng.choice(SOURCES, m, p=SOURCE_P), t, alls[prev], remaining > 1)
        gi2 = _grid_of(nc.x, nc.y, grids)
        bad_pos = gi2 < 0
        nc.x[bad_pos], nc.y[bad_pos] = allx[prev][bad_pos], ally[prev][bad_pos]
        d2 = deadlines(pd.Series(nc.category), pd.Series(nc.reported)).to_numpy().astype("datetime64[ms]")
        e2 = _lifecycle(nc, d2, rng)
        all_cases.append(nc)
        evs.append(e2)
        dls.append(d2)
        kind = np.concatenate([kind, np.full(m, "rebound", dtype=object)])
        prev = np.arange(offset, offset + m)
        offset += m
        prev_closed = e2["结案"]
        remaining = remaining - 1
    X = np.concatenate([c.x for c in all_cases])
    Y = np.concatenate([c.y for c in all_cases])
    cat = np.concatenate([c.category for c in all_cases])
    src = np.concatenate([c.source for c in all_cases])
    rep_t = np.concatenate([c.reported for c in all_cases])
    dl = np.concatenate(dls)
    ev = {k: np.concatenate([e[k] for e in evs]) for k in evs[0]}
    # ids in report order
    order = np.lexsort((np.arange(len(X)), rep_t))
    X, Y, cat, src, rep_t, dl, kind = X[order], Y[order], cat[order], src[order], rep_t[order], dl[order], kind[order]
    ev = {k: v[order] for k, v in ev.items()}
    ids = np.arange(1, len(X) + 1)
    status, closed, hist = _status_and_history(ids, rep_t, src, ev)
    gi = _grid_of(X, Y, grids)
    codes = grids["code"].to_numpy()
    grid_code = np.array([codes[i] if i >= 0 else None for i in gi], dtype=object)
    lead = grids["lead_unit"].to_numpy()
    route = {c.name: c.route_to for c in settings.problems.categories if c.route_to}
    unit = np.array([route.get(c) or (lead[i] if i >= 0 else None) for c, i in zip(cat, gi, strict=True)],
                    dtype=object)
    place, _num = _nearest_named(X, Y, streets)
    desc = np.char.add(np.char.add(place.astype(str), "附近"), cat.astype(str))
    desc = np.where(kind == "pile", np.char.add("市民来电反映: ", cat.astype(str)), desc)
    frame = gpd.GeoDataFrame({
        "problem_id": ids, "category": cat, "description": desc, "source": src,
        "reported_at": rep_t, "status": status, "deadline": dl, "closed_at": closed,
        "grid_code": grid_code, "unit": unit, "demo_truth": kind,
    }, geometry=gpd.GeoSeries(shapely.points(X, Y), crs=grids.crs))
    info = {"pile_at": [float(gov[0]), float(gov[1])], "pile_count": int(n_pile),
            "bad_grids": sorted(grids["code"].to_numpy()[bad].tolist()), "rebound_sites": int(len(chain_first)),
            "hotspots": [h[0] for h in hot] + [f"{NIGHT_MARKET_STREET}夜市"]}
    return frame, hist, info


# ------------------------------------------------------------------------ all together
def make_demo_layers(settings: Settings, *, seed: int = 2026, n_problems: int = 5000,
                     deadlines: Deadlines, osm_path: str | Path = OSM_PATH) -> DemoData:
    """Every layer of the demo county, deterministic from ``seed``.

    Parameters
    ----------
    settings
        Project settings (problem categories and their routing are read from them).
    seed
        Seed of the random generator; the same seed gives identical frames.
    n_problems
        Number of problem reports (≥ 300) over the six months ending 2026-11-15.
    deadlines
        ``deadlines(categories, reported_at) -> Series`` of deadlines (the workday calendar lives
        in ``geo.problems``; the caller passes it in, as ``layers`` may not import ``geo``).
    osm_path
        The OSM extract (default: the built-in Guixi centre).

    Returns
    -------
    DemoData
        Layers by kind in EPSG:4548 (metres) and the ``problem_history`` table.
    """
    rng = np.random.default_rng(seed)
    lines, points, polys = read_osm(osm_path)
    clip = bounds_polygon()
    streets = _streets(lines)
    town = _town_area(lines, polys, clip)
    quarters = np.array([_point_of(points, "西街社区", (519582, 3130266)),
                         _point_of(points, "花园村", (522759, 3130560))])
    alleys, streets = _alleys(streets, lines, town, quarters, rng)
    net = np.concatenate([streets.geometry.to_numpy(), alleys.geometry.to_numpy()])
    local = np.concatenate([streets.loc[streets["road_class"] != "主干路"].geometry.to_numpy(),
                            alleys.geometry.to_numpy()])
    grids = _grids(town, points, local, rng, k=52)
    residents = _residents(net, local, town, streets, rng)
    # households of a grid: its compounds plus scattered housing
    rp = shapely.point_on_surface(residents.geometry.to_numpy())
    gi = _grid_of(shapely.get_x(rp), shapely.get_y(rp), grids)
    hh = np.bincount(gi[gi >= 0], weights=residents["households"].to_numpy()[gi >= 0], minlength=len(grids))
    grids["households"] = (hh + rng.integers(80, 400, len(grids))).astype(int)
    markets = _markets(points, streets, rng)
    gaps = np.array([[*(_point_of(points, "大岩苏家", (524620, 3131847)) + [-150, -500]), 800.0],
                     [*(_point_of(points, "南街社区", (519641, 3129796)) + [-250, 120]), 520.0]])
    main = streets.loc[streets["road_class"].isin(settings.toilet_class.road_classes)].geometry.to_numpy()
    village = _snap(_point_of(points, "花园村", (522759, 3130560)), local, offset_m=8)[0]
    toilets = _toilets(net, main, markets, town, gaps, village, streets, rng)
    transfer = _transfer_stations(points, local, streets, rng)
    collection = _collection_points(local, town, gaps, streets, rng)
    layers: dict[str, gpd.GeoDataFrame] = {
        "streets": streets, "alleys": alleys, "grids": grids, "markets": markets, "toilets": toilets,
        "transfer_stations": transfer, "collection_points": collection, "residents": residents,
    }
    busy = streets.loc[streets["busy"]].geometry.to_numpy()
    busy = busy[shapely.intersects(busy, town)]
    layers["sample_points"] = _sample_points(points, polys, layers, busy, local, town, rng)
    for kind in ("alleys", "sample_points"):
        layers[kind]["grid_code"] = _assign_codes(layers[kind], grids)
    # sample places outside every grid (villages and schools beyond the town) are not candidates
    sp = layers["sample_points"]
    layers["sample_points"] = sp[sp["grid_code"].notna()].reset_index(drop=True)
    mk = markets.set_index("name").geometry
    anchors = {
        "东门农贸市场": np.array(mk["东门农贸市场"].centroid.coords[0]),
        "花园农贸市场": np.array(mk["花园农贸市场"].centroid.coords[0]),
        "贵溪站": _point_of(points, "贵溪", (520557, 3130954)) + [60, -40],
        "花园村": _point_of(points, "花园村", (522759, 3130560)),
        DEFAULT_GEOCODE: _point_of(points, DEFAULT_GEOCODE, (523549, 3131248)),
    }
    ns = streets.loc[streets["name"] == NIGHT_MARKET_STREET]
    night = ns.geometry.iloc[0] if len(ns) else streets.loc[streets["busy"]].geometry.iloc[0]
    problems, history, pinfo = _problems(n_problems, grids, net, anchors, night, settings, deadlines, rng, streets)
    layers["problems"] = problems
    layers["streets"] = streets.drop(columns=["highway"])
    params = {"seed": seed, "n_problems": n_problems, "osm": OSM_SOURCE, "attribution": ATTRIBUTION,
              "gaps": {"east": gaps[0].round(0).tolist(), "south_west": gaps[1].round(0).tolist()},
              "problems": pinfo, "as_of": AS_OF.isoformat()}
    return DemoData(layers=layers, tables={"problem_history": history}, params=params)
