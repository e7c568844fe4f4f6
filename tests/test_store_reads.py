"""A server's GeoPackage store keeps a reading connection per thread: it sees every commit, from this
process or another, and a file replaced under the same path. Elsewhere each read has its own."""

from __future__ import annotations

import subprocess
import sys
import threading

from sanigrid.layers.gpkginfo import gpkg_layer_info
from sanigrid.layers.store import GeoPackageStore, _reader


def test_a_kept_reader_sees_commits_of_other_connections_threads_and_processes(project, toilets_wgs84):
    store = project.store
    store.keep_writer = True  # a server's store (create_app sets it)
    store.write("toilets", toilets_wgs84)
    assert len(store.read("toilets")) == 5
    con = _reader(store.path)
    assert _reader(store.path) is con  # kept: the same connection for this thread
    other = GeoPackageStore(store.path)  # another store object: its own writer connection
    other.append("toilets", toilets_wgs84.iloc[:2])
    assert len(store.read("toilets")) == 7 and store.has("toilets")
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(len(store.read("toilets"))))
    t.start()
    t.join()
    assert seen == [7]  # another thread: its own connection, same answer
    code = (f"from sanigrid.layers.store import GeoPackageStore\nimport geopandas as gpd\n"
            f"s = GeoPackageStore({str(store.path)!r})\ns.append('toilets', s.read('toilets').iloc[:3])\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert len(store.read("toilets")) == 10
    assert {i.kind: i.count for i in store.info()}["toilets"] == 10
    assert _reader(store.path) is con


def test_a_file_replaced_under_the_same_path_is_read_anew(project, toilets_wgs84, tmp_path):
    store = project.store
    store.keep_writer = True
    store.write("toilets", toilets_wgs84)
    copy = tmp_path / "copy.gpkg"
    other = GeoPackageStore(copy, crs=store.crs)  # another file: 10 toilets
    other.write("toilets", toilets_wgs84)
    other.append("toilets", toilets_wgs84)
    before = _reader(store.path)
    assert len(store.read("toilets")) == 5
    for suffix in ("-wal", "-shm"):
        (store.path.parent / (store.path.name + suffix)).unlink(missing_ok=True)
    copy.replace(store.path)  # another inode under the store's path
    assert len(store.read("toilets")) == 10
    assert _reader(store.path) is not before
    assert [i.count for i in gpkg_layer_info(store.path) if i.kind == "toilets"] == [10]


def test_outside_a_server_reads_leave_no_connection_open(project, toilets_wgs84):
    import sqlite3

    store = project.store
    store.write("toilets", toilets_wgs84)
    assert len(store.read("toilets")) == 5 and store.info()
    # no connection of this process is left on the file: the last one closed checkpointed the log, so a
    # copy of the .gpkg alone has every commit
    wal = store.path.with_name(store.path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert sqlite3.connect(store.path).execute('SELECT COUNT(*) FROM "toilets"').fetchone()[0] == 5


def test_last_change_moves_with_each_write_of_its_own_layer_only(project, toilets_wgs84):
    """What the web's per-layer caches (search parts, inlined map layers) are keyed on."""
    import time

    from sanigrid.web.mappage import layer_stamp

    store = project.store
    store.write("toilets", toilets_wgs84)
    store.write("markets", toilets_wgs84[["name", "geometry"]])
    before = {i.kind: i.last_change for i in store.info()}
    stamps = {k: layer_stamp(store, k) for k in ("toilets", "markets")}
    assert all(before.values())
    time.sleep(0.01)  # last_change is recorded to the millisecond
    store.update("toilets", "name", {"公厕0": {"seats": 99}})
    after = {i.kind: i.last_change for i in store.info()}
    assert after["toilets"] > before["toilets"] and after["markets"] == before["markets"]
    assert layer_stamp(store, "toilets") != stamps["toilets"] and layer_stamp(store, "markets") == stamps["markets"]
