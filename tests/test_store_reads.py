"""A server's GeoPackage store keeps a reading connection per thread: it sees every commit, from this
process or another, and a file replaced under the same path. A command of the command line keeps its
connections for the command (kept_connections) and closes them at its end. Elsewhere each read has its own."""

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


def test_kept_connections_share_one_reader_for_a_command_and_close_it_at_its_end(project, toilets_wgs84):
    """What `sanigrid <command>` (scripts._app.command_scope) and `analyse` do: inside the block the reads go
    through one kept connection; after it no connection is left, so a copy of the .gpkg alone has every
    commit, as when each read opened and closed its own."""
    import shutil
    import sqlite3

    from sanigrid.layers.store import _WRITERS

    store = project.store
    with store.kept_connections() as kept:
        assert kept is store and store.keep_writer
        store.write("toilets", toilets_wgs84)
        store.read("toilets")
        first = _reader(store.path)
        assert len(store.read("toilets")) == 5 and _reader(store.path) is first
        store.append("toilets", toilets_wgs84)
        assert len(store.read("toilets")) == 10  # the kept reader sees the kept writer's commit
    assert not store.keep_writer
    assert not any(path == str(store.path.resolve()) for _, path in _WRITERS)
    wal = store.path.with_name(store.path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    copy = store.path.with_name("copy.gpkg")
    shutil.copyfile(store.path, copy)  # the file alone, not its -wal
    assert sqlite3.connect(copy).execute('SELECT COUNT(*) FROM "toilets"').fetchone()[0] == 10
    # a server's store (keep_writer set) is left as it is
    store.keep_writer = True
    with store.kept_connections():
        store.read("toilets")
    assert store.keep_writer and _reader(store.path) is not None


def test_a_cli_command_keeps_its_connections_and_leaves_none(project, toilets_wgs84, monkeypatch):
    """A command run by main() (inside command_scope): the store `load` opens keeps its connections for the
    command and releases them when it ends."""
    from sanigrid.scripts import _app

    project.store.write("toilets", toilets_wgs84)
    seen = []
    with _app.command_scope():
        p = _app.load(project.root)
        seen.append(p.store.keep_writer)
        p.store.read("toilets")
    assert seen == [True] and not p.store.keep_writer
    wal = p.store.path.with_name(p.store.path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert not _app.load(project.root).store.keep_writer  # outside a command: each read its own connection
