"""Writing problems from the web: intake of a new report and status changes.

Both run inside one store transaction (all-or-nothing; concurrent writers are serialised by the
store, so none is lost): the problem row and its ``problem_history`` row land together. Reports that
arrive together are written in one transaction (:func:`intake_many`, the web's group commit).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo.grids import GridIndex
from sanigrid.geo.problems import units
from sanigrid.layers import cases
from sanigrid.layers.cases import CLOSED, HISTORY_TABLE, NEW, deadline_for, deadlines, history_record
from sanigrid.layers.crs import crs_wkt, to_wgs84, transformer, wgs84_wkt
from sanigrid.layers.filters import eq, ne
from sanigrid.layers.project import Project
from sanigrid.layers.store import Store
from sanigrid.layers.text import clean_text
from sanigrid.web._errors import Invalid, NotFound, WebError
from sanigrid.web.auth import User

PHOTO_TABLE = "problem_photos"
PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def _max_id(tx: Store) -> int:
    v = tx.max_value("problems", "problem_id")
    return 0 if v is None or pd.isna(v) else int(v)


def _check_category(project: Project, category: str) -> None:
    names = project.settings.problem_categories
    if category not in names:
        raise Invalid(f"未知问题类别「{category}」; 可选: {'、'.join(names)} "
                      "(unknown category; the list is [problems] categories in sanigrid.toml)")


def report_time(project: Project, value: datetime | None, *, now: datetime | None = None) -> datetime:
    """The project-local, naive time of a report (seconds), checked against the sane range.

    A time with an offset (``+08:00``, ``Z``, ``-05:00``) is converted to ``project.time_zone``, not
    cut off; a naive one is taken as project time. Before ``web.reported_earliest`` or later than
    now + ``web.reported_ahead_hours`` is :class:`Invalid` (422).
    """
    from zoneinfo import ZoneInfo

    s = project.settings
    zone = ZoneInfo(s.project.time_zone)
    if value is None:  # the server's clock, as every other step of a case is stamped
        return pd.Timestamp(now or cases.now()).floor("s").to_pydatetime()
    # "now" for the range: the later of the server's clock and the project's wall clock
    local_now = max(now or cases.now(), datetime.now(zone).replace(tzinfo=None))
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(zone).replace(tzinfo=None)
    else:
        value = value.replace(tzinfo=None)
    earliest = datetime.fromisoformat(s.web.reported_earliest)
    latest = local_now + timedelta(hours=s.web.reported_ahead_hours)
    if not earliest <= value <= latest:
        raise Invalid(f"上报时间 {value.isoformat(sep=' ')} 不在合理范围 {earliest:%Y-%m-%d} 至 "
                      f"{latest:%Y-%m-%d %H:%M} 内 (reported_at out of range; [web] reported_earliest / "
                      "reported_ahead_hours in sanigrid.toml)")
    return pd.Timestamp(value).floor("s").to_pydatetime()


@dataclass(frozen=True, kw_only=True)
class Report:
    """One new report as the desk or phone sent it (see :func:`intake`)."""

    category: str
    lon: float
    lat: float
    coords: str = "wgs84"
    description: str = ""
    source: str = "其他"
    reported_at: datetime | None = None
    user: User


def intake(project: Project, *, category: str, lon: float, lat: float, coords: str = "wgs84",
           description: str = "", source: str = "其他", reported_at: datetime | None = None,
           user: User) -> dict[str, Any]:
    """Record a new report: checked, placed in its grid, given its deadline and unit.

    Returns the new row (WGS84 ``lon``/``lat``) plus ``possible_duplicates``: ids of open reports
    of the same category within ``settings.web.duplicate_radius_m``. One report is a batch of one
    (:func:`intake_many`).
    """
    out = intake_many(project, [Report(category=category, lon=lon, lat=lat, coords=coords, description=description,
                                       source=source, reported_at=reported_at, user=user)])[0]
    if isinstance(out, Exception):
        raise out
    return out


def intake_many(project: Project, reports: Sequence[Report]) -> list[dict[str, Any] | Exception]:
    """Record many reports in one store transaction (the web's group commit), each as :func:`intake` would.

    Returns, per report in order, its new row or the error that refused it alone (:class:`Invalid`,
    :class:`Forbidden`): the others are written. Ids follow the order of ``reports``; a report counts
    the batch's earlier ones among its possible duplicates, as if they had come one after another.
    Nothing is written if the store fails, and then this raises.
    """
    out: list[dict[str, Any] | Exception | None] = [None] * len(reports)
    ok: list[int] = []
    texts: dict[int, tuple[str, str, datetime]] = {}
    for i, r in enumerate(reports):  # what needs no store: category, text, time
        try:
            _check_category(project, r.category)
            texts[i] = (clean_text(r.description), clean_text(r.source), report_time(project, r.reported_at))
            ok.append(i)
        except WebError as e:
            out[i] = e
    wgs = np.full((len(reports), 2), np.nan)
    for coords in {reports[i].coords for i in ok}:
        idx = [i for i in ok if reports[i].coords == coords]
        xs, ys = to_wgs84(np.array([reports[i].lon for i in idx]), np.array([reports[i].lat for i in idx]), coords)
        wgs[idx, 0], wgs[idx, 1] = xs, ys
    radius = project.settings.web.duplicate_radius_m
    with project.store.transaction() as tx:
        index = _grid_index(tx) if ok else None
        if index is not None and index.empty:
            err = Invalid("本项目还没有网格图层, 不能受理问题 (import the grids layer first)")
            return [err if o is None else o for o in out]
        crs = tx.crs
        pts = _from_wgs84(wgs[ok], crs) if ok else np.array([], dtype=object)
        codes = index.codes_at(pts) if index is not None else []
        accepted: list[int] = []  # positions in ``ok``
        for k, i in enumerate(ok):
            r, grid = reports[i], codes[k]
            try:
                if grid is None:
                    dist = index.distance(pts[k])  # type: ignore[union-attr]
                    raise Invalid(f"位置 ({r.lon:.6f}, {r.lat:.6f}, {r.coords}) 不在本县任何网格内 (距最近网格 "
                                  f"{dist:.0f} 米); 请检查经纬度及坐标系 coords=wgs84|gcj02|bd09 (outside the county)")
                r.user.check("report", grid)
                accepted.append(k)
            except WebError as e:
                out[i] = e
        if accepted:
            which = [ok[k] for k in accepted]
            first = _max_id(tx) + 1
            when = [texts[i][2] for i in which]
            cats = [reports[i].category for i in which]
            grid_of = [codes[k] for k in accepted]
            unit_of = units(cats, grid_of, index.lead_unit, settings=project.settings)  # type: ignore[union-attr]
            due = deadlines(cats, when, settings=project.settings).tolist()
            geoms = pts[accepted]
            rows = [{"problem_id": first + j, "category": cats[j], "description": texts[i][0], "source": texts[i][1],
                     "reported_at": pd.Timestamp(when[j]), "status": NEW, "deadline": due[j], "closed_at": None,
                     "grid_code": grid_of[j], "unit": unit_of[j], "geometry": geoms[j]} for j, i in enumerate(which)]
            xy = shapely.get_coordinates(geoms)
            stored: dict[int, list[int]] = {}  # open reports of the same category nearby, per row
            if radius > 0 and tx.has("problems"):
                for category in sorted(set(cats)):
                    js = [j for j, c in enumerate(cats) if c == category]
                    found = tx.keys_near("problems", "problem_id", xy[js], radius,
                                         where=eq("category", category) & ne("status", CLOSED))
                    stored.update({j: [int(v) for v in f] for j, f in zip(js, found, strict=True)})
            # the batch's own earlier reports (still open) of the same category nearby: row j, columns e < j
            cat_arr = np.array(cats, dtype=object)
            mine = ((np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) <= radius)
                    & (cat_arr[:, None] == cat_arr[None, :]) & np.tri(len(which), k=-1, dtype=bool)) \
                if radius > 0 else None
            records = []
            for j, i in enumerate(which):
                r = reports[i]
                dups: list[int] = list(stored.get(j, []))
                if mine is not None:
                    dups += [first + int(e) for e in np.flatnonzero(mine[j])]
                pid = first + j
                note = "网页受理" + (f"; 可能与 {', '.join(f'#{d}' for d in dups)} 重复" if dups else "")
                records.append(cases.opening_record(pid, at=when[j], actor=r.user.name, note=note))
                out[i] = {"problem_id": pid, "category": r.category, "description": texts[i][0],
                          "source": texts[i][1], "status": NEW, "reported_at": when[j].isoformat(sep=" "),
                          "deadline": pd.Timestamp(due[j]).isoformat(sep=" "),
                          "grid_code": grid_of[j], "unit": unit_of[j],
                          "lon": round(float(wgs[i, 0]), 7), "lat": round(float(wgs[i, 1]), 7),
                          "possible_duplicates": dups}
            tx.append_rows("problems", rows, crs=crs)
            tx.append_rows(HISTORY_TABLE, records)
    assert all(o is not None for o in out)
    return out  # type: ignore[return-value]


def _grid_index(tx: Any) -> GridIndex:
    """The grids of the store, placed in a :class:`GridIndex` once per write of the grids layer (a report
    to the problems keeps it)."""
    from sanigrid.web.casedesk import by_version  # casedesk imports this module

    return by_version(tx, ("grid index",), lambda: GridIndex(tx.read("grids")), version=tx.change_token("grids"))


def _from_wgs84(lonlat: np.ndarray, crs: Any) -> np.ndarray:
    """Shapely points in ``crs`` from WGS84 lon/lat rows (as ``GeoDataFrame.to_crs`` moves them)."""
    x, y = transformer(wgs84_wkt(), crs_wkt(crs)).transform(lonlat[:, 0], lonlat[:, 1])
    return shapely.points(np.column_stack([x, y]))


def read_problem(store: Any, problem_id: int) -> gpd.GeoDataFrame:
    rows = store.read("problems", where=eq("problem_id", int(problem_id)))
    if rows.empty:
        raise NotFound(f"没有编号为 {problem_id} 的问题 (no problem {problem_id})")
    return rows


def problem_row(store: Any, problem_id: int) -> dict[str, Any]:
    """One problem as a store's ``read_rows`` gives it (no frames: about a millisecond at 10⁵ cases)."""
    rows = store.read_rows("problems", where=eq("problem_id", int(problem_id)))
    if not rows:
        raise NotFound(f"没有编号为 {problem_id} 的问题 (no problem {problem_id})")
    return rows[0]


def transition(project: Project, problem_id: int, *, to_status: str, note: str = "", actor: str | None = None,
               user: User, at: datetime | None = None) -> dict[str, Any]:
    """Move a problem to ``to_status`` if the case rules allow it: a legal step (else
    ``IllegalTransition``, 409), one the account's role may take on this problem's grid (else
    ``StepForbidden``, 403), and, handing in (处置 → 核查), with an after-photo when the settings ask
    for one (else ``PhotoRequired``, 409)."""
    when = pd.Timestamp(at or cases.now()).floor("s").to_pydatetime()
    note, actor = clean_text(note), clean_text(actor) if actor else actor
    with project.store.transaction() as tx:
        row = problem_row(tx, problem_id)
        current = str(row["status"])
        photo = has_after_photo(tx, problem_id) if (current, to_status) == cases.HAND_IN else None
        cases.check_step(current, to_status, role=user.role, own_grid=user.owns(row["grid_code"]),
                         has_after_photo=photo, settings=project.settings)
        who = user.name if not actor or actor == user.name else f"{actor} ({user.name})"
        rec = history_record(problem_id, current, to_status, at=when, actor=who, note=note)
        changes: dict[str, Any] = {"status": to_status}
        if to_status == CLOSED:
            changes["closed_at"] = pd.Timestamp(when)
        tx.update("problems", "problem_id", {int(problem_id): changes})
        tx.append_table(HISTORY_TABLE, pd.DataFrame([rec]))
    return {"problem_id": int(problem_id), "from_status": rec["from_status"], "to_status": to_status,
            "at": when.isoformat(sep=" "), "actor": who, "note": note}


EDITABLE = ("description", "category", "grid_code", "unit")


def edit(project: Project, problem_id: int, changes: dict[str, Any], *, user: User,
         at: datetime | None = None) -> dict[str, Any]:
    """Change a problem's description, category (its deadline follows), grid or unit.

    Moving a problem to another grid is for the campaign office: a grid head may edit only
    problems of their own grid and cannot move one out of it (:class:`Forbidden`).
    """
    from sanigrid.web._errors import Forbidden

    changes = {k: clean_text(v) if isinstance(v, str) else v for k, v in changes.items() if v is not None}
    bad = set(changes) - set(EDITABLE)
    if bad:
        raise Invalid(f"不能修改字段 {', '.join(sorted(bad))}; 可修改: {', '.join(EDITABLE)}")
    if not changes:
        raise Invalid("没有要修改的内容 (nothing to change)")
    when = pd.Timestamp(at or cases.now()).floor("s")
    with project.store.transaction() as tx:
        row = problem_row(tx, problem_id)
        user.check("edit", row["grid_code"])
        new_grid = changes.get("grid_code")
        if new_grid is not None and new_grid != row["grid_code"]:
            if not user.may("move", row["grid_code"]):
                raise Forbidden(f"网格长不能把问题移出本网格 {user.grid_code}; 请联系创卫办改派 "
                                "(a grid head cannot move a problem out of their grid)")
            codes = set(tx.read("grids", columns=["code"])["code"])
            if new_grid not in codes:
                raise Invalid(f"网格「{new_grid}」不存在 (unknown grid)")
        if "category" in changes:
            _check_category(project, changes["category"])
            changes["deadline"] = pd.Timestamp(deadline_for(
                changes["category"], pd.Timestamp(row["reported_at"]).to_pydatetime(), settings=project.settings))
        tx.update("problems", "problem_id", {int(problem_id): changes})
        what = ", ".join(f"{k}: {row.get(k)} → {v}" for k, v in changes.items() if k != "deadline")
        tx.append_table(HISTORY_TABLE, pd.DataFrame([cases.edit_record(
            problem_id, str(row["status"]), at=when, actor=user.name, note=f"修改 {what}")]))
    out = {k: (v.isoformat(sep=" ") if isinstance(v, pd.Timestamp) else v) for k, v in changes.items()}
    return {"problem_id": int(problem_id), **out}


def set_priority(project: Project, problem_id: int, *, priority: bool, note: str = "", user: User,
                 at: datetime | None = None) -> dict[str, Any]:
    """Mark (or unmark) a problem 督办 (priority): the office only (:data:`layers.cases.ACTIONS`)."""
    when = pd.Timestamp(at or cases.now()).floor("s")
    with project.store.transaction() as tx:
        rows = read_problem(tx, problem_id)
        row = rows.iloc[0]
        user.check("priority", row["grid_code"])
        if cases.PRIORITY not in rows.columns:  # a layer written before the field existed: add it
            meta = tx.meta("problems")
            tx.write("problems", tx.read("problems"), params=meta.get("params"), synthetic=meta.get("synthetic", False))
        tx.update("problems", "problem_id", {int(problem_id): {cases.PRIORITY: bool(priority)}})
        what = "督办" if priority else "取消督办"
        tx.append_table(HISTORY_TABLE, pd.DataFrame([cases.edit_record(
            problem_id, str(row["status"]), at=when.to_pydatetime(), actor=user.name,
            note=what + (f": {note}" if note else ""))]))
    return {"problem_id": int(problem_id), cases.PRIORITY: bool(priority), "at": when.isoformat(sep=" "),
            "actor": user.name, "note": note}


def history(store: Any, problem_id: int) -> list[dict[str, Any]]:
    """The history of one case, oldest step first (its rows only, by SQL)."""
    rows = store.read_rows(HISTORY_TABLE, where=eq("problem_id", int(problem_id)))  # [] without the table
    return [{"from_status": r.get("from_status") or None, "to_status": r.get("to_status"),
             "at": pd.Timestamp(r["at"]).isoformat(sep=" ") if r.get("at") is not None else None,
             "actor": r.get("actor"), "note": r.get("note")} for r in rows]


def photo_type(data: bytes) -> str:
    """The file ending of a JPEG, PNG or WebP photo, judged by its content (the declared type is not
    trusted): the format's signature, then a full decode with Pillow. :class:`Invalid` otherwise."""
    import io

    from PIL import Image, UnidentifiedImageError

    if data.startswith(b"\xff\xd8\xff"):
        ext, fmt = "jpg", "JPEG"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        ext, fmt = "png", "PNG"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        ext, fmt = "webp", "WEBP"
    else:
        raise Invalid("文件内容不是 JPEG/PNG/WebP 照片 (the content is not a JPEG, PNG or WebP image)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != fmt:
                raise Invalid(f"文件内容不是完整的 {fmt} 照片 (not a whole {fmt} image)")
            im.load()  # decodes every pixel: a truncated or forged file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, Invalid):
            raise
        raise Invalid(f"照片无法解码 ({fmt}: {e}); 请重新拍摄或另存后上传 (the image cannot be decoded)") from None
    except Image.DecompressionBombError:
        raise Invalid("照片像素过多 (image too large to decode)") from None
    return ext


def save_photo(project: Project, problem_id: int, *, data: bytes, content_type: str, user: User,
               check: Callable[[str | None], None] | None = None) -> str:
    """Store a photo beside the project (``photos/``) and record it; returns its relative path.

    The type is taken from the content (:func:`photo_type`), not from ``content_type``."""
    limit = project.settings.web.photo_max_mb * 1024 * 1024
    if len(data) > limit:
        raise Invalid(f"照片 {len(data) / 1e6:.1f} MB 超过上限 {project.settings.web.photo_max_mb} MB")
    if not data:
        raise Invalid("照片是空文件 (empty photo)")
    ext = photo_type(data)
    row = problem_row(project.store, problem_id)
    user.check("photo", row["grid_code"])
    rel = Path("photos") / f"{int(problem_id)}_{uuid.uuid4().hex[:10]}.{ext}"
    path = project.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    project.store.append_table(PHOTO_TABLE, pd.DataFrame([{
        "problem_id": int(problem_id), "path": rel.as_posix(), "uploaded_by": user.name,
        "uploaded_at": cases.now().isoformat(timespec="seconds")}]))
    return rel.as_posix()


def photo_file(project: Project, problem_id: int, name: str) -> Path:
    """The stored file of one photo of a case (by its file name); :class:`NotFound` if it is not one of
    that case's photos (so no other path can be asked for)."""
    wanted = f"photos/{name}"
    if wanted not in photos(project.store, problem_id):
        raise NotFound(f"问题 {problem_id} 没有照片 {name} (no such photo)")
    path = project.root / wanted
    if not path.is_file():
        raise NotFound(f"照片文件 {name} 不在 photos/ 文件夹中 (the file is missing)")
    return path


def photos(store: Any, problem_id: int) -> list[str]:
    """The stored paths of one case's photos, in upload order (its rows only, by SQL)."""
    return [str(r["path"]) for r in store.read_rows(PHOTO_TABLE, where=eq("problem_id", int(problem_id)))]


def has_after_photo(store: Any, problem_id: int) -> bool:
    """Whether a photo of the problem was uploaded at or after it last entered 处置 (an after-photo)."""
    mine = store.read_table(PHOTO_TABLE, where=eq("problem_id", int(problem_id)))  # its rows only, by SQL
    if mine.empty:
        return False
    hist = store.read_table(HISTORY_TABLE, where=eq("problem_id", int(problem_id)))
    since = cases.handling_started(hist).get(int(problem_id)) if not hist.empty else None
    return cases.after_photo_taken(mine["uploaded_at"], since)
