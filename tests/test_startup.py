"""Start-up: the command line loads its heavy libraries only in the command that runs them."""

from __future__ import annotations

import json
import subprocess
import sys

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
