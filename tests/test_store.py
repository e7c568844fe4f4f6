"""The GeoPackage store as a file: what QGIS opens, writes in place (WAL), crashes. The contract shared
with the PostGIS store is tests/test_store_contract.py."""

from __future__ import annotations

import pandas as pd
import pyogrio
import pytest


def test_failed_transaction_leaves_store_byte_identical(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84)
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
            tx.update("toilets", "name", {"公厕0": {"seats": 99}})
            raise RuntimeError("fail half-way on purpose")
    assert store.path.read_bytes() == before
    assert not store.has("markets")
    assert store.read("toilets")["seats"].tolist() == [4, 6, 8, 2, 10]
    leftovers = [p.name for p in store.path.parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_tables_and_meta(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84, params={"source": "test"}, synthetic=True)
    store.append_table("problem_history", pd.DataFrame({"problem_id": [1], "to_status": ["派遣"]}))
    store.append_table("problem_history", pd.DataFrame({"problem_id": [1], "to_status": ["处置"]}))
    assert store.read_table("problem_history")["to_status"].tolist() == ["派遣", "处置"]
    meta = store.meta("toilets")
    assert meta["synthetic"] is True and meta["params"] == {"source": "test"}
    info = {i.kind: i for i in store.info()}
    assert info["toilets"].count == 5 and "4548" in info["toilets"].crs
    # the file is a plain GeoPackage that GDAL (and so QGIS) lists
    layers = dict(pyogrio.list_layers(store.path))
    assert layers["toilets"] == "Point"


def test_geopackage_is_plain_and_registered(project, toilets_wgs84):
    """QGIS opens the file as it is: GPKG application id, intact, every table in gpkg_contents."""
    import sqlite3

    store = project.store
    store.write("toilets", toilets_wgs84)
    store.append_table("problem_history", pd.DataFrame({"problem_id": [1], "to_status": ["派遣"]}))
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # 'GPKG'
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        registered = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                  if not r[0].startswith(("gpkg_", "rtree_", "sqlite_"))}
    finally:
        con.close()
    assert tables <= registered, tables - registered


def test_write_ahead_log_of_another_editor_is_kept(project, toilets_wgs84):
    """An edit committed by another program in WAL mode (as QGIS does) survives our next write."""
    store = project.store
    store.write("toilets", toilets_wgs84)
    con = store._connect()  # plain sqlite3 plus the GeoPackage functions of the index triggers
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("UPDATE toilets SET hours = '全天' WHERE name = '公厕2'")
    con.commit()
    con.close()  # closing the last connection may checkpoint; reopen to leave a live log behind
    con = store._connect()  # plain sqlite3 plus the GeoPackage functions of the index triggers
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("UPDATE toilets SET seats = 12 WHERE name = '公厕3'")
    con.commit()
    store.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
    con.close()
    back = store.read("toilets").set_index("name")
    assert back.loc["公厕2", "hours"] == "全天"
    assert back.loc["公厕3", "seats"] == 12
    assert store.has("markets")


def test_drop_removes_layer_and_its_index(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84)
    store.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
    store.drop("toilets")
    assert not store.has("toilets") and store.has("markets")
    con = store._connect()
    try:
        left = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE name LIKE '%toilets%'")]
        assert left == []
        assert con.execute("SELECT COUNT(*) FROM gpkg_extensions WHERE table_name='toilets'").fetchone()[0] == 0
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    store.write("toilets", toilets_wgs84)  # and it can be written again
    assert len(store.read("toilets")) == 5


# ---------------------------------------------------------------- in place, in one SQLite transaction
_WRITER = r"""
import sys, time
import geopandas as gpd, numpy as np, shapely
from sanigrid.layers.store import GeoPackageStore
store = GeoPackageStore(sys.argv[1])
mode = sys.argv[2]
if mode == "acks":
    for i in range(10_000):
        row = gpd.GeoDataFrame({"name": [f"t{i}"], "seats": [i]}, geometry=[shapely.Point(117.2, 28.3)], crs=4326)
        store.append("toilets", row)
        print(i, flush=True)  # acknowledged: committed
else:
    n = 200_000
    big = gpd.GeoDataFrame({"name": [f"b{i}" for i in range(n)], "seats": np.arange(n)},
                           geometry=shapely.points(117.2 + np.random.rand(n) * 0.01, 28.3 + np.random.rand(n) * 0.01),
                           crs=4326)
    with store.transaction() as tx:
        tx.update("toilets", "name", {"公厕0": {"seats": 99}})
        print("started", flush=True)
        tx.write("toilets", big)
        tx.append_table("problem_history", big.drop(columns="geometry"))
    print("done", flush=True)
"""


def _kill_after(args: list[str], line: str | None, n_lines: int) -> list[str]:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _WRITER, *args], stdout=subprocess.PIPE, text=True)
    seen: list[str] = []
    assert proc.stdout is not None
    for out in proc.stdout:
        seen.append(out.strip())
        if (line is not None and out.strip() == line) or len(seen) >= n_lines:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return seen


def test_no_acknowledged_append_is_lost_after_kill_9(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84)
    acked = _kill_after([str(store.path), "acks"], None, 25)
    back = set(store.read("toilets")["name"])
    assert {f"t{i}" for i in map(int, acked)} <= back  # every acknowledged row is there
    with store._connect() as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.append("toilets", toilets_wgs84.iloc[:1])  # and the store takes writes again


def test_write_killed_mid_way_leaves_the_store_as_it_was(project, toilets_wgs84):
    from conftest import snapshot

    store = project.store
    store.write("toilets", toilets_wgs84)
    before = snapshot(store)
    seen = _kill_after([str(store.path), "big"], "started", 10)
    assert seen == ["started"]
    assert snapshot(store) == before
    assert store.read("toilets")["seats"].tolist() == [4, 6, 8, 2, 10]
    store.append("toilets", toilets_wgs84.iloc[:1])  # the lock died with the writer
    assert len(store.read("toilets")) == 6
    assert [p.name for p in store.path.parent.iterdir() if ".scratch" in p.name or ".tmp" in p.name] == []


def test_crash_leftovers_are_cleaned_at_the_next_write(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84)
    (store.path.parent / f".{store.path.stem}.1a2b3c4d.tmp.gpkg").write_bytes(b"x" * 100)
    (store.path.parent / f".{store.path.stem}.xyz.scratch").mkdir()
    store.append("toilets", toilets_wgs84.iloc[:1])
    assert [p.name for p in store.path.parent.iterdir() if p.name.startswith(".")] == []


def test_writes_are_in_place_in_wal_mode(project, toilets_wgs84):
    """An append changes the file in place (same inode, no copy) and readers see each commit."""
    import os

    store = project.store
    store.write("toilets", toilets_wgs84)
    ino = os.stat(store.path).st_ino
    v = store.version()
    store.append("toilets", toilets_wgs84.iloc[:1])
    assert os.stat(store.path).st_ino == ino and store.version() != v
    with store._connect() as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(store.read("toilets")) == 6
    # a reader holding a snapshot open does not block a writer
    reader = store._connect()
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM toilets").fetchone()[0] == 6
    store.append("toilets", toilets_wgs84.iloc[:1])
    assert reader.execute("SELECT COUNT(*) FROM toilets").fetchone()[0] == 6  # its snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM toilets").fetchone()[0] == 7
    reader.close()


def test_a_one_row_append_writes_what_the_bulk_write_writes(tmp_path):
    """The same 100 problems written at once (bulk: R-tree filled in one pass) and as 99 + a 1-row append
    (the web report's path: the R-tree's own triggers): the same rows, blobs, index and extent."""
    import geopandas as gpd
    import numpy as np
    import shapely
    from conftest import snapshot

    from sanigrid.layers.store import GeoPackageStore

    rng = np.random.default_rng(4)
    n = 100
    frame = gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1), "category": "暴露垃圾", "description": [f"第{i}条" for i in range(n)],
        "reported_at": pd.Timestamp("2026-05-01 08:00") + pd.to_timedelta(np.arange(n), unit="min"),
        "status": "立案", "priority": [i % 3 == 0 for i in range(n)], "closed_at": pd.NaT},
        geometry=shapely.points(117.2 + rng.random(n) * 0.01, 28.3 + rng.random(n) * 0.01), crs=4326)
    bulk, one = GeoPackageStore(tmp_path / "bulk.gpkg"), GeoPackageStore(tmp_path / "one.gpkg")
    bulk.write("problems", frame)
    one.write("problems", frame.iloc[:-1])
    one.append("problems", frame.iloc[-1:])
    a, b = snapshot(bulk), snapshot(one)
    for table in ("problems", "rtree_problems_geom", "gpkg_ogr_contents"):
        assert a[table] == b[table], table
    assert {r[0]: r[5:] for r in a["gpkg_contents"]} == {r[0]: r[5:] for r in b["gpkg_contents"]}
    pd.testing.assert_frame_equal(bulk.read("problems"), one.read("problems"))
    back = pyogrio.read_dataframe(one.path, layer="problems")  # GDAL reads the appended row as it wrote the rest
    assert len(back) == n and back["description"].iloc[-1] == "第99条"


def test_keys_near_matches_brute_force_distances(tmp_path):
    """keys_near (one R-tree pass for all points) = a brute-force distance check with the filter, and = the
    generic one-read-per-point path every backend has."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from sanigrid.layers.filters import eq, ne
    from sanigrid.layers.store import GeoPackageStore, StoreBase

    rng = np.random.default_rng(8)
    n = 2000
    frame = gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1), "category": rng.choice(["暴露垃圾", "占道经营"], n),
        "status": rng.choice(["立案", "结案"], n), "reported_at": pd.Timestamp("2026-05-01")},
        geometry=shapely.points(rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)), crs=4548)
    store = GeoPackageStore(tmp_path / "s.gpkg", crs=4548)  # the frame's own CRS: the points stay as they are
    store.write("problems", frame)
    pts = rng.uniform(-20, 1020, (60, 2))
    where = eq("category", "暴露垃圾") & ne("status", "结案")
    got = store.keys_near("problems", "problem_id", pts, 40.0, where=where)
    xy = shapely.get_coordinates(frame.geometry.to_numpy())
    keep = ((frame["category"] == "暴露垃圾") & (frame["status"] != "结案")).to_numpy()
    want = [sorted(frame["problem_id"][keep & (np.hypot(*(xy - p).T) <= 40.0)].tolist()) for p in pts]
    assert got == want and sum(map(len, want)) > 20
    assert StoreBase.keys_near(store, "problems", "problem_id", pts, 40.0, where=where) == want
    assert store.keys_near("problems", "problem_id", np.empty((0, 2)), 40.0) == []


def test_bulk_writes_keep_gdals_feature_count_as_its_row_triggers_do(tmp_path, monkeypatch):
    """A bulk insert drops the feature-count trigger, moves gpkg_ogr_contents once and makes the trigger
    again: the count, the triggers and the rows are those of the row-by-row path (every row through the
    trigger), and a later small append is counted by the trigger again."""
    import sqlite3

    import geopandas as gpd
    import numpy as np
    import shapely

    import sanigrid.layers.store as store_module
    from sanigrid.layers.store import GeoPackageStore

    rng = np.random.default_rng(3)

    def points(n: int, start: int) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"problem_id": np.arange(start, start + n), "category": "暴露垃圾",
                                 "status": "立案", "reported_at": pd.Timestamp("2026-05-01")},
                                geometry=shapely.points(rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)), crs=4548)

    frames = [points(300, 1), points(200, 301), points(3, 501)]
    table = pd.DataFrame({"k": np.arange(150), "v": [f"第{i}条" for i in range(150)]})

    def build(path) -> dict[str, list[tuple]]:
        store = GeoPackageStore(path, crs=4548)
        store.write("problems", frames[0])
        store.append("problems", frames[1])  # bulk (above _BULK_ROWS) unless patched
        store.append("problems", frames[2])  # row by row: the trigger counts
        store.write_table("notes", table)
        store.append_table("notes", table)
        con = sqlite3.connect(path)
        try:
            return {
                "counts": con.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents "
                                      "ORDER BY 1").fetchall(),
                "rows": con.execute("SELECT (SELECT COUNT(*) FROM problems), (SELECT COUNT(*) FROM notes), "
                                    "(SELECT COUNT(*) FROM rtree_problems_geom)").fetchall(),
                "triggers": sorted(con.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'")),
                "problems": con.execute("SELECT * FROM problems ORDER BY fid").fetchall(),
            }
        finally:
            con.close()

    bulk = build(tmp_path / "bulk.gpkg")
    monkeypatch.setattr(store_module, "_BULK_ROWS", 10**9)  # every insert row by row, through the triggers
    rows = build(tmp_path / "rows.gpkg")
    assert dict(bulk["counts"])["problems"] == 503 and dict(bulk["counts"])["notes"] == 300
    assert bulk["rows"] == [(503, 300, 503)]
    assert any(n == "trigger_insert_feature_count_problems" for n, _ in bulk["triggers"])
    assert bulk == rows


def test_column_values_for_sqlite_equal_the_value_by_value_conversion():
    """The vectorised conversion of a long column (numbers through numpy) gives exactly what the value-by-value
    path of a short one gives (_sql_value): Python ints and floats, NULL for NA and NaN, inf kept."""
    import numpy as np

    from sanigrid.layers.store import _BULK_ROWS, _sql_value, _sqlite_values

    n = _BULK_ROWS + 40
    rng = np.random.default_rng(5)
    ints = rng.integers(-10**12, 10**12, n)
    floats = rng.normal(size=n) * 1e6
    floats[[3, 7]] = np.nan
    floats[9] = np.inf
    missing = rng.random(n) < 0.2
    cols = {
        "bool": pd.Series(rng.random(n) < 0.5),
        "boolean": pd.Series(pd.array(np.where(missing, None, rng.random(n) < 0.5), dtype="boolean")),
        "int64": pd.Series(ints),
        "int32": pd.Series(ints.astype(np.int32)),
        "uint64": pd.Series(np.full(n, 2**63 + 5, dtype=np.uint64)),
        "Int64": pd.Series(pd.array(np.where(missing, None, ints), dtype="Int64")),
        "float64": pd.Series(floats),
        "float32": pd.Series(floats.astype(np.float32)),
        "Float64": pd.Series(pd.array(np.where(missing, None, floats), dtype="Float64")),
    }
    for name, col in cols.items():
        got = _sqlite_values(col)
        want = [_sql_value(v) for v in col.astype(object)]
        assert len(got) == n and [type(v) for v in got] == [type(v) for v in want], name
        assert got == want, name
        assert sum(v is None for v in got) == int(col.isna().sum()), name


def test_gdal_table_definitions_kept_per_schema_give_the_tables_gdal_makes(tmp_path, monkeypatch):
    """The second write of a schema reuses what GDAL wrote for the first (no scratch GeoPackage): its tables,
    indexes, triggers and gpkg_* rows equal those of a store written with nothing kept; another schema (a
    column more) asks GDAL again."""
    import sqlite3

    import geopandas as gpd
    import pyogrio
    import shapely

    import sanigrid.layers.store as store_module
    from sanigrid.layers.store import GeoPackageStore

    def toilets(n: int, crs: int = 4548, **extra) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"name": [f"公厕{i}" for i in range(n)], **extra},
                                geometry=[shapely.Point(500_000 + i, 3_100_000) for i in range(n)], crs=crs)

    def schema(path) -> dict[str, list[tuple]]:
        con = sqlite3.connect(path)
        try:
            return {"master": sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")),
                    **{t: sorted(map(tuple, con.execute(f"SELECT * FROM {t}")))
                       for t in ("gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
                                 "gpkg_spatial_ref_sys")},
                    "contents": sorted(con.execute("SELECT table_name, data_type, identifier, description, min_x, "
                                                   "min_y, max_x, max_y, srs_id FROM gpkg_contents"))}
        finally:
            con.close()

    calls = []
    real = pyogrio.write_dataframe
    monkeypatch.setattr(pyogrio, "write_dataframe", lambda *a, **k: (calls.append(k.get("layer")), real(*a, **k)))

    def build(path) -> dict[str, list[tuple]]:
        store = GeoPackageStore(path, crs=4548)
        store.write("toilets", toilets(3))
        store.write("toilets", toilets(5))                                   # the same schema again
        store.write_table("notes", pd.DataFrame({"k": [1, 2], "v": ["a", "b"]}))
        return schema(path)

    store_module._DEFINITIONS.clear()
    fresh = build(tmp_path / "fresh.gpkg")
    assert calls.count("toilets") == 1 and calls.count("notes") == 1  # the second write kept GDAL's
    calls.clear()
    kept = build(tmp_path / "kept.gpkg")                                # every definition kept: GDAL not asked
    assert calls == ["sanigrid_project"]                                 # (only to make the new file)
    assert kept == fresh
    store_module._DEFINITIONS.clear()
    assert build(tmp_path / "again.gpkg") == fresh                      # and = nothing kept at all

    other = GeoPackageStore(tmp_path / "other.gpkg", crs=4548)
    calls.clear()
    other.write("toilets", toilets(2, seats=[1, 2]))  # the catalogue's columns, as before: kept
    other.write("toilets", toilets(2, seats=[1, 2], remark=["甲", "乙"]))  # a column more: GDAL again
    assert calls == ["sanigrid_project", "toilets"]
    assert other.read("toilets")[["seats", "remark"]].values.tolist() == [[1, "甲"], [2, "乙"]]
