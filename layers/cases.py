"""The case rules, in one place: statuses, legal steps, who may take each step, the history record,
deadlines, and the one "as of" instant at which open and overdue are counted.

Every face (command line, API, map feed and popups, grid page, Excel, prints) and every analysis
calls this module; nothing else spells a status or decides who may move a case.

Lifecycle (数字城管 workflow, GB/T 30428)::

    立案 → 派遣 → 处置 → 核查 → 结案 (销号)
                   ↑        ↓
                   └─ 返工 ←┘      (at 核查 a case that is not fixed is sent back)

Who may take each step is the one table :data:`PERMISSIONS` (roles :data:`ROLES`): the campaign
office (创卫办) may take every step anywhere; a grid head (网格长) dispatches and handles the cases of
their own grid (派遣, 处置, hands the work in for 核查) but cannot verify or close it; an inspector
(监督员) verifies anywhere in the county: 核查 → 结案, or 核查 → 返工; a viewer takes none. Handing
in (处置 → 核查) needs a photo taken after handling began when ``[problems] after_photo_required``
(default: yes).

Deadlines (处置时限) come from each category in the settings:

* ``unit = "hours"``: clock hours after the start.
* ``unit = "workdays"``: the same time of day N working days later. Working days are Monday to
  Friday, minus ``settings.problems.holidays``, plus ``settings.problems.workdays_extra`` (调休
  weekend days that are worked). A case reported on a rest day starts at 00:00 of the next
  working day.

Open and overdue at an instant ``as_of`` (so they can be counted at any past date from the layer
alone): a case is open when it was reported by then and not closed by then (``closed_at`` later
than ``as_of``, or empty while the status is not 结案); it is overdue when open and its deadline is
before ``as_of``; days overdue are ``(as_of − deadline)`` in days, rounded to
:data:`DAYS_DECIMALS`. Which instant, when none is asked for, is :func:`as_of` (one rule).

Times are naive local times (as the layers hold them).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from sanigrid.layers._errors import IllegalTransition, PhotoRequired, SettingsError, StepForbidden

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from sanigrid.layers.filters import Elapsed, Where
    from sanigrid.layers.settings import Settings
else:
    class _OnFirstUse:
        """A module imported when first used: the vocabulary and the role table cost no pandas
        (the command line's ``--help`` and ``sanigrid user`` load none)."""

        def __init__(self, name: str):
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            return getattr(importlib.import_module(self._name), attr)

    np, pd = _OnFirstUse("numpy"), _OnFirstUse("pandas")

# ---------------------------------------------------------------- statuses
NEW = "立案"
DISPATCHED = "派遣"
HANDLING = "处置"
VERIFYING = "核查"
REWORK = "返工"
CLOSED = "结案"
#: every status, in workflow order
STATUSES: tuple[str, ...] = (NEW, DISPATCHED, HANDLING, VERIFYING, REWORK, CLOSED)
#: the statuses of a case not yet closed
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s != CLOSED)
STATUS_EN = {NEW: "registered", DISPATCHED: "dispatched", HANDLING: "handling", VERIFYING: "verifying",
             REWORK: "rework", CLOSED: "closed"}
#: map colours of the statuses: Okabe–Ito colours (Wong 2011, Nature Methods 8:441), each pair told apart
#: with protan, deutan and tritan vision (tests/test_map_reads.py checks it), closed cases in grey
STATUS_COLOURS = {NEW: "#d55e00", DISPATCHED: "#e69f00", HANDLING: "#0072b2", VERIFYING: "#56b4e9",
                  REWORK: "#882255", CLOSED: "#999999"}

#: the boolean field of a case marked 督办 (priority) by the office
PRIORITY = "priority"

# ---------------------------------------------------------------- roles
Role = Literal["office", "grid_head", "inspector", "viewer"]
ROLES: tuple[str, ...] = ("office", "grid_head", "inspector", "viewer")
ROLE_NAMES: dict[str, dict[str, str]] = {
    "zh": {"office": "创卫办", "grid_head": "网格长", "inspector": "监督员", "viewer": "只读"},
    "en": {"office": "campaign office", "grid_head": "grid head", "inspector": "inspector", "viewer": "viewer"},
}
ROLE_ZH = ROLE_NAMES["zh"]

#: where a role may act: anywhere in the county, or only in its own grid
Scope = Literal["any", "own"]
ANY: Scope = "any"
OWN: Scope = "own"

#: WHO may take each step: ``(from, to) → {role: scope}``; a role not listed may not. The legal
#: steps of the lifecycle are exactly the keys of this table.
PERMISSIONS: dict[tuple[str, str], dict[str, Scope]] = {
    # step                       office       grid head           inspector
    (NEW, DISPATCHED):         {"office": ANY, "grid_head": OWN},
    (DISPATCHED, HANDLING):    {"office": ANY, "grid_head": OWN},
    (HANDLING, VERIFYING):     {"office": ANY, "grid_head": OWN},                       # hand in (photo)
    (VERIFYING, CLOSED):       {"office": ANY,                     "inspector": ANY},
    (VERIFYING, REWORK):       {"office": ANY,                     "inspector": ANY},
    (REWORK, HANDLING):        {"office": ANY, "grid_head": OWN},
}

#: WHO may do the other things to a case: ``action → {role: scope}``
ACTIONS: dict[str, dict[str, Scope]] = {
    "report": {"office": ANY, "grid_head": OWN, "inspector": ANY},   # 上报 a new case
    "edit": {"office": ANY, "grid_head": OWN},                        # description, category, unit
    "move": {"office": ANY},                                           # 改派 to another grid
    "photo": {"office": ANY, "grid_head": OWN, "inspector": ANY},    # upload a photo
    "priority": {"office": ANY},                                       # mark / unmark 督办
    "archive": {"office": ANY},                                        # register a file in the 档案 archive
}

#: the legal next statuses of each status (from :data:`PERMISSIONS`)
TRANSITIONS: dict[str, tuple[str, ...]] = {s: tuple(b for a, b in PERMISSIONS if a == s) for s in STATUSES}
#: the step that needs an after-photo when ``[problems] after_photo_required``
HAND_IN: tuple[str, str] = (HANDLING, VERIFYING)

_STEP_ZH = {(NEW, DISPATCHED): "派遣", (DISPATCHED, HANDLING): "处置", (HANDLING, VERIFYING): "提交核查",
            (VERIFYING, CLOSED): "核查通过并结案", (VERIFYING, REWORK): "核查不通过 (返工)",
            (REWORK, HANDLING): "重新处置"}
_ACTION_ZH = {"report": "上报问题", "edit": "修改问题", "move": "改派网格", "photo": "上传照片", "priority": "督办",
              "archive": "登记档案资料"}


def _known(status: str) -> None:
    if status not in STATUSES:
        raise IllegalTransition(f"未知状态「{status}」; 合法状态: {'、'.join(STATUSES)} (unknown status)")


def check_transition(current: str, new: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current → new`` is a step of the lifecycle."""
    _known(current)
    _known(new)
    legal = TRANSITIONS[current]
    if new not in legal:
        nxt = "、".join(legal) if legal else "无 (已结案, 如问题再次出现请重新立案)"
        raise IllegalTransition(
            f"不能从「{current}」变为「{new}」: 「{current}」之后只能是 {nxt} "
            f"(cannot go from {current} to {new})"
        )


def _allowed(rule: Mapping[str, Scope], role: str, own_grid: bool) -> bool:
    scope = rule.get(role)
    return scope == ANY or (scope == OWN and own_grid)


def may_step(role: str, current: str, new: str, *, own_grid: bool) -> bool:
    """Whether an account of ``role`` may take the step ``current → new`` (a legal step only).

    ``own_grid``: the case lies in the account's own grid.
    """
    rule = PERMISSIONS.get((current, new))
    return rule is not None and _allowed(rule, role, own_grid)


def may(role: str, action: str, *, own_grid: bool) -> bool:
    """Whether ``role`` may do ``action`` (a key of :data:`ACTIONS`) to a case."""
    if action not in ACTIONS:
        raise KeyError(f"unknown case action {action!r}; known: {', '.join(ACTIONS)}")
    return _allowed(ACTIONS[action], role, own_grid)


def next_steps(status: str, *, role: str, own_grid: bool) -> tuple[str, ...]:
    """The statuses an account of ``role`` may move a case in ``status`` to (in table order)."""
    return tuple(b for b in TRANSITIONS.get(status, ()) if may_step(role, status, b, own_grid=own_grid))


def can_act(role: str) -> bool:
    """Whether ``role`` may change anything at all (a step or an action, somewhere)."""
    rules = list(PERMISSIONS.values()) + list(ACTIONS.values())
    return any(role in r for r in rules)


def _who(rule: Mapping[str, Scope]) -> str:
    names = ROLE_ZH
    return "、".join(names[r] + ("(本网格)" if s == OWN else "") for r, s in rule.items())


def check_step(current: str, new: str, *, role: str, own_grid: bool, has_after_photo: bool | None = None,
               settings: Settings | None = None) -> None:
    """Check a step fully: legal (:class:`IllegalTransition`), allowed to ``role``
    (:class:`StepForbidden`), and, when handing in, an after-photo if the settings ask for one
    (:class:`PhotoRequired`; ``has_after_photo=None`` skips that check)."""
    check_transition(current, new)
    if not may_step(role, current, new, own_grid=own_grid):
        rule = PERMISSIONS[(current, new)]
        where = "" if own_grid or rule.get(role) != OWN else " (该问题不在本网格)"
        raise StepForbidden(
            f"{ROLE_ZH.get(role, role)}不能「{_STEP_ZH[(current, new)]}」({current} → {new}){where}; "
            f"可由 {_who(rule)} 办理 (role {role} may not take this step)")
    required = settings.problems.after_photo_required if settings is not None else True
    if (current, new) == HAND_IN and required and has_after_photo is False:
        raise PhotoRequired(
            f"提交核查前请上传处置后的现场照片 ({HANDLING} → {VERIFYING} needs a photo taken after handling "
            "began; the rule is [problems] after_photo_required in sanigrid.toml)")


def check_action(role: str, action: str, *, own_grid: bool) -> None:
    """Raise :class:`StepForbidden` unless ``role`` may do ``action`` (see :data:`ACTIONS`)."""
    if not may(role, action, own_grid=own_grid):
        rule = ACTIONS[action]
        where = " (该问题不在本网格)" if rule.get(role) == OWN and not own_grid else ""
        raise StepForbidden(f"{ROLE_ZH.get(role, role)}不能{_ACTION_ZH[action]}{where}; 可由 {_who(rule)} 办理 "
                            f"(role {role} may not {action} here)")


# ---------------------------------------------------------------- history
HISTORY_TABLE = "problem_history"
#: one row per event: which case, from → to (equal for an edit; empty ``from_status`` when opened),
#: when, who, and a note
HISTORY_COLUMNS: tuple[str, ...] = ("problem_id", "from_status", "to_status", "at", "actor", "note")


def history_record(problem_id: int, current: str, new: str, *, at: datetime, actor: str,
                   note: str = "") -> dict[str, object]:
    """Check a transition and return the history row that records it."""
    check_transition(current, new)
    return {"problem_id": int(problem_id), "from_status": current, "to_status": new,
            "at": pd.Timestamp(at), "actor": actor, "note": note}


def opening_record(problem_id: int, *, at: datetime, actor: str, note: str = "") -> dict[str, object]:
    """The history row of a case being opened (立案): ``from_status`` empty."""
    return {"problem_id": int(problem_id), "from_status": "", "to_status": NEW, "at": pd.Timestamp(at),
            "actor": actor, "note": note}


def edit_record(problem_id: int, status: str, *, at: datetime, actor: str, note: str) -> dict[str, object]:
    """The history row of a change that is not a step (edit, 督办): ``from_status == to_status``."""
    _known(status)
    return {"problem_id": int(problem_id), "from_status": status, "to_status": status, "at": pd.Timestamp(at),
            "actor": actor, "note": note}


def history_rows(problem_id: Any, from_status: Any, to_status: Any, at: Any, actor: Any,
                 note: Any = "") -> pd.DataFrame:
    """Many history rows at once (arrays or scalars), every step checked (vectorised).

    ``from_status`` empty (``""`` or missing) with ``to_status`` 立案 records an opening. Raises
    :class:`IllegalTransition` naming the first illegal step and how many there are.
    """
    frame = pd.DataFrame({"problem_id": problem_id, "from_status": from_status, "to_status": to_status,
                          "at": at, "actor": actor, "note": note})
    frame["problem_id"] = frame["problem_id"].astype("int64")
    frame["from_status"] = frame["from_status"].astype("object").where(frame["from_status"].notna(), "")
    frame["at"] = pd.to_datetime(frame["at"]).astype("datetime64[ms]")
    legal = set(PERMISSIONS) | {("", NEW)} | {(s, s) for s in STATUSES}
    pairs = pd.Series(list(zip(frame["from_status"], frame["to_status"], strict=True)), index=frame.index)
    bad = ~pairs.isin(legal)
    if bad.any():
        first = frame[bad.to_numpy()].iloc[0]
        raise IllegalTransition(
            f"{int(bad.sum())} 条办理记录的状态变更不合法, 例如编号 {first['problem_id']}: "
            f"「{first['from_status']}」→「{first['to_status']}」 (illegal steps in the history)")
    return frame[list(HISTORY_COLUMNS)]


def handling_started(history: pd.DataFrame) -> pd.Series:
    """When each case last entered 处置 (its current round of handling), by ``problem_id``."""
    if history.empty:
        return pd.Series(dtype="datetime64[ms]")
    h = history[(history["to_status"] == HANDLING) & (history["from_status"] != HANDLING)]
    return pd.to_datetime(h["at"]).groupby(pd.to_numeric(h["problem_id"])).max()


def after_photo_taken(photos_at: Iterable[Any], handling_since: Any) -> bool:
    """Whether one of the photo times is at or after the case entered 处置 (an after-photo)."""
    times = pd.to_datetime(pd.Series(list(photos_at), dtype="object"), errors="coerce").dropna()
    if times.empty:
        return False
    if handling_since is None or pd.isna(handling_since):
        return True
    return bool((times >= pd.Timestamp(handling_since)).any())


# ---------------------------------------------------------------- deadlines
def _calendar(settings: Settings, start: np.datetime64, end: np.datetime64) -> np.busdaycalendar:
    """A calendar of working days: Mon-Fri, minus holidays, plus worked weekend days (调休)."""
    days = np.arange(start, end, dtype="datetime64[D]")
    weekday = (days.astype("int64") - 4) % 7  # 1970-01-01 was a Thursday → Monday = 0
    rest = days[weekday >= 5]
    extra = np.array(sorted(settings.problems.workdays_extra), dtype="datetime64[D]")
    rest = np.setdiff1d(rest, extra)
    holidays = np.union1d(rest, np.array(sorted(settings.problems.holidays), dtype="datetime64[D]"))
    return np.busdaycalendar(weekmask="1111111", holidays=holidays)


def _times_ms(values: Any) -> np.ndarray:
    """Times as ``datetime64[ms]`` (NaT for missing), as ``pd.to_datetime`` reads them; naive datetimes
    taken as they are (a batch of web reports: no pandas call)."""
    if isinstance(values, list) and all(v is None or (isinstance(v, datetime) and v.tzinfo is None) for v in values):
        return np.array([np.datetime64("NaT") if v is None else v for v in values], dtype="datetime64[ms]")
    return np.asarray(pd.to_datetime(values).to_numpy(), dtype="datetime64[ms]")


def deadlines(categories: Iterable[str] | pd.Series, starts: Iterable[datetime] | pd.Series, *,
              settings: Settings) -> pd.Series:
    """Deadline of each case from its category and start time (vectorised).

    Returns a datetime Series named ``deadline`` (naive local time, like the inputs) on the index of
    ``categories`` when it is a Series (else of ``starts``, else 0…n-1). Unknown categories raise
    :class:`SettingsError` naming them and the settings to edit.
    """
    index = (categories.index if isinstance(categories, pd.Series)
             else starts.index if isinstance(starts, pd.Series) else None)
    # arrays are taken as they are (no per-element Python objects: 10^5 cases take milliseconds)
    cat_values = categories.to_numpy() if isinstance(categories, pd.Series) else list(categories)
    cats = np.asarray(cat_values, dtype="object")
    start_values = starts.to_numpy() if isinstance(starts, pd.Series) else list(starts)
    start = _times_ms(start_values)
    if len(start) != len(cats):
        raise ValueError(f"deadlines: {len(cats)} categories but {len(start)} start times")
    table = {c.name: c for c in settings.problems.categories}
    codes, names = pd.factorize(cats)  # one look-up per category, not per case (-1: missing)
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SettingsError(
            f"unknown problem categories: {', '.join(map(str, unknown))}; add them to [problems] categories in "
            "sanigrid.toml or fix the data"
        )
    known = codes >= 0
    amount = np.full(len(cats), np.nan)
    amount[known] = np.array([table[n].deadline for n in names], dtype="float64")[codes[known]]
    hours = np.zeros(len(cats), dtype=bool)
    hours[known] = np.array([table[n].unit == "hours" for n in names], dtype=bool)[codes[known]]
    out = np.full(len(cats), np.datetime64("NaT"), dtype="datetime64[ms]")
    if hours.any():
        out[hours] = start[hours] + np.round(amount[hours] * 3_600_000).astype("int64").astype("timedelta64[ms]")
    wd = ~hours & ~np.isnat(start) & ~np.isnan(amount)
    if wd.any():
        s = start[wd]
        day = s.astype("datetime64[D]")
        tod = s - day.astype("datetime64[ms]")
        lo, hi = day.min() - np.timedelta64(7, "D"), day.max() + np.timedelta64(400, "D")
        cal = _calendar(settings, lo, hi)
        is_work = np.is_busday(day, busdaycal=cal)
        # a case reported on a rest day starts at 00:00 of the next working day
        tod = np.where(is_work, tod, np.timedelta64(0, "ms"))
        first = np.busday_offset(day, 0, roll="forward", busdaycal=cal)
        n = np.ceil(amount[wd]).astype("int64")
        due = np.busday_offset(first, n, roll="forward", busdaycal=cal)
        out[wd] = due.astype("datetime64[ms]") + tod
    return pd.Series(out, index=index, name="deadline")


def deadline_for(category: str, start: datetime, *, settings: Settings) -> datetime:
    """Deadline of one case (see :func:`deadlines`)."""
    return deadlines([category], [start], settings=settings).iloc[0].to_pydatetime()


def fill_deadlines(problems: pd.DataFrame, *, settings: Settings) -> pd.Series:
    """The ``deadline`` column with the missing ones computed from category and ``reported_at``
    (on the input's index; the frame is not changed)."""
    have = (pd.to_datetime(problems["deadline"]) if "deadline" in problems
            else pd.Series(pd.NaT, index=problems.index)).astype("datetime64[ms]")
    need = have.isna() & pd.to_datetime(problems["reported_at"]).notna()
    if not need.any():
        return have.rename("deadline")
    out = have.copy()
    out[need] = deadlines(problems.loc[need, "category"], problems.loc[need, "reported_at"], settings=settings)
    return out.rename("deadline")


def workday(d: date, *, settings: Settings) -> bool:
    """Whether ``d`` is a working day under the settings' calendar."""
    day = np.datetime64(d, "D")
    return bool(np.is_busday(day, busdaycal=_calendar(settings, day - 7, day + 7)))


# ---------------------------------------------------------------- open and overdue at an instant
DAYS_DECIMALS = 1  # days overdue are shown to a tenth of a day everywhere


def _col(problems: pd.DataFrame, name: str) -> pd.Series:
    if name in problems:
        return pd.to_datetime(problems[name], errors="coerce")
    return pd.Series(pd.NaT, index=problems.index, dtype="datetime64[ms]")


def is_closed_status(status: pd.Series) -> pd.Series:
    """Whether each status is 结案 (a missing status counts as open)."""
    return status.eq(CLOSED).fillna(False).astype(bool)


def is_open(problems: pd.DataFrame, *, as_of: datetime) -> pd.Series:
    """Open at ``as_of``: reported by then (or no report time) and not closed by then.

    Closed by then: ``closed_at`` at or before ``as_of``, or no ``closed_at`` while the status is 结案
    (closed at a time not recorded).
    """
    open_, _, _ = _rule(*_rule_columns(problems), as_of)
    return pd.Series(open_, index=problems.index, name="open")


def overdue(problems: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame:
    """``overdue`` (bool) and ``days_overdue`` (days past the deadline at ``as_of``, rounded to
    :data:`DAYS_DECIMALS`; 0 when not overdue) of each case, on the input's index."""
    _, late, days = _rule(*_rule_columns(problems), as_of)
    return pd.DataFrame({"overdue": late, "days_overdue": days}, index=problems.index)


def overdue_rows(rows: Iterable[Mapping[str, Any]], *, as_of: datetime) -> list[tuple[bool, float]]:
    """:func:`overdue` of cases given as dicts (a store's ``read_rows``): ``(overdue, days_overdue)``
    each, by the same rule, without frames (one case read by its number)."""
    rows = list(rows)

    def times(name: str) -> np.ndarray:
        return np.array([r.get(name) for r in rows], dtype="datetime64[ms]")

    closed_status = np.array([r.get("status") == CLOSED for r in rows], dtype=bool)
    _, late, days = _rule(times("reported_at"), times("closed_at"), closed_status, times("deadline"), as_of)
    return [(bool(a), float(b)) for a, b in zip(late, days, strict=True)]


def _rule_columns(problems: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The columns the open and overdue rule reads, as numpy arrays (times as ``datetime64[ms]``)."""
    def times(name: str) -> np.ndarray:
        return _col(problems, name).to_numpy(dtype="datetime64[ms]")

    status = problems["status"] if "status" in problems else pd.Series(None, index=problems.index, dtype=object)
    return (times("reported_at"), times("closed_at"), is_closed_status(status).to_numpy(dtype=bool),
            times("deadline"))


def _rule(reported: np.ndarray, closed: np.ndarray, closed_status: np.ndarray, deadline: np.ndarray,
          as_of: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """THE rule of open and overdue at ``as_of``, on arrays: (open, overdue, days overdue).

    Closed by then: ``closed_at`` at or before ``as_of``, or no ``closed_at`` while the status is 结案.
    Open: reported by then (or no report time) and not closed by then. Overdue: open and past a deadline.
    """
    t = np.datetime64(pd.Timestamp(as_of).as_unit("ms").to_datetime64(), "ms")
    closed_by = (closed <= t) | (np.isnat(closed) & closed_status)
    open_ = (np.isnat(reported) | (reported <= t)) & ~closed_by
    late = open_ & ~np.isnat(deadline) & (deadline < t)
    days = np.zeros(len(late))
    days[late] = np.round((t - deadline[late]) / np.timedelta64(1, "D"), DAYS_DECIMALS)
    return open_, late, days


def is_overdue(problems: pd.DataFrame, *, as_of: datetime) -> pd.Series:
    """Open at ``as_of`` and past its deadline (see :func:`overdue`)."""
    return overdue(problems, as_of=as_of)["overdue"]


def with_overdue(problems: pd.DataFrame, *, as_of: datetime) -> Any:
    """A copy of ``problems`` with ``overdue`` and ``days_overdue`` (see :func:`overdue`)."""
    out = problems.copy()
    od = overdue(out, as_of=as_of)
    out["overdue"] = od["overdue"].to_numpy()
    out["days_overdue"] = od["days_overdue"].to_numpy()
    return out


def open_where(*, as_of: datetime) -> Where:
    """:func:`is_open` at ``as_of`` as a typed store filter, so that a store counts and pages the open
    cases in SQL: reported by then (or no report time), not closed by then, and not 结案 without a
    closing time. Tests hold it to :func:`is_open` on the same rows."""
    from sanigrid.layers.filters import between, either, eq, gt, ne

    t = pd.Timestamp(as_of)
    return (either(eq("reported_at", None), between("reported_at", hi=t))
            & either(eq("closed_at", None), gt("closed_at", t))
            & either(ne("closed_at", None), ne("status", CLOSED)))


def overdue_where(*, as_of: datetime) -> Where:
    """:func:`is_overdue` at ``as_of`` as a typed store filter: open, and the deadline before ``as_of``."""
    from sanigrid.layers.filters import lt

    return open_where(as_of=as_of) & lt("deadline", pd.Timestamp(as_of))


def days_overdue_order(*, as_of: datetime) -> Elapsed:
    """The sort key of :func:`overdue`'s ``days_overdue`` at ``as_of`` for a store (:meth:`Store.read_page`):
    tenths of a day (:data:`DAYS_DECIMALS`) past the deadline, rounded as ``round`` does, for an overdue
    case; 0 for the others. Key / 10**DAYS_DECIMALS is ``days_overdue`` (tests hold them equal)."""
    from sanigrid.layers.filters import Elapsed

    return Elapsed("deadline", to=pd.Timestamp(as_of).to_pydatetime(), step_ms=86_400_000 // 10 ** DAYS_DECIMALS,
                   only=overdue_where(as_of=as_of))


def closed_on_time(problems: pd.DataFrame) -> pd.Series:
    """Closed, and closed by the deadline (for 按期结案率); NA while still open or closed at an
    unrecorded time."""
    closed = _col(problems, "closed_at")
    deadline = _col(problems, "deadline")
    out = (closed <= deadline).astype("boolean")
    return out.where(closed.notna(), pd.NA).rename("on_time")


# ---------------------------------------------------------------- the "as of" instant
def now() -> datetime:
    """The clock of the case rules (local time, whole seconds): every write and every "now" reads it."""
    return datetime.now().replace(microsecond=0)


def as_of(*, given: datetime | None = None, recorded: Any = None, last_event: Any = None,
          last_step: Any = None, now_: datetime | None = None, settings: Settings | None = None) -> datetime:
    """THE instant at which open and overdue are counted. One rule, for every face:

    1. ``given``: the instant asked for (``--as-of``, or a test), as it is.
    2. Else ``recorded``, the instant the data were taken (an import or the demo states it with the
       problems layer), as long as nothing was recorded in the history after it (``last_step``:
       the desk's latest report, step or edit).
    3. Else, for data whose ``last_event`` (latest report, closure or history time) is more than
       ``[problems] snapshot_after_days`` before now: the midnight after that event (a file exported
       from another system some time ago, its instant not recorded).
    4. Else now (the desk is in use: reports and steps are recorded as they happen, so the statuses
       are known up to now).

    ``now_`` is the clock (default :func:`now`). :func:`store_as_of` reads the inputs from a store.
    """
    if given is not None:
        return pd.Timestamp(given).to_pydatetime()
    clock = pd.Timestamp(now_ if now_ is not None else now())
    taken, step = _instant(recorded), _instant(last_step)
    if taken is not None and (step is None or step <= taken):
        return taken.to_pydatetime()
    last = max((t for t in (_instant(last_event), step) if t is not None), default=None)
    days = settings.problems.snapshot_after_days if settings is not None else 30.0
    if last is not None and last < clock - pd.Timedelta(days=days):
        return (last.floor("D") + pd.Timedelta(days=1)).to_pydatetime()
    return clock.to_pydatetime()


def _instant(value: Any) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(t):
        return None
    return t.tz_localize(None) if t.tzinfo is not None else t


def last_event(problems: pd.DataFrame) -> pd.Timestamp | None:
    """The latest report or closure time in a problems frame."""
    found = [t for t in (_instant(_col(problems, c).max()) for c in ("reported_at", "closed_at")) if t is not None]
    return max(found) if found else None


_EVENTS: dict[tuple[str, tuple[Any, ...]], tuple[Any, pd.Timestamp | None, pd.Timestamp | None]] = {}
_EVENTS_LOCK = threading.Lock()


def _store_events(store: Any) -> tuple[Any, pd.Timestamp | None, pd.Timestamp | None]:
    """The recorded instant, the last report/closure and the last history time of a store's
    problems (remembered per store version: three ``MAX`` queries, no rows read)."""
    key = (store.location, store.version())
    with _EVENTS_LOCK:
        hit = _EVENTS.get(key)
    if hit is not None:
        return hit
    recorded = (store.meta("problems").get("params") or {}).get("as_of") if store.has("problems") else None

    def latest(kind: str, *fields: str) -> pd.Timestamp | None:
        if not store.has(kind):
            return None
        found = [t for t in (_instant(store.max_value(kind, f)) for f in fields) if t is not None]
        return max(found) if found else None

    value = (recorded, latest("problems", "reported_at", "closed_at"), latest(HISTORY_TABLE, "at"))
    with _EVENTS_LOCK:
        for k in [k for k in _EVENTS if k[0] == key[0]]:
            del _EVENTS[k]
        _EVENTS[key] = value
    return value


def store_as_of(store: Any, *, settings: Settings, given: datetime | None = None,
                now_: datetime | None = None) -> datetime:
    """:func:`as_of` for the problems of ``store`` (its recorded instant and last event)."""
    if given is not None:
        return as_of(given=given)
    recorded, last, step = _store_events(store)
    return as_of(recorded=recorded, last_event=last, last_step=step, now_=now_, settings=settings)
