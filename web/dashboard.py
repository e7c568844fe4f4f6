"""The office's dashboard (``/dashboard``): trends of the case work, drawn on the server as SVG.

Three questions the 创卫办 asks every week, each answered from the problems layer with the case rules
of :mod:`sanigrid.layers.cases` (the same instants, the same "open", "overdue" and "on time" as the
map, the grid pages and the ranking):

- **reports per week by category** (the most frequent categories, the rest as 其他);
- **on-time rate per grid and per unit** (cases closed by their deadline / cases closed, with the
  number closed, worst first);
- **open and overdue over time** (counted at the end of each week with :func:`cases.is_open` and
  :func:`cases.overdue`).

The charts are plain SVG made here (no script, nothing fetched), so the page prints and works offline;
each bar and point carries its value in ``data-value`` and a ``<title>`` tooltip. Colours are the
Okabe–Ito set (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from sanigrid.layers import cases
from sanigrid.layers.filters import between, bins, either, eq, gt, ne, not_after

#: categories drawn on their own in the weekly chart; the others are summed as 其他
TOP_CATEGORIES = 6
#: Okabe–Ito colours (Wong 2011, Nature Methods 8:441), black last
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER = "其他"
OTHER_COLOUR = "#bbbbbb"


@dataclass(frozen=True)
class Trends:
    as_of: datetime
    weekly: pd.DataFrame        # index: week start (Monday); columns: categories (+ 其他); values: reports
    open_over_time: pd.DataFrame  # index: week end; columns open, overdue
    by_grid: pd.DataFrame       # index: grid code; closed, on_time, rate
    by_unit: pd.DataFrame       # index: unit; closed, on_time, rate


def week_starts(times: pd.Series) -> pd.Series:
    """The Monday 00:00 of each time's week."""
    t = pd.to_datetime(times)
    return (t - pd.to_timedelta(t.dt.day_of_week, unit="D")).dt.normalize()


def on_time_table(problems: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per value of ``by``: cases closed, closed on time, and the rate (worst first, then most closed)."""
    if by not in problems or not len(problems):
        return pd.DataFrame({"closed": [], "on_time": [], "rate": []})
    ok = cases.closed_on_time(problems)
    frame = pd.DataFrame({"key": problems[by].astype("object"), "closed": ok.notna(),
                          "on_time": ok.fillna(False).astype(bool)})
    frame = frame[frame["key"].notna() & frame["closed"]]
    out = frame.groupby("key")[["closed", "on_time"]].sum().astype(int)
    out["rate"] = out["on_time"] / out["closed"]
    out.index.name = by
    return out.sort_values(["rate", "closed"], ascending=[True, False])


def trends(problems: pd.DataFrame, *, as_of: datetime, weeks: int = 26) -> Trends:
    """The three trends of the module docstring over the last ``weeks`` weeks up to ``as_of``."""
    t = pd.Timestamp(as_of)
    reported = (pd.to_datetime(problems["reported_at"]) if "reported_at" in problems
                else pd.Series(pd.NaT, index=problems.index, dtype="datetime64[ns]"))
    first_week = week_starts(pd.Series([t])).iloc[0] - pd.Timedelta(weeks=weeks - 1)
    starts = pd.date_range(first_week, periods=weeks, freq="7D")
    seen = reported.notna() & (reported >= first_week) & (reported <= t)
    cat = problems["category"].astype("object") if "category" in problems else pd.Series(OTHER, index=problems.index)
    top = cat[seen].value_counts().index[:TOP_CATEGORIES].tolist()
    label = cat.where(cat.isin(top), OTHER)
    wk = week_starts(reported[seen])
    weekly = (pd.crosstab(wk, label[seen]).reindex(index=starts, fill_value=0)
              if seen.any() else pd.DataFrame(index=starts))
    rest = [OTHER] if OTHER not in top and (label[seen] == OTHER).any() else []
    weekly = weekly.reindex(columns=top + rest, fill_value=0)
    weekly.index.name = "week"
    ends = [min(s + pd.Timedelta(days=7), t) for s in starts]
    rows = []
    for end in ends:
        od = cases.overdue(problems, as_of=end)
        rows.append((int(cases.is_open(problems, as_of=end).sum()), int(od["overdue"].sum())))
    over_time = pd.DataFrame(rows, index=pd.DatetimeIndex(ends, name="as_of"), columns=["open", "overdue"])
    return Trends(as_of=t.to_pydatetime(), weekly=weekly.astype(int), open_over_time=over_time,
                  by_grid=on_time_table(problems, "grid_code"), by_unit=on_time_table(problems, "unit"))


def trends_in_store(store: Any, *, as_of: datetime, weeks: int = 26) -> Trends:
    """:func:`trends` of the store's problems layer, counted in the store (SQL) instead of read: four
    grouped counts over the needed columns, no row and no geometry read. The same frames as
    :func:`trends` on the whole layer (tests hold them equal).

    - weekly: counts per (week, category) of the cases reported in the window (the week a
      :class:`~layers.filters.Bin` of the report time at the week starts);
    - open and overdue at each week's end: counts per (report, closing, deadline bin at the ends,
      status), from which each end's counts follow with the rules of :func:`cases.is_open` and
      :func:`cases.overdue`;
    - on time per grid and unit: the closed cases per key, and of them those closed by the deadline.
    """
    t = pd.Timestamp(as_of)
    first_week = week_starts(pd.Series([t])).iloc[0] - pd.Timedelta(weeks=weeks - 1)
    starts = pd.date_range(first_week, periods=weeks, freq="7D")
    ends = [min(s + pd.Timedelta(days=7), t) for s in starts]
    has = store.has("problems")
    # reports per week and category
    per = (store.count_by("problems", [bins("reported_at", list(starts[1:]), strict=True), "category"],
                          where=between("reported_at", lo=first_week, hi=t)) if has
           else pd.DataFrame({"reported_at": [], "category": [], "n": [], "first": []}))
    cat = per["category"].astype("object")
    named = per[cat.notna().to_numpy()]
    totals = named.groupby("category", sort=False).agg(n=("n", "sum"), first=("first", "min")).sort_values(
        "first", kind="stable")
    counts = pd.Series(totals["n"].to_numpy(), index=pd.Index(totals.index, dtype=object))
    top = counts.sort_values(ascending=False, kind="stable").index[:TOP_CATEGORIES].tolist()  # as value_counts
    label = cat.where(cat.isin(top), OTHER)
    if len(per):
        week = starts[per["reported_at"].astype("int64").to_numpy()]
        weekly = (pd.DataFrame({"week": week, "label": label.to_numpy(), "n": per["n"].to_numpy()})
                  .pivot_table(index="week", columns="label", values="n", aggfunc="sum", fill_value=0)
                  .reindex(index=starts, fill_value=0))
        weekly.columns.name = "category"
    else:
        weekly = pd.DataFrame(index=starts)
    rest = [OTHER] if OTHER not in top and (label == OTHER).any() else []
    weekly = weekly.reindex(columns=top + rest, fill_value=0)
    weekly.index.name = "week"
    # open and overdue at the end of each week
    rows = [(0, 0)] * len(ends)
    if has:
        # only cases that can be open at some week's end: not closed by the first end (nor 结案 without a
        # closing time), reported by the last (a county-year's older closed cases are not counted over)
        can_be_open = (either(eq("closed_at", None) & ne("status", cases.CLOSED), gt("closed_at", ends[0]))
                       & either(eq("reported_at", None), between("reported_at", hi=ends[-1])))
        g = store.count_by("problems", [bins("reported_at", ends), bins("closed_at", ends),
                                        bins("deadline", ends, strict=True), "status"], where=can_be_open)
        kr, kc, kd = (pd.to_numeric(g[c]).to_numpy(dtype="float64") for c in ("reported_at", "closed_at", "deadline"))
        n = g["n"].to_numpy()
        closed_status = cases.is_closed_status(g["status"].astype("object")).to_numpy()
        rows = []
        for i in range(len(ends)):
            opened = np.isnan(kr) | (kr <= i)
            closed_by = (~np.isnan(kc) & (kc <= i)) | (np.isnan(kc) & closed_status)
            is_open = opened & ~closed_by
            late = is_open & ~np.isnan(kd) & (kd <= i)
            rows.append((int(n[is_open].sum()), int(n[late].sum())))
    over_time = pd.DataFrame(rows, index=pd.DatetimeIndex(ends, name="as_of"), columns=["open", "overdue"])
    return Trends(as_of=t.to_pydatetime(), weekly=weekly.astype(int), open_over_time=over_time,
                  **_on_time_in_store(store, has=has))


def _on_time_in_store(store: Any, *, has: bool) -> dict[str, pd.DataFrame]:
    """:func:`on_time_table` per grid and per unit, from one count in the store: the closed cases per
    (grid, unit), and of them those closed by the deadline."""
    keys = {"by_grid": "grid_code", "by_unit": "unit"}
    g = (store.count_by("problems", list(keys.values()), where=ne("closed_at", None),
                        also={"on_time": not_after("closed_at", "deadline")}) if has else pd.DataFrame())
    rows = has and (len(g) > 0 or store.count("problems") > 0)
    out = {}
    for name, by in keys.items():
        if not rows:  # no case at all: on_time_table's empty table
            out[name] = on_time_table(pd.DataFrame(), by)
            continue
        part = g[g[by].notna().to_numpy()]
        frame = pd.DataFrame({"key": part[by].astype("object"), "closed": part["n"].astype("int64"),
                              "on_time": part["on_time"].astype("int64")})
        table = frame.groupby("key")[["closed", "on_time"]].sum().astype(int)  # as on_time_table groups
        table["rate"] = table["on_time"] / table["closed"]
        table.index.name = by
        out[name] = table.sort_values(["rate", "closed"], ascending=[True, False])
    return out


# ---------------------------------------------------------------- SVG
def _legend(names: list[str], colours: list[str], x: float, y: float) -> str:
    out, cx = [], x
    for name, colour in zip(names, colours, strict=True):
        out.append(f'<rect x="{cx:.0f}" y="{y - 9:.0f}" width="12" height="10" fill="{colour}"/>'
                   f'<text x="{cx + 16:.0f}" y="{y:.0f}">{escape(name)}</text>')
        cx += 24 + 13 * len(name)
    return "".join(out)


def stacked_weeks_svg(weekly: pd.DataFrame, *, title: str, width: int = 760, height: int = 280) -> str:
    """Stacked bars of reports per week, one colour per category."""
    left, right, top, bottom = 44, 10, 34, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(weekly))
    totals = weekly.sum(axis=1).to_numpy() if len(weekly.columns) else np.zeros(len(weekly))
    peak = max(1, int(totals.max()) if len(totals) else 1)
    step = plot_w / n
    bar = max(2.0, step * 0.75)
    colours = [OTHER_COLOUR if c == OTHER else SERIES_COLOURS[i % len(SERIES_COLOURS)]
               for i, c in enumerate(weekly.columns)]
    parts = [f'<svg class="sg-chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'aria-label="{escape(title)}" data-chart="weekly">',
             _axis(left, top, plot_w, plot_h, peak)]
    for i, (week, row) in enumerate(weekly.iterrows()):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        for col, colour in zip(weekly.columns, colours, strict=True):
            v = int(row[col])
            if not v:
                continue
            h = plot_h * v / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}" '
                         f'data-week="{week:%Y-%m-%d}" data-series="{escape(str(col))}" data-value="{v}">'
                         f'<title>{week:%m-%d} 周 {escape(str(col))}: {v}</title></rect>')
        if i % max(1, n // 8) == 0:
            parts.append(f'<text class="sg-tick" x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" '
                         f'text-anchor="middle">{week:%m-%d}</text>')
    parts.append(_legend([str(c) for c in weekly.columns], colours, left, 16))
    parts.append("</svg>")
    return "".join(parts)


def lines_svg(frame: pd.DataFrame, labels: dict[str, str], *, title: str, width: int = 760,
              height: int = 260) -> str:
    """One line per column of ``frame`` (index: dates), each point with its value."""
    left, right, top, bottom = 44, 10, 34, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(frame)
    peak = max(1, int(frame.to_numpy().max()) if n else 1)
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(frame.columns))]
    if "overdue" in frame.columns:                 # overdue in vermillion, as everywhere on the desk
        colours[list(frame.columns).index("overdue")] = "#D55E00"
    parts = [f'<svg class="sg-chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'aria-label="{escape(title)}" data-chart="open">', _axis(left, top, plot_w, plot_h, peak)]
    xs = [left + (plot_w * i / max(1, n - 1)) for i in range(n)]
    for col, colour in zip(frame.columns, colours, strict=True):
        ys = [top + plot_h - plot_h * float(v) / peak for v in frame[col]]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, (when, v) in zip(xs, ys, frame[col].items(), strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" data-series="{escape(col)}" '
                         f'data-date="{when:%Y-%m-%d}" data-value="{int(v)}"><title>{when:%m-%d} '
                         f'{escape(labels.get(col, col))}: {int(v)}</title></circle>')
    for i in range(0, n, max(1, n // 8)):
        parts.append(f'<text class="sg-tick" x="{xs[i]:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f"{frame.index[i]:%m-%d}</text>")
    parts.append(_legend([labels.get(c, c) for c in frame.columns], colours, left, 16))
    parts.append("</svg>")
    return "".join(parts)


def rate_bars_svg(table: pd.DataFrame, *, title: str, names: dict[str, str] | None = None,
                  width: int = 760, row: int = 18) -> str:
    """Horizontal bars of the on-time rate per row of ``table`` (worst first), with the number closed."""
    names = names or {}
    left, right, top = 190, 90, 8
    plot_w = width - left - right
    height = top + row * max(1, len(table)) + 22
    parts = [f'<svg class="sg-chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'aria-label="{escape(title)}" data-chart="rate">']
    for k in (0, 0.5, 0.8, 1.0):
        x = left + plot_w * k
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 20}" stroke="#ccc"/>'
                     f'<text class="sg-tick" x="{x:.1f}" y="{height - 6}" text-anchor="middle">{k:.0%}</text>')
    for i, (key, r) in enumerate(table.iterrows()):
        y = top + i * row
        w = plot_w * float(r["rate"])
        colour = "#D55E00" if r["rate"] < 0.8 else "#0072B2"
        name = names.get(str(key), str(key))
        rate, closed, ok = float(r["rate"]), int(r["closed"]), int(r["on_time"])
        parts.append(f'<text x="{left - 6}" y="{y + row - 5}" text-anchor="end">{escape(name)}</text>'
                     f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="{colour}" '
                     f'data-key="{escape(str(key))}" data-value="{rate:.4f}" data-closed="{closed}">'
                     f"<title>{escape(name)}: {rate:.1%} ({ok}/{closed})</title></rect>"
                     f'<text x="{left + w + 4:.1f}" y="{y + row - 5}">{rate:.1%} · {closed}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axis(left: float, top: float, w: float, h: float, peak: int) -> str:
    out = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#888"/>']
    for k in range(5):
        v = round(peak * k / 4)
        y = top + h - h * v / peak
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text class="sg-tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{v}</text>')
    return "".join(out)
