"""The PostGIS store against a real server: lock time-outs, indexes, frames equal to the GeoPackage
store's, projects and analyses on PostGIS (the shared contract is tests/test_store_contract.py).

Needs a PostGIS database: ``export SANIGRID_TEST_PG=$(scripts/postgis_test_server.sh | tail -1)``.
Without it (or when the server is unreachable) every test here is skipped. Each test works in a
fresh schema of its own, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import PG_PROBLEM, PG_URL  # one check of the test server, shared with the contract suite
from geopandas.testing import assert_geodataframe_equal

from sanigrid.layers._errors import StoreError
from sanigrid.layers.filters import between, eq, ne
from sanigrid.layers.project import Project, init_project, open_project
from sanigrid.layers.settings import Settings
from sanigrid.layers.store import GeoPackageStore

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'sanigrid[postgis]')")

from sanigrid.layers.postgis import PostGISStore  # noqa: E402

URL = PG_URL
pytestmark = pytest.mark.skipif(PG_PROBLEM is not None, reason=PG_PROBLEM or "")


def _drop_schema(schema: str) -> None:
    with psycopg.connect(URL) as con:
        con.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    _drop_schema(name)


@pytest.fixture
def store(schema: str) -> PostGISStore:
    return PostGISStore(URL, schema=schema)


def _snapshot(store: PostGISStore) -> dict[str, object]:
    """Every table of the schema, row by row (geometry as WKB), for 'exactly as it was' checks."""
    out: dict[str, object] = {}
    with psycopg.connect(URL) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (store.schema,))]
        for t in tables:
            q = psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1").format(psycopg.sql.Identifier(store.schema, t))
            out[t] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in con.execute(q)]
    return out


# ------------------------------------------------------------------ the contract of tests/test_store.py


def test_committed_transaction_lands_together(store, toilets_wgs84):
    with store.transaction() as tx:
        tx.write("toilets", toilets_wgs84)
        with tx.transaction() as inner:  # nested: the same connection, the same transaction
            assert inner is tx
            inner.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
        assert not store.has("toilets")
    assert store.has("toilets") and store.has("markets")
    assert store.version()[1] == 1  # one commit


def test_writer_waiting_too_long_gives_up(store, toilets_wgs84, monkeypatch):
    monkeypatch.setattr(PostGISStore, "lock_timeout_s", 0.3)
    with store.transaction() as tx:
        tx.write("toilets", toilets_wgs84)
        with pytest.raises(StoreError, match="busy"):  # a second writer waits for the first
            PostGISStore(URL, schema=store.schema).write("markets", toilets_wgs84)
    assert store.has("toilets") and not store.has("markets")
    store.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))  # free again


def test_wrong_geometry_type_refused_and_nothing_written(store, toilets_wgs84):
    store.write("toilets", toilets_wgs84)
    before = _snapshot(store)
    with pytest.raises(StoreError, match="Polygon or MultiPolygon"):
        store.write("grids", toilets_wgs84.rename(columns={"name": "code"}))
    assert _snapshot(store) == before and not store.has("grids")


def test_a_layer_is_a_plain_postgis_table(store, toilets_wgs84):
    """The contract (tables, meta, info) runs on PostGIS in test_store_contract.py; this is what only PostGIS has."""
    store.write("toilets", toilets_wgs84, params={"source": "test"}, synthetic=True)
    # a plain PostGIS table: typed geometry with the store SRID and a GiST index (QGIS lists it)
    with psycopg.connect(URL) as con:
        gtype, srid = con.execute("SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s "
                                  "AND f_table_name = 'toilets'", (store.schema,)).fetchone()
        index = con.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'toilets' "
                            "AND indexdef LIKE '%%gist%%'", (store.schema,)).fetchone()
    assert (gtype, srid) == ("POINT", 4548) and index is not None


def test_drop_removes_layer_and_its_index(store, toilets_wgs84):
    store.write("toilets", toilets_wgs84)
    store.write("markets", toilets_wgs84.drop(columns=["toilet_class", "seats"]))
    store.drop("toilets")
    assert not store.has("toilets") and store.has("markets")
    assert store.meta("toilets") == {}
    with psycopg.connect(URL) as con:
        left = con.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'toilets'",
                           (store.schema,)).fetchall()
    assert left == []
    store.write("toilets", toilets_wgs84)
    assert len(store.read("toilets")) == 5


def test_location_hides_the_password(store):
    assert "sanigrid:sanigrid@" not in PostGISStore("postgresql://sanigrid:sanigrid@db:5432/x").location
    assert ":" not in store.location.split("@")[0].removeprefix("postgresql:")


# ------------------------------------------------------------------ the same writes, the same frames
def _layers() -> dict[str, gpd.GeoDataFrame]:
    rng = np.random.default_rng(7)
    n = 40
    lon, lat = 117.22 + rng.uniform(0, 0.02, n), 28.30 + rng.uniform(0, 0.02, n)
    problems = gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1), "category": rng.choice(["暴露垃圾", "乱堆乱放"], n),
        "status": ["受理"] * n,
        "reported_at": pd.Timestamp("2026-06-01 08:30") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        "extra_score": rng.normal(size=n),  # a column the catalogue does not know
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    cells = [shapely.box(117.22 + 0.01 * i, 28.30, 117.23 + 0.01 * i, 28.31) for i in range(3)]
    grids = gpd.GeoDataFrame({"code": ["G1", "G2", "G3"], "name": ["一", "二", None]},
                             geometry=[cells[0], shapely.MultiPolygon([cells[1]]), cells[2]], crs=4326)
    streets = gpd.GeoDataFrame({"name": ["大街", "小巷"]}, geometry=[
        shapely.LineString([(117.22, 28.30), (117.23, 28.31)]),
        shapely.LineString([(117.23, 28.30), (117.24, 28.30)])], crs=4326)
    markets = gpd.GeoDataFrame({"name": ["a", "b"], "stalls": [12, None]}, geometry=[
        shapely.Point(117.2, 28.3), shapely.Point(117.21, 28.3).buffer(0.001)], crs=4326)
    return {"problems": problems, "grids": grids, "streets": streets, "markets": markets}


def test_geopackage_and_postgis_give_equal_frames(store, tmp_path, toilets_wgs84):
    gpkg = GeoPackageStore(tmp_path / "x.gpkg")
    layers = _layers()
    for s in (gpkg, store):
        with s.transaction() as tx:
            for kind, frame in layers.items():
                tx.write(kind, frame)
            tx.write("toilets", toilets_wgs84)
        s.append("toilets", toilets_wgs84.iloc[:2])
        s.update("problems", "problem_id", {3: {"status": "结案", "closed_at": pd.Timestamp("2026-07-01 10:00")}})
        s.write_table("problem_history", pd.DataFrame({"problem_id": [1, 2], "to_status": ["派遣", "处置"]}))
    assert store.crs == gpkg.crs
    for kind in [*layers, "toilets"]:
        assert_geodataframe_equal(store.read(kind), gpkg.read(kind), check_less_precise=True)
    box = (gpkg.read("grids").total_bounds[:2] + 0).tolist() * 2
    box[2], box[3] = box[0] + 800, box[1] + 800
    for kwargs in ({"bbox": tuple(box)}, {"where": eq("status", "结案")},
                   {"where": ne("category", "暴露垃圾") & between("problem_id", lo=5)},
                   {"columns": ["problem_id", "status"]}):
        assert_geodataframe_equal(store.read("problems", **kwargs), gpkg.read("problems", **kwargs),
                                  check_less_precise=True)
    pd.testing.assert_frame_equal(store.read_table("problem_history"), gpkg.read_table("problem_history"))
    assert store.max_value("problems", "problem_id") == gpkg.max_value("problems", "problem_id") == 40
    assert [i.count for i in store.info()] == [i.count for i in gpkg.info()]
    assert [i.kind for i in store.info()] == [i.kind for i in gpkg.info()]


# ------------------------------------------------------------------ projects on PostGIS
def test_project_with_store_url_opens_postgis(tmp_path, schema):
    settings = Settings()
    settings.project.store_url = URL
    settings.project.store_schema = schema  # one schema per county on a shared database
    settings.project.crs = "EPSG:4548"
    project = init_project(tmp_path / "county", settings=settings)
    assert isinstance(project.store, PostGISStore) and project.store.crs.to_epsg() == 4548
    again = open_project(tmp_path / "county")
    assert isinstance(again.store, PostGISStore) and again.store.schema == schema
    assert not (tmp_path / "county" / "sanigrid.gpkg").exists()
    assert isinstance(open_project(init_project(tmp_path / "plain").root).store, GeoPackageStore)


def test_analyses_run_on_postgis(tmp_path, store):
    """The demo county copied into PostGIS: the problem and coverage analyses read and write it there."""
    from sanigrid.scripts import coverage, problems
    from sanigrid.scripts.demo import build_demo

    demo = build_demo(tmp_path / "demo", n_problems=300)
    with store.transaction() as tx:
        for li in demo.store.info():
            tx.write(li.kind, demo.store.read(li.kind), params=li.params, synthetic=li.synthetic)
        tx.write_table("problem_history", demo.store.read_table("problem_history"))
    pg = Project(Path(tmp_path / "demo"), demo.settings, store)
    problems.run_problems(pg)
    coverage.run_coverage(pg, "toilets")
    # the same analyses on the GeoPackage give the same layers
    problems.run_problems(demo)
    coverage.run_coverage(demo, "toilets")
    for kind in ("problems", "service_areas", "coverage_gaps"):
        a, b = store.read(kind), demo.store.read(kind)
        assert len(a) > 0, kind
        assert_geodataframe_equal(a, b, check_less_precise=True)
    def undated(params: dict) -> dict:
        return {k: undated(v) if isinstance(v, dict) else v for k, v in params.items() if k != "date"}

    assert undated(store.meta("service_areas")["params"]) == undated(demo.store.meta("service_areas")["params"])
