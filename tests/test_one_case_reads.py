"""One case read by its number without frames: ``Store.read_rows``, ``cases.overdue_rows`` and
``features.feature_json`` give what ``read``, ``cases.overdue`` and ``features.feature_collection`` give
(the frame paths are the oracle), and a case's history and photos are its rows only, by an index."""

from __future__ import annotations

import json
import sqlite3
import warnings
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import shapely

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.layers import cases
from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.layers.filters import eq
from sanigrid.layers.store import frame_rows
from sanigrid.web import intake
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user
from sanigrid.web.features import feature_collection, feature_json, store_crs


def _same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert set(x) == set(y)
        for k in x:
            if k == "geometry":
                assert (x[k] is None and y[k] is None) or shapely.equals_exact(x[k], y[k], 0)
            else:
                assert type(x[k]) is type(y[k]) and x[k] == y[k], (k, x[k], y[k])


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("onecase") / "town", n_problems=400)
    frame = project.store.read("problems")
    frame.loc[frame.index[::7], cases.PRIORITY] = True  # a bool field with values and gaps
    frame.loc[frame.index[::11], "measure"] = "清运"
    project.store.write("problems", frame)
    token = add_user(project.store, "office", role="office")
    return {"project": project, "token": token}


def test_read_rows_give_what_read_gives_for_every_layer_and_table(town):
    store = town["project"].store
    kinds = [i.kind for i in store.info()]
    assert {"problems", "grids", "streets"} <= set(kinds)
    for kind in kinds:
        _same(store.read_rows(kind), frame_rows(store.read(kind)))
    rows = store.read_rows("problems", where=eq("problem_id", 123))
    _same(rows, frame_rows(store.read("problems", where=eq("problem_id", 123))))
    assert [r["problem_id"] for r in rows] == [123]
    row = rows[0]
    assert isinstance(row["reported_at"], pd.Timestamp) and isinstance(row["problem_id"], int)
    assert store.read_rows("problems", where=eq("problem_id", 10**9)) == []
    assert store.read_rows("sample_selection") == []  # a layer never written
    assert store.read_rows("no_such_table") == []


def test_read_rows_on_any_store_match_read(any_store, toilets_wgs84):
    any_store.write("toilets", toilets_wgs84)
    _same(any_store.read_rows("toilets"), frame_rows(any_store.read("toilets")))
    any_store.append_table("problem_history", pd.DataFrame(
        {"problem_id": [1, 2, 1], "to_status": ["立案", "立案", "派遣"],
         "at": pd.to_datetime(["2026-01-02 08:00:00", "2026-01-02 09:00:00", "2026-01-03 10:30:15"])}))
    got = any_store.read_rows("problem_history", where=eq("problem_id", 1))
    assert [r["to_status"] for r in got] == ["立案", "派遣"]
    assert [r["at"] for r in got] == [pd.Timestamp("2026-01-02 08:00"), pd.Timestamp("2026-01-03 10:30:15")]


@pytest.mark.parametrize("at", [datetime(2025, 1, 1), datetime(2026, 11, 1, 12, 0), datetime(2026, 12, 31)])
def test_overdue_rows_follow_the_frame_rule(town, at):
    frame = town["project"].store.read("problems")
    frame.loc[frame.index[:5], "deadline"] = pd.NaT  # no deadline
    frame.loc[frame.index[5:10], ["status", "closed_at"]] = [cases.CLOSED, pd.NaT]  # closed, time not recorded
    frame.loc[frame.index[10:12], "reported_at"] = pd.NaT
    expected = cases.overdue(frame, as_of=at)
    got = cases.overdue_rows(frame_rows(frame), as_of=at)
    assert [g[0] for g in got] == expected["overdue"].tolist()
    assert [g[1] for g in got] == expected["days_overdue"].tolist()
    assert 0 < sum(g[0] for g in got) < len(got) or at.year == 2025  # both kinds present (none overdue in 2025)


@pytest.mark.parametrize("coords", ["wgs84", "gcj02", "bd09"])
@pytest.mark.parametrize("kind", ["problems", "grids", "streets"])
def test_feature_json_is_the_rows_feature_of_the_collection(town, kind, coords):
    store = town["project"].store
    s = CATALOGUE[kind]
    frame = store.read(kind)
    text = feature_collection(frame, s, coords=coords, fields=s.field_names)
    expected = json.loads(text)["features"]
    got = [json.loads(feature_json(r, s, crs=store_crs(store), coords=coords, fields=s.field_names))
           for r in store.read_rows(kind)]
    assert got == expected


def test_one_feature_over_http_is_the_one_in_the_layer(town):
    project, token = town["project"], town["token"]
    client = TestClient(create_app(project, warm=False))
    h = {"Authorization": f"Bearer {token}"}
    layer = client.get("/api/layers/problems", params={"limit": 10000}, headers=h).json()["features"]
    by_id = {f["properties"]["problem_id"]: f for f in layer}
    for pid in (1, 57, 233, 400):
        one = client.get(f"/api/layers/problems/features/{pid}", headers=h).json()
        assert one == by_id[pid]
        assert set(one["properties"]) >= {"overdue", "days_overdue"}
    case = client.get("/api/problems/57", headers=h).json()
    assert case["problem_id"] == 57 and case["lon"] == pytest.approx(by_id[57]["geometry"]["coordinates"][0], abs=1e-6)


def test_history_and_photos_are_one_cases_rows_by_an_index(town, tmp_path):
    store = town["project"].store
    hist = pd.DataFrame({"problem_id": np.repeat(np.arange(1, 401), 3), "from_status": None,
                         "to_status": np.tile(["立案", "派遣", "处置"], 400), "actor": "a", "note": "",
                         "at": pd.Timestamp("2026-11-01 08:00") + pd.to_timedelta(np.arange(1200), unit="min")})
    store.write_table(cases.HISTORY_TABLE, hist)
    got = intake.history(store, 7)
    assert [h["to_status"] for h in got] == ["立案", "派遣", "处置"]
    assert [h["at"] for h in got] == [str(t) for t in hist.loc[hist["problem_id"] == 7, "at"]]
    assert intake.history(store, 10**6) == []
    store.append_table(intake.PHOTO_TABLE, pd.DataFrame(
        {"problem_id": [7, 8, 7], "path": ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg"],
         "uploaded_by": "a", "uploaded_at": "2026-11-02T08:00:00"}))
    assert intake.photos(store, 7) == ["photos/a.jpg", "photos/c.jpg"]
    con = sqlite3.connect(store.path)
    plan = " ".join(r[-1] for r in con.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM {cases.HISTORY_TABLE} WHERE problem_id = 7"))
    con.close()
    assert "USING INDEX" in plan  # an index look-up, not a scan of every case's history


def test_prepare_of_a_few_rows_converts_as_the_pandas_path(town, monkeypatch):
    """A batch of web reports is converted value by value; the frames' conversions are the oracle."""
    import geopandas as gpd
    from geopandas.testing import assert_geodataframe_equal

    from sanigrid.layers import store as store_mod

    store = town["project"].store
    frames = {kind: store.read(kind).iloc[:8] for kind in ("problems", "grids", "streets", "alleys", "toilets")}
    odd = frames["problems"].copy()
    odd["problem_id"] = odd["problem_id"].astype(object)
    odd.loc[odd.index[0], "problem_id"] = None
    odd.loc[odd.index[1], "reported_at"] = pd.NaT
    odd["deadline"] = odd["deadline"].astype(object)
    odd.loc[odd.index[2], "deadline"] = datetime(2026, 11, 3, 8, 30, 15, 123456)  # a datetime, microseconds
    odd.loc[odd.index[3], "deadline"] = "2026-11-05 09:00"  # text: the pandas path converts it
    odd[cases.PRIORITY] = [True, None, False, np.bool_(True), None, None, True, False]
    odd["measure"] = [None, 1.5, "清运", np.nan, None, "x", None, 3]
    frames["odd problems"] = odd
    frames["extra column"] = frames["grids"].assign(note=["a"] * 8)
    for name, frame in frames.items():
        kind = name.split()[-1] if name != "extra column" else "grids"
        s = CATALOGUE[kind]
        fast = store_mod.prepare(frame, s)
        monkeypatch.setattr(store_mod, "_BULK_ROWS", -1)  # every column through pandas
        slow = store_mod.prepare(frame, s)
        monkeypatch.undo()
        assert isinstance(fast, gpd.GeoDataFrame)
        assert_geodataframe_equal(fast, slow, check_dtype=True)


def test_append_rows_write_what_append_writes(any_store, toilets_wgs84):
    """A batch of web reports goes to SQLite without frames; ``append`` of the same rows is the oracle."""
    import geopandas as gpd

    from sanigrid.layers.store import StoreBase

    store = any_store
    store.write("toilets", toilets_wgs84)
    crs = store.crs
    base = store.read("toilets")
    rows = frame_rows(base.iloc[:3])
    rows[0]["seats"] = None
    rows[1]["name"] = 12  # not text: written as text, as append writes it
    store.append_rows("toilets", rows, crs=crs)
    StoreBase.append_rows(store, "toilets", rows, crs=crs)  # the frames' path
    back = store.read("toilets")
    n = len(base)
    fast, slow = back.iloc[n:n + 3].reset_index(drop=True), back.iloc[n + 3:].reset_index(drop=True)
    assert len(slow) == 3
    _same(frame_rows(fast), frame_rows(slow))
    assert fast.loc[1, "name"] == "12" and pd.isna(fast.loc[0, "seats"])
    hist = [{"problem_id": 1, "to_status": "立案", "at": datetime(2026, 1, 2, 8, 0)},
            {"problem_id": 2, "to_status": "派遣", "at": pd.Timestamp("2026-01-02 09:30:00")}]
    store.append_table("problem_history", pd.DataFrame(hist[:1]))  # the table exists: rows go straight in
    store.append_rows("problem_history", hist)
    got = store.read_rows("problem_history")
    assert [(r["problem_id"], r["to_status"], r["at"]) for r in got] == [
        (1, "立案", pd.Timestamp("2026-01-02 08:00")), (1, "立案", pd.Timestamp("2026-01-02 08:00")),
        (2, "派遣", pd.Timestamp("2026-01-02 09:30"))]
    with pytest.raises(Exception, match="Polygon"):  # a geometry the layer does not take: refused, nothing written
        store.append_rows("toilets", [{**rows[2], "geometry": shapely.box(0, 0, 1, 1)}], crs=crs)
    assert len(store.read("toilets")) == n + 6
    assert isinstance(back, gpd.GeoDataFrame)


def test_a_grid_index_places_points_as_assign_grid_does(town):
    import geopandas as gpd

    from sanigrid.geo.grids import GridIndex, assign_grid

    grids = town["project"].store.read("grids")
    x0, y0, x1, y1 = grids.total_bounds
    rng = np.random.default_rng(7)
    pts = shapely.points(np.column_stack([rng.uniform(x0 - 200, x1 + 200, 500), rng.uniform(y0 - 200, y1 + 200, 500)]))
    corners = shapely.get_coordinates(grids.geometry.boundary.to_numpy())  # on shared edges and corners
    pts = np.r_[pts, shapely.points(corners)]
    expected = assign_grid(gpd.GeoDataFrame(geometry=pts, crs=grids.crs), grids).tolist()
    index = GridIndex(grids)
    assert index.codes_at(pts) == expected
    assert None in expected and len({c for c in expected if c}) == len(grids)


def test_reports_follow_a_rewritten_grids_layer(tmp_path):
    """The placing index is kept across reports, and made anew when the grids layer is written."""
    project = synthetic_project(tmp_path / "town", n_problems=10)
    user = type("U", (), {"name": "office", "check": lambda self, *a: None})()
    grids = project.store.read("grids")
    c = grids.geometry.iloc[0].centroid
    lon, lat = (float(v) for v in shapely.get_coordinates(
        gpd_points([c], grids.crs).to_crs(4326).to_numpy())[0])
    report = intake.Report(category=project.settings.problem_categories[0], lon=lon, lat=lat, user=user)
    first = intake.intake_many(project, [report])[0]
    assert first["grid_code"] == grids["code"].iloc[0]
    renamed = grids.assign(code=[f"X{k}" for k in range(len(grids))])
    project.store.write("grids", renamed)
    second = intake.intake_many(project, [report])[0]
    assert second["grid_code"] == "X0" and second["problem_id"] == first["problem_id"] + 1
    row = project.store.read_rows("problems", where=eq("problem_id", second["problem_id"]))[0]
    assert row["grid_code"] == "X0" and row["unit"] == second["unit"] and row["status"] == cases.NEW
    assert row["deadline"] == pd.Timestamp(second["deadline"])


def gpd_points(geoms, crs):
    import geopandas as gpd

    return gpd.GeoSeries(geoms, crs=crs)


def test_a_case_pages_base_layers_are_kept_across_reports_and_follow_their_own_writes(tmp_path):
    from sanigrid.web import casedesk

    project = synthetic_project(tmp_path / "town", n_problems=20)
    store = project.store
    coords = project.settings.basemap.coords
    before = casedesk.display_layer(project, "streets", coords, ["name"])
    user = type("U", (), {"name": "office", "check": lambda self, *a: None})()
    grids = store.read("grids").to_crs(4326)
    c = grids.geometry.iloc[5].centroid
    out = intake.intake_many(project, [intake.Report(category=project.settings.problem_categories[0],
                                                      lon=c.x, lat=c.y, user=user)])[0]
    assert isinstance(out, dict)
    assert casedesk.display_layer(project, "streets", coords, ["name"]) is before  # a report keeps it
    streets = store.read("streets")
    store.write("streets", streets.assign(name="新街"))
    after = casedesk.display_layer(project, "streets", coords, ["name"])
    assert after is not before and set(after["name"]) == {"新街"}


def test_the_write_gate_holds_writes_past_its_limit_and_never_a_read():
    import asyncio

    from sanigrid.web.limits import WriteGate

    inside, most, release = [0], [0], asyncio.Event()

    async def app(scope, receive, send):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        if scope["method"] != "GET":
            await release.wait()
        inside[0] -= 1

    gate = WriteGate(app, limit=2)

    async def main() -> list[str]:
        done: list[str] = []

        async def call(method: str, k: int) -> None:
            await gate({"type": "http", "method": method, "path": "/api/problems"}, None, None)
            done.append(f"{method}{k}")

        writes = [asyncio.create_task(call("POST", k)) for k in range(5)]
        await asyncio.sleep(0.05)
        assert inside[0] == 2  # two writes past the gate, three waiting at it
        await asyncio.wait_for(call("GET", 0), 1)  # a read goes through while the gate is full
        release.set()
        await asyncio.gather(*writes)
        return done

    done = asyncio.run(main())
    assert done[0] == "GET0" and sorted(done[1:]) == [f"POST{k}" for k in range(5)] and most[0] == 3
