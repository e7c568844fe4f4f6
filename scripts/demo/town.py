"""The demo town: its streets and alleys from OpenStreetMap, its built-up area, grids and compounds.

Streets and the OSM alleys are read by the importer's own path (:mod:`sanigrid.layers.osm`,
:func:`sanigrid.layers.importers.read_file` and :func:`sanigrid.layers.validation.validate`), with
the road classes of the demo project's settings, so `sanigrid import alleys guixi-center.osm` in the
demo project gives the very OSM alleys the demo holds. Grids of a point are found by
:func:`sanigrid.geo.grids.assign_grid`, the rule every analysis uses.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely.ops import substring

from sanigrid.geo.grids import assign_grid
from sanigrid.layers.importers import read_file
from sanigrid.layers.osm import read_elements, read_osm
from sanigrid.layers.settings import Settings
from sanigrid.layers.validation import validate
from sanigrid.scripts.demo._geometry import address, along, insert_vertices, normal_at, person_names, within
from sanigrid.scripts.demo.facts import (
    ALLEY_WORDS,
    ATTRIBUTION,
    BUSY_STREETS,
    CN_NUM,
    COMPOUND_SUFFIX,
    COMPOUND_WORDS,
    COUNTY_CODE,
    COUNTY_NAME,
    DEMO_CRS,
    LEAD_UNITS,
    OSM_BOUNDS,
    OSM_PATH,
    ROW_M,
    STREET_OFFICES,
)

#: the demo county's road classes, recorded in its settings (so an import there gives the same):
#: its few arterials make OSM secondary roads main roads (主干路) and tertiary ones 次干路; living
#: streets are back alleys (the alleys layer), not streets
ROAD_CLASS = {
    "motorway": "主干路", "trunk": "主干路", "primary": "主干路", "secondary": "主干路",
    "motorway_link": "主干路", "trunk_link": "主干路", "primary_link": "主干路",
    "secondary_link": "主干路", "tertiary": "次干路", "tertiary_link": "次干路",
    "residential": "支路", "unclassified": "支路", "living_street": "",
}


def demo_settings(base: Settings | None = None) -> Settings:
    """Settings of the demo project: name, county code, CRS, road classes and the ODbL attribution."""
    s = (base or Settings()).model_copy(deep=True)
    s.project.name = COUNTY_NAME
    s.project.county_code = COUNTY_CODE
    s.project.crs = DEMO_CRS
    s.project.population = 120_000
    s.project.attribution = ATTRIBUTION
    s.imports.osm_road_class = {**s.imports.osm_road_class, **ROAD_CLASS}
    s.imports.osm_road_class_source = "demo: OSM secondary treated as 主干路 in this county town"
    return s


def bounds_polygon(crs: str = DEMO_CRS) -> shapely.Polygon:
    """The extract's bounds as a polygon in ``crs``."""
    return gpd.GeoSeries([shapely.box(*OSM_BOUNDS)], crs=4326).to_crs(crs).iloc[0]


def _elements(path: Path, layer: str, keys: tuple[str, ...], crs: str) -> gpd.GeoDataFrame:
    """One OSM layer with the tags ``keys`` as columns, in ``crs``."""
    el = read_elements(path, layer).frame
    cols = {k: [t.get(k) for t in el["tags"]] for k in keys}
    return gpd.GeoDataFrame({"osm_id": el["osm_id"], **cols}, geometry=el.geometry, crs=4326).to_crs(crs)


def read_town(path: str | Path = OSM_PATH, settings: Settings | None = None, *, crs: str = DEMO_CRS
              ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Streets (as the importer maps them, clipped to the extract), highway lines, named points and areas.

    All in ``crs``; the streets' ``busy`` is the demo's list of busy streets.
    """
    path = Path(path)
    s = settings or demo_settings()
    clip = bounds_polygon(crs)
    streets = read_osm(path, kind="streets", road_classes=s.imports.osm_road_class).frame.to_crs(crs)
    streets = streets.clip(clip).explode(index_parts=False)
    streets = streets[(streets.geom_type == "LineString") & (streets.length > 1.0)].reset_index(drop=True)
    streets["busy"] = streets["name"].isin(BUSY_STREETS)
    streets["name"] = streets["name"].astype(object).where(streets["name"].notna(), None)
    lines = _elements(path, "lines", ("name", "highway"), crs)
    lines = lines[lines["highway"].notna()].clip(clip)
    points = _elements(path, "points", ("name", "amenity"), crs)
    points = points[points["name"].notna()].clip(clip).reset_index(drop=True)
    polys = _elements(path, "multipolygons", ("name", "natural", "building"), crs).reset_index(drop=True)
    return streets, lines, points, polys


def osm_alleys(path: str | Path, grids: gpd.GeoDataFrame, settings: Settings) -> gpd.GeoDataFrame:
    """The file's alleys exactly as `sanigrid import alleys FILE` accepts them into a project with ``grids``."""
    raw = read_file(Path(path), kind="alleys", road_classes=settings.imports.osm_road_class)
    boundary = gpd.GeoSeries([grids.union_all()], crs=grids.crs)
    report = validate("alleys", raw, settings=settings, boundary=boundary)
    return report.accepted.to_crs(grids.crs).reset_index(drop=True)


def alleys_layer(osm: gpd.GeoDataFrame, lanes: np.ndarray, lane_names: list[str], quarters: np.ndarray,
                 rng: np.random.Generator) -> gpd.GeoDataFrame:
    """OSM alleys (their own values kept) and synthetic lanes; blanks filled with synthetic values.

    Alleys near the two old ``quarters`` are mostly unhardened, narrow and often unlit.
    """
    crs = osm.crs
    osm_names = [n if isinstance(n, str) else f"{rng.choice(list(ALLEY_WORDS))}巷" for n in osm["name"]]
    geom = np.concatenate([osm.geometry.to_numpy(), lanes])
    n = len(geom)
    mid = shapely.line_interpolate_point(geom, 0.5, normalized=True)
    mx, my = shapely.get_x(mid), shapely.get_y(mid)
    dq = np.min(np.hypot(mx[:, None] - quarters[:, 0], my[:, None] - quarters[:, 1]), axis=1)
    old = dq < 520
    hardened = rng.random(n) >= np.where(old, 0.7, 0.04)
    lit = rng.random(n) < np.where(hardened, 0.9, 0.45)
    width = np.round(np.where(old, rng.uniform(1.2, 3.5, n), rng.uniform(2.0, 6.0, n)), 1)
    values: dict[str, np.ndarray] = {"hardened": hardened, "lit": lit, "width_m": width}
    for col, drawn in values.items():  # what OSM says wins; the draw only fills its blanks
        given = pd.Series(osm[col], dtype=object) if col in osm.columns else pd.Series([None] * len(osm))
        given = given.where(given.notna(), None).to_numpy(dtype=object)
        values[col] = np.where(pd.isna(given), drawn[: len(osm)], given).tolist() + drawn[len(osm):].tolist()
    return gpd.GeoDataFrame({
        "name": osm_names + list(lane_names), **values,
        "source": ["OSM"] * len(osm) + ["synthetic"] * len(lanes),
        "osm_id": list(osm["osm_id"]) + [None] * len(lanes),
    }, geometry=gpd.GeoSeries(geom, crs=crs))


def grid_rows(x: np.ndarray, y: np.ndarray, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Row number of the grid holding each point (-1 outside), by :func:`~sanigrid.geo.grids.assign_grid`."""
    pts = gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(x, y), crs=grids.crs))
    code = assign_grid(pts, grids).to_numpy()
    row = {c: i for i, c in enumerate(grids["code"].to_numpy())}
    return np.array([row.get(c, -1) if c is not None else -1 for c in code], dtype=int)


def grid_codes(frame: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Grid code of each feature (``None`` outside), by :func:`~sanigrid.geo.grids.assign_grid`."""
    return assign_grid(frame, grids).to_numpy(dtype=object)


def town_area(lines: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, clip: shapely.Polygon) -> shapely.Geometry:
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


def synthetic_lanes(streets: gpd.GeoDataFrame, town: shapely.Geometry, rng: np.random.Generator
                    ) -> tuple[np.ndarray, list[str], gpd.GeoDataFrame]:
    """Synthetic lanes off the local streets (some running through to the next street).

    Returns (lane geometries, their names, streets with the lane junctions inserted as vertices).
    """
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
    nx, ny = normal_at(base, li, x0, y0)
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
        new_geoms[si] = insert_vertices(new_geoms[si], pts)
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
    return syn, names, streets


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


def grids_layer(town: shapely.Geometry, points: gpd.GeoDataFrame, local: np.ndarray, rng: np.random.Generator,
           k: int) -> gpd.GeoDataFrame:
    """Grids: Voronoi cells of k-means centres of half area, half lane length (so grids are smaller
    where lanes are dense, as grids follow households), clipped to the town."""
    crs = points.crs
    minx, miny, maxx, maxy = town.bounds
    sx = rng.uniform(minx, maxx, 30_000)
    sy = rng.uniform(miny, maxy, 30_000)
    ok = within(sx, sy, town)
    lx, ly, _ = along(local, rng, 4000)
    inside = within(lx, ly, town)
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
    frame["head"] = person_names(rng, n)
    frame["phone"] = [f"1380000{v:04d}" for v in rng.choice(10_000, n, replace=False)]
    return frame.drop(columns=["cx", "cy"])


def residents(lines_all: np.ndarray, local: np.ndarray, town: shapely.Geometry, streets: gpd.GeoDataFrame,
               rng: np.random.Generator, target: int = 120) -> gpd.GeoDataFrame:
    x, y, idx = along(local, rng, 1500)
    nx, ny = normal_at(local, idx, x, y)
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
    return gpd.GeoDataFrame({"name": names, "address": address(cx, cy, streets), "households": households,
                             "population": population}, geometry=gpd.GeoSeries(polys, crs=streets.crs))
