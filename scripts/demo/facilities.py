"""The demo's facilities and sample places: markets, toilets, transfer stations, collection points.

Synthetic, placed on the real streets so that the analyses have something to find: two districts
are left under-served (``gaps``), a few toilets are below the class the standard asks for and one is
a dry toilet in the urban village 花园村. Sample-point candidates (医院, 学校, 五小场所 …) are named
after the extract's places where it has them.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.scripts.demo._geometry import (
    address,
    along,
    beside,
    greedy_spaced,
    nearest_named,
    normal_at,
    point_of,
    snap,
    within,
)
from sanigrid.scripts.demo.facts import COMPOUND_WORDS, DEFAULT_GEOCODE, SURNAMES


def markets(points: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
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
        xy = point_of(points, place, (521000, 3130500)) + np.array(off)
        p = snap(xy, local, offset_m=45)[0]
        if poly:
            w, h = rng.uniform(50, 80), rng.uniform(35, 55)
            g = shapely.box(p[0] - w / 2, p[1] - h / 2, p[0] + w / 2, p[1] + h / 2)
        else:
            g = shapely.Point(p)
        rows.append({"name": name, "standardized": std, "stalls": int(rng.integers(60, 320)), "geometry": g,
                     "x": p[0], "y": p[1]})
    m = gpd.GeoDataFrame(rows, crs=streets.crs)
    m["address"] = address(m["x"].to_numpy(), m["y"].to_numpy(), streets)
    return m.drop(columns=["x", "y"])


def in_gap(x: np.ndarray, y: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Inside one of the under-served districts (circles: x, y, radius)."""
    return np.any(np.hypot(x[:, None] - gaps[:, 0], y[:, None] - gaps[:, 1]) < gaps[:, 2], axis=1)


def toilets(net: np.ndarray, main: np.ndarray, markets: gpd.GeoDataFrame, town: shapely.Geometry,
             gaps: np.ndarray, village: np.ndarray, streets: gpd.GeoDataFrame, rng: np.random.Generator
             ) -> gpd.GeoDataFrame:
    mk = shapely.centroid(markets.geometry.to_numpy())
    mxy = np.column_stack([shapely.get_x(mk), shapely.get_y(mk)])
    # a toilet by most markets first, then spaced ones along the network
    near_mk = snap(mxy[:5] + rng.normal(0, 25, (5, 2)), net, offset_m=8)
    x, y = beside(net, rng, 4000, offset_m=8, inside=town)
    spacing = np.where(in_gap(x, y, gaps), 5000.0, rng.uniform(300, 420, len(x)))
    allx = np.concatenate([near_mk[:, 0], [village[0]], x])
    ally = np.concatenate([near_mk[:, 1], [village[1]], y])
    sp = np.concatenate([np.full(6, 300.0), spacing])
    keep = greedy_spaced(allx, ally, sp, 60)
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
    prefix = nearest_named(tx, ty, streets)[0]
    names = [f"{p}公厕" for p in prefix]
    seen: dict[str, int] = {}
    for i, nm in enumerate(names):
        seen[nm] = seen.get(nm, 0) + 1
        if seen[nm] > 1:
            names[i] = nm.replace("公厕", f"{seen[nm]}号公厕")
    if len(village_i):
        names[village_i[0]] = "花园村旱厕"
    return gpd.GeoDataFrame({
        "name": names, "address": address(tx, ty, streets), "toilet_class": cls, "seats": seats,
        "accessible": accessible, "hours": hours,
    }, geometry=gpd.GeoSeries(pts, crs=streets.crs))


# the toilet projects (建设项目) that would fill the under-served districts: where in a district (as a share
# of its radius, east and north), status, planned completion and project unit; the first is late at AS_OF
PLANNED_TOILETS = (
    (0, 0.0, 0.0, "在建", "2026-10-31", "县城管局"),
    (0, 0.45, 0.35, "规划", "2027-03-31", "县城管局"),
    (0, -0.45, -0.35, "规划", "2027-06-30", "县住建局"),
    (1, 0.0, 0.0, "在建", "2026-12-20", "县住建局"),
    (1, 0.5, -0.4, "规划", "2027-09-30", "县城管局"),
)


def planned_toilets(gaps: np.ndarray, local: np.ndarray, streets: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Five toilet projects (规划/在建) in the under-served districts, on their nearest local street."""
    g = np.array([[gaps[d, 0] + dx * gaps[d, 2], gaps[d, 1] + dy * gaps[d, 2]]
                  for d, dx, dy, *_ in PLANNED_TOILETS])
    xy = snap(g, local, offset_m=8)
    tx, ty = xy[:, 0], xy[:, 1]
    prefix = nearest_named(tx, ty, streets)[0]
    return gpd.GeoDataFrame({
        "name": [f"{p}新建公厕" if i == 0 else f"{p}新建{i + 1}号公厕" for i, p in enumerate(prefix)],
        "address": address(tx, ty, streets), "toilet_class": "二类", "seats": 8, "accessible": True,
        "hours": "全天", "build_status": [t[3] for t in PLANNED_TOILETS],
        "planned_date": pd.to_datetime([t[4] for t in PLANNED_TOILETS]),
        "project_unit": [t[5] for t in PLANNED_TOILETS],
    }, geometry=gpd.GeoSeries(shapely.points(tx, ty), crs=streets.crs))


def transfer_stations(points: gpd.GeoDataFrame, net: np.ndarray, streets: gpd.GeoDataFrame,
                       rng: np.random.Generator) -> gpd.GeoDataFrame:
    spec = [("城北垃圾中转站", "城北社区", (120, 60), 20.0), ("发电厂垃圾中转站", "发电厂社区", (-80, 60), 30.0),
            ("雄石垃圾中转站", "雄石社区", (100, 80), 15.0), ("花园垃圾中转站", "花园街道", (-150, -450), 40.0),
            ("炼厂垃圾中转站", "炼厂社区", (150, -1200), 25.0)]
    xy = np.array([point_of(points, p, (521000, 3130500)) + np.array(o) for _, p, o, _ in spec])
    xy = snap(xy, net, offset_m=15)
    return gpd.GeoDataFrame({
        "name": [s[0] for s in spec], "address": address(xy[:, 0], xy[:, 1], streets),
        "capacity_tpd": [s[3] for s in spec],
    }, geometry=gpd.GeoSeries(shapely.points(xy), crs=streets.crs))


def collection_points(net: np.ndarray, town: shapely.Geometry, gaps: np.ndarray, streets: gpd.GeoDataFrame,
                       rng: np.random.Generator) -> gpd.GeoDataFrame:
    x, y = beside(net, rng, 6000, offset_m=4, inside=town)
    spacing = np.where(in_gap(x, y, gaps), 450.0, rng.uniform(130, 200, len(x)))
    keep = greedy_spaced(x, y, spacing, 180)
    x, y = x[keep], y[keep]
    n = len(x)
    return gpd.GeoDataFrame({
        "name": [f"收集点{i + 1:03d}" for i in range(n)], "address": address(x, y, streets),
        "bins": rng.integers(2, 9, n),
    }, geometry=gpd.GeoSeries(shapely.points(x, y), crs=streets.crs))


def sample_points(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame],
                   busy: np.ndarray, net: np.ndarray, town: shapely.Geometry, rng: np.random.Generator
                   ) -> gpd.GeoDataFrame:
    streets = layers["streets"]
    rows: list[tuple[str, str, float, float]] = []

    def add(cat: str, names: Any, xy: np.ndarray) -> None:
        xy = np.atleast_2d(xy)
        for nm, (px, py) in zip(names, xy, strict=True):
            rows.append((cat, str(nm), float(px), float(py)))

    def near(place: str, n: int, spread: float) -> np.ndarray:
        c = point_of(points, place, (521000, 3130500))
        return snap(c + rng.normal(0, spread, (n, 2)), net, offset_m=20)

    gov = point_of(points, DEFAULT_GEOCODE, (523549, 3131248))
    add("医院", ["贵溪市人民医院", "贵溪市中医院", "贵溪市妇幼保健院", "东门街道社区卫生服务中心",
               "花园街道社区卫生服务中心"],
        np.vstack([near("信江社区", 1, 150), near("花园社区", 1, 200), near("北街社区", 1, 150),
                   near("东门街道办事处", 1, 150), near("四建社区", 1, 150)]))
    osm_school = points[points["amenity"] == "school"]
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
        np.vstack([point_of(points, "贵溪", (520557, 3130954)), near("木丝岭社区", 1, 100),
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
    inside = within(shapely.get_x(c), shapely.get_y(c), shapely.buffer(town, 300))
    add("主次干道", main["name"].to_numpy()[inside], np.column_stack([shapely.get_x(c), shapely.get_y(c)])[inside])
    comm = points[points["name"].str.endswith("社区")]
    add("社区居委会", comm["name"] + "居委会", snap(np.column_stack([comm.geometry.x, comm.geometry.y]),
                                                   net, offset_m=15))
    vil = points[points["name"].isin(["花园村", "柏里村", "黄坑村"])]
    add("城中村", vil["name"], np.column_stack([vil.geometry.x, vil.geometry.y]))
    add("机关单位", ["贵溪市人民政府"], gov)
    bureaus = ["县住建局", "县城管局", "县卫健委", "县教育局", "县市场监管局", "县公安局", "县财政局", "县交通运输局",
               "县生态环境局", "县商务局", "东门街道办事处", "雄石街道办事处", "花园街道办事处"]
    add("机关单位", bureaus, np.vstack([snap(gov + rng.normal(0, 350, (10, 2)), net, offset_m=20),
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
    x, y, idx = along(busy, rng, n5)
    nx, ny = normal_at(busy, idx, x, y)
    side = rng.choice([-1.0, 1.0], n5)
    x, y = x + side * nx * 12, y + side * ny * 12
    pick = rng.integers(0, len(flat), n5)
    names5 = [f"{sn}记{flat[p][1]}" for sn, p in zip(rng.choice(list(SURNAMES), n5), pick, strict=True)]
    add("五小场所", names5, np.column_stack([x, y]))
    sp = pd.DataFrame(rows, columns=["category", "name", "x", "y"])
    sp["address"] = address(sp["x"].to_numpy(), sp["y"].to_numpy(), streets)
    sp["subtype"] = None
    sp.loc[sp["category"] == "五小场所", "subtype"] = [flat[p][0] for p in pick]
    return gpd.GeoDataFrame(sp.drop(columns=["x", "y"]), geometry=gpd.GeoSeries(
        shapely.points(sp["x"].to_numpy(), sp["y"].to_numpy()), crs=streets.crs))
