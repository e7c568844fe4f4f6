"""A synthetic province: N county projects, each a varied copy of the demo county's structure.

:func:`province_layers` builds the demo county's layers once (:func:`~.county.make_demo_layers`)
and gives each county its own piece of it: a window of the town (its own streets, alleys, grids,
facilities and reports, so every county has a different street network), a share of the reports
kept, some alleys hardened or not and some facilities closed, then shifted to its own place on a
lattice of ``spacing_m`` from the demo town's corner (so that no two counties overlap and all stay in the
demo's CRS zone). Each county gets its own 6-digit code
(``36PPCC``: prefecture ``PP``, county ``CC``), and its grid codes start with it.
:func:`make_province` writes each county as its own project folder (``<root>/<code>/``) through
the demo's writer (:func:`~.command.write_demo_data`). Deterministic from the seed; EPSG:4548
(metres) like the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from sanigrid.layers.project import Project
from sanigrid.scripts.demo.county import DemoData, make_demo_layers
from sanigrid.scripts.demo.facts import COUNTY_CODE
from sanigrid.scripts.demo.town import demo_settings

CODE_COLUMNS = ("code", "grid_code")  # columns that hold unit-grid codes (which start with the county code)
PER_PREFECTURE = 20


@dataclass(frozen=True)
class County:
    """One generated county: its code, name and layers."""

    code: str
    name: str
    data: DemoData


def county_code(i: int) -> str:
    """The 6-digit code of the ``i``-th county (0-based): ``36`` + prefecture + county."""
    return f"36{i // PER_PREFECTURE + 1:02d}{i % PER_PREFECTURE + 1:02d}"


def province_layers(n_counties: int, *, seed: int = 2026, n_problems: int = 3000, window_m: float = 2400.0,
                    spacing_m: float = 5000.0) -> list[County]:
    """The layers of ``n_counties`` counties (see the module docstring).

    Parameters
    ----------
    n_counties
        How many counties.
    seed
        Seed: the demo county's and each county's variations.
    n_problems
        Reports of the demo county the windows are cut from (each county keeps those in its window).
    window_m
        Side of a county's window of the town, metres (varied by ±25 % per county and axis).
    spacing_m
        Distance between counties' places on the lattice, metres (≥ 1.25 · ``window_m``).
    """
    if spacing_m < 1.25 * window_m:
        raise ValueError(f"spacing_m {spacing_m:g} is less than 1.25 × window_m {window_m:g}: counties would overlap")
    base = make_demo_layers(demo_settings(), seed=seed, n_problems=n_problems)
    grids = base.layers["grids"]
    reps = grids.geometry.representative_point()
    x0, y0, x1, y1 = grids.total_bounds
    side = int(np.ceil(np.sqrt(n_counties)))
    out = []
    for i in range(n_counties):
        rng = np.random.default_rng([seed, i])
        w, h = window_m * rng.uniform(0.75, 1.25, 2)
        wx = rng.uniform(x0, max(x0, x1 - w))
        wy = rng.uniform(y0, max(y0, y1 - h))
        box = shapely.box(wx, wy, wx + w, wy + h)
        keep = shapely.within(reps.to_numpy(), box)
        if keep.sum() < 3:  # a window between the grids: take the grids nearest its centre
            d = reps.distance(box.centroid).to_numpy()
            keep = np.isin(np.arange(len(grids)), np.argsort(d)[:3])
        code = county_code(i)
        dx = x0 + (i % side) * spacing_m - wx  # the lattice starts at the demo town (inside its CRS's zone)
        dy = y0 - (i // side) * spacing_m - wy
        out.append(County(code, f"合成{code}县", _county(base, keep, code=code, dx=dx, dy=dy, rng=rng)))
    return out


def _county(base: DemoData, keep_grids: np.ndarray, *, code: str, dx: float, dy: float,
            rng: np.random.Generator) -> DemoData:
    """The demo's layers cut to the kept grids, varied, shifted by ``(dx, dy)`` and recoded to ``code``."""
    grids = base.layers["grids"]
    kept_codes = set(grids.loc[keep_grids, "code"].astype(str))
    area = shapely.union_all(grids.geometry.to_numpy()[keep_grids])
    layers: dict[str, gpd.GeoDataFrame] = {}
    for kind, frame in base.layers.items():
        geom = frame.geometry.to_numpy()
        if kind == "grids":
            sel = keep_grids
        elif "grid_code" in frame and kind != "alleys":
            sel = frame["grid_code"].astype("object").isin(kept_codes).to_numpy()
        elif shapely.get_type_id(geom[:1]).tolist() in ([1], [5]):  # lines: those that reach the county
            sel = shapely.intersects(geom, area)
        else:
            sel = shapely.intersects(shapely.point_on_surface(geom), area)
        f = frame.loc[sel].copy()
        if kind == "problems":  # each county keeps its own share of the reports
            f = f.loc[rng.random(len(f)) < rng.uniform(0.55, 1.0)]
        elif kind == "alleys" and "hardened" in f:  # and hardens its own alleys
            f["hardened"] = f["hardened"].astype(bool) | (rng.random(len(f)) < rng.uniform(0.0, 0.5))
        elif kind in ("toilets", "collection_points") and len(f) > 4:  # and has closed a few facilities
            f = f.loc[rng.random(len(f)) >= rng.uniform(0.0, 0.3)]
        f = f.set_geometry(shapely.transform(f.geometry.to_numpy(), lambda xy: xy + [dx, dy]), crs=frame.crs)
        for col in CODE_COLUMNS:
            if col in f:
                f[col] = f[col].astype("object").map(
                    lambda v: code + str(v)[len(COUNTY_CODE):] if isinstance(v, str) else v)
        layers[kind] = f.reset_index(drop=True)
    layers["boundary"] = gpd.GeoDataFrame(
        {"name": [f"合成{code}县"]}, geometry=[shapely.transform(area, lambda xy: xy + [dx, dy])],
        crs=grids.crs)
    ids = set(layers["problems"]["problem_id"])
    tables = {k: (t[t["problem_id"].isin(ids)].reset_index(drop=True) if "problem_id" in t else t)
              for k, t in base.tables.items()}
    params = {k: v for k, v in base.params.items() if k != "gaps"}
    params["window_shift_m"] = [round(dx, 1), round(dy, 1)]
    return DemoData(layers=layers, tables=tables, params=params)


def make_province(root: str | Path, n_counties: int, *, seed: int = 2026, n_problems: int = 3000,
                  window_m: float = 2400.0, spacing_m: float = 5000.0) -> list[Project]:
    """Write ``n_counties`` generated counties as project folders ``<root>/<code>/`` and return them."""
    from sanigrid.layers.project import init_project
    from sanigrid.scripts.demo.command import write_demo_data

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    projects = []
    for c in province_layers(n_counties, seed=seed, n_problems=n_problems, window_m=window_m, spacing_m=spacing_m):
        s = demo_settings()
        s.project.name = c.name
        s.project.county_code = c.code
        s.project.population = int(np.random.default_rng([seed, int(c.code)]).integers(150, 900)) * 1000
        project = init_project(root / c.code, settings=s, overwrite=True)
        write_demo_data(project, c.data, seed=seed)
        projects.append(project)
    return projects
