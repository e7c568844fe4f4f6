"""The archive page's data (档案资料): completeness, duplicates, the latest files, the upload choices.

Everything is computed by :mod:`geo.archive` on the registry (:mod:`layers.archive`) and the sample-point
candidates; this module only reads the store and shapes rows for the template and the workbook.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd

from sanigrid.geo import archive as check
from sanigrid.layers import archive as reg
from sanigrid.layers.cases import store_as_of
from sanigrid.layers.project import Project

SHOWN_HOLDERS = 100  # least complete holders listed on the page (all of them in the workbook)


def archive_check(project: Project, *, as_of: datetime | None = None
                  ) -> tuple[check.ArchiveCheck, pd.DataFrame, datetime]:
    """The archive checked at ``as_of`` (default: the case rules' as-of): result, registry and the instant."""
    st = project.store
    t = store_as_of(st, given=as_of, settings=project.settings)
    files = reg.read_registry(st)
    files = files if files is not None else reg.empty_registry()
    layers = {k: st.read(k) for k in check.place_kinds(project.settings) if st.has(k)}
    places = check.places(layers, grids=st.read("grids") if st.has("grids") else None, settings=project.settings)
    return check.check(files, places, settings=project.settings, as_of=t), files, t


def holders(result: check.ArchiveCheck) -> dict[str, str]:
    """Every holder the catalogue asks documents of → its type (样本点 category or 部门), for the upload form."""
    s = result.summary
    return {h: (c or ht) for h, ht, c in zip(s["holder"], s["holder_type"], s["category"], strict=True)}


def _records(frame: pd.DataFrame, columns: list[str], limit: int | None = None) -> list[dict[str, Any]]:
    f = frame[columns] if limit is None else frame[columns].head(limit)
    return [{k: ("" if v is None or (not isinstance(v, str) and pd.isna(v)) else
                 v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in f.to_dict("records")]


def page_data(project: Project) -> dict[str, Any]:
    """What ``archive.html`` shows: counts, the least complete holders, duplicate groups, near pairs, the
    latest registered files, and the holders and documents the upload form offers."""
    result, files, t = archive_check(project)
    incomplete = result.summary[result.summary["share"] < 100]
    dups = result.duplicates[result.duplicates["across"].astype(bool)] if len(result.duplicates) else \
        result.duplicates
    latest = files.sort_values("registered_at", ascending=False, na_position="last") if len(files) else files
    return {
        "as_of": f"{pd.Timestamp(t):%Y-%m-%d}", "counts": result.counts(), "files": len(files),
        "holders": _records(incomplete, ["holder", "holder_type", "category", "required", "present", "expired",
                                         "missing", "share", "missing_docs", "expired_docs"], SHOWN_HOLDERS),
        "more_holders": max(0, len(incomplete) - SHOWN_HOLDERS),
        "duplicates": _records(dups, ["group", "holder", "document", "path"]),
        "near": _records(result.near, ["holder_a", "path_a", "holder_b", "path_b", "by", "score"]),
        "latest": _records(latest, ["file_id", "holder", "document", "doc_date", "file_name", "source",
                                    "registered_by", "sha256"], 10),
        "choices": holders(result), "documents": [d.name for d in project.settings.archive.documents],
    }


def workbook_sheets(project: Project) -> dict[str, pd.DataFrame]:
    """The sheets of 档案完整性.xlsx as they stand now (the registry as stored: no scan)."""
    result, files, t = archive_check(project)
    return check.report_sheets(result, files, settings=project.settings, as_of=t,
                               notes={"本次扫描": "未扫描 (网页下载)"})
