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
