"""The demo's streetscape: a 城中村 and a 城乡结合部 zone, street facades and street furniture.

Synthetic, on the real streets: the urban village 花园村 is a 城中村 zone where fewer facades are
painted and more components are damaged or missing than in the old town; 大岩苏家 on the eastern edge
is a 城乡结合部 zone. Facades are 30 m pieces of the street sides (lines, a few surveyed ones as
polygons with their facade area); components are manholes, lamps and bins along the streets (points)
and kerbs and green strips (lines). Drawn from their own random stream (``seed`` and 14, the issue), so
the other demo layers do not change with them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops

from sanigrid.scripts.demo._geometry import along, beside, point_of
from sanigrid.scripts.demo.facts import DEMO_CRS

#: (name, zone type, place of the extract, fallback point, radius m, painted share, good-repair share)
ZONES = (
    ("花园村", "城中村", "花园村", (522759, 3130560), 380.0, 0.45, 0.6),
    ("大岩苏家", "城乡结合部", "大岩苏家", (524620, 3131847), 330.0, 0.6, 0.75),
)
#: painted share and good-repair share elsewhere in the town
ELSEWHERE = (0.88, 0.92)
FACADE_M = 30.0
POINT_KINDS = ("井盖", "路灯", "垃圾桶", "果皮箱")
LINE_KINDS = ("路沿石", "绿化带", "护栏")


def _pieces(lines: np.ndarray, step_m: float, length_m: float) -> np.ndarray:
    """Pieces ``length_m`` long every ``step_m`` along each line (lines shorter than a piece are skipped)."""
    out = []
    for line in lines:
        for start in np.arange(0.0, shapely.length(line) - length_m, step_m):
            out.append(shapely.ops.substring(line, start, start + length_m))
    return np.asarray(out, dtype=object)


def streetscape(points: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, alleys: gpd.GeoDataFrame,
                town: shapely.Geometry, *, seed: int) -> dict[str, gpd.GeoDataFrame]:
    """``zones``, ``facades`` and ``components`` of the demo county (EPSG:4548, metres)."""
    rng = np.random.default_rng([seed, 14])
    zone_geoms = [shapely.intersection(shapely.Point(point_of(points, place, fallback)).buffer(r, 32), town)
                  for _, _, place, fallback, r, _, _ in ZONES]
    zones = gpd.GeoDataFrame({"name": [z[0] for z in ZONES], "zone_type": [z[1] for z in ZONES],
                              "note": "演示数据 synthetic"}, geometry=zone_geoms, crs=DEMO_CRS)
    lines = np.concatenate([streets.geometry.to_numpy(), alleys.geometry.to_numpy()])
    lines = lines[shapely.intersects(lines, town)]
    # facades: one side of every street, a piece every 300 m in town and every 35 m in the zones (denser
    # housing), moved 8 m off the centre line
    in_zone = shapely.union_all(zone_geoms)
    inner = shapely.intersection(lines, in_zone)
    inner = inner[~shapely.is_empty(inner)]
    inner = np.asarray([g for m in inner for g in getattr(m, "geoms", [m]) if g.geom_type == "LineString"],
                       dtype=object)
    town_pieces = _pieces(lines, 300.0, FACADE_M)[::2]
    pieces = np.concatenate([_pieces(inner, 35.0, FACADE_M), town_pieces[~shapely.intersects(town_pieces, in_zone)]])
    side = np.where(rng.random(len(pieces)) < 0.5, -8.0, 8.0)
    fac = np.asarray([shapely.offset_curve(p, d) for p, d in zip(pieces, side, strict=True)], dtype=object)
    fac = fac[np.asarray([f.geom_type == "LineString" and not f.is_empty for f in fac], dtype=bool)]
    fac = fac[shapely.within(fac, town)]
    share = np.full(len(fac), ELSEWHERE[0])
    zone_of = np.full(len(fac), -1)
    for i, (g, z) in enumerate(zip(zone_geoms, ZONES, strict=True)):
        hit = shapely.intersects(fac, g) & (zone_of < 0)
        share[hit], zone_of[hit] = z[5], i
    painted = rng.random(len(fac)) < share
    # every fifth facade in the zones was surveyed: a polygon (the wall's strip, 2 m deep) with its area
    polygon = (zone_of >= 0) & (np.arange(len(fac)) % 5 == 0)
    geoms = np.where(polygon, shapely.buffer(fac, 1.0, cap_style="flat"), fac)
    area = np.where(polygon, np.round(FACADE_M * rng.uniform(6.0, 12.0, len(fac)), 0), np.nan)
    facades = gpd.GeoDataFrame({
        # the zones' facades were surveyed one by one (named); the town's are counted, not named
        "name": [f"{ZONES[z][0]}立面{i + 1}" if z >= 0 else None for i, z in enumerate(zone_of)],
        "painted": painted, "area_m2": area,
        "renovated_on": np.where(painted, np.datetime64("2026-09-30"), np.datetime64("NaT")),
    }, geometry=geoms, crs=DEMO_CRS)
    # components: points every ~500 m of street (denser in the zones), lines as 40 m kerb/green pieces
    n_pts = int(shapely.length(lines).sum() / 500.0)
    x, y = beside(lines, rng, n_pts, offset_m=4.0)
    zx, zy, _ = along(inner, rng, max(40, len(inner) * 3)) if len(inner) else (np.empty(0), np.empty(0), None)
    px, py = np.concatenate([x, zx]), np.concatenate([y, zy])
    pts = shapely.points(px, py)
    pts = pts[shapely.within(pts, town)]
    kerbs = np.concatenate([_pieces(inner, 60.0, 40.0), _pieces(lines, 1200.0, 40.0)[::5]])
    kerbs = np.asarray([shapely.offset_curve(k, 6.0) for k in kerbs], dtype=object)
    kerbs = kerbs[np.asarray([k.geom_type == "LineString" and not k.is_empty for k in kerbs], dtype=bool)]
    comp = np.concatenate([pts, kerbs])
    kind = np.concatenate([rng.choice(POINT_KINDS, len(pts)), rng.choice(LINE_KINDS, len(kerbs))])
    good = np.full(len(comp), ELSEWHERE[1])
    for g, z in zip(zone_geoms, ZONES, strict=True):
        good[shapely.intersects(comp, g)] = z[6]
    u = rng.random(len(comp))
    condition = np.where(u < good, "完好", np.where(u < good + (1 - good) * 0.7, "破损", "缺失"))
    components = gpd.GeoDataFrame({"kind": kind, "condition": condition,
                                   "checked_on": np.datetime64("2026-10-20")}, geometry=comp, crs=DEMO_CRS)
    return {"zones": zones, "facades": facades, "components": components}
