"""Sample points for the technical evaluation (技术评估): candidates, readiness, selection, mock spot-check.

Four pure steps, all in the project's projected CRS (metres):

1. :func:`candidates` — the candidate registry: every listed sample point plus every market, alley,
   toilet, transfer station and main-street segment (one segment per grid), each with its grid,
   街道/社区 and address.
2. :func:`readiness` — a score 0–100 per candidate (100 minus penalties from the settings) with its
   reasons in words: open and overdue problems within ``radius_m`` (times the category weight),
   rebounds there, coverage gaps, alley surface and lighting, toilet class, market standardization.
3. :func:`select` — quotas per category, stratified round-robin over 街道 (or grids), a minimum
   spacing between picks of one category, ready candidates preferred, a reproducible seed, a reason
   per pick and a shortfall table; or a strictly random draw for comparison.
4. :func:`mock_check` — the inspectors' random draws simulated many times (vectorised): per category
   the probability that at least one drawn place fails, the expected score loss, and the repairs that
   lower the risk most, in order.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo._checks import projected
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.layers.cases import is_open, overdue
from sanigrid.layers.settings import Settings

log = logging.getLogger(__name__)

#: which sample category each facility layer supplies candidates for
LAYER_CATEGORY: dict[str, str] = {
    "markets": "农贸市场",
    "alleys": "背街小巷",
    "toilets": "公厕",
    "transfer_stations": "垃圾中转站",
    "streets": "主次干道",
}
#: attributes carried from the source layers because readiness reads them
_ATTRS = ("hardened", "lit", "toilet_class", "standardized")
_TOILET_RANK = {"一类": 1, "二类": 2, "三类": 3, "旱厕": 4}
CANDIDATE_COLUMNS = ("candidate_id", "category", "name", "address", "grid_code", "street_office", "community",
                     "source")


# --------------------------------------------------------------------------- candidates
def _text(values: pd.Series) -> pd.Series:
    """Strings with missing values as ``""`` (object dtype)."""
    return values.astype("object").where(values.notna(), "").map(str)


def candidates(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    grids: gpd.GeoDataFrame | None,
    settings: Settings,
) -> gpd.GeoDataFrame:
    """The candidate registry: one row per place that could be reported or spot-checked.

    Parameters
    ----------
    layers
        Layer kind → frame, any of ``sample_points``, ``markets``, ``alleys``, ``toilets``,
        ``transfer_stations``, ``streets`` (absent or empty kinds are skipped). All in one projected
        CRS in metres.
    grids
        The ``grids`` layer (``code``, ``street_office``, ``community``) or ``None``. Streets are cut
        at grid boundaries so that each segment is one candidate in one grid.
    settings
        ``sampling.street_classes`` (road classes sampled as 主次干道) and ``sampling.dedupe_m``
        (a listed sample point this close to a layer feature of its category is that feature).

    Returns
    -------
    GeoDataFrame
        Columns :data:`CANDIDATE_COLUMNS` plus the readiness attributes ``hardened``, ``lit``,
        ``toilet_class``, ``standardized``; geometry is the place's footprint (point, polygon or line),
        in the input CRS; sorted by ``candidate_id`` (a new RangeIndex).
    """
    frames = {k: v for k, v in layers.items() if v is not None and len(v)}
    crs = next((f.crs for f in frames.values()), grids.crs if grids is not None else None)
    for kind, f in frames.items():
        projected(f, kind)
        if not f.crs.equals(crs):
            raise AnalysisError(f"layer '{kind}' is in {f.crs.to_string()}, the others in {crs}; "
                                "read all layers from one store (one CRS)")
    sc = settings.sampling
    parts: list[gpd.GeoDataFrame] = []
    for kind, category in LAYER_CATEGORY.items():
        f = frames.get(kind)
        if f is None:
            continue
        f = f.reset_index(drop=True)
        if kind == "streets":
            f = _street_segments(f, grids, classes=sc.street_classes)
            if not len(f):
                continue
        part = gpd.GeoDataFrame({"source": kind, "category": category,
                                 "candidate_id": [f"{kind}:{i}" for i in range(len(f))]},
                                geometry=f.geometry.to_numpy(), crs=crs)
        part["name"] = _text(f["name"]) if "name" in f else ""
        part["address"] = _text(f["address"]) if "address" in f else ""
        part["grid_code"] = f["grid_code"].to_numpy() if "grid_code" in f and kind == "streets" else None
        for a in _ATTRS:
            part[a] = f[a].to_numpy() if a in f else pd.NA
        parts.append(part)
    sp = frames.get("sample_points")
    if sp is not None:
        sp = sp.reset_index(drop=True)
        part = gpd.GeoDataFrame({"source": "sample_points", "category": _text(sp["category"]),
                                 "candidate_id": [f"sample_points:{i}" for i in range(len(sp))],
                                 "name": _text(sp.get("name", pd.Series([""] * len(sp)))),
                                 "address": _text(sp.get("address", pd.Series([""] * len(sp)))),
                                 "grid_code": None},
                                geometry=sp.geometry.to_numpy(), crs=crs)
        for a in _ATTRS:
            part[a] = pd.NA
        part = _drop_duplicates(part, parts, dedupe_m=sc.dedupe_m)
        parts.append(part)
    if not parts:
        cols = {c: pd.Series(dtype="object") for c in (*CANDIDATE_COLUMNS, *_ATTRS)}
        return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    out = pd.concat(parts, ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=crs)
    out = out[~out.geometry.is_empty & out.geometry.notna()]
    _attach_grid(out, grids)
    blank = out["address"].eq("")
    out.loc[blank, "address"] = (out["street_office"].fillna("") + out["community"].fillna("")
                                 + out["name"])[blank]
    out = out.sort_values("candidate_id", key=_natural_key).reset_index(drop=True)
    return out[[*CANDIDATE_COLUMNS, *_ATTRS, "geometry"]]


def _natural_key(ids: pd.Series) -> pd.Series:
    parts = ids.str.split(":", n=1, expand=True)
    return parts[0] + ":" + parts[1].str.zfill(9)


def _street_segments(streets: gpd.GeoDataFrame, grids: gpd.GeoDataFrame | None, *,
                     classes: list[str]) -> gpd.GeoDataFrame:
    """Main/secondary streets cut at grid boundaries (one row per street per grid)."""
    if "road_class" in streets:
        streets = streets[streets["road_class"].isin(classes)]
    streets = streets[["name", streets.geometry.name]].reset_index(drop=True)
    if not len(streets):
        return streets
    if grids is None or not len(grids):
        out = streets.copy()
        out["grid_code"] = None
        return out
    g = grids[["code", grids.geometry.name]].rename(columns={"code": "grid_code"})
    out = gpd.overlay(streets, g, how="intersection", keep_geom_type=True)
    out = out[out.geometry.length > 1.0]  # drop numerical slivers at grid corners
    named = _text(out["name"]).replace("", "无名道路")
    out["name"] = named + "(" + _text(out["grid_code"]) + "段)"
    return out.reset_index(drop=True)


def _drop_duplicates(listed: gpd.GeoDataFrame, parts: list[gpd.GeoDataFrame], *, dedupe_m: float) -> gpd.GeoDataFrame:
    """Drop listed sample points that are a layer feature of the same category (within ``dedupe_m``)."""
    if not parts or dedupe_m <= 0:
        return listed
    layer = pd.concat(parts, ignore_index=True)
    keep = np.ones(len(listed), dtype=bool)
    tree = shapely.STRtree(layer.geometry.to_numpy())
    i, j = tree.query(listed.geometry.to_numpy(), predicate="dwithin", distance=dedupe_m)
    same = listed["category"].to_numpy()[i] == layer["category"].to_numpy()[j]
    keep[i[same]] = False
    if (~keep).any():
        log.info("%d listed sample points are layer features already (within %g m); kept once",
                 int((~keep).sum()), dedupe_m)
    return listed[keep]


def _attach_grid(out: gpd.GeoDataFrame, grids: gpd.GeoDataFrame | None) -> None:
    if grids is None or not len(grids):
        out["street_office"] = None
        out["community"] = None
        return
    missing = out["grid_code"].isna()
    if missing.any():
        out.loc[missing, "grid_code"] = assign_grid(out[missing], grids)
    by_code = grids.drop_duplicates("code").set_index("code")
    for col in ("street_office", "community"):
        values = by_code[col] if col in by_code else pd.Series(dtype="object")
        mapped = out["grid_code"].map(values)
        out[col] = mapped.astype("object").where(mapped.notna(), None)


# --------------------------------------------------------------------------- readiness
def problem_status(problems: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame:
    """Open and overdue flags per problem at ``as_of`` (the case rules: :func:`layers.cases.overdue`)."""
    od = overdue(problems, as_of=as_of)
    return pd.DataFrame({"open": is_open(problems, as_of=as_of).to_numpy(dtype=bool),
                         "overdue": od["overdue"].to_numpy(dtype=bool)}, index=problems.index)


def readiness(
    places: gpd.GeoDataFrame,
    *,
    settings: Settings,
    as_of: datetime,
    problems: gpd.GeoDataFrame | None = None,
    rebounds: gpd.GeoDataFrame | None = None,
    coverage_gaps: gpd.GeoDataFrame | None = None,
    streets: gpd.GeoDataFrame | None = None,
    markets: gpd.GeoDataFrame | None = None,
    evidence: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Readiness score (0–100) and its reasons in words for each candidate place.

    The score starts at 100 and loses ``settings.sampling.penalties`` points per finding:

    * each open problem within ``sampling.radius_m`` metres of the place: ``overdue`` points if past its
      deadline at ``as_of``, else ``open`` points, times the category weight
      (``settings.problems.categories[*].weight``);
    * each rebound (a report again after closure, the new report's end of the ``rebounds`` line) within
      ``radius_m`` and reported in the ``sampling.rebound_window_days`` before ``as_of``: ``rebound``
      points times the category weight;
    * lying within ``sampling.gap_near_m`` of a coverage-gap street of a facility kind that matters to
      the place's category (``sampling.gap_kinds``, e.g. toilets for streets and markets):
      ``coverage_gap`` points per kind;
    * back alleys not hardened / without lamps, dry toilets, markets not standardized;
    * each document of the evidence archive the place must hold and lacks (``evidence``: rows of
      ``candidate_id``, ``document``, ``status`` 缺失 or 过期 and ``expires``, from
      :func:`geo.archive.place_evidence`): ``missing_document`` points if missing, ``expired_document``
      if expired;
    * toilets below ``toilet_class.min_class``: with ``streets`` given, only those within
      ``toilet_class.near_m`` of a road of ``toilet_class.road_classes`` or of a market (``markets``),
      where the 2021 standard asks for 二类 or better; without ``streets``, every such toilet.

    Missing inputs (``None``) simply give no reasons of that kind. Distances are planar metres in the
    project CRS; every input must be in the same projected CRS.

    Returns
    -------
    GeoDataFrame
        A copy of ``places`` (index and CRS kept) with ``readiness`` (float, 0–100), ``ready``
        (``readiness >= sampling.pass_score``), ``reasons`` (``"; "``-joined, worst first, ``""`` if
        none), ``n_open``, ``n_overdue`` and ``n_rebounds``.
    """
    projected(places, "candidates")
    sc = settings.sampling
    pen = sc.penalties
    n = len(places)
    out = places.copy()
    geoms = places.geometry.to_numpy()
    findings: list[pd.DataFrame] = []  # rows: place position, points, text
    r = sc.radius_m
    weights = {c.name: c.weight for c in settings.problems.categories}
    counts = {k: np.zeros(n, dtype=np.int64) for k in ("n_open", "n_overdue", "n_rebounds")}

    if problems is not None and len(problems) and n:
        _same_crs(places, problems, "problems")
        st = problem_status(problems, as_of=as_of)
        p = problems[st["open"].to_numpy()]
        overdue = st["overdue"].to_numpy()[st["open"].to_numpy()]
        if len(p):
            i, j = shapely.STRtree(p.geometry.to_numpy()).query(geoms, predicate="dwithin", distance=r)
            pairs = pd.DataFrame({"pos": i, "category": _text(p["category"]).to_numpy()[j], "overdue": overdue[j]})
            np.add.at(counts["n_open"], i, 1)
            np.add.at(counts["n_overdue"], i, overdue[j].astype(np.int64))
            g = pairs.groupby(["pos", "category", "overdue"], sort=False).size().rename("n").reset_index()
            w = g["category"].map(weights).fillna(1.0).to_numpy()
            g["points"] = g["n"] * w * np.where(g["overdue"], pen.get("overdue", 0), pen.get("open", 0))
            g["text"] = [f"{r:g}米内有{k}起{'逾期未结' if od else '未结'}的{c}"
                         for k, od, c in zip(g["n"], g["overdue"], g["category"], strict=True)]
            findings.append(g[["pos", "points", "text"]])

    if rebounds is not None and len(rebounds) and n:
        _same_crs(places, rebounds, "rebounds")
        ends = shapely.get_point(rebounds.geometry.to_numpy(), -1)
        ok = ~shapely.is_missing(ends)
        if "reported_at" in rebounds:
            t = pd.to_datetime(rebounds["reported_at"])
            start = pd.Timestamp(as_of) - pd.Timedelta(days=sc.rebound_window_days)
            ok &= ((t > start) & (t <= pd.Timestamp(as_of))).to_numpy(dtype=bool)
        i, j = shapely.STRtree(ends[ok]).query(geoms, predicate="dwithin", distance=r)
        cats = _text(rebounds["category"]).to_numpy()[ok] if "category" in rebounds else np.array([""] * ok.sum())
        # one new report linked to several closed ones is one rebound
        new_id = rebounds["new_id"].to_numpy()[ok] if "new_id" in rebounds else np.arange(ok.sum())
        pairs = pd.DataFrame({"pos": i, "category": cats[j], "new_id": new_id[j]}).drop_duplicates(["pos", "new_id"])
        np.add.at(counts["n_rebounds"], pairs["pos"].to_numpy(), 1)
        g = pairs.groupby(["pos", "category"], sort=False).size()
        g = g.rename("n").reset_index()
        g["points"] = g["n"] * g["category"].map(weights).fillna(1.0) * pen.get("rebound", 0)
        g["text"] = [f"{r:g}米内有{k}起结案后反弹的{c or '问题'}" for k, c in zip(g["n"], g["category"], strict=True)]
        findings.append(g[["pos", "points", "text"]])

    if coverage_gaps is not None and len(coverage_gaps) and n:
        _same_crs(places, coverage_gaps, "coverage_gaps")
        kinds = _text(coverage_gaps["facility_kind"]) if "facility_kind" in coverage_gaps else pd.Series(
            [""] * len(coverage_gaps), index=coverage_gaps.index)
        category = places["category"].astype("object").to_numpy()
        for kind in sorted(set(kinds)):
            gaps = coverage_gaps[kinds.to_numpy() == kind]
            i, _ = shapely.STRtree(gaps.geometry.to_numpy()).query(geoms, predicate="dwithin",
                                                                    distance=sc.gap_near_m)
            i = np.unique(i)
            i = i[[kind in sc.gap_kinds.get(c, ()) for c in category[i]]]
            preset = settings.facilities.get(kind)
            zh = preset.zh if preset and preset.zh else (kind or "设施")
            radius = f"{preset.radius_m:g}米" if preset else ""
            findings.append(pd.DataFrame({"pos": i, "points": pen.get("coverage_gap", 0),
                                          "text": f"不在{zh}{radius}服务范围内"}))

    demanding = None
    if streets is not None:
        _same_crs(places, streets, "streets")
        main = streets[streets["road_class"].isin(settings.toilet_class.road_classes)] if "road_class" in streets \
            else streets.iloc[:0]
        demanding = [("/".join(settings.toilet_class.road_classes), main)]
        if markets is not None:
            _same_crs(places, markets, "markets")
            demanding.append(("农贸市场", markets))
    findings.extend(_attribute_findings(places, settings, demanding=demanding))
    if evidence is not None and len(evidence) and n and "candidate_id" in places:
        findings.append(_evidence_findings(places, evidence, pen))
    score = np.full(n, 100.0)
    reasons = [""] * n
    if findings and n:
        f = pd.concat(findings, ignore_index=True)
        f = f.sort_values(["pos", "points"], ascending=[True, False], kind="stable")
        lost = f.groupby("pos")["points"].sum()
        score[lost.index.to_numpy()] -= lost.to_numpy()
        # the texts of each place in this order, joined: runs of one pos in the sorted rows (a Series per
        # group from groupby cost ~50 µs a place)
        at = f["pos"].to_numpy(dtype=np.int64)
        texts = f["text"].tolist()
        starts = np.flatnonzero(np.r_[True, at[1:] != at[:-1]]).tolist() + [len(at)]
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            reasons[int(at[a])] = "; ".join(texts[a:b])
    out["readiness"] = np.clip(score, 0.0, 100.0).round(1)
    out["ready"] = out["readiness"] >= sc.pass_score
    out["reasons"] = reasons
    for k, v in counts.items():
        out[k] = v
    return out


def _evidence_findings(places: gpd.GeoDataFrame, evidence: pd.DataFrame, pen: Mapping[str, float]) -> pd.DataFrame:
    from sanigrid.geo.archive import EXPIRED

    pos_of = pd.Series(np.arange(len(places)), index=places["candidate_id"].astype(str).to_numpy())
    pos_of = pos_of[~pos_of.index.duplicated()]
    e = evidence[evidence["candidate_id"].astype(str).isin(pos_of.index)]
    expired = (e["status"] == EXPIRED).to_numpy()
    expires = e["expires"] if "expires" in e else pd.Series([None] * len(e), index=e.index)
    text = [f"档案过期: {d}" + (f"({x}到期)" if x is not None and not pd.isna(x) else "") if ex else f"缺少档案: {d}"
            for d, ex, x in zip(e["document"], expired, expires, strict=True)]
    return pd.DataFrame({"pos": pos_of.loc[e["candidate_id"].astype(str)].to_numpy(),
                         "points": np.where(expired, pen.get("expired_document", 0), pen.get("missing_document", 0)),
                         "text": text})


def _attribute_findings(places: gpd.GeoDataFrame, settings: Settings, *,
                        demanding: list[tuple[str, gpd.GeoDataFrame]] | None) -> list[pd.DataFrame]:
    pen = settings.sampling.penalties
    pos = np.arange(len(places))
    out = []

    def flag(col: str, bad: object) -> np.ndarray:
        if col not in places:
            return np.zeros(len(places), dtype=bool)
        v = places[col].astype("object")
        return v.map(lambda x: x is not None and x is not pd.NA and x == bad).to_numpy(dtype=bool)

    src = places["source"].to_numpy() if "source" in places else np.array([""] * len(places))
    alley = src == "alleys"
    for mask, key, text in (
        (alley & flag("hardened", False), "unhardened", "背街小巷未硬化"),
        (alley & flag("lit", False), "unlit", "背街小巷无路灯"),
        ((src == "markets") & flag("standardized", False), "market_unstandardized", "农贸市场未达标准化"),
        ((src == "toilets") & flag("toilet_class", "旱厕"), "dry_toilet", "公厕为旱厕"),
    ):
        if mask.any():
            out.append(pd.DataFrame({"pos": pos[mask], "points": pen.get(key, 0), "text": text}))
    if "toilet_class" in places:
        tc = settings.toilet_class
        cls = places["toilet_class"].astype("object")
        rank = cls.map(lambda c: _TOILET_RANK.get(c, 0) if isinstance(c, str) else 0).to_numpy()
        low = (src == "toilets") & (rank > _TOILET_RANK.get(tc.min_class, 2)) & (rank < _TOILET_RANK["旱厕"])
        where = np.full(len(places), "", dtype=object)
        if demanding is not None and low.any():
            # only toilets on a main road or at a market must reach the class; elsewhere 三类 is allowed
            hit = np.zeros(len(places), dtype=bool)
            for label, frame in demanding:
                if len(frame):
                    i, _ = shapely.STRtree(frame.geometry.to_numpy()).query(
                        places.geometry.to_numpy()[low], predicate="dwithin", distance=tc.near_m)
                    idx = np.flatnonzero(low)[np.unique(i)]
                    where[idx[~hit[idx]]] = label
                    hit[idx] = True
            low &= hit
        if low.any():
            out.append(pd.DataFrame({"pos": pos[low], "points": pen.get("toilet_class", 0), "text": [
                f"公厕为{c}" + (f"({w}旁, 应不低于{tc.min_class})" if w else "")
                for c, w in zip(cls.to_numpy()[low], where[low], strict=True)]}))
    return out


def _same_crs(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, name: str) -> None:
    projected(b, name)
    if not a.crs.equals(b.crs):
        raise AnalysisError(f"'{name}' is in {b.crs.to_string()}, the candidates in {a.crs.to_string()}; "
                            "reproject to the project CRS first")


# --------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class Selection:
    """The picks (one row per sample point) and the per-category quota report."""

    picks: gpd.GeoDataFrame
    report: pd.DataFrame


def _rng(seed: int, category: str) -> np.random.Generator:
    """One stream per category, so a category's picks do not depend on the others."""
    return np.random.default_rng([int(seed), zlib.crc32(category.encode("utf-8"))])


def _strata(frame: pd.DataFrame) -> tuple[str, np.ndarray]:
    """Stratify by 街道 when the candidates span two or more, else by grid, else one stratum."""
    for col, label in (("street_office", "街道"), ("grid_code", "网格")):
        if col in frame:
            v = frame[col].astype("object")
            if v.dropna().nunique() >= 2:
                return label, v.where(v.notna(), "(未划网格)").map(str).to_numpy()
    return "全域", np.array(["全域"] * len(frame), dtype=object)


def select(
    places: gpd.GeoDataFrame,
    *,
    quotas: Mapping[str, int],
    seed: int,
    min_spacing_m: float,
    pass_score: float,
    random_mode: bool = False,
) -> Selection:
    """Pick the sample points of each category.

    Stratified mode (default): the strata are the 街道 of the category's candidates (the grids when all
    lie in one 街道). Strata take turns in a seeded random order, each turn picking its best remaining
    candidate that lies at least ``min_spacing_m`` metres (planar, project CRS) from every pick of the
    category: a ready candidate (``readiness >= pass_score``) when there is one, else the one with the
    highest readiness; among equals, one in a grid with the fewest picks so far, then at random. So
    every stratum is represented when the quota allows, the picks per stratum differ by at most one
    while a stratum still has an eligible candidate, and the same seed gives the same picks.

    Random mode: a simple random sample of ``quota`` candidates per category (what an inspector would
    draw), ignoring readiness, strata and spacing.

    Parameters
    ----------
    places
        Candidates with readiness (:func:`readiness`), projected CRS in metres.
    quotas
        Category → number of sample points.

    Returns
    -------
    Selection
        ``picks``: the chosen rows of ``places`` (point geometry: the representative point) with
        ``pick`` (1…n per category), ``reason`` and ``mode``; ``report``: one row per category in
        ``quotas`` with quota, picked, shortfall, candidates, ready candidates, strata and the reason of
        any shortfall.
    """
    projected(places, "candidates")
    if "readiness" not in places:
        raise AnalysisError("candidates have no 'readiness' column: run geo.sampling.readiness first")
    pts = places.geometry.representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()]) if len(places) else np.empty((0, 2))
    cats = places["category"].astype("object").to_numpy()
    ready_all = (places["readiness"].to_numpy(dtype=float) >= pass_score)
    # the columns the strata and grid cells are read from, as a plain frame (no GeoDataFrame per category)
    keys = pd.DataFrame({c: places[c] for c in ("street_office", "grid_code", "readiness") if c in places},
                        index=places.index)
    picks: list[tuple[list[int], list[str], str]] = []  # per category: rows of places, reasons, mode
    report = []
    for category, quota in quotas.items():
        quota = int(quota)
        if quota <= 0:
            continue
        rows = np.flatnonzero(cats == category)
        sub = keys.iloc[rows]
        rng = _rng(seed, category)
        label, strata = _strata(sub)
        info = {"category": category, "quota": quota, "candidates": len(rows),
                "ready_candidates": int(ready_all[rows].sum()), "strata": len(set(strata)) if len(rows) else 0}
        if random_mode:
            take = rng.choice(len(rows), size=min(quota, len(rows)), replace=False)
            chosen = [(int(t), "随机抽取(模拟检查组)") for t in np.sort(take)]
            why = ""
        else:
            cells = sub["grid_code"].to_numpy(dtype=object) if "grid_code" in sub else np.full(len(sub), None)
            chosen, why = _stratified(xy[rows], ready_all[rows], sub["readiness"].to_numpy(dtype=float), strata,
                                      cells=cells,
                                      label=label, quota=quota, spacing_m=min_spacing_m, rng=rng)
        idx = [rows[c] for c, _ in chosen]
        picks.append((idx, [w for _, w in chosen], "随机" if random_mode else "分层"))
        picked = len(idx)
        covered = len(set(strata[[c for c, _ in chosen]])) if picked else 0
        if picked < quota:
            if len(rows) == 0:
                why = f"无{category}候选点: 在样本点图层(sample_points)中录入该类场所"
            elif len(rows) < quota:
                why = "; ".join(w for w in (f"候选点仅{len(rows)}个, 少于配额{quota}", why) if w)
        not_ready = int((~ready_all[idx]).sum()) if picked else 0
        note = f"{not_ready}个入选点准备度低于{pass_score:g}, 需先整改" if not_ready else ""
        report.append({**info, "picked": picked, "shortfall": quota - picked, "strata_covered": covered,
                       "not_ready_picked": not_ready, "reason": why.strip("; "), "note": note})
    out = _picked_rows(places, picks) if picks else places.iloc[:0].copy()
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=places.crs)
    if len(out):
        out["geometry"] = out.geometry.representative_point()
    for col in ("pick", "reason", "mode"):
        if col not in out:
            out[col] = pd.Series(dtype="object")
    cols = ["category", "quota", "picked", "shortfall", "candidates", "ready_candidates", "strata",
            "strata_covered", "not_ready_picked", "reason", "note"]
    return Selection(picks=out.reset_index(drop=True), report=pd.DataFrame(report, columns=cols))


def _picked_rows(places: gpd.GeoDataFrame, picks: list[tuple[list[int], list[str], str]]) -> pd.DataFrame:
    """The picked rows of all categories in order, with their ``pick`` (1…n per category), ``reason`` and
    ``mode``: the frame that concatenating each category's rows with these columns set on them gives,
    made by one take of ``places`` and the columns set once (setting them on each category's rows cost
    ~2 ms a category: a column inserted into a frame whose labels are Arrow strings)."""

    def with_columns(frame: pd.DataFrame, idx: list[int], reasons: list[str], mode: str) -> pd.DataFrame:
        frame["pick"] = np.arange(1, len(idx) + 1)
        frame["reason"] = reasons
        frame["mode"] = mode
        return frame

    if {"pick", "reason", "mode"} & set(places.columns):  # a column of places replaced in place: as before
        return pd.concat([with_columns(places.iloc[i].copy(), i, r, m) for i, r, m in picks], ignore_index=True)
    added = pd.concat([with_columns(pd.DataFrame(index=pd.RangeIndex(len(i))), i, r, m) for i, r, m in picks],
                      ignore_index=True)
    out = places.iloc[np.concatenate([np.asarray(i, dtype=np.intp) for i, _, _ in picks])].reset_index(drop=True)
    for c in added.columns:
        out[c] = added[c]
    return out


def _stratified(xy: np.ndarray, ready: np.ndarray, score: np.ndarray, strata: np.ndarray, *, cells: np.ndarray,
                label: str, quota: int, spacing_m: float,
                rng: np.random.Generator) -> tuple[list[tuple[int, str]], str]:
    """Round-robin over strata; returns (position, reason) picks and the reason of any shortfall.

    In its turn a stratum picks, among its candidates still eligible (not picked, not within the spacing
    of a pick): ready ones first (else the highest readiness), then one in the grid cell (``cells``)
    with the fewest picks so far, then at random.
    """
    n = len(xy)
    if n == 0:
        return [], ""
    key = rng.random(n)
    names = sorted(set(strata))
    order = [names[i] for i in rng.permutation(len(names))]
    members = {s: np.flatnonzero(strata == s) for s in order}
    cell_id = pd.factorize(pd.Series(cells, dtype="object").fillna("(none)"))[0]
    cell_picks = np.zeros(cell_id.max() + 1, dtype=np.int64)
    unready_rank = np.where(ready, 0.0, -score)
    alive = np.ones(n, dtype=bool)  # not picked and not too close to a pick
    picked: list[tuple[int, str]] = []
    blocked = 0
    rnd = 0
    while len(picked) < quota:
        rnd += 1
        progress = False
        for s in order:
            if len(picked) >= quota:
                break
            m = members[s][alive[members[s]]]
            if not len(m):
                continue
            c = int(m[np.lexsort((key[m], cell_picks[cell_id[m]], unready_rank[m], ~ready[m]))[0]])
            cell_picks[cell_id[c]] += 1
            dmin = float(np.min(np.hypot(*(xy[[p for p, _ in picked]] - xy[c]).T))) if picked else math.inf
            alive[c] = False
            if spacing_m > 0:
                close = np.hypot(*(xy - xy[c]).T) < spacing_m
                blocked += int((close & alive).sum())
                alive &= ~close
            how = (f"达标候选点中随机抽取(准备度{score[c]:.0f})" if ready[c]
                   else f"本{label}无可选的达标候选点, 取准备度最高者({score[c]:.0f})")
            spaced = f"; 距同类已选点{dmin:.0f}米" if math.isfinite(dmin) else ""
            picked.append((c, f"第{rnd}轮·{label}:{s}; {how}{spaced}"))
            progress = True
        if not progress:
            break
    why = ""
    if len(picked) < quota and blocked and n >= quota:
        why = f"其余{blocked}个候选点距已选同类样本点不足{spacing_m:g}米(最小间距)"
    elif len(picked) < quota and blocked:
        why = f"另有{blocked}个候选点因最小间距{spacing_m:g}米未选"
    return picked, why


# --------------------------------------------------------------------------- mock spot-check
def p_any_fail(n_places: int, n_failing: int, n_drawn: int) -> float:
    """Exact probability that a random draw of ``n_drawn`` of ``n_places`` (without replacement) contains
    at least one of the ``n_failing`` failing places: ``1 - C(N-K, n) / C(N, n)`` (hypergeometric),
    computed as ``1 - prod_{i<n} (N-K-i) / (N-i)``."""
    n_drawn = min(n_drawn, n_places)
    if n_failing <= 0 or n_drawn <= 0:
        return 0.0
    if n_places - n_failing < n_drawn:
        return 1.0
    none = 1.0
    for i in range(n_drawn):
        none *= (n_places - n_failing - i) / (n_places - i)
    return 1.0 - none


def _p_any_fail_many(n_places: int, n_failing: np.ndarray, n_drawn: int) -> np.ndarray:
    """:func:`p_any_fail` for an array of failing counts (vectorised)."""
    n_drawn = min(n_drawn, n_places)
    i = np.arange(n_drawn)
    terms = (n_places - n_failing[:, None] - i[None, :]) / (n_places - i[None, :])
    return 1.0 - np.prod(np.clip(terms, 0.0, None), axis=1)


def simulate_draws(fail_loss: np.ndarray, n_places: int, n_drawn: int, *, draws: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``draws`` inspections of one category, vectorised.

    A draw takes ``n_drawn`` of ``n_places`` places uniformly without replacement. Only the failing
    places matter, so the number of failing places drawn is sampled directly from the hypergeometric
    distribution, and which ones as the first ``k`` of a uniformly random ordered subset of the failing
    places (Floyd's subset algorithm vectorised over the draws, then a Fisher-Yates shuffle): the same
    distribution as drawing the places themselves, in O(draws × n²) with no Python loop over draws.

    Parameters
    ----------
    fail_loss
        Score loss of each *failing* place (length K).

    Returns
    -------
    (any_fail, loss)
        Boolean array (draws,) — at least one failing place drawn — and float array (draws,) — the
        score lost in that draw.
    """
    k_fail = len(fail_loss)
    n_drawn = min(n_drawn, n_places)
    if k_fail == 0 or n_drawn == 0:
        return np.zeros(draws, dtype=bool), np.zeros(draws)
    k = rng.hypergeometric(k_fail, n_places - k_fail, n_drawn, size=draws)
    m = min(n_drawn, k_fail)  # at most this many failing places in one draw
    # a uniform m-subset of the failing places per draw (Floyd's algorithm, one column at a time) ...
    chosen = np.empty((draws, m), dtype=np.int64)
    for col, j in enumerate(range(k_fail - m, k_fail)):
        t = rng.integers(0, j + 1, size=draws)
        dup = (chosen[:, :col] == t[:, None]).any(axis=1)
        chosen[:, col] = np.where(dup, j, t)
    # ... shuffled (Fisher-Yates, one column at a time), so that its first k form a uniform k-subset
    rows = np.arange(draws)
    for col in range(m - 1, 0, -1):
        swap = rng.integers(0, col + 1, size=draws)
        a, b = chosen[rows, swap], chosen[:, col].copy()
        chosen[:, col], chosen[rows, swap] = a, b
    cum = np.cumsum(fail_loss[chosen], axis=1)
    loss = np.where(k > 0, cum[np.arange(draws), np.maximum(k, 1) - 1], 0.0)
    return k > 0, loss


@dataclass(frozen=True)
class MockCheck:
    """Risk per category and the repairs that lower it most, in order."""

    risk: pd.DataFrame
    repairs: pd.DataFrame


def mock_check(
    places: pd.DataFrame,
    *,
    settings: Settings,
    draws: int | None = None,
    seed: int | None = None,
) -> MockCheck:
    """Simulate the inspectors' random spot-checks (模拟技术评估).

    Per category, ``settings.sampling.spot_checks[category]`` places (default ``spot_check_default``)
    are drawn at random from all its candidates, ``draws`` times (default ``sampling.draws``). A place
    fails when ``readiness < sampling.pass_score``; a failing place drawn costs
    ``sampling.deduction × (1 - readiness/100)`` points (a worse place loses more).

    Returns
    -------
    MockCheck
        ``risk``: per category the places, failing places, places drawn, the simulated probability that at
        least one drawn place fails (``p_fail``, with its Monte-Carlo standard error ``p_fail_se``), the
        exact hypergeometric value (``p_fail_exact``), the simulated and exact expected score loss.
        ``repairs``: failing places in the order that lowers the total risk (sum of the categories'
        failure probabilities) fastest (see :func:`_repair_order`; exact hypergeometric values), with
        the category risk before and after each repair and the total risk left.
    """
    sc = settings.sampling
    draws = int(draws or sc.draws)
    seed = sc.seed if seed is None else seed
    score = places["readiness"].to_numpy(dtype=float)
    fail = score < sc.pass_score
    loss = np.where(fail, sc.deduction * (1 - score / 100.0), 0.0)
    cats = places["category"].astype("object").to_numpy()
    rows = []
    state = {}
    for category in sorted(set(cats), key=str):
        members = np.flatnonzero(cats == category)
        n_places = len(members)
        n_drawn = min(int(sc.spot_checks.get(category, sc.spot_check_default)), n_places)
        failing = members[fail[members]]
        any_fail, lost = simulate_draws(loss[failing], n_places, n_drawn, draws=draws, rng=_rng(seed, category))
        p = float(any_fail.mean())
        rows.append({"category": category, "places": n_places, "failing": len(failing), "drawn": n_drawn,
                     "p_fail": p, "p_fail_se": math.sqrt(p * (1 - p) / draws),
                     "p_fail_exact": p_any_fail(n_places, len(failing), n_drawn),
                     "expected_loss": float(lost.mean()),
                     "expected_loss_exact": float(loss[failing].sum() * n_drawn / n_places) if n_places else 0.0})
        state[category] = (n_places, n_drawn, sorted(failing, key=lambda i: -loss[i]))
    risk = pd.DataFrame(rows, columns=["category", "places", "failing", "drawn", "p_fail", "p_fail_se",
                                       "p_fail_exact", "expected_loss", "expected_loss_exact"])
    risk = risk.sort_values(["p_fail_exact", "expected_loss_exact"], ascending=False).reset_index(drop=True)
    return MockCheck(risk=risk, repairs=_repair_order(places, state, loss, total=float(risk["p_fail_exact"].sum())))


def _repair_order(places: pd.DataFrame, state: dict, loss: np.ndarray, *, total: float) -> pd.DataFrame:
    """Order the repairs so that the summed failure probability falls fastest.

    The risk of a category falls slowly for the first repairs when many of its places fail (any one of
    them still fails the draw), so a one-step greedy would pass such a category over. At each step every
    category offers its best block of the next ``j`` repairs (its worst places first), valued by the
    average risk drop per repair ``(P(K) - P(K-j)) / j`` (ties: the larger expected loss avoided); the
    best block is taken, and the values are recomputed.
    """
    left = {c: list(v[2]) for c, v in state.items()}

    def offer(c: str) -> tuple[float, float, int]:
        n_places, n_drawn, _ = state[c]
        q = left[c]
        j = np.arange(1, len(q) + 1)
        p = _p_any_fail_many(n_places, np.arange(len(q) + 1), n_drawn)  # p[f]: risk with f failing
        rate = (p[len(q)] - p[len(q) - j]) / j
        avoided = np.cumsum(loss[q]) * n_drawn / n_places / j
        best = int(np.lexsort((-avoided, -rate))[0])  # highest rate, then highest loss avoided
        return float(rate[best]), float(avoided[best]), best + 1

    offers = {c: offer(c) for c, q in left.items() if q}
    cols = {c: places[c].to_numpy(dtype=object) if c in places else np.full(len(places), None, dtype=object)
            for c in ("candidate_id", "name", "grid_code", "address", "reasons")}
    score = places["readiness"].to_numpy(dtype=float)
    out: list[dict] = []
    while offers:
        c = max(offers, key=lambda k: offers[k][:2])
        n_places, n_drawn, _ = state[c]
        for _ in range(offers[c][2]):
            before = p_any_fail(n_places, len(left[c]), n_drawn)
            i = left[c].pop(0)
            after = p_any_fail(n_places, len(left[c]), n_drawn)
            total -= before - after
            out.append({"order": len(out) + 1, "candidate_id": cols["candidate_id"][i], "category": c,
                        "name": cols["name"][i], "grid_code": cols["grid_code"][i], "address": cols["address"][i],
                        "readiness": score[i], "reasons": cols["reasons"][i], "risk_before": before,
                        "risk_after": after, "risk_drop": before - after,
                        "loss_drop": float(loss[i] * n_drawn / n_places), "total_risk_after": max(total, 0.0)})
        if left[c]:
            offers[c] = offer(c)
        else:
            del offers[c]
    cols_out = ["order", "candidate_id", "category", "name", "grid_code", "address", "readiness", "reasons",
                "risk_before", "risk_after", "risk_drop", "loss_drop", "total_risk_after"]
    return pd.DataFrame(out, columns=cols_out)
