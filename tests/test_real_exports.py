"""Real and realistic complaint exports: NYC 311 (real), seconds-early closes, the console naming piles."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from sanigrid.layers.importers import read_file
from sanigrid.layers.settings import ProblemCategory, Settings
from sanigrid.layers.validation import validate

NYC = Path(__file__).parent / "data" / "nyc-311-sample.csv"
NYC_MAP = {"Unique Key": "problem_id", "Created Date": "reported_at", "Closed Date": "closed_at",
           "Complaint Type": "category", "Status": "description", "Latitude": "纬度", "Longitude": "经度"}
US = "%m/%d/%Y %I:%M:%S %p"


def _settings(categories) -> Settings:
    s = Settings()
    s.problems.categories = [ProblemCategory(name=c, deadline=3) for c in sorted(set(categories))]
    return s


def test_nyc_311_sample():
    plain = pd.read_csv(NYC, dtype=str, keep_default_na=False)
    rep = validate("problems", read_file(NYC, kind="problems", mapping=NYC_MAP),
                   settings=_settings(plain["Complaint Type"]))
    # US dates: both columns read as month/day/year, every cell
    for col, filled in (("Created Date", 1000), ("Closed Date", 986)):
        note = next(n for n in rep.notes if f"column {col}" in n)
        assert f"US month/day/year (09/03/2026 02:05:07 PM) {filled:,}" in note
    created = pd.to_datetime(plain["Created Date"], format=US)
    closed = pd.to_datetime(plain["Closed Date"].replace("", None), format=US)
    csv_row = plain.index.to_numpy() + 2  # header is line 1
    # missing coordinates: rejected, each by its own row
    no_xy = set(csv_row[(plain["Latitude"] == "") | (plain["Longitude"] == "")].tolist())
    assert len(no_xy) == 107
    by_code: dict[str, set[int]] = {}
    for i in rep.errors:
        by_code.setdefault(i.code, set()).add(i.row)
    assert by_code["empty_geometry"] == no_xy
    # closed before reported: found with the gap, each by row
    early = set(csv_row[(closed < created).to_numpy()].tolist()) - no_xy
    assert by_code["date_order"] == early and len(early) == 3  # 10 closed early, 7 of them without coordinates
    msg = next(i.message for i in rep.errors if i.code == "date_order")
    assert "nyc-311-sample.csv, row " in msg and "before it was reported" in msg
    assert set(by_code) == {"empty_geometry", "date_order"}
    # the accepted rows carry the parsed US times
    acc = rep.accepted.set_index("problem_id")
    key = int(plain.loc[~plain["Latitude"].eq(""), "Unique Key"].iloc[0])
    row = plain.set_index("Unique Key").loc[str(key)]
    assert acc.loc[key, "reported_at"] == pd.Timestamp(pd.to_datetime(row["Created Date"], format=US))
    assert len(rep.accepted) == 1000 - len(no_xy | early)


def _export(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Unique Key", "Created Date", "Closed Date", "Complaint Type", "Latitude", "Longitude"])
        w.writerows(rows)
    return path


def test_closed_seconds_before_reported_shows_the_seconds_and_obeys_the_tolerance(tmp_path):
    rows = [["1", "09/03/2026 02:05:07 PM", "09/03/2026 02:05:00 PM", "Noise", "28.30", "117.22"],   # 7 s early
            ["2", "09/03/2026 02:05:07 PM", "09/03/2026 01:05:07 PM", "Noise", "28.31", "117.22"],   # 1 h early
            ["3", "09/03/2026 02:05:07 PM", "09/03/2026 02:05:07 PM", "Noise", "28.32", "117.22"]]   # same second
    f = _export(tmp_path / "311.csv", rows)
    m = {k: v for k, v in NYC_MAP.items() if k != "Status"}
    s = _settings(["Noise"])
    rep = validate("problems", read_file(f, kind="problems", mapping=m), settings=s)
    errs = {i.row: i.message for i in rep.errors}
    assert set(errs) == {2, 3}
    assert "closed 2026-09-03 14:05:00, 7 s before it was reported (2026-09-03 14:05:07)" in errs[2]
    assert "date_order_tolerance_s = 7" in errs[2]
    assert "3,600 s = 1.0 h before" in errs[3]
    s.validation.date_order_tolerance_s = 10
    rep = validate("problems", read_file(f, kind="problems", mapping=m), settings=s)
    assert {i.row for i in rep.errors} == {3}
    warn = [i for i in rep.warnings if i.code == "date_order"]
    assert [i.row for i in warn] == [2] and "within validation.date_order_tolerance_s = 10 s" in warn[0].message
    assert sorted(rep.accepted["problem_id"].tolist()) == [1, 3]


def test_the_notes_name_the_biggest_piles_with_their_coordinates(tmp_path):
    rows = [[str(i), "09/03/2026 02:05:07 PM", "", "Noise", "28.3021", "117.2213"] for i in range(1, 31)]
    rows += [[str(i), "09/03/2026 02:05:07 PM", "", "Noise", "28.2900", "117.2000"] for i in range(31, 53)]
    rows += [[str(i), "09/03/2026 02:05:07 PM", "", "Noise", f"{28.25 + i / 1000:.4f}", "117.21"]
             for i in range(53, 60)]
    f = _export(tmp_path / "pile.csv", rows)
    m = {k: v for k, v in NYC_MAP.items() if k != "Status"}
    rep = validate("problems", read_file(f, kind="problems", mapping=m), settings=_settings(["Noise"]))
    note = next(n for n in rep.notes if "pile(s)" in n)
    assert "2 pile(s) of 20+ records" in note and "52 records in all" in note
    assert note.index("30 at 117.221300, 28.302100 (lon, lat)") < note.index("22 at 117.200000, 28.290000")
    piles = [i for i in rep.warnings if i.code == "pile"]
    assert len(piles) == 52 and len(rep.accepted) == 59
    assert "one of 30 records within 1 m of 117.221300, 28.302100" in piles[0].message


@pytest.mark.parametrize("zone, hour", [("Asia/Shanghai", 14), ("America/New_York", 2)])
def test_offsets_in_a_file_follow_the_project_time_zone(tmp_path, zone, hour):
    rows = [["1", "2026-09-03T06:05:07Z", "", "Noise", "28.30", "117.22"]]
    f = _export(tmp_path / "tz.csv", rows)
    s = _settings(["Noise"])
    s.project.time_zone = zone
    m = {k: v for k, v in NYC_MAP.items() if k != "Status"}
    rep = validate("problems", read_file(f, kind="problems", mapping=m), settings=s)
    assert rep.accepted["reported_at"].iloc[0] == pd.Timestamp(f"2026-09-03 {hour:02d}:05:07")
    assert any("with a UTC offset converted" in n for n in rep.notes)
