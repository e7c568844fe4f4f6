"""A small county project for the web tests and the web benchmark (made here, never downloaded).

``web_project(root, n_problems=...)`` uses the demo county (``scripts.demo.build_demo``) when that
module exists, else a synthetic town: a 4 x 4 lattice of 400 m grids around 贵溪 with named
streets, alleys, toilets, a market and ``n_problems`` reports (fixed seed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo.problems import assign
from sanigrid.layers.cases import deadlines
from sanigrid.layers.project import Project, init_project

TOWN_LON, TOWN_LAT = 117.22, 28.30
CRS = "EPSG:4548"
CELL_M = 400.0
N_SIDE = 4
STREET_NAMES = ("解放路", "建设路", "人民路", "胜利路", "沿江路", "雄石路", "交通路", "正街", "新华路", "站前路")


def _origin() -> tuple[float, float]:
    p = gpd.GeoSeries([shapely.Point(TOWN_LON, TOWN_LAT)], crs=4326).to_crs(CRS).iloc[0]
    return p.x - CELL_M * N_SIDE / 2, p.y - CELL_M * N_SIDE / 2


def synthetic_project(root: str | Path, *, n_problems: int = 300, seed: int = 2026) -> Project:
    """Build the synthetic town described in the module docstring."""
    rng = np.random.default_rng(seed)
    project = init_project(root, overwrite=True)
    x0, y0 = _origin()
    cells, codes = [], []
    for j in range(N_SIDE):  # north → south, west → east (as unit-grid codes are numbered)
        for i in range(N_SIDE):
            x, y = x0 + i * CELL_M, y0 + (N_SIDE - 1 - j) * CELL_M
            cells.append(shapely.box(x, y, x + CELL_M, y + CELL_M))
            codes.append(f"36068100100{j + 1}{i + 1:02d}")
    grids = gpd.GeoDataFrame(
        {"code": codes, "name": [f"第{k + 1}网格" for k in range(len(codes))],
         "street_office": "雄石街道", "community": [f"社区{k // 4 + 1}" for k in range(len(codes))],
         "lead_unit": [f"牵头单位{k + 1}" for k in range(len(codes))],
         "head": [f"网格长{k + 1}" for k in range(len(codes))], "households": 300},
        geometry=cells, crs=CRS)
    side = CELL_M * N_SIDE
    lines, names, classes = [], [], []
    for k in range(N_SIDE + 1):
        lines.append(shapely.LineString([(x0, y0 + k * CELL_M), (x0 + side, y0 + k * CELL_M)]))
        lines.append(shapely.LineString([(x0 + k * CELL_M, y0), (x0 + k * CELL_M, y0 + side)]))
        names += [STREET_NAMES[2 * k % len(STREET_NAMES)], STREET_NAMES[(2 * k + 1) % len(STREET_NAMES)]]
        classes += ["主干路" if k == 2 else "次干路" if k in (1, 3) else "支路"] * 2
    streets = gpd.GeoDataFrame({"name": names, "road_class": classes, "busy": [k == 2 for k in range(len(names))]},
                               geometry=lines, crs=CRS)
    alleys = gpd.GeoDataFrame(
        {"name": [f"{i + 1}号巷" for i in range(8)], "hardened": [i % 3 != 0 for i in range(8)],
         "lit": [i % 2 == 0 for i in range(8)], "width_m": 3.0},
        geometry=[shapely.LineString([(x0 + 200 + 400 * (i % 4), y0 + 100 + 400 * (i // 4)),
                                      (x0 + 200 + 400 * (i % 4), y0 + 300 + 400 * (i // 4))]) for i in range(8)],
        crs=CRS)
    toilets = gpd.GeoDataFrame(
        {"name": [f"公厕{i + 1}" for i in range(6)], "toilet_class": ["一类", "二类", "二类", "三类", "旱厕", "二类"],
         "seats": [8, 6, 6, 4, 2, 6], "accessible": [True, True, False, False, False, True]},
        geometry=[shapely.Point(x0 + 150 + 260 * i, y0 + 190 + 230 * i) for i in range(6)], crs=CRS)
    markets = gpd.GeoDataFrame({"name": ["雄石农贸市场"], "stalls": [120], "standardized": [True]},
                               geometry=[shapely.Point(x0 + 820, y0 + 790)], crs=CRS)
    project.store.write("grids", grids, synthetic=True)
    project.store.write("streets", streets, synthetic=True)
    project.store.write("alleys", alleys, synthetic=True)
    project.store.write("toilets", toilets, synthetic=True)
    project.store.write("markets", markets, synthetic=True)
    if n_problems:
        project.store.write("problems", synthetic_problems(project, grids, n_problems, rng), synthetic=True)
    return project


def synthetic_problems(project: Project, grids: gpd.GeoDataFrame, n: int,
                       rng: np.random.Generator) -> gpd.GeoDataFrame:
    """``n`` reports inside the grids' extent, in the last 60 days, in every status."""
    x0, y0, x1, y1 = grids.total_bounds
    xs = rng.uniform(x0 + 1, x1 - 1, n)
    ys = rng.uniform(y0 + 1, y1 - 1, n)
    cats = np.array(project.settings.problem_categories)[rng.integers(0, len(project.settings.problem_categories), n)]
    end = pd.Timestamp("2026-11-20 18:00")
    reported = end - pd.to_timedelta(rng.uniform(0, 60 * 24, n), unit="h")
    status = np.array(["立案", "派遣", "处置", "核查", "返工", "结案"])[
        rng.choice(6, n, p=[0.1, 0.1, 0.1, 0.05, 0.05, 0.6])]
    frame = gpd.GeoDataFrame(
        {"problem_id": np.arange(1, n + 1), "category": cats,
         "description": [f"{c}（样例{i + 1}）" for i, c in enumerate(cats)], "source": "巡查",
         "reported_at": reported.astype("datetime64[ms]"), "status": status},
        geometry=shapely.points(xs, ys), crs=CRS)
    frame["deadline"] = deadlines(frame["category"], frame["reported_at"], settings=project.settings).to_numpy()
    closed = frame["deadline"] + pd.to_timedelta(rng.uniform(-20, 30, n), unit="h")
    frame["closed_at"] = closed.where(frame["status"] == "结案")
    return assign(frame, grids, settings=project.settings)


def web_project(root: str | Path, *, n_problems: int = 300, seed: int = 2026) -> Project:
    """The demo county (``scripts.demo.build_demo``) when ``scripts/demo/`` exists, else the synthetic town."""
    if importlib.util.find_spec("sanigrid.scripts.demo") is not None:
        from sanigrid.scripts.demo import build_demo

        return build_demo(root, seed=seed, n_problems=max(n_problems, 300))
    return synthetic_project(root, n_problems=n_problems, seed=seed)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a thread (``with LiveServer(app) as url: ...``)."""

    def __init__(self, app, *, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = None

    def __enter__(self) -> str:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t0 > 20 or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
