"""The evidence archive: registry by folder scan, SHA-256, completeness, duplicates, readiness, the workbook."""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely

from sanigrid.geo import archive as check
from sanigrid.geo.sampling import candidates, readiness
from sanigrid.layers import archive as reg
from sanigrid.layers.project import Project
from sanigrid.layers.settings import Settings
from sanigrid.scripts.demo._pdf import text_pdf

AS_OF = datetime(2026, 11, 16)
CRS = "EPSG:4548"
MINUTES = ["{}2026年第三季度创卫工作会议纪要", "时间: 2026年9月28日, 地点: {}会议室",
           "会议研究了背街小巷整治、农贸市场改造和五小场所监管, 明确了责任单位和完成时限, 要求各网格每周巡查一次",
           "参会人员: 社区书记、网格长、物业负责人、辖区单位代表"]


def _write(path: Path, data: bytes, mtime: float | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return data


def _archive(folder: Path) -> dict[str, bytes]:
    """Two 五小 shops, the campaign office and two communities; one licence passed off by both shops."""
    licence = b"licence scan of shop A " * 50
    files = {
        "老王家常菜/卫生许可证_2024-05-06.jpg": licence,
        "老王家常菜/健康证/张三健康证明20250301.pdf": text_pdf(["健康证明", "张三"]),
        "李记小吃/卫生许可证2024年6月1日.jpg": licence,  # the same bytes: 重复雷同
        "李记小吃/健康证明_2026-08-01.jpg": b"health li " * 30,
        "李记小吃/消毒记录_2026-11-02.xlsx": b"disinfection li",
        "李记小吃/病媒_2026-10-01.docx": b"pest li",
        "老王家常菜/2026年秋季食品安全自查报告.docx": b"self check wang",
        "李记小吃/2026年秋季食品安全自查报告(修改).docx": b"self check li, different bytes",
        "县创卫办/2026年第三季度会议纪要.pdf": text_pdf(["县创卫办会议纪要", "研究迎检工作"]),
        "县创卫办/长效机制方案.docx": b"long-term plan",
        "花园社区/花园社区2026年第三季度创卫工作会议纪要.pdf": text_pdf([m.format("花园社区") for m in MINUTES]),
        "雄石社区/雄石社区2026年第三季度创卫工作会议纪要.pdf": text_pdf([m.format("雄石社区") for m in MINUTES]),
        "说明.txt": b"read me",  # no holder folder
        "县创卫办/~$会议纪要.docx": b"office lock file",  # skipped
    }
    for rel, data in files.items():
        _write(folder / rel, data, mtime=datetime(2026, 11, 10).timestamp())
    return files


def _places() -> gpd.GeoDataFrame:
    sp = gpd.GeoDataFrame({"category": ["五小场所"] * 3, "name": ["老王家常菜", "李记小吃", "张记理发"],
                           "address": ["", "", ""]},
                          geometry=[shapely.Point(0, 0), shapely.Point(500, 0), shapely.Point(1000, 0)], crs=CRS)
    return candidates({"sample_points": sp}, grids=None, settings=Settings())


def test_scan_registers_each_file_with_holder_document_date_and_sha256(tmp_path):
    folder = tmp_path / "档案"
    files = _archive(folder)
    s = Settings().archive
    res = reg.scan(folder, None, root=tmp_path, settings=s, now=AS_OF)
    r = res.registry.set_index("path")
    assert len(r) == len(files) - 1  # the Office lock file is not evidence
    assert res.unfiled == ["档案/说明.txt"] and r.loc["档案/说明.txt", "holder"] == ""
    for rel, data in files.items():
        if "~$" not in rel:
            assert r.loc[f"档案/{rel}", "sha256"] == hashlib.sha256(data).hexdigest()
            assert r.loc[f"档案/{rel}", "size_bytes"] == len(data)
    wang = r.loc["档案/老王家常菜/健康证/张三健康证明20250301.pdf"]
    assert (wang["holder"], wang["document"], wang["doc_date"]) == ("老王家常菜", "健康证", date(2025, 3, 1))
    assert wang["text"] == "健康证明张三"  # the PDF's text, read with pypdf
    assert r.loc["档案/李记小吃/卫生许可证2024年6月1日.jpg", "doc_date"] == date(2024, 6, 1)
    assert r.loc["档案/李记小吃/病媒_2026-10-01.docx", "document"] == "病媒生物防制记录"
    assert r.loc["档案/县创卫办/长效机制方案.docx", "doc_date"] == date(2026, 11, 10)  # no date in the name: mtime
    assert r["file_id"].tolist() == sorted(r["file_id"]) and r["file_id"].is_unique

    # a rescan reads only what changed, keeps ids, drops what is gone
    _write(folder / "李记小吃/消毒记录_2026-11-02.xlsx", b"disinfection li, page 2 added")
    (folder / "县创卫办/长效机制方案.docx").unlink()
    _write(folder / "张记理发/卫生许可证_2025-01-01.pdf", b"new shop licence")
    again = reg.scan(folder, res.registry, root=tmp_path, settings=s, now=AS_OF)
    assert again.changed == ["档案/李记小吃/消毒记录_2026-11-02.xlsx"]
    assert again.removed == ["档案/县创卫办/长效机制方案.docx"]
    assert again.added == ["档案/张记理发/卫生许可证_2025-01-01.pdf"]
    a = again.registry.set_index("path")
    old = res.registry.set_index("path")
    assert a.loc["档案/李记小吃/消毒记录_2026-11-02.xlsx", "file_id"] == old.loc[
        "档案/李记小吃/消毒记录_2026-11-02.xlsx", "file_id"]
    assert a.loc["档案/张记理发/卫生许可证_2025-01-01.pdf", "file_id"] == old["file_id"].max() + 1
    with pytest.raises(reg.ArchiveError, match="does not exist"):
        reg.scan(tmp_path / "nowhere", None, root=tmp_path, settings=s)


def test_completeness_duplicates_and_readiness_lowered_by_the_set_amount(tmp_path):
    folder = tmp_path / "档案"
    _archive(folder)
    settings = Settings()
    files = reg.scan(folder, None, root=tmp_path, settings=settings.archive).registry
    places = _places()
    table = check.completeness(files, places, settings=settings, as_of=AS_OF)
    st = table.set_index(["holder", "document"])["status"]
    # 老王家常菜: licence of 2024-05-06 valid 4 years; health certificate of 2025-03-01 expired on 2026-03-01;
    # no disinfection record, no pest-control record
    assert st["老王家常菜"].to_dict() == {"卫生许可证": "齐全", "健康证": "过期", "消毒记录": "缺失",
                                      "病媒生物防制记录": "缺失"}
    assert st["李记小吃"].to_dict() == dict.fromkeys(["卫生许可证", "健康证", "消毒记录", "病媒生物防制记录"], "齐全")
    assert set(st["张记理发"]) == {"缺失"}
    assert st["县创卫办"].to_dict() == {"会议纪要": "齐全", "长效机制方案": "齐全", "创卫工作方案": "缺失"}
    assert st["县城管局"].to_dict() == {"背街小巷整治台账": "缺失"}
    expired = table.set_index(["holder", "document"]).loc[("老王家常菜", "健康证")]
    assert expired["expires"] == date(2026, 3, 1) and expired["files"] == 1
    summary = check.holder_summary(table).set_index("holder")
    counts = ["required", "present", "expired", "missing", "share"]
    assert summary.loc["老王家常菜", counts].tolist() == [4, 1, 1, 2, 25.0]
    assert summary.loc["老王家常菜", "missing_docs"] == "消毒记录、病媒生物防制记录"

    # readiness: −10 per missing document and −5 per expired one (the settings' penalties), with the reasons
    base = readiness(places, settings=settings, as_of=AS_OF)
    ev = check.place_evidence(table)
    with_ev = readiness(places, settings=settings, as_of=AS_OF, evidence=ev)
    pen = settings.sampling.penalties
    assert (pen["missing_document"], pen["expired_document"]) == (10, 5)
    lost = (base["readiness"] - with_ev["readiness"]).tolist()
    assert lost == [2 * 10 + 5, 0.0, 4 * 10]
    assert with_ev.loc[0, "reasons"] == ("缺少档案: 消毒记录; 缺少档案: 病媒生物防制记录; "
                                         "档案过期: 健康证(2026-03-01到期)")
    settings.sampling.penalties = {**pen, "missing_document": 7}
    assert readiness(places, settings=settings, as_of=AS_OF, evidence=ev)["readiness"].tolist() == [81.0, 100.0, 72.0]

    # exact duplicates by hash: the two shops hold one licence scan
    dups = check.exact_duplicates(files)
    assert dups["group"].nunique() == 1 and dups["across"].all()
    assert sorted(dups["holder"]) == ["李记小吃", "老王家常菜"]
    assert set(dups["sha256"]) == {hashlib.sha256(b"licence scan of shop A " * 50).hexdigest()}
    # near duplicates: the communities' minutes (same text, names swapped) and the shops' self-check reports
    near = check.near_duplicates(files, settings=settings)
    found = {(frozenset((a.split("/")[1], b.split("/")[1])), by) for a, b, by in
             zip(near["path_a"], near["path_b"], near["by"], strict=True)}
    assert found == {(frozenset({"花园社区", "雄石社区"}), "正文"), (frozenset({"老王家常菜", "李记小吃"}), "名称")}
    assert (near["score"] >= 90).all()


def test_sanigrid_archive_writes_the_workbook_and_sample_reads_the_registry(tmp_path, project: Project):
    from sanigrid.scripts.archive import REPORT_FILE, run_archive
    from sanigrid.scripts.sampling import build_candidates

    sp = _places()[["category", "name", "address", "geometry"]]
    project.store.write("sample_points", gpd.GeoDataFrame(sp, geometry="geometry", crs=CRS))
    before, _, _ = build_candidates(project, as_of=AS_OF)
    assert before["readiness"].tolist() == [100.0] * 3  # no archive kept in sanigrid: nobody marked down
    _archive(project.root / "档案")
    run = run_archive(project, as_of=AS_OF)
    assert run.path is not None and run.path.name == REPORT_FILE
    assert len(run.registry) == 13 and len(reg.read_registry(project.store)) == 13
    wb = openpyxl.load_workbook(run.path, read_only=True)
    sheets = {"汇总", "样本点", "部门", "缺失与过期", "重复雷同", "疑似雷同", "登记表", "档案目录", "说明"}
    assert sheets <= set(wb.sheetnames)
    rows = list(wb["汇总"].values)
    head = list(rows[0])
    wang = next(r for r in rows if r[head.index("所属单位/地点")] == "老王家常菜")
    assert [wang[head.index(h)] for h in ("应有", "齐全", "过期", "缺失", "完整率(%)")] == [4, 1, 1, 2, 25]
    dup_rows = list(wb["重复雷同"].values)
    assert len(dup_rows) == 3 and {"SHA-256", "跨单位/地点", "所属单位/地点"} <= set(dup_rows[0])
    assert {r[dup_rows[0].index("所属单位/地点")] for r in dup_rows[1:]} == {"老王家常菜", "李记小吃"}
    reg_rows = list(wb["登记表"].values)
    assert "SHA-256" in reg_rows[0] and len(reg_rows) == 14
    wb.close()
    after, _, _ = build_candidates(project, as_of=AS_OF)
    assert after["readiness"].tolist() == [75.0, 100.0, 60.0]
    assert "缺少档案: 消毒记录" in after.loc[0, "reasons"]
    # a rescan with nothing changed reads no file again
    again = run_archive(project, as_of=AS_OF, xlsx=False)
    assert again.scan is not None and (again.scan.added, again.scan.changed, again.scan.removed) == ([], [], [])


def test_the_command_prints_the_counts(tmp_path, project: Project):
    from typer.testing import CliRunner

    from sanigrid.scripts.cli import app

    _archive(project.root / "档案")
    result = CliRunner().invoke(app, ["archive", "-p", str(project.root), "--as-of", "2026-11-16"])
    assert result.exit_code == 0, result.output
    assert "新增 13" in result.output and "1 个文件直接放在档案文件夹下" in result.output
    # no places in the store: the departments only (县创卫办 3, 县城管局, 县市场监管局, 县卫健委 1 each), 2 present
    assert "│    6 │    2 │    0 │    4 │" in result.output.replace("┃", "│")
    assert (project.root / "outputs" / "档案完整性.xlsx").exists()


def test_a_rescan_reads_only_changed_files_and_equals_a_scan_from_nothing(tmp_path, monkeypatch):
    """The registry is the cache of the scan, per file (path, size, modification time): a rescan reads
    (hashes, opens the PDF of) only new and changed files, a changed PDF's text is read again, a deleted
    file drops out, and the result equals scanning the folder with no registry at all."""
    folder = tmp_path / "档案"
    _archive(folder)
    s = Settings().archive
    first = reg.scan(folder, None, root=tmp_path, settings=s, now=AS_OF).registry
    minutes = "档案/县创卫办/2026年第三季度会议纪要.pdf"
    _write(folder / "县创卫办/2026年第三季度会议纪要.pdf", text_pdf(["县创卫办会议纪要", "改期至十二月"]))
    (folder / "花园社区/花园社区2026年第三季度创卫工作会议纪要.pdf").unlink()

    read: list[str] = []
    real_sha, real_text = reg.sha256_file, reg.pdf_text
    monkeypatch.setattr(reg, "sha256_file", lambda p: (read.append(Path(p).name), real_sha(p))[1])
    monkeypatch.setattr(reg, "pdf_text", lambda p, **k: (read.append(f"text:{Path(p).name}"), real_text(p, **k))[1])
    again = reg.scan(folder, first, root=tmp_path, settings=s, now=AS_OF)
    assert read == ["text:2026年第三季度会议纪要.pdf", "2026年第三季度会议纪要.pdf"]  # nothing else opened
    assert again.changed == [minutes] and again.added == []
    assert again.removed == ["档案/花园社区/花园社区2026年第三季度创卫工作会议纪要.pdf"]
    r = again.registry.set_index("path")
    assert r.loc[minutes, "text"] == "县创卫办会议纪要改期至十二月"

    fresh = reg.scan(folder, None, root=tmp_path, settings=s, now=AS_OF).registry
    cols = [c for c in reg.COLUMNS if c != "file_id"]  # ids: kept by the rescan, renumbered from nothing
    by_path = again.registry.set_index("path").sort_index()
    # the same values (a kept row's text columns may be object dtype where a new one's are str)
    pd.testing.assert_frame_equal(by_path.drop(columns="file_id"),
                                  fresh.set_index("path").sort_index().drop(columns="file_id"),
                                  check_dtype=False, check_index_type=False)
    assert len(by_path) == len(fresh) == 12 and set(cols) <= set(by_path.reset_index().columns)
