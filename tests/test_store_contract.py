"""The store contract, one suite for every backend (``any_store``: a GeoPackage file, and a PostGIS
schema when ``SANIGRID_TEST_PG`` names a server; see tests/conftest.py).

Backend-specific checks (the GeoPackage file QGIS opens, PostGIS indexes and lock time-outs) live in
tests/test_store.py and tests/test_postgis.py.
"""

from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import reopen, snapshot

from sanigrid.layers._errors import CatalogueError, CRSError, StoreError
from sanigrid.layers.filters import between, eq


def test_first_write_picks_gauss_kruger_zone(any_store, toilets_wgs84):
    any_store.write("toilets", toilets_wgs84)
    assert any_store.crs.to_epsg() == 4548  # lon 117.2 → zone 39 → EPSG:4509+39
    back = any_store.read("toilets")
    assert back.crs.to_epsg() == 4548
    assert list(back["name"]) == list(toilets_wgs84["name"])
    again = back.to_crs(4326)  # positions survive the round trip to the millimetre
    assert (again.geometry.x - toilets_wgs84.geometry.x).abs().max() < 1e-9
    assert (again.geometry.y - toilets_wgs84.geometry.y).abs().max() < 1e-9


def test_read_missing_layer_gives_empty_catalogue_frame(any_store):
    frame = any_store.read("markets")
    assert len(frame) == 0
    assert {"name", "stalls", "standardized"} <= set(frame.columns)
    assert any_store.version() == (None,) and any_store.crs is None


def test_configured_crs_is_kept(any_store, toilets_wgs84):
    store = reopen(any_store, crs="EPSG:4527")
    store.write("toilets", toilets_wgs84)
    assert store.crs.to_epsg() == 4527
    assert reopen(any_store).crs.to_epsg() == 4527  # recorded in the store
    with pytest.raises(CRSError, match="already in"):
        store.set_crs("EPSG:4548")


def test_frame_without_crs_refused(any_store, toilets_wgs84):
    with pytest.raises(CRSError, match="no CRS"):
        any_store.write("toilets", toilets_wgs84.set_crs(None, allow_override=True))
    assert not any_store.has("toilets")


def test_failed_transaction_leaves_store_exactly_as_it_was(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84)
    before, version = snapshot(store), store.version()
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
            tx.update("toilets", "name", {"公厕0": {"seats": 99}})
            tx.append("toilets", toilets_wgs84.iloc[:1])
            tx.append_table("problem_history", pd.DataFrame({"problem_id": [1], "to_status": ["派遣"]}))
            assert tx.read("toilets")["seats"].tolist()[0] == 99  # the transaction sees its own writes
            assert not store.has("markets")  # ... nobody else does
            raise RuntimeError("fail half-way on purpose")
    assert snapshot(store) == before
    assert store.version() == version
    assert not store.has("markets") and store.read_table("problem_history").empty
    assert store.read("toilets")["seats"].tolist() == [4, 6, 8, 2, 10]


def test_committed_transaction_lands_together(any_store, toilets_wgs84):
    store = any_store
    with store.transaction() as tx:
        tx.write("toilets", toilets_wgs84)
        with tx.transaction() as inner:  # nested: the same transaction
            assert inner is tx
            inner.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
        assert not store.has("toilets")
    assert store.has("toilets") and store.has("markets")


def test_update(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84)
    with pytest.raises(StoreError, match="no row"):
        store.update("toilets", "name", {"公厕1": {"seats": 1}, "没有这个": {"seats": 2}})
    assert store.read("toilets")["seats"].tolist() == [4, 6, 8, 2, 10]  # nothing written
    v = store.version()
    assert store.update("toilets", "name", {"公厕1": {"seats": 1, "hours": "全天"}, "公厕4": {"seats": None}}) == 2
    back = store.read("toilets")
    assert back["seats"].tolist()[:4] == [4, 1, 8, 2] and pd.isna(back["seats"].iloc[4])
    assert back["hours"].tolist()[1] == "全天"
    assert store.version() != v


def test_unknown_kinds_and_fields_refused(any_store, toilets_wgs84):
    store = any_store
    with pytest.raises(CatalogueError, match="unknown layer kind"):
        store.write("no_such_kind", toilets_wgs84)
    with pytest.raises(StoreError, match="no layer"):
        store.read("no_such_kind")
    store.write("toilets", toilets_wgs84)
    with pytest.raises(StoreError, match="no field"):
        store.update("toilets", "name", {"公厕1": {"nope": 1}})
    with pytest.raises(StoreError, match="no field"):
        store.update("toilets", "name", {"公厕1": {'seats" = 0; DROP TABLE toilets; --': 1}})
    with pytest.raises(StoreError, match="no field"):
        store.update("toilets", "nope", {"公厕1": {"seats": 1}})
    with pytest.raises(StoreError, match="no layer"):
        store.update("markets", "name", {"a": {"stalls": 1}})
    with pytest.raises(StoreError, match="no field"):
        store.read("toilets", columns=["name", "nope"])
    with pytest.raises(StoreError, match="no field"):
        store.max_value("toilets", "nope")
    with pytest.raises(StoreError, match="cannot read"):
        store.read("toilets", where=eq("nope", 1))
    with pytest.raises(StoreError, match="free table"):
        store.write_table("toilets", pd.DataFrame({"a": [1]}))
    with pytest.raises(StoreError, match="free table"):
        store.append_table("sanigrid_meta", pd.DataFrame({"a": [1]}))
    assert len(store.read("toilets")) == 5
    assert store.max_value("toilets", "seats") == 10
    assert store.max_value("markets", "stalls") is None


def test_wrong_geometry_type_refused_and_nothing_written(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84)
    before = snapshot(store)
    with pytest.raises(StoreError):
        store.write("grids", toilets_wgs84.rename(columns={"name": "code"}))
    assert snapshot(store) == before and not store.has("grids")


def test_concurrent_appends_lose_nothing(any_store, toilets_wgs84):
    any_store.write("toilets", toilets_wgs84.iloc[:0])
    errors: list[BaseException] = []

    def add(i: int) -> None:
        one = toilets_wgs84.iloc[[i % 5]].copy()
        one["name"] = f"t{i}"
        try:
            reopen(any_store).append("toilets", one)  # its own store object and connections
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(any_store.read("toilets")["name"]) == sorted(f"t{i}" for i in range(12))


def test_tables_and_meta(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84, params={"source": "test", "n": [1, 2]}, synthetic=True)
    store.append_table("problem_history", pd.DataFrame({"problem_id": [1], "to_status": ["派遣"]}))
    store.append_table("problem_history", pd.DataFrame({"problem_id": [1], "to_status": ["处置"]}))
    assert store.read_table("problem_history")["to_status"].tolist() == ["派遣", "处置"]
    store.write_table("problem_history", pd.DataFrame({"problem_id": [7], "to_status": ["结案"]}))
    assert store.read_table("problem_history").to_dict("list") == {"problem_id": [7], "to_status": ["结案"]}
    assert store.read_table("never_written").empty
    meta = store.meta("toilets")
    assert meta["synthetic"] is True and meta["params"] == {"source": "test", "n": [1, 2]}
    store.append("toilets", toilets_wgs84.iloc[:1])  # an append keeps how the layer was made
    assert store.meta("toilets")["params"] == {"source": "test", "n": [1, 2]}
    info = {i.kind: i for i in store.info()}
    assert info["toilets"].count == 6 and "4548" in info["toilets"].crs
    assert info["toilets"].bounds is not None and info["toilets"].synthetic


def test_append_creates_then_adds(any_store, toilets_wgs84):
    store = any_store
    store.append("toilets", toilets_wgs84.iloc[:2])
    store.append("toilets", toilets_wgs84.iloc[2:])
    assert store.read("toilets")["name"].tolist() == toilets_wgs84["name"].tolist()
    assert store.max_value("toilets", "seats") == 10


def test_bbox_read(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84)
    full = store.read("toilets")
    x, y = full.geometry.x.iloc[0], full.geometry.y.iloc[0]
    part = store.read("toilets", bbox=(x - 10, y - 10, x + 10, y + 10))
    assert part["name"].tolist() == ["公厕0"]
    both = store.read("toilets", bbox=(x - 10, y - 10, x + 10, y + 10), where=between("seats", lo=101),
                      columns=["name"])
    assert len(both) == 0 and list(both.columns) == ["name", "geometry"]


def test_mixed_geometry_layer(any_store):
    pts = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[
        shapely.Point(117.2, 28.3), shapely.Point(117.21, 28.3).buffer(0.001)], crs=4326)
    any_store.write("markets", pts)
    assert sorted(any_store.read("markets").geom_type) == ["Point", "Polygon"]


def test_drop(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84)
    store.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
    store.drop("toilets")
    store.drop("grids")  # absent: nothing to do
    assert not store.has("toilets") and store.has("markets")
    assert store.meta("toilets") == {} and [i.kind for i in store.info()] == ["markets"]
    store.write("toilets", toilets_wgs84)  # and it can be written again
    assert len(store.read("toilets")) == 5


def test_replacing_a_layer_replaces_its_rows_and_columns(any_store, toilets_wgs84):
    store = any_store
    store.write("toilets", toilets_wgs84.assign(extra=1.5))
    store.write("toilets", toilets_wgs84.iloc[:2])
    back = store.read("toilets")
    assert back["name"].tolist() == ["公厕0", "公厕1"] and "extra" not in back.columns
    assert store.info()[0].count == 2


def test_a_box_read_is_exact_at_large_coordinates(any_store):
    """SQLite's R-tree rounds envelopes outwards to 32-bit floats (0.25 m at 3·10⁶ m): a point 0.1 m outside
    the box was returned by the GeoPackage and not by PostGIS. Both answer by the real envelopes."""
    import geopandas as gpd

    y = 3_130_598.0
    xs = np.array([518_700.0, 518_710.0, 518_720.0, 518_730.0])
    ys = np.array([y - 0.1, y + 0.1, y + 0.01, y - 0.01])
    frame = gpd.GeoDataFrame({"name": [f"公厕{k}" for k in range(4)]}, geometry=shapely.points(xs, ys), crs=4548)
    any_store.write("toilets", frame)
    got = any_store.read("toilets", bbox=(518_600.0, 3_129_000.0, 518_800.0, y))
    assert sorted(got["name"]) == ["公厕0", "公厕3"]
