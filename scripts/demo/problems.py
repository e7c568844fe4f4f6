"""The demo's problem reports: six months of cases with a lifecycle, hotspots, a pile and rebounds.

Reports have true hotspots (two markets, a night-market street, the railway station, an urban
village), a pile at one default coordinate (the city government: what a hotline geocoder returns
when it cannot place a call), rebound chains (the same category re-reported within ~40 m within 25
days after a closure), overdue open cases and grids much worse than others. ``demo_truth`` says
which pattern made each report. Deadlines are the project's (:func:`sanigrid.geo.problems.deadlines`),
statuses and their steps are the lifecycle's own (checked with its ``check_transition``), and the
grid of a report is :func:`sanigrid.geo.grids.assign_grid`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.layers.cases import CLOSED, STATUSES, check_transition, deadlines
from sanigrid.layers.settings import Settings
from sanigrid.scripts.demo._geometry import beside, nearest_named, normal_at
from sanigrid.scripts.demo.facts import (
    AS_OF,
    DEFAULT_GEOCODE,
    DEFAULT_MEASURE,
    END,
    GIVEN,
    INSPECTION_ITEMS,
    INSPECTION_NAME,
    INSPECTION_START,
    MEASURES,
    NIGHT_MARKET_STREET,
    START,
    SURNAMES,
    UNIT_PACE,
)
from sanigrid.scripts.demo.town import grid_rows

FIRST = STATUSES[0]  # a report opens a case in the lifecycle's first status (立案)
# category weights of the background (unknown categories in a county's settings get 2)
CATEGORY_WEIGHT = {
    "暴露垃圾": 12, "积存垃圾渣土": 5, "私搭乱建": 3, "道路破损": 5, "非法小广告": 10, "乱设广告": 3,
    "占道经营": 12, "店外经营": 9, "机动车乱停放": 9, "非机动车乱停放": 7, "乱堆物料": 7,
    "沿街晾挂": 3, "乱拉乱挂": 3, "乱排污水": 3, "公厕脏乱": 3, "其他": 4,
}
SOURCES = ("巡查", "群众举报", "12345", "督查", "暗访", "其他")
SOURCE_P = (0.45, 0.15, 0.15, 0.1, 0.1, 0.05)
REBOUND_CATEGORIES = ("暴露垃圾", "占道经营", "乱堆物料", "积存垃圾渣土", "非法小广告", "乱排污水")


def units_of(category: np.ndarray, grid_row: np.ndarray, grids: gpd.GeoDataFrame, settings: Settings) -> np.ndarray:
    """The responsible unit of each case: its category's unit when it routes elsewhere, else the lead
    unit of its grid (row ``grid_row`` of ``grids``; none outside every grid), as the routing rule does."""
    lead = grids["lead_unit"].to_numpy()
    route = {c.name: c.route_to for c in settings.problems.categories if c.route_to}
    return np.array([route.get(c) or (lead[i] if i >= 0 else None) for c, i in zip(category, grid_row, strict=True)],
                    dtype=object)


def inspection_batch(frame: gpd.GeoDataFrame) -> None:
    """Make the demo's 暗访 report: the first :data:`INSPECTION_ITEMS` 暗访 reports from
    :data:`INSPECTION_START` on (all there are in a small demo) become one batch (name, date) with a
    measure by category and a named owner each (in place; the reports keep their own times and
    lifecycles)."""
    rep = pd.to_datetime(frame["reported_at"])
    pick = frame.index[(frame["source"] == "暗访") & (rep >= INSPECTION_START)][:INSPECTION_ITEMS]
    n = len(frame)
    frame["batch"] = pd.Series([None] * n, index=frame.index, dtype="object")
    frame["batch_date"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ms]")
    frame["measure"] = pd.Series([None] * n, index=frame.index, dtype="object")
    frame["owner"] = pd.Series([None] * n, index=frame.index, dtype="object")
    frame.loc[pick, "batch"] = INSPECTION_NAME
    frame.loc[pick, "batch_date"] = INSPECTION_START
    frame.loc[pick, "measure"] = [MEASURES.get(c, DEFAULT_MEASURE) for c in frame.loc[pick, "category"]]
    frame.loc[pick, "owner"] = [SURNAMES[i % len(SURNAMES)] + GIVEN[(7 * i + 3) % len(GIVEN)]
                                for i in range(len(pick))]


def report_times(rng: np.random.Generator, n: int, *, evening: bool = False, early: bool = False) -> np.ndarray:
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
class Cases:
    x: np.ndarray
    y: np.ndarray
    category: np.ndarray
    source: np.ndarray
    reported: np.ndarray  # datetime64[ms]
    slow: np.ndarray  # closure-time multiplier (grid performance)
    force_close: np.ndarray  # bool: must be closed (a rebound predecessor)


def _deadlines(c: Cases, settings: Settings) -> np.ndarray:
    """The project's deadline of each case (category and report time, working-day calendar)."""
    return deadlines(pd.Series(c.category), pd.Series(c.reported), settings=settings).to_numpy().astype(
        "datetime64[ms]")


def lifecycle(c: Cases, deadline: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
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


# the steps of a case as (from, to, event); each is checked against the lifecycle's owner on import
_SEQ = (("立案", "派遣", "派遣"), ("派遣", "处置", "处置"), ("处置", "核查", "核查"), ("核查", "返工", "返工"),
        ("返工", "处置", "处置2"), ("处置", "核查", "核查2"), ("核查", "结案", "结案"))
for _frm, _to, _ev in _SEQ:
    check_transition(_frm, _to)
_ACTORS = {"派遣": "区指挥中心", "处置": "责任单位", "核查": "网格员", "返工": "网格员", "结案": "区指挥中心"}
_NOTES = {"派遣": "派遣至责任单位", "处置": "开始处置", "核查": "处置完毕, 待核查", "返工": "核查未通过, 返工",
          "结案": "核查通过, 结案"}


def status_and_history(ids: np.ndarray, reported: np.ndarray, source: np.ndarray,
                        ev: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Status and closed_at at AS_OF, and the history rows (events up to AS_OF)."""
    asof = AS_OF.to_datetime64()
    status = np.full(len(ids), FIRST, dtype=object)
    frames = [pd.DataFrame({"problem_id": ids, "from_status": None, "to_status": FIRST, "at": reported,
                            "actor": np.char.add("上报:", source.astype(str)), "note": FIRST})]
    for frm, to, key in _SEQ:
        t = ev[key]
        ok = ~np.isnat(t) & (t <= asof)
        status[ok] = to
        if ok.any():
            frames.append(pd.DataFrame({"problem_id": ids[ok], "from_status": frm, "to_status": to, "at": t[ok],
                                        "actor": _ACTORS[to], "note": _NOTES[to]}))
    closed = np.where(status == CLOSED, ev[CLOSED], np.datetime64("NaT", "ms"))
    hist = pd.concat(frames, ignore_index=True)
    hist["at"] = hist["at"].astype("datetime64[ms]")
    hist = hist.sort_values(["problem_id", "at"], kind="stable").reset_index(drop=True)
    return status, closed, hist


def problems_layer(n_total: int, grids: gpd.GeoDataFrame, net: np.ndarray, anchors: dict[str, np.ndarray],
              night_street: shapely.LineString, settings: Settings, rng: np.random.Generator,
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
    x, y = beside(net, rng, cand, offset_m=rng.normal(0, 6, cand))
    g = grid_rows(x, y, grids)
    keep = (g >= 0) & (rng.random(cand) < np.where(g >= 0, heat[np.maximum(g, 0)], 0) / heat.max())
    sel = np.flatnonzero(keep)
    if len(sel) < n_bg:  # not enough after thinning: top up uniformly among those inside
        extra = np.setdiff1d(np.flatnonzero(g >= 0), sel)
        sel = np.concatenate([sel, rng.choice(extra, n_bg - len(sel), replace=False)])
    sel = np.sort(rng.choice(sel, n_bg, replace=False))
    push(x[sel], y[sel], cat_pick(n_bg), report_times(rng, n_bg), "background")
    # hotspots
    for (anchor, _s, spread, hc, evening), n in zip(hot, n_hot, strict=True):
        c = anchors[anchor]
        push(c[0] + rng.normal(0, spread, n), c[1] + rng.normal(0, spread, n), cat_pick(n, hc),
             report_times(rng, n, evening=evening), "hotspot")
    # night market street: along the street, evenings
    ls = night_street
    d = rng.random(n_night) * ls.length
    p = shapely.line_interpolate_point(ls, d)
    sx, sy = shapely.get_x(p), shapely.get_y(p)
    nx, ny = normal_at(np.array([ls]), np.zeros(n_night, dtype=int), sx, sy)
    o = rng.normal(0, 7, n_night)
    push(sx + nx * o, sy + ny * o, cat_pick(n_night, ("店外经营", "占道经营", "暴露垃圾", "乱排污水", "沿街晾挂")),
         report_times(rng, n_night, evening=True), "hotspot")
    # the pile: hotline calls the geocoder could not place land on the government's coordinate
    gov = anchors[DEFAULT_GEOCODE]
    push(np.full(n_pile, gov[0]), np.full(n_pile, gov[1]), cat_pick(n_pile), report_times(rng, n_pile), "pile",
         rng.choice(np.array(["12345", "群众举报"], dtype=object), n_pile, p=[0.75, 0.25]))
    # first reports of the rebound chains: background spots, early in the period
    site = rng.choice(len(x), n_chain_sites * 3, replace=False)
    site = site[g[site] >= 0][:n_chain_sites]
    chain_cat = cat_pick(len(site), REBOUND_CATEGORIES)
    push(x[site], y[site], chain_cat, report_times(rng, len(site), early=True), "rebound")
    X, Y = np.concatenate(xs), np.concatenate(ys)
    # anything that fell outside every grid (a hotspot spilling over water) moves onto the network
    gi = grid_rows(X, Y, grids)
    out = np.flatnonzero(gi < 0)
    if len(out):
        inside = np.flatnonzero(g >= 0)
        rep = rng.choice(inside, len(out))
        X[out], Y[out] = x[rep], y[rep]
        gi[out] = g[rep]
    cat0 = np.concatenate(cs)
    pace = np.array([UNIT_PACE.get(u, 1.0) for u in units_of(cat0, gi, grids, settings)])
    cases = Cases(X, Y, cat0, np.concatenate(srcs), np.concatenate(ts),
                   slow_g[gi] * pace, np.zeros(len(X), dtype=bool))
    kind = np.concatenate(kinds)
    cases.force_close[kind == "rebound"] = True
    n_first = len(X)
    chain_first = np.flatnonzero(kind == "rebound")
    remaining = chain_len[: len(chain_first)] - 1
    dl = _deadlines(cases, settings)
    ev = lifecycle(cases, dl, rng)
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
        nc = Cases(allx[prev] + r * np.cos(ang), ally[prev] + r * np.sin(ang), allc[prev],
                    rng.choice(SOURCES, m, p=SOURCE_P), t, alls[prev], remaining > 1)
        gi2 = grid_rows(nc.x, nc.y, grids)
        bad_pos = gi2 < 0
        nc.x[bad_pos], nc.y[bad_pos] = allx[prev][bad_pos], ally[prev][bad_pos]
        d2 = _deadlines(nc, settings)
        e2 = lifecycle(nc, d2, rng)
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
    status, closed, hist = status_and_history(ids, rep_t, src, ev)
    gi = grid_rows(X, Y, grids)
    codes = grids["code"].to_numpy()
    grid_code = np.array([codes[i] if i >= 0 else None for i in gi], dtype=object)
    unit = units_of(cat, gi, grids, settings)
    place, _num = nearest_named(X, Y, streets)
    desc = np.char.add(np.char.add(place.astype(str), "附近"), cat.astype(str))
    desc = np.where(kind == "pile", np.char.add("市民来电反映: ", cat.astype(str)), desc)
    frame = gpd.GeoDataFrame({
        "problem_id": ids, "category": cat, "description": desc, "source": src,
        "reported_at": rep_t, "status": status, "deadline": dl, "closed_at": closed,
        "grid_code": grid_code, "unit": unit, "demo_truth": kind,
    }, geometry=gpd.GeoSeries(shapely.points(X, Y), crs=grids.crs))
    inspection_batch(frame)
    info = {"pile_at": [float(gov[0]), float(gov[1])], "pile_count": int(n_pile),
            "bad_grids": sorted(grids["code"].to_numpy()[bad].tolist()), "rebound_sites": int(len(chain_first)),
            "hotspots": [h[0] for h in hot] + [f"{NIGHT_MARKET_STREET}夜市"]}
    return frame, hist, info
