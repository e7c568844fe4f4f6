"""The demo's evidence archive: a folder of files, some missing, some expired, some copied.

For every sample place of a category the archive catalogue names (五小场所, 宾馆饭店, 农贸市场, 公厕,
社区居委会) and every department it names, each required document is present (a file dated within its
validity), expired (a file dated before it) or missing, at random from its own stream (``seed`` and
141). Three shops hold the same licence scan as a fourth (重复雷同: one SHA-256 in four folders), two
residents' committees hold the same minutes with only the committee's name changed (疑似雷同 by PDF
text), and 县市场监管局 holds nothing. Files are tiny: images and office files are placeholder bytes,
minutes and rules are one-page PDFs of Chinese text (:mod:`._pdf`). ``sanigrid archive`` scans the
folder; nothing here writes to the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from sanigrid.layers.settings import Settings
from sanigrid.scripts.demo._pdf import text_pdf
from sanigrid.scripts.demo.facts import AS_OF

#: (present, expired) probabilities per holder kind; the rest is missing
ODDS = {"五小场所": (0.72, 0.12), "部门": (0.9, 0.0)}
DEFAULT_ODDS = (0.82, 0.08)
_PDF_DOCS = ("会议纪要", "长效机制方案", "创卫工作方案", "市场管理制度", "病媒生物防制方案")
MINUTES = ("{}2026年第三季度创卫工作会议纪要", "时间: 2026年9月26日上午, 地点: {}二楼会议室",
           "会议传达了县创卫指挥部第五次调度会精神, 研究了辖区背街小巷整治、农贸市场周边秩序和五小场所监管",
           "会议明确: 各网格每周开展一次环境卫生巡查, 发现问题当日上报, 整改情况纳入月度考核",
           "参会人员: 社区书记、主任、各网格长、物业服务企业和辖区单位代表")


def _file(folder: Path, holder: str, name: str, data: bytes, mtime: float) -> Path:
    path = folder / holder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def write_demo_archive(folder: str | Path, places: pd.DataFrame, settings: Settings, *, seed: int) -> dict[str, int]:
    """Write the archive below ``folder`` for ``places`` (``category``, ``name``: the demo's sample points and
    facilities); returns counts of files written, documents left missing and expired, and the copies."""
    folder = Path(folder)
    rng = np.random.default_rng([seed, 141])
    docs = settings.archive.documents
    mtime = (AS_OF - pd.Timedelta(days=6)).timestamp()
    holders: list[tuple[str, str]] = []  # (holder, category or 部门)
    wanted = {c for d in docs for c in d.categories}
    p = places[places["category"].isin(wanted)].drop_duplicates("name")
    holders += [(str(n), str(c)) for n, c in zip(p["name"], p["category"], strict=True) if str(n)]
    holders += [(dep, "部门") for dep in dict.fromkeys(x for d in docs for x in d.departments)]
    counts = {"files": 0, "missing": 0, "expired": 0, "copies": 0, "near": 0}
    licences: list[Path] = []
    for holder, cat in holders:
        for d in docs:
            if not ((cat == "部门" and holder in d.departments) or cat in d.categories):
                continue
            present, expired = ODDS.get(cat, DEFAULT_ODDS)
            if holder == "县市场监管局":
                present = expired = 0.0
            u = rng.random()
            if u >= present + expired:
                counts["missing"] += 1
                continue
            valid = d.valid_days or 3 * 365
            back = rng.uniform(1, 0.8 * valid) if u < present else valid + rng.uniform(10, 200)
            day = (AS_OF - pd.Timedelta(days=float(back))).date()
            counts["expired"] += int(u >= present)
            if d.name in _PDF_DOCS:
                data = text_pdf([f"{holder}{d.name}", f"日期: {day:%Y年%m月%d日}", f"对应指标: {d.indicator}"])
                name = f"{d.name}_{day:%Y-%m-%d}.pdf"
            else:
                data = f"{holder} {d.name} {day} scan {rng.integers(1 << 30)}".encode() * 8
                name = f"{d.name}_{day:%Y%m%d}.jpg"
            path = _file(folder, holder, name, data, mtime)
            counts["files"] += 1
            if d.name == "卫生许可证" and cat == "五小场所" and u < present:
                licences.append(path)
    # 重复雷同: three shops hand in the first shop's licence scan as their own
    if len(licences) >= 4:
        source = licences[0]
        for target in licences[1:4]:
            target.write_bytes(source.read_bytes())
            os.utime(target, (mtime, mtime))
            counts["copies"] += 1
    # 疑似雷同: two residents' committees with the same minutes, only the name changed
    committees = [h for h, c in holders if c == "社区居委会"][:2]
    for h in committees:
        _file(folder, h, f"{h}2026年第三季度创卫工作会议纪要.pdf", text_pdf([m.format(h) for m in MINUTES]), mtime)
        counts["files"] += 1
    counts["near"] = int(len(committees) == 2)
    return counts


def archive_places(layers: dict[str, pd.DataFrame], categories: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """The demo's places by sample category: the sample points and the layers that supply candidates."""
    frames = [layers["sample_points"][["category", "name"]]]
    for kind, cat in categories:
        if kind in layers and "name" in layers[kind]:
            frames.append(pd.DataFrame({"category": cat, "name": layers[kind]["name"]}))
    out = pd.concat(frames, ignore_index=True)
    return out[out["name"].notna()]
