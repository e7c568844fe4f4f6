"""Start-up: the command line loads its heavy libraries only in the command that runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("geopandas", "pandas", "scipy", "matplotlib", "shapely", "pyogrio", "pyproj", "pydantic", "sklearn",
         "folium", "fastapi")


def _loaded_after(code: str) -> list[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} | "
                          "{m for m in sys.modules if m.startswith('sanigrid.')})))"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_gis_or_science_library():
    loaded = _loaded_after("import sanigrid.scripts.cli")
    assert [m for m in HEAVY if m in loaded] == []
    # every command module is imported (so `--help` lists them all), none of the analyses
    assert {"sanigrid.scripts.coverage", "sanigrid.scripts.problems", "sanigrid.scripts.sampling",
            "sanigrid.scripts.demo", "sanigrid.scripts.web"} <= set(loaded)
    assert [m for m in loaded if m.startswith("sanigrid.geo.") and m != "sanigrid.geo._errors"] == []


def test_help_lists_every_command_without_loading_them():
    names = ["init", "layers", "import", "coverage", "site", "problems", "hotspots", "rank", "sample",
             "mock-check", "analyse", "demo", "serve", "user"]
    code = ("from typer.testing import CliRunner\nfrom sanigrid.scripts.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'], terminal_width=200)\n"
            "listed = {line.split()[1] for line in r.output.splitlines() if line.startswith('│ ')}\n"
            f"assert r.exit_code == 0 and set({names!r}) <= listed, r.output")
    loaded = _loaded_after(code)
    assert [m for m in HEAVY if m in loaded] == []


def test_layers_command_imports_only_the_store(tmp_path):
    code = (f"from sanigrid.scripts.cli import app\n"
            f"app(['init', '-p', {str(tmp_path)!r}], standalone_mode=False)\n"
            f"app(['layers', '-p', {str(tmp_path)!r}], standalone_mode=False)")
    loaded = _loaded_after(code)
    assert "geopandas" not in loaded  # the layer list is read from the GeoPackage's own tables (sqlite3)
    assert [m for m in ("scipy", "matplotlib", "sklearn", "folium", "fastapi") if m in loaded] == []
    assert [m for m in loaded if m.startswith("sanigrid.geo.") and m != "sanigrid.geo._errors"] == []


def test_layers_alone_reads_the_store_without_geopandas(tmp_path):
    from sanigrid.scripts.cli import app

    app(["init", "-p", str(tmp_path)], standalone_mode=False)
    loaded = _loaded_after(f"from sanigrid.scripts.cli import app\n"
                           f"app(['layers', '-p', {str(tmp_path)!r}], standalone_mode=False)")
    assert [m for m in ("geopandas", "pandas", "shapely", "pyogrio", "scipy", "matplotlib") if m in loaded] == []


def _run_main(argv: list[str]) -> str:
    return (f"import sys\nfrom sanigrid.scripts.cli import main\nsys.argv = {['sanigrid', *argv]!r}\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n")


def test_sanigrid_layers_loads_no_pydantic_pyproj_or_numpy(tmp_path):
    """The command as typed (`sanigrid layers -p DIR`): the GeoPackage's tables read with sqlite3, the settings
    file with tomllib; Typer's pydantic parameter coercion is skipped for this one plain form."""
    from sanigrid.scripts.cli import app

    app(["init", "-p", str(tmp_path), "--name", "某县"], standalone_mode=False)
    for argv in (["layers", "-p", str(tmp_path)], ["layers", f"--project={tmp_path}"]):
        loaded = _loaded_after(_run_main(argv))
        assert [m for m in ("pydantic", "pyproj", "numpy", "geopandas", "pandas", "shapely", "pyogrio", "rich.markdown")
                if m in loaded] == [], argv
        assert "sanigrid.layers.store" not in loaded and "sanigrid.layers.settings" not in loaded


def _stdout(code: str) -> str:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def test_the_direct_layer_listing_prints_what_the_typer_command_prints(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    from sanigrid.layers.project import open_project
    from sanigrid.scripts.cli import app

    app(["init", "-p", str(tmp_path), "--name", "某县", "--crs", "EPSG:4548"], standalone_mode=False)
    store = open_project(tmp_path).store
    store.write("toilets", gpd.GeoDataFrame({"name": ["甲", "乙", "丙"]},
                                            geometry=[Point(117.2, 28.3), Point(117.21, 28.3), Point(117.2, 28.31)],
                                            crs=4326))
    direct = _stdout(_run_main(["layers", "-p", str(tmp_path)]))
    via_typer = _stdout(f"from sanigrid.scripts.cli import app\n"
                        f"app(['layers', '-p', {str(tmp_path)!r}], standalone_mode=False)")
    assert direct == via_typer
    assert "某县" in direct
    row = next(line for line in direct.splitlines() if "toilets" in line)
    info = {i.kind: i for i in store.info()}
    assert info["toilets"].count == 3 and info["toilets"].crs == "EPSG:4548"
    assert row.split("│")[2].strip() == "3" and row.split("│")[3].strip() == "EPSG:4548"


def test_peek_project_reads_the_name_and_leaves_postgis_projects_to_the_full_settings(tmp_path):
    from sanigrid.layers._errors import SettingsError
    from sanigrid.layers.gpkginfo import peek_project

    assert peek_project(tmp_path) is None  # no settings file: the full path says what is wrong
    (tmp_path / "sanigrid.toml").write_text('[project]\nname = "贵溪市"\n', encoding="utf-8")
    assert peek_project(tmp_path) == ("贵溪市", tmp_path / "sanigrid.gpkg")
    (tmp_path / "sanigrid.toml").write_text('[project]\nname = "贵溪市"\nstore_url = "postgresql://h/db"\n',
                                            encoding="utf-8")
    assert peek_project(tmp_path) is None
    (tmp_path / "sanigrid.toml").write_text("[project\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        peek_project(tmp_path)
