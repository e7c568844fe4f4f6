"""Shared fixtures: small frames and projects made in the tests (never from the internet)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from sanigrid.layers.project import Project, init_project
from sanigrid.layers.store import GeoPackageStore, Store

# a point in the demo town (贵溪, 117.22E 28.30N), CGCS2000 GK zone 39 → EPSG:4548
TOWN_LON, TOWN_LAT = 117.22, 28.30


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project in a temporary folder."""
    return init_project(tmp_path / "county")


@pytest.fixture
def toilets_wgs84() -> gpd.GeoDataFrame:
    pts = [shapely.Point(TOWN_LON + 0.001 * i, TOWN_LAT + 0.0005 * i) for i in range(5)]
    return gpd.GeoDataFrame(
        {"name": [f"公厕{i}" for i in range(5)], "toilet_class": ["二类"] * 5, "seats": [4, 6, 8, 2, 10]},
        geometry=pts, crs=4326,
    )


# ---------------------------------------------------------------- both store backends
PG_URL = os.environ.get("SANIGRID_TEST_PG", "")


def _pg_problem() -> str | None:
    """Why the PostGIS backend cannot be tested here (``None``: it can)."""
    if not PG_URL:
        return ("SANIGRID_TEST_PG is not set; run `export SANIGRID_TEST_PG=$(bash scripts/postgis_test_server.sh "
                "| tail -n 1)` to test the PostGIS store")
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'sanigrid[postgis]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as con:
            if con.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone() is None:
                return "the database of SANIGRID_TEST_PG has no postgis extension (CREATE EXTENSION postgis)"
    except psycopg.Error as e:
        return f"the PostGIS server of SANIGRID_TEST_PG is unreachable: {str(e).strip().splitlines()[0]}"
    return None


PG_PROBLEM = _pg_problem()


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL) as con:
        con.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.skipif(
    PG_PROBLEM is not None, reason=PG_PROBLEM or ""))])
def any_store(request, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend: a GeoPackage file, and a fresh PostGIS schema (dropped after)."""
    if request.param == "gpkg":
        yield GeoPackageStore(tmp_path / "store.gpkg")
        return
    from sanigrid.layers.postgis import PostGISStore

    schema = f"test_{uuid.uuid4().hex[:10]}"
    try:
        yield PostGISStore(PG_URL, schema=schema)
    finally:
        drop_pg_schema(schema)


def reopen(store: Store, **kwargs) -> Store:
    """Another store object on the same file or schema (its own connections), e.g. for another thread."""
    if isinstance(store, GeoPackageStore):
        return GeoPackageStore(store.path, **kwargs)
    from sanigrid.layers.postgis import PostGISStore

    assert isinstance(store, PostGISStore)
    return PostGISStore(store.url, schema=store.schema, **kwargs)


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every table of the store, row by row (geometry as bytes), for "exactly as it was" checks."""
    def plain(row) -> tuple:
        return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)

    if isinstance(store, GeoPackageStore):
        import sqlite3

        if not store.path.exists():
            return {}
        con = sqlite3.connect(store.path)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")]
            return {n: [plain(r) for r in con.execute(f'SELECT * FROM "{n}" ORDER BY 1')] for n in names}
        finally:
            con.close()
    import psycopg

    out: dict[str, list[tuple]] = {}
    with psycopg.connect(PG_URL) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (store.schema,))]  # type: ignore[attr-defined]
        for n in names:
            q = psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1").format(psycopg.sql.Identifier(store.schema, n))  # type: ignore[attr-defined]
            out[n] = [plain(r) for r in con.execute(q)]
    return out
