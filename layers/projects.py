"""Facility projects (设施建设项目): the build status of a facility and whether its project is late.

Toilets, transfer stations, collection points and markets carry ``build_status`` (规划 planned, 在建 under
construction, 建成 built, 停用 closed), ``planned_date`` (计划建成日期) and ``project_unit`` (项目单位).
This module owns those words and the rules on them: a facility without a status is built (layers
imported before projects were tracked); only built facilities serve anyone today; planned and
under-construction ones serve once done; a project is late when it is not built by its planned
date. Every analysis and face calls these functions instead of comparing status words itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where it runs: the catalogue reads this module's words at start-up
    import pandas as pd

PLANNED = "规划"
BUILDING = "在建"
BUILT = "建成"
CLOSED_DOWN = "停用"
PROJECT_STATUSES = (PLANNED, BUILDING, BUILT, CLOSED_DOWN)
PENDING = (PLANNED, BUILDING)  # projects: not serving yet, will once done
STATUS_EN = {PLANNED: "planned", BUILDING: "under construction", BUILT: "built", CLOSED_DOWN: "closed"}
STATUS_FIELD = "build_status"  # not "status": that word is the case lifecycle's (problems)
DATE_FIELD = "planned_date"
UNIT_FIELD = "project_unit"
#: how a map and a print draw a facility that is not built: the kind's own colour, hollow and dashed
#: for 规划, hollow for 在建, grey for 停用 (Leaflet path options over the kind's style)
STATUS_STYLE: dict[str, dict[str, Any]] = {
    PLANNED: {"fill_opacity": 0.0, "dash": "3 3", "weight": 2.5},
    BUILDING: {"fill_opacity": 0.15, "weight": 2.5},
    CLOSED_DOWN: {"color": "#9e9e9e", "fill_color": "#bdbdbd", "fill_opacity": 0.5},
}
PROJECT_HEADERS = {
    "facility_kind": "设施类型", "name": "名称", "build_status": "建设状态", "planned_date": "计划建成日期",
    "project_unit": "项目单位", "grid_code": "网格编码", "late": "是否逾期", "days_late": "逾期天数",
    "new_street_m": "新增覆盖街道(米)", "new_households": "新增覆盖户数",
}


def build_status(facilities: pd.DataFrame) -> pd.Series:
    """The build status of each facility on the input's index; a missing or blank status is 建成."""
    import pandas as pd

    if STATUS_FIELD not in facilities:
        return pd.Series(BUILT, index=facilities.index, dtype="object", name=STATUS_FIELD)
    s = facilities[STATUS_FIELD].astype("object")
    blank = s.isna() | (s.astype(str).str.strip() == "")
    return s.where(~blank, BUILT).rename(STATUS_FIELD)


def is_built(facilities: pd.DataFrame) -> pd.Series:
    """Whether each facility serves today (status 建成, or none)."""
    return build_status(facilities).eq(BUILT)


def is_pending(facilities: pd.DataFrame) -> pd.Series:
    """Whether each facility is a project not done yet (规划 or 在建)."""
    return build_status(facilities).isin(PENDING)


def built(facilities: Any) -> Any:
    """The facilities that serve today (a copy; what coverage counts by default)."""
    return facilities[is_built(facilities).to_numpy()].copy()


def when_done(facilities: Any) -> Any:
    """The facilities that will serve once every planned and under-construction project is done."""
    return facilities[(is_built(facilities) | is_pending(facilities)).to_numpy()].copy()


def late(facilities: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame:
    """``late`` (bool) and ``days_late`` (whole days past the planned date at ``as_of``, 0 when not
    late) of each facility: a project not built whose planned date has passed."""
    import pandas as pd

    t = pd.Timestamp(as_of)
    planned = (pd.to_datetime(facilities[DATE_FIELD], errors="coerce") if DATE_FIELD in facilities
               else pd.Series(pd.NaT, index=facilities.index))
    # a planned date is a day: the project is late from the next day on
    due = planned.dt.normalize() + pd.Timedelta(days=1)
    flag = is_pending(facilities) & due.notna() & (due <= t)
    days = ((t.normalize() - planned.dt.normalize()) / pd.Timedelta(days=1)).where(flag, 0).fillna(0)
    return pd.DataFrame({"late": flag.astype(bool), "days_late": days.astype("int64")}, index=facilities.index)


def project_list(layers: dict[str, Any], *, as_of: datetime) -> pd.DataFrame:
    """Every project (规划/在建) of the given facility layers (``{kind: frame}``), late ones first.

    Columns: facility_kind, name, status, planned_date, project_unit, grid_code (when the layer has
    it), late, days_late; one row per project, sorted by days late then planned date.
    """
    import pandas as pd

    cols = ["facility_kind", "name", STATUS_FIELD, DATE_FIELD, UNIT_FIELD, "grid_code", "late", "days_late"]
    parts = []
    for kind, frame in layers.items():
        if frame is None or not len(frame):
            continue
        f = frame[is_pending(frame).to_numpy()]
        if not len(f):
            continue
        lt = late(f, as_of=as_of)
        parts.append(pd.DataFrame({
            "facility_kind": kind,
            "name": f["name"].to_numpy() if "name" in f else None,
            STATUS_FIELD: build_status(f).to_numpy(),
            DATE_FIELD: pd.to_datetime(f[DATE_FIELD], errors="coerce").to_numpy() if DATE_FIELD in f else pd.NaT,
            UNIT_FIELD: f[UNIT_FIELD].to_numpy() if UNIT_FIELD in f else None,
            "grid_code": f["grid_code"].to_numpy() if "grid_code" in f else None,
            "late": lt["late"].to_numpy(), "days_late": lt["days_late"].to_numpy(),
        }))
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)[cols]
    return out.sort_values(["days_late", DATE_FIELD], ascending=[False, True], na_position="last"
                           ).reset_index(drop=True)
