"""Every layer of the demo county, deterministic from a seed: :func:`make_demo_layers`.

Real streets of Guixi (贵溪) from OpenStreetMap (``guixi-center.osm``, © OpenStreetMap
contributors, ODbL 1.0), every other layer synthetic: back alleys (the extract's own and synthetic
lanes), about 50 grids with proper unit-grid codes, toilets, transfer stations, collection points,
markets, residential compounds, sample-point candidates and a few thousand problem reports over six
months with a lifecycle history.

Besides the catalogue fields, ``problems.demo_truth`` says which pattern made each report
(``background``, ``hotspot``, ``pile``, ``rebound``) so analyses can be checked against the truth;
``alleys.source`` says ``OSM`` or ``synthetic``; ``sample_points.subtype`` names the 五小 kind.
Grid codes: county 360681 + 3-digit 街道 + 3-digit 社区 + 2-digit grid; grids are numbered
within their community, and communities within their 街道, by :func:`~.town.grid_order`.

Everything is in the demo CRS, CGCS2000 3-degree Gauss-Kruger zone 39 (EPSG:4548), metres. This
module only makes frames; writing them to a store is :func:`sanigrid.scripts.demo.build_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.layers.settings import Settings
from sanigrid.scripts.demo._geometry import point_of, snap
from sanigrid.scripts.demo.facilities import (
    collection_points,
    markets,
    planned_toilets,
    sample_points,
    toilets,
    transfer_stations,
)
from sanigrid.scripts.demo.facts import AS_OF, ATTRIBUTION, DEFAULT_GEOCODE, NIGHT_MARKET_STREET, OSM_PATH, OSM_SOURCE
from sanigrid.scripts.demo.problems import problems_layer
from sanigrid.scripts.demo.streetscape import streetscape
from sanigrid.scripts.demo.town import (
    alleys_layer,
    bounds_polygon,
    grid_codes,
    grid_rows,
    grids_layer,
    osm_alleys,
    read_town,
    residents,
    synthetic_lanes,
    town_area,
)


@dataclass
class DemoData:
    """The demo's layers (by kind), free tables (by name) and the parameters that made them."""

    layers: dict[str, gpd.GeoDataFrame]
    tables: dict[str, pd.DataFrame]
    params: dict[str, Any] = field(default_factory=dict)


def make_demo_layers(settings: Settings, *, seed: int = 2026, n_problems: int = 5000,
                     osm_path: str | Path = OSM_PATH) -> DemoData:
    """Every layer of the demo county, deterministic from ``seed``.

    Parameters
    ----------
    settings
        Project settings (road classes, problem categories, their deadlines and routing are read
        from them): normally :func:`~.town.demo_settings`.
    seed
        Seed of the random generator; the same seed gives identical frames.
    n_problems
        Number of problem reports (≥ 300) over the six months ending 2026-11-15.
    osm_path
        The OSM extract (default: the built-in Guixi centre).

    Returns
    -------
    DemoData
        Layers by kind in EPSG:4548 (metres) and the ``problem_history`` table.
    """
    rng = np.random.default_rng(seed)
    streets, lines, points, polys = read_town(osm_path, settings)
    town = town_area(lines, polys, bounds_polygon())
    quarters = np.array([point_of(points, "西街社区", (519582, 3130266)),
                         point_of(points, "花园村", (522759, 3130560))])
    lanes, lane_names, streets = synthetic_lanes(streets, town, rng)
    local_streets = streets.loc[streets["road_class"] != "主干路"].geometry.to_numpy()
    grids = grids_layer(town, points, np.concatenate([local_streets, lanes]), rng, k=52)
    # the extract's alleys as the importer accepts them into this county (inside its grids)
    alleys = alleys_layer(osm_alleys(osm_path, grids, settings), lanes, lane_names, quarters, rng)
    net = np.concatenate([streets.geometry.to_numpy(), alleys.geometry.to_numpy()])
    local = np.concatenate([local_streets, alleys.geometry.to_numpy()])
    compounds = residents(net, local, town, streets, rng)
    # households of a grid: its compounds plus scattered housing
    rp = shapely.point_on_surface(compounds.geometry.to_numpy())
    gi = grid_rows(shapely.get_x(rp), shapely.get_y(rp), grids)
    hh = np.bincount(gi[gi >= 0], weights=compounds["households"].to_numpy()[gi >= 0], minlength=len(grids))
    grids["households"] = (hh + rng.integers(80, 400, len(grids))).astype(int)
    mkts = markets(points, streets, rng)
    gaps = np.array([[*(point_of(points, "大岩苏家", (524620, 3131847)) + [-150, -500]), 800.0],
                     [*(point_of(points, "南街社区", (519641, 3129796)) + [-250, 120]), 520.0]])
    main = streets.loc[streets["road_class"].isin(settings.toilet_class.road_classes)].geometry.to_numpy()
    village = snap(point_of(points, "花园村", (522759, 3130560)), local, offset_m=8)[0]
    layers: dict[str, gpd.GeoDataFrame] = {
        "streets": streets, "alleys": alleys, "grids": grids, "markets": mkts,
        "toilets": toilets(net, main, mkts, town, gaps, village, streets, rng),
        "transfer_stations": transfer_stations(points, local, streets, rng),
        "collection_points": collection_points(local, town, gaps, streets, rng), "residents": compounds,
    }
    busy = streets.loc[streets["busy"]].geometry.to_numpy()
    busy = busy[shapely.intersects(busy, town)]
    layers["sample_points"] = sample_points(points, polys, layers, busy, local, town, rng)
    # the toilet projects come after the sample places (a site not built yet is no place to inspect)
    built = layers["toilets"].assign(build_status="建成")
    layers["toilets"] = gpd.GeoDataFrame(pd.concat([built, planned_toilets(gaps, local, streets)], ignore_index=True),
                                         geometry="geometry", crs=streets.crs)
    for kind in ("alleys", "sample_points"):
        layers[kind]["grid_code"] = grid_codes(layers[kind], grids)
    # sample places outside every grid (villages and schools beyond the town) are not candidates
    sp = layers["sample_points"]
    layers["sample_points"] = sp[sp["grid_code"].notna()].reset_index(drop=True)
    mk = mkts.set_index("name").geometry
    anchors = {
        "东门农贸市场": np.array(mk["东门农贸市场"].centroid.coords[0]),
        "花园农贸市场": np.array(mk["花园农贸市场"].centroid.coords[0]),
        "贵溪站": point_of(points, "贵溪", (520557, 3130954)) + [60, -40],
        "花园村": point_of(points, "花园村", (522759, 3130560)),
        DEFAULT_GEOCODE: point_of(points, DEFAULT_GEOCODE, (523549, 3131248)),
    }
    ns = streets.loc[streets["name"] == NIGHT_MARKET_STREET]
    night = ns.geometry.iloc[0] if len(ns) else streets.loc[streets["busy"]].geometry.iloc[0]
    problems, history, pinfo = problems_layer(n_problems, grids, net, anchors, night, settings, rng, streets)
    layers["problems"] = problems
    layers.update(streetscape(points, streets, alleys, town, seed=seed))
    for kind in ("facades", "components"):  # the town's, inside its grids
        f = layers[kind]
        f["grid_code"] = grid_codes(f, grids)
        layers[kind] = f[f["grid_code"].notna()].reset_index(drop=True)
    params = {"seed": seed, "n_problems": n_problems, "osm": OSM_SOURCE, "attribution": ATTRIBUTION,
              "gaps": {"east": gaps[0].round(0).tolist(), "south_west": gaps[1].round(0).tolist()},
              "problems": pinfo, "as_of": AS_OF.isoformat()}
    return DemoData(layers=layers, tables={"problem_history": history}, params=params)
