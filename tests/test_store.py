"""The GeoPackage store: CRS choice, round trips, atomic writes, concurrent writers."""

from __future__ import annotations

import threading

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from sanigrid.layers._errors import CRSError, StoreError
from sanigrid.layers.store import GeoPackageStore


def test_first_write_picks_gauss_kruger_zone(project, toilets_wgs84):
    project.store.write("toilets", toilets_wgs84)
    assert project.store.crs.to_epsg() == 4548  # lon 117.2 → zone 39 → EPSG:4509+39
    back = project.store.read("toilets")
    assert back.crs.to_epsg() == 4548
    assert list(back["name"]) == list(toilets_wgs84["name"])
    # positions survive the round trip to the millimetre
    again = back.to_crs(4326)
    assert (again.geometry.x - toilets_wgs84.geometry.x).abs().max() < 1e-9
    assert (again.geometry.y - toilets_wgs84.geometry.y).abs().max() < 1e-9


def test_read_missing_layer_gives_empty_catalogue_frame(project):
    frame = project.store.read("markets")
    assert len(frame) == 0
    assert {"name", "stalls", "standardized"} <= set(frame.columns)


def test_configured_crs_is_kept(tmp_path, toilets_wgs84):
    store = GeoPackageStore(tmp_path / "x.gpkg", crs="EPSG:4527")
    store.write("toilets", toilets_wgs84)
    assert store.crs.to_epsg() == 4527
    with pytest.raises(CRSError, match="already in"):
        store.set_crs("EPSG:4548")


def test_frame_without_crs_refused(project, toilets_wgs84):
    with pytest.raises(CRSError, match="no CRS"):
        project.store.write("toilets", toilets_wgs84.set_crs(None, allow_override=True))


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


def test_update_unknown_key_changes_nothing(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84)
    with pytest.raises(StoreError, match="no row"):
        store.update("toilets", "name", {"公厕1": {"seats": 1}, "没有这个": {"seats": 2}})
    assert store.read("toilets")["seats"].tolist() == [4, 6, 8, 2, 10]


def test_concurrent_appends_lose_nothing(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84.iloc[:0])
    def add(i: int) -> None:
        one = toilets_wgs84.iloc[[i % 5]].copy()
        one["name"] = f"t{i}"
        store.append("toilets", one)
    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(store.read("toilets")["name"])
    assert names == sorted(f"t{i}" for i in range(12))


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


def test_bbox_read(project, toilets_wgs84):
    store = project.store
    store.write("toilets", toilets_wgs84)
    full = store.read("toilets")
    x, y = full.geometry.x.iloc[0], full.geometry.y.iloc[0]
    part = store.read("toilets", bbox=(x - 10, y - 10, x + 10, y + 10))
    assert part["name"].tolist() == ["公厕0"]


def test_mixed_geometry_layer(project):
    pts = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[
        shapely.Point(117.2, 28.3), shapely.Point(117.21, 28.3).buffer(0.001)], crs=4326)
    project.store.write("markets", pts)
    back = project.store.read("markets")
    assert sorted(back.geom_type) == ["Point", "Polygon"]


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
