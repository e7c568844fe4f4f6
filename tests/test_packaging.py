"""The distribution installs one top-level name, `sanigrid`, and nothing of ours under the folders' own names."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (found,) = out.glob("sanigrid-*.whl")
    return found


def test_wheel_installs_only_sanigrid(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert z.read(top_level).decode().split() == ["sanigrid"]
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"sanigrid"}
    for package in ("layers", "geo", "web", "web/routes", "scripts"):
        assert f"sanigrid/{package}/__init__.py" in names
    assert "sanigrid/layers/data/guixi-center.osm" in names        # package data travels with it
    assert "sanigrid/web/static/sanigrid.js" in names


@pytest.mark.parametrize("code, ok", [
    ("import sanigrid.geo, sanigrid.layers, sanigrid.web.app, sanigrid.scripts.cli", True),
    ("import web", False), ("import layers", False), ("import geo", False), ("import scripts", False),
])
def test_import_from_any_folder(tmp_path: Path, code: str, ok: bool) -> None:
    # a user's working folder with folders named like ours must not shadow the installed package
    for name in ("web", "scripts"):
        (tmp_path / name).mkdir()
    run = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert (run.returncode == 0) is ok, run.stderr


def test_no_module_loaded_under_a_folder_name() -> None:
    # everything of ours in this test process came in as sanigrid.*: a missed rename would show up here
    import sanigrid.scripts.cli  # (imports every command module and, through them, the rest)
    import sanigrid.web.app  # noqa: F401
    stray = sorted(m for m in sys.modules if m.split(".", 1)[0] in {"layers", "geo", "web", "scripts"})
    assert stray == []
