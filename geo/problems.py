"""Reported problems: the case lifecycle, deadlines, overdue status and routing to grids and units.

Lifecycle (数字城管 workflow, GB/T 30428): 立案 → 派遣 → 处置 → 核查 → 结案 (销号); at 核查 a case
that is not fixed is sent back (返工) and goes to 处置 again. Every other change is illegal.

Deadlines (处置时限) come from each category in the settings:

* ``unit = "hours"``: clock hours after the start.
* ``unit = "workdays"``: the same time of day N working days later. Working days are Monday to
  Friday, minus ``settings.problems.holidays``, plus ``settings.problems.workdays_extra`` (调休
  weekend days that are worked). A case reported on a rest day starts at 00:00 of the next
  working day.

A case is overdue at ``as_of`` when it was reported by then, its deadline has passed, and it was
not closed by then (``closed_at`` empty or later than ``as_of``): so "overdue" can be computed at any
past date from the layer alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd

from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.layers.export import OVERDUE_HEADERS
from sanigrid.layers.settings import Settings

STATES: tuple[str, ...] = ("立案", "派遣", "处置", "核查", "返工", "结案")
OPEN_STATES: tuple[str, ...] = ("立案", "派遣", "处置", "核查", "返工")
CLOSED = "结案"
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "立案": ("派遣",),
    "派遣": ("处置",),
    "处置": ("核查",),
    "核查": ("结案", "返工"),
    "返工": ("处置",),
    "结案": (),
}
HISTORY_TABLE = "problem_history"
HISTORY_COLUMNS = ("problem_id", "from_status", "to_status", "at", "actor", "note")


class IllegalTransition(AnalysisError):
    """A status change the lifecycle does not allow."""


def check_transition(current: str, new: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current → new`` is a legal step."""
    if current not in TRANSITIONS:
        raise IllegalTransition(f"未知状态「{current}」; 合法状态: {'、'.join(STATES)}")
    if new not in TRANSITIONS:
        raise IllegalTransition(f"未知状态「{new}」; 合法状态: {'、'.join(STATES)}")
    legal = TRANSITIONS[current]
    if new not in legal:
        nxt = "、".join(legal) if legal else "无 (已结案, 如问题再次出现请重新立案)"
        raise IllegalTransition(
            f"不能从「{current}」变为「{new}」: 「{current}」之后只能是 {nxt} "
            f"(cannot go from {current} to {new})"
        )


def history_record(problem_id: int, current: str, new: str, *, at: datetime, actor: str,
                   note: str = "") -> dict[str, object]:
    """Check a transition and return the history row that records it."""
    check_transition(current, new)
    return {"problem_id": int(problem_id), "from_status": current, "to_status": new,
            "at": pd.Timestamp(at), "actor": actor, "note": note}


def _calendar(settings: Settings, start: np.datetime64, end: np.datetime64) -> np.busdaycalendar:
    """A calendar of working days: Mon-Fri, minus holidays, plus worked weekend days (调休)."""
    days = np.arange(start, end, dtype="datetime64[D]")
    weekday = (days.astype("int64") - 4) % 7  # 1970-01-01 was a Thursday → Monday = 0
    rest = days[weekday >= 5]
    extra = np.array(sorted(settings.problems.workdays_extra), dtype="datetime64[D]")
    rest = np.setdiff1d(rest, extra)
    holidays = np.union1d(rest, np.array(sorted(settings.problems.holidays), dtype="datetime64[D]"))
    return np.busdaycalendar(weekmask="1111111", holidays=holidays)


def deadlines(categories: Iterable[str], starts: Iterable[datetime] | pd.Series, *,
              settings: Settings) -> pd.Series:
    """Deadline of each case from its category and start time (vectorised).

    Unknown categories raise :class:`AnalysisError` naming them and the settings to edit.
    Returns a datetime Series (naive local time, like the inputs).
    """
    # arrays are taken as they are (no per-element Python objects: 10^5 cases take milliseconds)
    cat_values = categories.to_numpy() if isinstance(categories, pd.Series) else list(categories)
    cats = pd.Series(np.asarray(cat_values, dtype="object"), dtype="object")
    start_values = starts.to_numpy() if isinstance(starts, pd.Series) else list(starts)
    start = pd.Series(pd.to_datetime(start_values)).astype("datetime64[ms]")
    table = {c.name: c for c in settings.problems.categories}
    unknown = sorted(set(cats.dropna()) - set(table))
    if unknown:
        raise AnalysisError(
            f"unknown problem categories: {', '.join(unknown)}; add them to [problems] categories in "
            "sanigrid.toml or fix the data"
        )
    amount = cats.map({n: c.deadline for n, c in table.items()}).astype("float64")
    hours = cats.map({n: c.unit == "hours" for n, c in table.items()}).fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=cats.index, dtype="datetime64[ms]")
    if hours.any():
        out[hours] = start[hours] + pd.to_timedelta(amount[hours], unit="h")
    wd = ~hours & start.notna() & amount.notna()
    if wd.any():
        s = start[wd]
        day = s.dt.floor("D").to_numpy().astype("datetime64[D]")
        tod = (s - s.dt.floor("D")).to_numpy()
        lo, hi = day.min() - np.timedelta64(7, "D"), day.max() + np.timedelta64(400, "D")
        cal = _calendar(settings, lo, hi)
        is_work = np.is_busday(day, busdaycal=cal)
        # a case reported on a rest day starts at 00:00 of the next working day
        tod = np.where(is_work, tod, np.timedelta64(0, "ms"))
        first = np.busday_offset(day, 0, roll="forward", busdaycal=cal)
        n = np.ceil(amount[wd].to_numpy()).astype("int64")
        due = np.busday_offset(first, n, roll="forward", busdaycal=cal)
        out[wd] = due.astype("datetime64[ms]") + tod
    return out


def deadline_for(category: str, start: datetime, *, settings: Settings) -> datetime:
    """Deadline of one case (see :func:`deadlines`)."""
    return deadlines([category], [start], settings=settings).iloc[0].to_pydatetime()


def is_open(problems: pd.DataFrame, *, as_of: datetime | None = None) -> pd.Series:
    """Open at ``as_of`` (now: status is not 结案; at a past date: reported and not yet closed)."""
    if as_of is None:
        return problems["status"].ne(CLOSED).rename("open")
    t = pd.Timestamp(as_of)
    closed = pd.to_datetime(problems["closed_at"])
    reported = pd.to_datetime(problems["reported_at"])
    return ((reported <= t) & (closed.isna() | (closed > t))).rename("open")


def is_overdue(problems: pd.DataFrame, *, as_of: datetime) -> pd.Series:
    """Open at ``as_of`` and past its deadline."""
    deadline = pd.to_datetime(problems["deadline"])
    return (is_open(problems, as_of=as_of) & deadline.notna() & (deadline < pd.Timestamp(as_of))).rename(
        "overdue")


def days_overdue(problems: pd.DataFrame, *, as_of: datetime) -> pd.Series:
    """Days past the deadline at ``as_of`` for overdue cases, 0 otherwise (float, days)."""
    late = (pd.Timestamp(as_of) - pd.to_datetime(problems["deadline"])) / pd.Timedelta(days=1)
    return late.where(is_overdue(problems, as_of=as_of), 0.0).astype("float64").rename("days_overdue")


def closed_on_time(problems: pd.DataFrame) -> pd.Series:
    """Closed, and closed by the deadline (for 按期结案率); NA while still open."""
    closed = pd.to_datetime(problems["closed_at"])
    deadline = pd.to_datetime(problems["deadline"])
    out = (closed <= deadline).astype("boolean")
    return out.where(closed.notna(), pd.NA).rename("on_time")


def assign(problems: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, settings: Settings) -> gpd.GeoDataFrame:
    """Fill ``grid_code`` by location and ``unit``: the category's unit if it routes elsewhere, else
    the grid's lead unit. Returns a new frame; CRS and index kept."""
    out = problems.copy()
    out["grid_code"] = assign_grid(problems, grids)
    lead = dict(zip(grids["code"], grids.get("lead_unit", pd.Series(index=grids.index, dtype=object)),
                    strict=True))
    route = {c.name: c.route_to for c in settings.problems.categories if c.route_to}
    grid_unit = out["grid_code"].map(lead)
    out["unit"] = out["category"].map(route).where(out["category"].isin(list(route)), grid_unit)
    out["unit"] = out["unit"].astype("object").where(out["unit"].notna(), None)
    return out


def as_of_default(problems: pd.DataFrame, *, recorded: str | None = None) -> datetime:
    """The "as of" instant when none is given.

    ``recorded`` is the instant the data were taken, when the layer's maker recorded one (the demo
    does: its statuses are as at the end of its six months); otherwise now, or the day after the last
    report if the data are more than 30 days old.
    """
    if recorded:
        try:
            return pd.Timestamp(recorded).to_pydatetime()
        except (ValueError, TypeError):
            pass
    now = datetime.now()
    if len(problems) and "reported_at" in problems:
        last = pd.to_datetime(problems["reported_at"]).max()
        if pd.notna(last) and last < pd.Timestamp(now) - timedelta(days=30):
            return (last + pd.Timedelta(days=1)).floor("D").to_pydatetime()
    return now


def workday(d: date, *, settings: Settings) -> bool:
    """Whether ``d`` is a working day under the settings' calendar."""
    day = np.datetime64(d, "D")
    return bool(np.is_busday(day, busdaycal=_calendar(settings, day - 7, day + 7)))


RESPONSIBILITY_HEADERS = {
    "problem_id": "编号", "category": "问题类别", "description": "问题描述", "status": "状态",
    "reported_at": "上报时间", "deadline": "处置时限", **OVERDUE_HEADERS,
    "grid_code": "网格编码", "unit": "责任单位", "address": "地址", "open": "未结案数",
    "overdue_count": "逾期数", "max_days_overdue": "最长逾期天数", "grid_name": "网格名称",
    "lead_unit": "牵头单位",
}


def responsibility_list(problems: gpd.GeoDataFrame, *, as_of: datetime,
                        grids: gpd.GeoDataFrame | None = None) -> dict[str, pd.DataFrame]:
    """责任清单: the problems open at ``as_of``, per grid and responsible unit.

    Returns ``{sheet name: frame}`` for :func:`layers.export.write_xlsx`: a summary sheet 汇总 (one
    row per grid and unit: open, overdue, longest overdue in days) and one sheet per grid
    (``网格<code>``) listing its open problems, overdue ones first (most days overdue first), with
    deadline, days overdue and location (points; the export adds 经度/纬度). Problems without a grid
    go to a sheet 未分网格. ``problems`` needs ``deadline``, ``grid_code`` and ``unit`` (fill them
    with :func:`deadlines` and :func:`assign` first). Use :data:`RESPONSIBILITY_HEADERS` as headers.
    """
    open_ = is_open(problems, as_of=as_of)
    p = problems[open_.to_numpy()].copy()
    p["overdue"] = is_overdue(p, as_of=as_of).map({True: "是", False: "否"})
    p["days_overdue"] = days_overdue(p, as_of=as_of).round(1)
    p["grid_code"] = p["grid_code"].astype("object").where(p["grid_code"].notna(), "未分网格")
    p["unit"] = p["unit"].astype("object").where(p["unit"].notna(), "未指定")
    cols = [c for c in ("problem_id", "category", "description", "status", "reported_at", "deadline", "overdue",
                        "days_overdue", "grid_code", "unit", "address") if c in p]
    p = p.sort_values(["grid_code", "days_overdue", "deadline"], ascending=[True, False, True])
    grp = p.groupby(["grid_code", "unit"])
    summary = pd.DataFrame({
        "open": grp.size(),
        "overdue_count": grp["overdue"].agg(lambda s: int((s == "是").sum())),
        "max_days_overdue": grp["days_overdue"].max(),
    }).reset_index()
    if grids is not None and len(grids) and "code" in grids:
        info = pd.DataFrame({"grid_code": grids["code"].astype(str),
                             "grid_name": grids["name"] if "name" in grids else None,
                             "lead_unit": grids["lead_unit"] if "lead_unit" in grids else None})
        summary = summary.merge(info, on="grid_code", how="left")
        summary = summary[["grid_code", "grid_name", "lead_unit", "unit", "open", "overdue_count",
                           "max_days_overdue"]]
    summary = summary.sort_values(["overdue_count", "open"], ascending=False).reset_index(drop=True)
    sheets: dict[str, pd.DataFrame] = {"汇总": summary}
    for code, part in p.groupby("grid_code", sort=True):
        name = "未分网格" if code == "未分网格" else f"网格{code}"
        sheets[name] = gpd.GeoDataFrame(part[cols], geometry=part.geometry, crs=problems.crs) \
            if isinstance(problems, gpd.GeoDataFrame) else part[cols]
    return sheets
