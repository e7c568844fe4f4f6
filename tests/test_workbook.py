"""The one workbook writer: text as text, control characters cleaned, long tables split, files replaced whole,
and analyses whose report fails leave the store as it was."""

from __future__ import annotations

import io

import openpyxl
import pandas as pd
import pytest

from sanigrid.layers import workbook
from sanigrid.layers.text import clean_text, clean_text_columns
from sanigrid.layers.workbook import EXCEL_MAX_ROWS, StagedWorkbook, safe_csv_frame, write_xlsx

RISKY = ["=HYPERLINK(\"http://x.invalid\",\"点我\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1"]


def _book(buf: io.BytesIO) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(buf.getvalue()))


def test_control_characters_are_cleaned_not_fatal():
    """openpyxl refuses BEL/ESC/NUL (IllegalCharacterError); the writer removes them, keeps tab and newline."""
    frame = pd.DataFrame({"描述\x07": ["垃圾\x07满溢", "\x1b[31m占道", "路灯\x00不亮", "一行\n两行\t制表"]})
    buf = io.BytesIO()
    write_xlsx({"问题\x1b": frame}, buf)
    wb = _book(buf)
    assert wb.sheetnames == ["问题"]
    rows = list(wb["问题"].iter_rows(values_only=True))
    assert rows == [("描述",), ("垃圾满溢",), ("[31m占道",), ("路灯不亮",), ("一行\n两行\t制表",)]


def test_text_is_never_a_formula_and_numbers_stay_numbers():
    frame = pd.DataFrame({"描述": RISKY, "数": [-1, -2.5, 0, 3, -4, 5]})
    buf = io.BytesIO()
    write_xlsx({"t": frame}, buf)
    ws = _book(buf)["t"]
    for r, text in enumerate(RISKY, start=2):
        cell = ws.cell(row=r, column=1)
        # a string, as typed (XML reads a raw CR back as LF: the text is kept, the cell is still no formula)
        assert cell.data_type == "s" and cell.value == text.replace("\r", "\n")
        assert cell.quotePrefix                                   # editing it does not make it a formula
        num = ws.cell(row=r, column=2)
        assert num.data_type == "n" and num.value == frame["数"].iloc[r - 2]
    assert ws.cell(row=1, column=1).data_type == "s"


def test_long_tables_continue_on_numbered_sheets():
    assert EXCEL_MAX_ROWS == 1_048_576
    frame = pd.DataFrame({"n": range(25)})
    buf = io.BytesIO()
    write_xlsx({"问题": frame, "说明": pd.DataFrame({"a": [1]})}, buf, max_rows=10)  # 9 data rows per sheet
    wb = _book(buf)
    assert wb.sheetnames == ["问题", "问题 (2)", "问题 (3)", "说明"]
    got = []
    for name in wb.sheetnames[:3]:
        rows = list(wb[name].iter_rows(values_only=True))
        assert rows[0] == ("n",) and len(rows) <= 10
        got += [r[0] for r in rows[1:]]
    assert got == list(range(25))


class _Boom:
    def __str__(self) -> str:
        raise RuntimeError("cannot show this value")


def test_a_failed_write_leaves_the_good_file(tmp_path):
    path = tmp_path / "out" / "责任清单.xlsx"
    write_xlsx({"t": pd.DataFrame({"a": [1]})}, path)
    good = path.read_bytes()
    with pytest.raises(RuntimeError):
        write_xlsx({"t": pd.DataFrame({"a": [_Boom()]})}, path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["责任清单.xlsx"]  # no temporary file left


def test_staged_workbook_publishes_only_after_the_block(tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx({"t": pd.DataFrame({"a": [1]})}, path)
    good = path.read_bytes()
    with pytest.raises(KeyError), StagedWorkbook({"t": pd.DataFrame({"a": [2]})}, path):
        raise KeyError("the store write failed")
    assert path.read_bytes() == good
    with StagedWorkbook({"t": pd.DataFrame({"a": [2]})}, path):
        assert path.read_bytes() == good
    assert [r for r in openpyxl.load_workbook(path)["t"].iter_rows(values_only=True)] == [("a",), (2,)]


def test_clean_text_columns_counts_and_keeps_other_columns():
    frame = pd.DataFrame({"d": ["a\x07b", "ok", None, 5], "n": [1, 2, 3, 4]}, index=[10, 10, 11, 12])
    out, changed = clean_text_columns(frame)
    assert out["d"].tolist()[:2] == ["ab", "ok"] and out["d"].iloc[3] == 5 and out["d"].iloc[2] is None
    assert changed == {"d": 1} and out["n"].tolist() == [1, 2, 3, 4]
    assert frame["d"].iloc[0] == "a\x07b"  # the caller's frame is untouched
    assert clean_text("\ud800x\x00y\x7f") == "xy"


def test_csv_cells_that_look_like_formulas_are_quoted():
    out = safe_csv_frame(pd.DataFrame({"d": RISKY + ["正常", "a\x1bb"], "n": [-1] * 8}))
    assert out["d"].tolist() == ["'" + t for t in RISKY] + ["正常", "ab"]
    assert out["n"].tolist() == [-1] * 8


def test_every_face_uses_the_one_writer():
    """No module writes a workbook but layers/workbook.py (grep of the installed package)."""
    import re
    from pathlib import Path

    pattern = re.compile(r"to_excel\(|ExcelWriter|(?<!Staged)Workbook\(")
    root = Path(workbook.__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for folder in ("layers", "geo", "web", "scripts")
                 for p in (root / folder).rglob("*.py")
                 if p.name != "workbook.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_an_analysis_whose_report_fails_leaves_the_store(project, monkeypatch):
    """`sanigrid rank`: the report is written before the store commits, so a failing report changes nothing."""
    from test_problems_cli import AS_OF, _grids, _problems

    from sanigrid.scripts.problems import run_rank

    with project.store.transaction() as tx:
        tx.write("grids", _grids())
        tx.write("problems", _problems(200), params={"as_of": AS_OF.isoformat()})
    res, path = run_rank(project, as_of=AS_OF)
    before = project.store.read("scorecard")
    good = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(workbook, "_write", boom)
    with pytest.raises(OSError):
        run_rank(project, as_of=AS_OF, period="week")
    assert path.read_bytes() == good
    pd.testing.assert_frame_equal(pd.DataFrame(project.store.read("scorecard")), pd.DataFrame(before))
    assert project.store.meta("scorecard")["params"]["period"] != "week"


def test_string_column_codes_as_the_object_path() -> None:
    """A column of the string dtype is factorized as stored; its cells and shared strings are those of
    the same values as Python objects ("" and missing values empty cells, order of appearance kept)."""
    import numpy as np
    import pandas as pd

    from sanigrid.layers import workbook as w

    values = ["垃圾", "", None, "=1+1", "垃圾", "占道经营", "", "乱贴\x07乱画"]
    fast = w._Column("类别", pd.Series(values, dtype="str"), w._Strings())
    slow = w._Column("类别", pd.Series(values, dtype=object), w._Strings())
    assert fast.kind == slow.kind == "text"
    assert np.array_equal(fast.codes, slow.codes) and list(fast.codes[:4]) == [0, -1, -1, 1]
    assert list(fast.strings.index) == list(slow.strings.index) == ["垃圾", "=1+1", "占道经营", "乱贴乱画"]
    assert fast.quoted.tolist() == slow.quoted.tolist() == [False, True, False, False]
    assert fast.sample == slow.sample and fast.strings.count == slow.strings.count == 5
    rows = np.arange(2, 2 + len(values)).astype(str)
    assert fast.cells("B", 0, len(values), rows).tolist() == slow.cells("B", 0, len(values), rows).tolist()
    empty = w._Column("类别", pd.Series(["", None], dtype="str"), w._Strings())
    assert empty.kind == "empty"


@pytest.mark.parametrize("values", [
    ["甲", "乙", "甲", None, "", "=1+1", "丙\x07", "乙", ""],
    ["", "", None],
    [None, None],
    [],
    ["a"] * 64,
    [f"v{i % 7}" if i % 5 else "" for i in range(64)],
])
def test_short_text_columns_coded_as_the_factorize_path_codes_them(values, monkeypatch):
    """A short column of the string dtype, coded value by value, gives what Arrow's factorize path gives:
    codes, shared-string ids and count, formula quoting and the width sample."""
    import sanigrid.layers.workbook as wb

    series = pd.Series(values, dtype="str")

    def column(short: int) -> tuple[object, ...]:
        monkeypatch.setattr(wb, "_SHORT_COLUMN", short)
        strings = wb._Strings()
        col = wb._Column("名称", series, strings)
        got = (col.kind, col.sample, strings.count, list(strings.index))
        if col.kind == "text":
            got += (col.codes.tolist(), col.ids.tolist(), col.quoted.tolist(), col.codes.dtype)
        return got

    assert column(64) == column(-1)
