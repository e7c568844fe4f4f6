"""An import running while the web desk takes reports: keys are numbered inside the write
transaction, so every problem id is unique and nothing is lost (issue 11 §1), on both backends."""

from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from conftest import TOWN_LAT, TOWN_LON

from sanigrid.layers.importers import import_file
from sanigrid.layers.project import Project, init_project
from sanigrid.web.auth import User
from sanigrid.web.intake import intake


def test_import_and_concurrent_intake_give_unique_ids(tmp_path, any_store):
    base = init_project(tmp_path / "county")
    project = Project(base.root, base.settings, any_store)
    cells = [shapely.box(TOWN_LON - 0.03 + 0.02 * i, TOWN_LAT - 0.02, TOWN_LON - 0.01 + 0.02 * i, TOWN_LAT + 0.02)
             for i in range(3)]
    any_store.write("grids", gpd.GeoDataFrame({"code": ["G1", "G2", "G3"], "name": ["一", "二", "三"]},
                                              geometry=cells, crs=4326))
    category = project.settings.problem_categories[0]
    rng = np.random.default_rng(3)
    n_file, n_web, n_before = 400, 24, 5
    office = User("office", "office")
    for i in range(n_before):
        intake(project, category=category, lon=TOWN_LON + 0.001 * i, lat=TOWN_LAT, user=office)
    csv = tmp_path / "p.csv"
    pd.DataFrame({"类别": [category] * n_file, "上报时间": ["2026-03-01 08:00"] * n_file,
                  "描述": [f"文件{i}" for i in range(n_file)],
                  "lng": TOWN_LON + rng.uniform(-0.02, 0.02, n_file),
                  "lat": TOWN_LAT + rng.uniform(-0.015, 0.015, n_file)}).to_csv(csv, index=False)
    errors: list[BaseException] = []
    web_ids: list[int] = []
    started = threading.Event()

    def web(i: int) -> None:
        started.wait()
        try:
            row = intake(project, category=category, lon=TOWN_LON - 0.015 + 0.001 * i, lat=TOWN_LAT + 0.01,
                         description=f"网页{i}", user=office)
            web_ids.append(row["problem_id"])
        except BaseException as e:
            errors.append(e)

    def file() -> None:
        started.set()
        try:
            rep = import_file(project, "problems", csv)
            assert rep.imported == n_file, rep.reason
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=file)] + [threading.Thread(target=web, args=(i,)) for i in range(n_web)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    back = any_store.read("problems")
    ids = back["problem_id"].astype(int)
    assert len(back) == n_before + n_file + n_web  # nothing lost
    assert ids.is_unique  # no id given twice
    assert sorted(ids) == list(range(1, len(back) + 1))  # and none skipped
    assert set(web_ids) <= set(ids)
    desc = dict(zip(ids, back["description"], strict=True))
    assert sorted(desc[i] for i in web_ids) == sorted(f"网页{i}" for i in range(n_web))
