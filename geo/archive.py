"""Completeness of the evidence archive (档案完整性), duplicates and near duplicates.

Pure functions on the registry (:mod:`layers.archive`, one row per file) and the sample-point candidates
(:func:`geo.sampling.candidates`), with the catalogue of ``settings.archive.documents``:

* :func:`completeness` — one row per holder and required document: 齐全 (a file of it whose date plus
  ``valid_days`` reaches ``as_of``), 过期 (files, all expired), 缺失 (none). Holders are every candidate
  of a category the catalogue names (matched to the registry by the place's name) and every department
  it names.
* :func:`holder_summary` — per holder: required, present, expired, missing, share complete.
* :func:`exact_duplicates` — files with the same SHA-256; flagged 重复雷同 when two different holders
  hold them.
* :func:`near_duplicates` — pairs of files of different holders whose cleaned names, or PDF text, are
  similar (rapidfuzz ratio at least ``near_name_score`` / ``near_text_score``).
* :func:`place_evidence` — the missing and expired documents per candidate, which
  :func:`geo.sampling.readiness` turns into lost points and reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd

from sanigrid.layers.settings import Settings

PRESENT, EXPIRED, MISSING = "齐全", "过期", "缺失"
PLACE, DEPARTMENT = "样本点", "部门"
HEADERS: dict[str, str] = {
    "holder": "所属单位/地点", "holder_type": "类型", "category": "类别", "candidate_id": "候选编号",
    "grid_code": "网格编码", "document": "档案类型", "indicator": "对应指标", "status": "状态", "files": "文件数",
    "latest": "最新文件日期", "expires": "有效期至", "paths": "文件", "required": "应有", "present": "齐全",
    "expired": "过期", "missing": "缺失", "share": "完整率(%)", "group": "重复组", "sha256": "SHA-256",
    "path": "文件", "in_group": "组内文件数", "holders": "涉及单位/地点数", "across": "跨单位/地点",
    "holder_a": "单位/地点甲", "path_a": "文件甲", "holder_b": "单位/地点乙", "path_b": "文件乙",
    "by": "相似依据", "score": "相似度", "missing_docs": "缺失档案", "expired_docs": "过期档案",
}
COMPLETENESS_COLUMNS = ("holder", "holder_type", "category", "candidate_id", "grid_code", "document",
                        "indicator", "status", "files", "latest", "expires", "paths")
_DIGITS = re.compile(r"[\d\s\-_.()（）【】\[\]、，,·第年月日号期次版]+")
_CHUNK = 2000  # rows of one similarity block (chunk × n scores of one byte each)


def key(name: object) -> str:
    """A holder name as compared: surrounding spaces removed, full-width letters and digits made plain."""
    import unicodedata

    return unicodedata.normalize("NFKC", str(name or "")).strip()


def place_kinds(settings: Settings) -> list[str]:
    """The layers whose places the catalogue asks documents of: ``sample_points`` and each layer that
    supplies candidates of a category the catalogue names (:data:`geo.sampling.LAYER_CATEGORY`)."""
    from sanigrid.geo.sampling import LAYER_CATEGORY

    wanted = {c for d in settings.archive.documents for c in d.categories}
    return ["sample_points", *(k for k, c in LAYER_CATEGORY.items() if c in wanted)]


def places(layers: Mapping[str, gpd.GeoDataFrame], *, grids: gpd.GeoDataFrame | None,
           settings: Settings) -> gpd.GeoDataFrame | None:
    """The sample-point candidates the catalogue is checked against (``candidate_id``, ``category``,
    ``name``, ``grid_code`` …; :func:`geo.sampling.candidates` of the :func:`place_kinds` layers), or
    ``None`` when none of those layers has a feature."""
    from sanigrid.geo.sampling import candidates

    given = {k: v for k, v in layers.items() if k in place_kinds(settings) and v is not None and len(v)}
    return candidates(given, grids=grids, settings=settings) if given else None


def _holders(places: pd.DataFrame | None, settings: Settings) -> pd.DataFrame:
    docs = settings.archive.documents
    rows = []
    wanted = {c for d in docs for c in d.categories}
    if places is not None and len(places) and wanted:
        p = places[places["category"].isin(wanted)]
        for cand, cat, name, grid in zip(p["candidate_id"], p["category"], p["name"],
                                         p["grid_code"] if "grid_code" in p else [None] * len(p), strict=True):
            if key(name):
                rows.append({"holder": key(name), "holder_type": PLACE, "category": cat, "candidate_id": cand,
                             "grid_code": grid})
    for dept in dict.fromkeys(dep for d in docs for dep in d.departments):
        rows.append({"holder": key(dept), "holder_type": DEPARTMENT, "category": "", "candidate_id": None,
                     "grid_code": None})
    return pd.DataFrame(rows, columns=["holder", "holder_type", "category", "candidate_id", "grid_code"])


def completeness(files: pd.DataFrame | None, places: pd.DataFrame | None, *, settings: Settings,
                 as_of: datetime) -> pd.DataFrame:
    """One row per holder and document it must hold (columns :data:`COMPLETENESS_COLUMNS`).

    ``files``: the registry (``holder``, ``document``, ``doc_date``, ``path``); ``places``: candidates
    (``candidate_id``, ``category``, ``name``, ``grid_code``). A document is 齐全 when one of its files has
    a date on or before ``as_of`` and, with ``valid_days``, no more than that many days before it; 过期
    when it has files but none is valid; 缺失 when it has none. ``expires`` is the best file's date plus
    ``valid_days``; ``latest`` its newest file's date. Rows in the order of the holders, then the catalogue.
    """
    holders = _holders(places, settings)
    docs = settings.archive.documents
    # the holders each document is required of, document by document (one isin per document, not a
    # Python test per holder and document)
    is_place = (holders["holder_type"] == PLACE).to_numpy(dtype=bool)
    is_dept = (holders["holder_type"] == DEPARTMENT).to_numpy(dtype=bool)
    picked = [np.flatnonzero((is_place & holders["category"].isin(list(d.categories)).to_numpy(dtype=bool))
                             | (is_dept & holders["holder"].isin([key(x) for x in d.departments]).to_numpy(dtype=bool)))
              for d in docs]
    rows = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    of = np.repeat(np.arange(len(docs)), [len(x) for x in picked]) if picked else np.zeros(0, np.int64)
    out = holders.iloc[rows].reset_index(drop=True)
    out["document"] = [docs[i].name for i in of]
    out["indicator"] = [docs[i].indicator for i in of]
    out["valid_days"] = [docs[i].valid_days for i in of]
    out["order"] = np.arange(len(out))
    if not len(out):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COMPLETENESS_COLUMNS})
    t = pd.Timestamp(as_of).normalize()
    f = files if files is not None else pd.DataFrame(columns=["holder", "document", "doc_date", "path"])
    f = pd.DataFrame({"holder": f["holder"].map(key), "document": f["document"].astype("object"),
                      "date": pd.to_datetime(f["doc_date"], errors="coerce"), "path": f["path"].astype("object")})
    f = f[f["date"].isna() | (f["date"] <= t)]  # a file dated after the report is not evidence yet
    days = f["document"].map({d.name: d.valid_days for d in docs if d.valid_days}).astype("float64")
    f["expires"] = f["date"] + pd.to_timedelta(days, unit="D")  # NaT where the document never expires
    f["valid"] = f["expires"].isna() | (f["expires"] >= t)
    g = f.groupby(["holder", "document"], sort=False)
    agg = pd.DataFrame({
        "files": g.size(), "latest": g["date"].max(), "any_valid": g["valid"].any(),
        "expires": g["expires"].max(), "paths": g["path"].agg(lambda s: "; ".join(map(str, s))),
    })
    out = out.join(agg, on=["holder", "document"])
    out["files"] = out["files"].fillna(0).astype("int64")
    out["status"] = np.where(out["files"] == 0, MISSING, np.where(out["any_valid"].fillna(False).astype(bool),
                                                                   PRESENT, EXPIRED))
    out["latest"] = out["latest"].dt.date
    out["expires"] = out["expires"].dt.date
    out["paths"] = out["paths"].fillna("")
    return out.sort_values("order", kind="stable")[list(COMPLETENESS_COLUMNS)].reset_index(drop=True)


def holder_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per holder: documents required, present, expired, missing, share complete (%) and the missing and
    expired documents by name; least complete first."""
    if not len(table):
        return pd.DataFrame(columns=["holder", "holder_type", "category", "grid_code", "required", "present",
                                     "expired", "missing", "share", "missing_docs", "expired_docs"])
    keys = ["holder", "holder_type", "category"]
    t = table.assign(present=table["status"] == PRESENT, expired=table["status"] == EXPIRED,
                     missing=table["status"] == MISSING)
    g = t.groupby(keys, sort=False, dropna=False)
    out = g.agg(grid_code=("grid_code", "first"), required=("status", "size"), present=("present", "sum"),
                expired=("expired", "sum"), missing=("missing", "sum")).reset_index()
    for col, status in (("missing_docs", MISSING), ("expired_docs", EXPIRED)):
        names = t[t["status"] == status].groupby(keys, sort=False, dropna=False)["document"].agg("、".join)
        out[col] = out.set_index(keys).index.map(names).fillna("").to_numpy() if len(names) else ""
    out["share"] = (100 * out["present"] / out["required"]).round(1)
    return out.sort_values(["share", "holder_type", "holder"], kind="stable").reset_index(drop=True)


def exact_duplicates(files: pd.DataFrame | None) -> pd.DataFrame:
    """Files sharing a SHA-256 (one row per file, groups numbered from 1, largest first): ``across`` when
    the group spans two or more holders (重复雷同: one document passed off as several places' own)."""
    cols = ["group", "sha256", "holder", "document", "path", "in_group", "holders", "across"]
    if files is None or not len(files):
        return pd.DataFrame(columns=cols)
    f = files[files["sha256"].astype(str) != ""]
    f = f[f["sha256"].duplicated(keep=False)].copy()
    if not len(f):
        return pd.DataFrame(columns=cols)
    f["holder"] = f["holder"].map(key)
    g = f.groupby("sha256")
    f["in_group"] = g["path"].transform("size")
    f["holders"] = g["holder"].transform("nunique")
    f["across"] = f["holders"] >= 2
    order = f.drop_duplicates("sha256").sort_values(["across", "in_group", "sha256"], ascending=[False, False, True])
    f["group"] = f["sha256"].map({h: i + 1 for i, h in enumerate(order["sha256"])})
    return f.sort_values(["group", "holder", "path"])[cols].reset_index(drop=True)


def _strip(texts: Iterable[str], words: list[str]) -> list[str]:
    pattern = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True) if w)) \
        if any(words) else None
    out = []
    for t in texts:
        t = key(t)
        if pattern is not None:
            t = pattern.sub("", t)
        out.append(t)
    return out


def _similar_pairs(texts: list[str], holders: np.ndarray, *, score: float, min_chars: int
                   ) -> list[tuple[int, int, float]]:
    """Pairs (i < j) of texts of different holders with a rapidfuzz ratio ≥ ``score``: blocks of rows
    against all, one byte per score, so memory stays at ``_CHUNK × n``."""
    from rapidfuzz import fuzz, process

    idx = np.flatnonzero([len(t) >= min_chars for t in texts])
    if len(idx) < 2:
        return []
    choices = [texts[i] for i in idx]
    out = []
    for start in range(0, len(idx), _CHUNK):
        block = choices[start:start + _CHUNK]
        m = process.cdist(block, choices, scorer=fuzz.ratio, score_cutoff=score, dtype=np.uint8, workers=-1)
        a, b = np.nonzero(m)
        a_abs = a + start
        keep = (b > a_abs) & (holders[idx[a_abs]] != holders[idx[b]])
        for i, j in zip(a_abs[keep], b[keep], strict=True):
            out.append((int(idx[i]), int(idx[j]), float(m[i - start, j])))
    return out


def near_duplicates(files: pd.DataFrame | None, *, settings: Settings) -> pd.DataFrame:
    """Pairs of files of different holders that look copied (疑似雷同), best match first.

    * by name (名称): the file names without their suffix, the holders' names, dates, numbers and the
      catalogue's document words, at least ``near_name_min_chars`` characters left, and a rapidfuzz ratio
      of at least ``near_name_score``;
    * by text (正文): PDF text (``text``) of at least ``text_min_chars`` characters, the holders' names
      removed, ratio at least ``near_text_score``.

    Pairs that are exact duplicates (same SHA-256) are left out: :func:`exact_duplicates` lists them.
    Each block of rows is compared against all in C (rapidfuzz ``cdist``): quadratic in the number of
    files but at a few million pairs a second, and bounded memory.
    """
    cols = ["holder_a", "path_a", "holder_b", "path_b", "by", "score"]
    if files is None or len(files) < 2:
        return pd.DataFrame(columns=cols)
    a = settings.archive
    f = files.reset_index(drop=True)
    holders = f["holder"].map(key).to_numpy(dtype=object)
    names = list(dict.fromkeys(h for h in holders if h))
    words = [w for d in a.documents for w in (*d.words, d.name)]
    stems = [re.sub(r"\.[A-Za-z0-9]{1,5}$", "", str(n)) for n in f["file_name"]]
    clean = [_DIGITS.sub("", s) for s in _strip(stems, names + words)]
    pairs = [(i, j, s, "名称") for i, j, s in _similar_pairs(clean, holders, score=a.near_name_score,
                                                            min_chars=a.near_name_min_chars)]
    if "text" in f:
        text = _strip(f["text"].fillna("").astype(str), names)
        pairs += [(i, j, s, "正文") for i, j, s in _similar_pairs(text, holders, score=a.near_text_score,
                                                                min_chars=a.text_min_chars)]
    sha = f["sha256"].astype(str).to_numpy()
    rows = [{"holder_a": holders[i], "path_a": f.at[i, "path"], "holder_b": holders[j], "path_b": f.at[j, "path"],
             "by": by, "score": round(s, 1)} for i, j, s, by in pairs if not (sha[i] and sha[i] == sha[j])]
    out = pd.DataFrame(rows, columns=cols)
    # one pair similar both by name and by text is listed once, by text
    out = out.sort_values(["by", "score"], ascending=[False, False], kind="stable")
    out = out.drop_duplicates(["path_a", "path_b"]).sort_values("score", ascending=False, kind="stable")
    return out.reset_index(drop=True)


def place_evidence(table: pd.DataFrame) -> pd.DataFrame:
    """The missing and expired documents of each candidate (``candidate_id``, ``document``, ``status``,
    ``expires``), for :func:`geo.sampling.readiness`."""
    cols = ["candidate_id", "document", "status", "expires"]
    if not len(table):
        return pd.DataFrame(columns=cols)
    t = table[(table["holder_type"] == PLACE) & table["status"].isin([MISSING, EXPIRED])]
    return t[cols].reset_index(drop=True)


@dataclass(frozen=True)
class ArchiveCheck:
    """Everything :func:`check` finds: per document, per holder, exact and near duplicates."""

    completeness: pd.DataFrame
    summary: pd.DataFrame
    duplicates: pd.DataFrame
    near: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Documents required, present, expired, missing; duplicate groups across holders; near pairs."""
        st = self.completeness["status"].value_counts()
        d = self.duplicates
        return {"required": len(self.completeness), "present": int(st.get(PRESENT, 0)),
                "expired": int(st.get(EXPIRED, 0)), "missing": int(st.get(MISSING, 0)),
                "copied": int(d.loc[d["across"].astype(bool), "group"].nunique()) if len(d) else 0,
                "near": len(self.near)}


def check(files: pd.DataFrame | None, places: pd.DataFrame | None, *, settings: Settings,
          as_of: datetime) -> ArchiveCheck:
    """:func:`completeness`, :func:`holder_summary`, :func:`exact_duplicates` and :func:`near_duplicates`."""
    table = completeness(files, places, settings=settings, as_of=as_of)
    return ArchiveCheck(completeness=table, summary=holder_summary(table), duplicates=exact_duplicates(files),
                        near=near_duplicates(files, settings=settings))


def catalogue_table(settings: Settings) -> pd.DataFrame:
    """The document catalogue of the settings as a table (the 档案目录 sheet)."""
    return pd.DataFrame([{
        "档案类型": d.name, "对应指标": d.indicator, "样本点类别": "、".join(d.categories),
        "部门": "、".join(d.departments), "有效期(天)": d.valid_days, "文件名关键词": "、".join(d.words),
    } for d in settings.archive.documents])


def report_sheets(result: ArchiveCheck, files: pd.DataFrame, *, settings: Settings, as_of: datetime,
                  notes: Mapping[str, object] | None = None) -> dict[str, pd.DataFrame]:
    """The sheets of 档案完整性.xlsx (headers: :data:`HEADERS`; the registry's own headers for 登记表):
    汇总 (per holder), 样本点 and 部门 (per document), 缺失与过期, 重复雷同, 疑似雷同, 登记表, 档案目录, 说明."""
    from sanigrid.layers.archive import REGISTRY_HEADERS

    table = result.completeness
    places = table[table["holder_type"] == PLACE]
    depts = table[table["holder_type"] == DEPARTMENT].drop(columns=["category", "candidate_id", "grid_code"])
    shown = files.drop(columns=[c for c in ("mtime", "text") if c in files]).rename(columns=REGISTRY_HEADERS)
    c = result.counts()
    note = {"截至": f"{pd.Timestamp(as_of):%Y-%m-%d %H:%M}", "登记文件数": len(files), "应有档案": c["required"],
            "齐全": c["present"], "过期": c["expired"], "缺失": c["missing"], "重复雷同(跨单位/地点)": c["copied"],
            "疑似雷同": c["near"], **(notes or {})}
    return {"汇总": result.summary, "样本点": places, "部门": depts,
            "缺失与过期": table[table["status"] != PRESENT], "重复雷同": result.duplicates, "疑似雷同": result.near,
            "登记表": shown, "档案目录": catalogue_table(settings),
            "说明": pd.DataFrame({"项目": list(note), "数值": [str(v) for v in note.values()]})}
