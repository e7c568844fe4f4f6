"""A province's reports in spatial partitions (Hilbert key ranges), each read with a halo at its edges.

For what does not split by county — a prefecture centre's 10⁶–10⁷ reports in one GeoParquet file or
PostGIS table — the reports are cut into partitions of nearby reports along a Hilbert curve, **once**,
and every analysis task then reads its own partition and the reports of its neighbours that lie within
a **halo** of it, by bounds: no shuffle per run.

* **The plan** (:class:`PartitionPlan`, :func:`plan_partitions`): the reports' lower-left corner and a
  square of side ``side_m`` cut into ``2^level × 2^level`` cells, each point's cell's Hilbert key, and
  the key ranges of the partitions (equal counts, from a histogram of the keys, streamed in chunks).
  A partition's **region** is the union of the aligned squares its key range is made of: it holds all
  of its reports, and regions do not overlap. The plan depends on the coordinates only, so the
  GeoParquet and the PostGIS path give the same partitions.
* **Readers**: :class:`ParquetPartitions` — a GeoParquet dataset written once by
  :func:`write_partitioned` (one file per partition, Hilbert-sorted, small row groups, ``x``/``y``/``hkey``
  columns, the plan in ``_plan.json``); a task reads its file and its neighbours' rows inside its
  region's box plus the halo with pyarrow filters on ``x``/``y`` (row groups outside are skipped).
  :class:`PostGISPartitions` — a task runs one parameterised query, ``geom && ST_MakeEnvelope(…)``
  (the GiST index), and keeps the rows whose key falls in its partitions' ranges.

Each partition is processed on its own by the single-county functions, given its halo, and the results
equal those of one frame (:func:`analyse_frame`, the oracle the tests compare with):

* **grids and counties** — :func:`geo.grids.assign_grid` per partition (a point needs no neighbour);
  the county is the grid code's first six digits (the unit-grid code starts with the county code).
* **piles** — :func:`layers.piles.find_piles` is greedy (heaviest candidate first), so a pile is not
  decided locally. Each partition finds, with a halo of ``5 × tolerance_m``, the candidate cells of
  its own reports (a 3 × 3 block of ``tolerance_m`` cells holding ``min_count`` reports) and sends the
  reports of the 5 × 5 block around each: only the dense spots travel. :func:`find_piles` on those
  reports, in ``problem_id`` order and on the plan's lattice origin (the reports' lower-left corner),
  gives exactly the piles of the whole frame (every candidate and every block it looks at is complete).
* **clusters** — DBSCAN (:func:`geo.hotspots.dbscan_labels`, ``eps_m``, ``min_samples``) per
  partition on its reports and a halo of ``2 × eps_m``: a point within ``eps_m`` of the partition's
  region then has all of its neighbours at hand, so its core status is exact, every core–core link
  from the partition's own reports is found, and a border report finds its nearest core point. Local
  clusters of two partitions that share an (exactly known) core point are one cluster (union-find
  on the few reports near the edges). Clusters that straddle an edge come out whole.
* **rebounds** — :func:`geo.rebound.rebound_pairs` per partition with a halo of ``radius_m``; a link
  belongs to the partition of its new report (each new report links to at most one closed case,
  found within ``radius_m``). Reports in a pile are left out on both sides, as in one frame.

Reports need ``problem_id`` (unique), ``category``, ``reported_at``, ``closed_at`` and point
geometries in a projected CRS (metres). Tasks run on whatever Dask scheduler is current (a
``distributed.Client`` when one is open, else Dask's threads). Nothing is global: every task gets its
reader, its partition's region and the thresholds as arguments.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from sanigrid.geo._checks import projected
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.hotspots import dbscan_labels
from sanigrid.geo.rebound import rebound_pairs
from sanigrid.layers.piles import find_piles
from sanigrid.layers.settings import Settings

COLUMNS = ("problem_id", "category", "reported_at", "closed_at")
COUNTY_DIGITS = 6
PLAN_FILE = "_plan.json"
_HIST_BITS = 20  # the key histogram that places the cuts: 2^20 bins (8 MB)
_ROW_GROUP = 4096  # rows per row group of a partition file: the unit a halo read skips or reads
_PART = "_part"


@dataclass(frozen=True)
class Thresholds:
    """The settings a partition needs (passed to every task, never read from a global)."""

    pile_min_count: int
    pile_tolerance_m: float
    eps_m: float
    min_samples: int
    exclude_piles: bool
    radius_m: float
    window_days: float

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(pile_min_count=settings.piles.min_count, pile_tolerance_m=settings.piles.tolerance_m,
                   eps_m=settings.hotspots.cluster_eps_m, min_samples=settings.hotspots.cluster_min_size,
                   exclude_piles=settings.hotspots.exclude_piles, radius_m=settings.rebound.radius_m,
                   window_days=settings.rebound.window_days)


# ------------------------------------------------------------------ the Hilbert curve
def hilbert_keys(ix: np.ndarray, iy: np.ndarray, level: int) -> np.ndarray:
    """The Hilbert index of cells ``(ix, iy)`` (integers in ``[0, 2^level)``), vectorised."""
    x = np.asarray(ix, dtype="int64").copy()
    y = np.asarray(iy, dtype="int64").copy()
    d = np.zeros(len(x), dtype="int64")
    n = 1 << level
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype("int64")) ^ ry.astype("int64"))
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d


def hilbert_cell(d: int, level: int) -> tuple[int, int]:
    """The cell of Hilbert index ``d`` (the inverse of :func:`hilbert_keys`)."""
    x = y = 0
    t = d
    s = 1
    n = 1 << level
    while s < n:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y


def _squares(lo: int, hi: int, level: int) -> list[tuple[int, int, int]]:
    """The key range ``[lo, hi)`` as aligned squares ``(ix, iy, side)`` of cells (quadtree nodes)."""
    out = []
    while lo < hi:
        m = 0
        while m < level and lo % (4 ** (m + 1)) == 0 and lo + 4 ** (m + 1) <= hi:
            m += 1
        x, y = hilbert_cell(lo, level)
        side = 1 << m
        out.append(((x // side) * side, (y // side) * side, side))
        lo += 4 ** m
    return out


@dataclass(frozen=True)
class PartitionPlan:
    """Hilbert key ranges over a square: ``cuts[i] ≤ key < cuts[i+1]`` is partition ``i``."""

    x0: float
    y0: float
    side_m: float
    level: int
    cuts: tuple[int, ...]
    counts: tuple[int, ...]
    crs: str
    regions: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def npartitions(self) -> int:
        return len(self.cuts) - 1

    @property
    def origin(self) -> tuple[float, float]:
        """The reports' lower-left corner: the piles' lattice origin."""
        return (self.x0, self.y0)

    def keys(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each point's cell's Hilbert key (the same float operations in every reader)."""
        n = 1 << self.level
        scale = n / self.side_m
        ix = np.clip(np.floor((np.asarray(x, dtype="float64") - self.x0) * scale), 0, n - 1)
        iy = np.clip(np.floor((np.asarray(y, dtype="float64") - self.y0) * scale), 0, n - 1)
        return hilbert_keys(ix.astype("int64"), iy.astype("int64"), self.level)

    def partition_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.cuts[1:-1], dtype="int64"), self.keys(x, y), side="right")

    def region(self, i: int) -> Any:
        """Partition ``i``'s region: the union of its key range's squares (padded by a millimetre)."""
        if self.regions:
            return self.regions[i]
        boxes = shapely.box(*np.asarray(self.boxes(i, 0.0)).reshape(-1, 4).T)
        return shapely.union_all(boxes) if len(boxes) else shapely.Polygon()

    def boxes(self, i: int, distance_m: float) -> list[tuple[float, float, float, float]]:
        """Partition ``i``'s squares, each grown by ``distance_m`` (and the millimetre)."""
        cell = self.side_m / (1 << self.level)
        d = distance_m + 1e-3
        return [(self.x0 + a * cell - d, self.y0 + b * cell - d, self.x0 + (a + s) * cell + d,
                 self.y0 + (b + s) * cell + d) for a, b, s in _squares(self.cuts[i], self.cuts[i + 1], self.level)]

    def with_regions(self) -> PartitionPlan:
        regions = tuple(self.region(i) for i in range(self.npartitions))
        for r in regions:
            shapely.prepare(r)
        return PartitionPlan(self.x0, self.y0, self.side_m, self.level, self.cuts, self.counts, self.crs, regions)

    def neighbours(self, distance_m: float) -> list[list[int]]:
        """For each partition, the others whose regions lie within ``distance_m`` of it."""
        regions = np.asarray(self.with_regions().regions if not self.regions else self.regions, dtype=object)
        a, b = shapely.STRtree(regions).query(regions, predicate="dwithin", distance=distance_m)
        out: list[list[int]] = [[] for _ in range(len(regions))]
        for i, j in zip(a.tolist(), b.tolist(), strict=True):
            if i != j and self.counts[j] > 0:
                out[i].append(j)
        return [sorted(set(v)) for v in out]

    def to_json(self) -> str:
        return json.dumps({"x0": self.x0, "y0": self.y0, "side_m": self.side_m, "level": self.level,
                           "cuts": list(self.cuts), "counts": list(self.counts), "crs": self.crs})

    @classmethod
    def from_json(cls, text: str) -> PartitionPlan:
        d = json.loads(text)
        return cls(float(d["x0"]), float(d["y0"]), float(d["side_m"]), int(d["level"]),
                   tuple(int(c) for c in d["cuts"]), tuple(int(c) for c in d["counts"]), str(d["crs"]))


def plan_partitions(xy_chunks: Callable[[], Iterable[np.ndarray]], *, npartitions: int, crs: Any,
                    level: int = 16) -> PartitionPlan:
    """The plan of ``npartitions`` Hilbert key ranges of about equal counts. ``xy_chunks()`` yields
    ``(n, 2)`` coordinate arrays (it is called twice: the extent, then the key histogram)."""
    if not 1 <= level <= 30:
        raise AnalysisError(f"the Hilbert level must be 1–30, not {level}")
    from pyproj import CRS

    crs = CRS.from_user_input(crs).to_string()  # one spelling of it (EPSG:4548), whatever the reader
    lo = np.array([np.inf, np.inf])
    hi = -lo
    n = 0
    for xy in xy_chunks():
        xy = np.asarray(xy, dtype="float64").reshape(-1, 2)
        if len(xy):
            if not np.isfinite(xy).all():
                raise AnalysisError("reports without coordinates cannot be partitioned in space")
            lo, hi = np.minimum(lo, xy.min(axis=0)), np.maximum(hi, xy.max(axis=0))
            n += len(xy)
    if n == 0:
        return PartitionPlan(0.0, 0.0, 1.0, level, (0, 4 ** level), (0,), str(crs))
    side = float(max(hi - lo)) * (1 + 1e-9) + 1e-6
    plan = PartitionPlan(float(lo[0]), float(lo[1]), side, level, (0, 4 ** level), (n,), str(crs))
    shift = max(0, 2 * level - _HIST_BITS)
    hist = np.zeros(1 << min(_HIST_BITS, 2 * level), dtype="int64")
    for xy in xy_chunks():
        xy = np.asarray(xy, dtype="float64").reshape(-1, 2)
        hist += np.bincount(plan.keys(xy[:, 0], xy[:, 1]) >> shift, minlength=len(hist))
    cum = np.cumsum(hist)
    k = max(1, int(npartitions))
    edge = np.searchsorted(cum, n * np.arange(1, k) / k, side="left") + 1  # bins before the cut
    edge = np.unique(np.clip(edge, 1, len(hist) - 1))
    bins = np.r_[0, edge, len(hist)]
    cuts = tuple(int(b) << shift for b in bins)
    counts = tuple(int(c) for c in np.diff(np.r_[0, cum[bins[1:] - 1]]))
    return PartitionPlan(plan.x0, plan.y0, side, level, cuts, counts, str(crs))


# ------------------------------------------------------------------ sources (chunks of reports) and readers
class ReportSource(Protocol):
    """Reports in chunks: their coordinates alone (cheap), or whole."""

    crs: Any

    def xy_chunks(self) -> Iterable[np.ndarray]: ...

    def chunks(self) -> Iterable[pd.DataFrame]:
        """Frames with :data:`COLUMNS` (and ``grid_code`` if there is one) and ``x``, ``y``."""
        ...


@dataclass
class FrameSource:
    """Reports already in memory (a GeoDataFrame), in chunks of ``chunk_rows``."""

    frame: gpd.GeoDataFrame
    chunk_rows: int = 1_000_000

    def __post_init__(self) -> None:
        projected(self.frame, "reports")
        _check_columns(self.frame.columns, "reports")
        self.crs = self.frame.crs

    def xy_chunks(self) -> Iterable[np.ndarray]:
        g = self.frame.geometry.to_numpy()
        for a in range(0, len(g), self.chunk_rows):
            part = g[a:a + self.chunk_rows]
            yield np.column_stack([shapely.get_x(part), shapely.get_y(part)])

    def chunks(self) -> Iterable[pd.DataFrame]:
        for a in range(0, len(self.frame), self.chunk_rows):
            yield _flat(self.frame.iloc[a:a + self.chunk_rows])


@dataclass
class GeoParquetSource:
    """Reports in a GeoParquet file or a folder of them, read ``batch_rows`` at a time."""

    path: str | Path
    batch_rows: int = 1_000_000

    def __post_init__(self) -> None:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        p = Path(self.path)
        self.files = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
        if not self.files:
            raise AnalysisError(f"{p}: no GeoParquet files")
        meta = pq.read_schema(self.files[0]).metadata or {}
        geo = json.loads(meta.get(b"geo", b"{}"))
        self.geometry = geo.get("primary_column", "geometry")
        crs = geo.get("columns", {}).get(self.geometry, {}).get("crs")
        from pyproj import CRS

        self.crs = CRS.from_json_dict(crs) if isinstance(crs, dict) else CRS.from_user_input(crs or 4326)
        if not self.crs.is_projected:
            raise AnalysisError(f"{self.files[0]}: reports must be in a projected CRS (metres), not {self.crs.name}")
        names = pq.read_schema(self.files[0]).names
        _check_columns(names, str(self.files[0]))
        self.columns = [c for c in (*COLUMNS, "grid_code") if c in names]

    def _batches(self, columns: list[str]) -> Iterable[Any]:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        for f in self.files:
            yield from pq.ParquetFile(f).iter_batches(batch_size=self.batch_rows, columns=columns)

    def xy_chunks(self) -> Iterable[np.ndarray]:
        for b in self._batches([self.geometry]):
            g = shapely.from_wkb(b.column(0).to_numpy(zero_copy_only=False))
            yield np.column_stack([shapely.get_x(g), shapely.get_y(g)])

    def chunks(self) -> Iterable[pd.DataFrame]:
        for b in self._batches([*self.columns, self.geometry]):
            df = b.to_pandas()
            g = shapely.from_wkb(df.pop(self.geometry).to_numpy())
            df["x"], df["y"] = shapely.get_x(g), shapely.get_y(g)
            yield df


def _check_columns(names: Iterable[str], what: str) -> None:
    missing = [c for c in COLUMNS if c not in set(names)]
    if missing:
        raise AnalysisError(f"{what}: the reports lack the column(s) {', '.join(missing)}")


def _flat(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    geom = frame.geometry.to_numpy()
    out = pd.DataFrame({c: frame[c].to_numpy() for c in (*COLUMNS, "grid_code") if c in frame})
    out["x"], out["y"] = shapely.get_x(geom), shapely.get_y(geom)
    return out


class PartitionReader(Protocol):
    """What a task reads: partition ``i``'s rows and those of partitions ``others`` inside any of
    ``boxes`` (or more), with a ``_part`` column (picklable: it travels to the workers)."""

    plan: PartitionPlan

    def read(self, i: int, others: Sequence[int], boxes: Sequence[tuple[float, float, float, float]],
             columns: Sequence[str]) -> pd.DataFrame: ...


def _geo_metadata(crs: Any) -> bytes:
    from pyproj import CRS

    return json.dumps({"version": "1.0.0", "primary_column": "geometry",
                       "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"],
                                                "crs": CRS.from_user_input(crs).to_json_dict()}}}).encode()


def write_partitioned(source: ReportSource | gpd.GeoDataFrame, folder: str | Path, *, npartitions: int,
                      level: int = 16, plan: PartitionPlan | None = None) -> ParquetPartitions:
    """Write the reports once as a GeoParquet dataset of Hilbert partitions (one file per partition,
    sorted by key, row groups of 4096 rows, ``x``/``y``/``hkey`` columns beside the WKB geometry; the
    plan in ``_plan.json``), chunk by chunk: at most one chunk and then one partition in memory."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    src: ReportSource = FrameSource(source) if isinstance(source, gpd.GeoDataFrame) else source
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if plan is None:
        plan = plan_partitions(src.xy_chunks, npartitions=npartitions, crs=src.crs, level=level)
    pieces = folder / "_pieces"
    if pieces.exists():
        shutil.rmtree(pieces)
    pieces.mkdir()
    seen: set[int] = set()
    for c, df in enumerate(src.chunks()):
        if not len(df):
            continue
        df = df.reset_index(drop=True)
        df["hkey"] = plan.keys(df["x"].to_numpy(), df["y"].to_numpy())
        df = df.sort_values("hkey", kind="stable").reset_index(drop=True)
        df["geometry"] = shapely.to_wkb(shapely.points(df["x"].to_numpy(), df["y"].to_numpy()))
        part = np.searchsorted(np.asarray(plan.cuts[1:-1], dtype="int64"), df["hkey"].to_numpy(), side="right")
        bounds = np.searchsorted(part, np.arange(plan.npartitions + 1))
        table = pa.Table.from_pandas(df, preserve_index=False)
        for j in np.flatnonzero(np.diff(bounds)).tolist():
            pq.write_table(table.slice(bounds[j], bounds[j + 1] - bounds[j]), pieces / f"p{j:05d}-c{c:05d}.parquet")
            seen.add(int(j))
    for f in folder.glob("part-*.parquet"):
        f.unlink()
    meta = _geo_metadata(plan.crs)
    for j in range(plan.npartitions):
        files = sorted(pieces.glob(f"p{j:05d}-c*.parquet"))
        if not files:
            continue
        t = pa.concat_tables([pq.read_table(f) for f in files])
        t = t.take(pa.compute.sort_indices(t, sort_keys=[("hkey", "ascending")]))
        t = t.replace_schema_metadata({**(t.schema.metadata or {}), b"geo": meta})
        pq.write_table(t, folder / f"part-{j:05d}.parquet", row_group_size=_ROW_GROUP)
    shutil.rmtree(pieces)
    (folder / PLAN_FILE).write_text(plan.to_json(), encoding="utf-8")
    return ParquetPartitions(folder)


@dataclass
class ParquetPartitions:
    """A dataset written by :func:`write_partitioned`: a task reads its file and its neighbours' rows
    inside a box (pyarrow filters on ``x``/``y``; row groups outside are skipped)."""

    folder: str | Path

    def __post_init__(self) -> None:
        p = Path(self.folder) / PLAN_FILE
        if not p.exists():
            raise AnalysisError(f"{self.folder}: not a partitioned reports dataset (no {PLAN_FILE})")
        self.plan = PartitionPlan.from_json(p.read_text(encoding="utf-8"))

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "plan": self.plan}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.folder, self.plan = state["folder"], state["plan"]

    def read(self, i: int, others: Sequence[int], boxes: Sequence[tuple[float, float, float, float]],
             columns: Sequence[str]) -> pd.DataFrame:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        # one conjunction per box, OR-ed: row groups (Hilbert-sorted, so compact) outside all are skipped
        dnf = [[("x", ">=", x0), ("x", "<=", x1), ("y", ">=", y0), ("y", "<=", y1)] for x0, y0, x1, y1 in boxes]
        frames = []
        for j in [i, *others]:
            f = Path(self.folder) / f"part-{j:05d}.parquet"
            if not f.exists():
                continue
            names = pq.read_schema(f).names
            cols = [c for c in columns if c in names]
            df = pq.read_table(f, columns=cols, filters=None if j == i else dnf).to_pandas()
            df[_PART] = j
            frames.append(df)
        if not frames:
            return pd.DataFrame({c: [] for c in (*columns, _PART)})
        return pd.concat(frames, ignore_index=True)


@dataclass
class PostGISPartitions:
    """Reports in a PostGIS table (the store's ``problems`` layer by default) read by partition: one
    parameterised bounding-box query per task (the GiST index), the rows kept by their key range. The
    plan is made from the table's coordinates, streamed (:func:`plan_partitions`), unless given."""

    url: str
    schema: str = "sanigrid"
    table: str = "problems"
    npartitions: int = 4
    level: int = 16
    plan: PartitionPlan | None = None

    def __post_init__(self) -> None:
        from sanigrid.layers import postgis

        if self.plan is None:
            crs = postgis.table_crs(self.url, schema=self.schema, table=self.table)
            self.plan = plan_partitions(
                lambda: postgis.point_xy_batches(self.url, schema=self.schema, table=self.table),
                npartitions=self.npartitions, crs=crs, level=self.level)

    def read(self, i: int, others: Sequence[int], boxes: Sequence[tuple[float, float, float, float]],
             columns: Sequence[str]) -> pd.DataFrame:
        from sanigrid.layers import postgis

        assert self.plan is not None
        b = np.asarray(boxes, dtype="float64").reshape(-1, 4)
        box = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
        cols = [c for c in columns if c not in ("x", "y")]
        df = postgis.read_points(self.url, schema=self.schema, table=self.table, columns=cols, box=box)
        part = self.plan.partition_of(df["x"].to_numpy(), df["y"].to_numpy())
        keep = np.isin(part, [i, *others])
        df = df[keep].reset_index(drop=True)
        df[_PART] = part[keep]
        return df


@dataclass(frozen=True)
class PartitionedResult:
    """Per report (``problem_id``, ``grid_code``, ``county_code``, ``partition``, ``pile``,
    ``cluster``; -1 = none) and the rebound links (:func:`geo.rebound.rebound_pairs`' columns): Dask
    frames with one partition per spatial partition, kept in the workers and computed when read or
    written (``reports.to_parquet(…)``), from :func:`analyse_partitioned`; pandas frames from
    :func:`analyse_frame`. The piles (centre, ``count``) and the clusters (``cluster`` from 1, largest
    first, ``count``, ``first_report``, ``last_report``, hull buffered by ``eps/2``) in memory, and per
    partition its own reports, the halo its clusters and rebounds read and its rebound links
    (``reports``, ``halo``, ``rebounds``)."""

    reports: Any
    piles: gpd.GeoDataFrame
    clusters: gpd.GeoDataFrame
    rebounds: Any
    partitions: pd.DataFrame

    def report_table(self) -> pd.DataFrame:
        """The per-report table in memory, in ``problem_id`` order."""
        r = self.reports.compute() if hasattr(self.reports, "compute") else self.reports
        return r.sort_values("problem_id", kind="stable").reset_index(drop=True)

    def rebound_table(self) -> gpd.GeoDataFrame:
        """The rebound links in memory, in ``new_id`` order."""
        r = self.rebounds.compute() if hasattr(self.rebounds, "compute") else self.rebounds
        return r.sort_values("new_id", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------ tasks (plain functions of their arguments)
def _in_boxes(x: np.ndarray, y: np.ndarray, boxes: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
    """Which points lie in any of the boxes (closed)."""
    hit = np.zeros(len(x), bool)
    for x0, y0, x1, y1 in boxes:
        hit |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return hit


def _read_local(reader: PartitionReader, i: int, others: Sequence[int], distance_m: float,
                columns: Sequence[str], as_of: datetime | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Partition ``i``'s reports and the halo: the neighbours' reports in its squares grown by
    ``distance_m`` (all within ``distance_m`` of it, and some a little farther: harmless), both without
    the reports after ``as_of``."""
    boxes = reader.plan.boxes(i, distance_m)
    rows = reader.read(i, list(others), boxes, list(columns))
    for c in ("reported_at", "closed_at"):  # one resolution, whichever reader (PostgreSQL: microseconds)
        if c in rows:
            rows[c] = pd.to_datetime(rows[c]).astype("datetime64[ns]")
    if as_of is not None and "reported_at" in rows:
        rows = rows[(rows["reported_at"] <= pd.Timestamp(as_of)).to_numpy()]
    mine = (rows[_PART] == i).to_numpy()
    halo = rows[~mine]
    halo = halo[_in_boxes(halo["x"].to_numpy(), halo["y"].to_numpy(), boxes)]
    return rows[mine].reset_index(drop=True), halo.reset_index(drop=True)


def _light(rows: pd.DataFrame, grids: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """The columns the analyses need, grid and county assigned."""
    out = rows.copy()
    if grids is not None and len(grids):
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(out["x"], out["y"]), crs=grids.crs)
        code = assign_grid(pts, grids).to_numpy()
    else:
        code = out["grid_code"].to_numpy() if "grid_code" in out else np.full(len(out), None)
    out["grid_code"] = code
    s = pd.Series(code, dtype="object")
    out["county_code"] = s.str.slice(0, COUNTY_DIGITS).where(s.notna(), None).to_numpy() if len(s) else code
    return out


def _without(part: pd.DataFrame, leave_out: np.ndarray | None) -> pd.DataFrame:
    """The rows less those in ``leave_out`` (reports in a pile)."""
    if leave_out is None or not len(leave_out) or not len(part):
        return part
    return part[~np.isin(part["problem_id"].to_numpy(), leave_out)]


def _near(part: pd.DataFrame, boxes: Sequence[tuple[float, float, float, float]]) -> pd.DataFrame:
    return part[_in_boxes(part["x"].to_numpy(), part["y"].to_numpy(), boxes)] if len(part) else part


def _cell_key(c: np.ndarray) -> np.ndarray:
    return (c[:, 0] << 32) + c[:, 1]


def _pile_spots(own: pd.DataFrame, halo: pd.DataFrame, origin: np.ndarray, th: Thresholds) -> pd.DataFrame:
    """Reports in the 5 × 5 cell block around each candidate cell of the partition's own reports."""
    local = pd.concat([own, halo], ignore_index=True)
    empty = local.iloc[:0][["problem_id", "x", "y"]]
    if len(local) < th.pile_min_count or not len(own):
        return empty
    xy = local[["x", "y"]].to_numpy(dtype="float64")
    tol = th.pile_tolerance_m if th.pile_tolerance_m > 0 else 1e-3
    c = np.floor((xy - origin) / tol).astype("int64") + 4  # ≥ 0 with room for the offsets
    key = _cell_key(c)
    cells, counts = np.unique(key, return_counts=True)
    own_cells = np.unique(key[: len(own)])
    oc = np.column_stack([own_cells >> 32, own_cells & 0xFFFFFFFF])
    block = np.zeros(len(own_cells), dtype="int64")
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            k = _cell_key(oc + [di, dj])
            j = np.minimum(np.searchsorted(cells, k), len(cells) - 1)
            block += np.where(cells[j] == k, counts[j], 0)
    cand = oc[block >= th.pile_min_count]
    if not len(cand):
        return empty
    spots = np.unique(np.concatenate([_cell_key(cand + [di, dj]) for di in range(-2, 3) for dj in range(-2, 3)]))
    return local.loc[np.isin(key, spots), ["problem_id", "x", "y"]]


def _spots_task(reader: PartitionReader, i: int, others: list[int], th: Thresholds,
                as_of: datetime | None) -> pd.DataFrame:
    h = 5.0 * max(th.pile_tolerance_m, 1e-3)
    cols = ["problem_id", "x", "y"] + (["reported_at"] if as_of is not None else [])
    own, halo = _read_local(reader, i, others, h, cols, as_of)
    return _pile_spots(own, halo, np.asarray(reader.plan.origin), th)


def _local_clusters(own: pd.DataFrame, halo: pd.DataFrame, near_own: Sequence[tuple[float, float, float, float]],
                    near_others: Sequence[tuple[float, float, float, float]], th: Thresholds) -> dict[str, Any]:
    """DBSCAN on the partition and its halo: own labels, partial cluster summaries, and the core points
    near the edges (with their local labels) that tie clusters across partitions. ``near_own``: the
    partition's squares grown by ``eps_m`` (halo points in them have an exact core status);
    ``near_others``: the neighbours' (own points in them are seen exactly there). Both may hold a
    little more than the points within ``eps_m``: a local core point is a core point whatever the
    halo, so an extra shared point only adds a true link."""
    local = pd.concat([own, halo], ignore_index=True)
    n_own = len(own)
    xy = local[["x", "y"]].to_numpy(dtype="float64")
    lab = dbscan_labels(xy, eps_m=th.eps_m, min_samples=th.min_samples, workers=1)
    exact = np.zeros(len(local), bool)
    exact[:n_own] = True
    if len(local) > n_own:
        exact[n_own:] = _in_boxes(xy[n_own:, 0], xy[n_own:, 1], near_own)
    shared = np.zeros(len(local), bool)  # own points another partition sees as exact, and the exact halo points
    shared[n_own:] = exact[n_own:]
    if len(near_others) and n_own:
        shared[:n_own] = (lab[:n_own] >= 0) & _in_boxes(xy[:n_own, 0], xy[:n_own, 1], near_others)
    ask = np.flatnonzero(shared & (lab >= 0))
    core = np.zeros(len(local), bool)
    if len(ask):
        n_near = cKDTree(xy).query_ball_point(xy[ask], r=th.eps_m, return_length=True)
        core[ask] = np.asarray(n_near) >= th.min_samples
    links = pd.DataFrame({"problem_id": local["problem_id"].to_numpy()[core], "label": lab[core]})
    own_lab = lab[:n_own]
    sel = own_lab >= 0
    parts = pd.DataFrame({"label": own_lab[sel], "reported_at": pd.to_datetime(own["reported_at"]).to_numpy()[sel],
                          "problem_id": own["problem_id"].to_numpy()[sel]})
    g = parts.groupby("label")
    summary = pd.DataFrame({"count": g.size(), "first_report": g["reported_at"].min(),
                            "last_report": g["reported_at"].max(), "min_id": g["problem_id"].min()})
    if len(parts):
        order = np.argsort(own_lab[sel], kind="stable")
        uniq, dense = np.unique(own_lab[sel][order], return_inverse=True)  # the groupby's sorted labels
        hull = shapely.convex_hull(shapely.multipoints(xy[:n_own][sel][order], indices=dense.ravel()))
        summary["hull"] = pd.Series(hull, index=uniq).reindex(summary.index).to_numpy()
    else:
        summary["hull"] = pd.Series([], dtype=object)
    return {"labels": pd.DataFrame({"problem_id": own["problem_id"].to_numpy(), "label": own_lab}),
            "links": links, "summary": summary.reset_index(), "halo": len(local) - n_own,
            "n_labels": int(lab.max()) + 1 if len(lab) else 0}


def _local_rebounds(own: pd.DataFrame, halo: pd.DataFrame, crs: Any, as_of: datetime | None,
                    th: Thresholds) -> gpd.GeoDataFrame:
    """Rebound links whose new report is the partition's own (halo: ``radius_m``)."""
    local = pd.concat([own, halo], ignore_index=True)
    frame = gpd.GeoDataFrame(local, geometry=gpd.points_from_xy(local["x"], local["y"]), crs=crs)
    pairs = rebound_pairs(frame, radius_m=th.radius_m, window_days=th.window_days, as_of=as_of)
    return pairs[pairs["new_id"].isin(own["problem_id"])]


def _analyse_task(reader: PartitionReader, i: int, others: list[int], near: list[int], in_pile: np.ndarray,
                  grids: gpd.GeoDataFrame | None, th: Thresholds, as_of: datetime | None) -> dict[str, Any]:
    """A partition's grids, counties, clusters and rebounds from one read of it and its halo."""
    h = max(2.0 * th.eps_m, th.radius_m)
    cols = [*COLUMNS, "grid_code", "x", "y"]
    own, halo = _read_local(reader, i, others, h, cols, as_of)
    own, halo = _light(own, grids), _light(halo, grids)
    plan = reader.plan
    drop = in_pile if th.exclude_piles else None
    h_cl = 2.0 * th.eps_m
    res = _local_clusters(_without(own, drop), _near(_without(halo, drop), plan.boxes(i, h_cl)),
                          plan.boxes(i, th.eps_m), [b for j in near for b in plan.boxes(j, th.eps_m)], th)
    rb = _local_rebounds(_without(own, in_pile), _near(_without(halo, in_pile), plan.boxes(i, th.radius_m)),
                         reader.plan.crs, as_of, th)
    labels = own[["problem_id", "grid_code", "county_code"]].copy()
    labels["partition"] = i
    lab = pd.Series(res["labels"]["label"].to_numpy(), index=res["labels"]["problem_id"].to_numpy())
    labels["label"] = labels["problem_id"].map(lab).fillna(-1).astype("int64").to_numpy()
    res["labels"] = labels
    res["rebounds"] = rb.reset_index(drop=True)
    res["n_rebounds"] = len(rb)
    res["reports"] = len(own)
    return res


def _small(res: dict[str, Any]) -> dict[str, Any]:
    """What travels back of a partition: shared core points, partial summaries and sizes."""
    return {k: v for k, v in res.items() if k not in ("labels", "rebounds")}


def _rebounds_of(res: dict[str, Any]) -> gpd.GeoDataFrame:
    return res["rebounds"]


def _report_rows(res: dict[str, Any], mapping: dict[int, int], pile_of: pd.Series) -> pd.DataFrame:
    """A partition's reports with their grid, county, pile and cluster (-1: none)."""
    lab = res["labels"]
    out = lab[["problem_id", "grid_code", "county_code", "partition"]].copy()
    out["pile"] = out["problem_id"].map(pile_of).fillna(-1).astype("int64")
    out["cluster"] = lab["label"].map(mapping).fillna(-1).astype("int64").to_numpy()
    return out


def _join_clusters(local: list[dict[str, Any]], *, eps_m: float, crs: Any) -> tuple[list[dict[int, int]],
                                                                                    gpd.GeoDataFrame]:
    """Union-find over (partition, local cluster) through the core points two partitions share; the
    clusters numbered from 1 by count (largest first), then first report, then smallest id."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    offsets = np.cumsum([0] + [max(r["n_labels"], 0) for r in local])
    n = int(offsets[-1])
    links = pd.concat([r["links"].assign(node=r["links"]["label"] + offsets[i]) for i, r in enumerate(local)],
                      ignore_index=True)
    summ = pd.concat([r["summary"].assign(node=r["summary"]["label"] + offsets[i]) for i, r in enumerate(local)],
                     ignore_index=True)
    if not len(summ):
        empty = gpd.GeoDataFrame({"cluster": [], "count": []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
        return [{} for _ in local], empty
    # every node linked to the first node of its shared core point: connected components are the clusters
    links = links.sort_values(["problem_id", "node"], kind="stable")
    first = links.groupby("problem_id")["node"].transform("first").to_numpy()
    nodes = links["node"].to_numpy()
    graph = coo_matrix((np.ones(len(nodes)), (nodes, first)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    summ["root"] = comp[summ["node"].to_numpy()]
    g = summ.groupby("root")
    table = pd.DataFrame({"count": g["count"].sum(), "first_report": g["first_report"].min(),
                          "last_report": g["last_report"].max(), "min_id": g["min_id"].min()})
    multi = g.size() > 1
    hulls = pd.Series(summ.groupby("root")["hull"].first())
    if multi.any():
        joined = summ[summ["root"].isin(multi.index[multi])].groupby("root")["hull"].agg(
            lambda s: shapely.convex_hull(shapely.union_all(s.to_numpy())))
        hulls.loc[joined.index] = joined
    table = table.sort_values(["count", "first_report", "min_id"], ascending=[False, True, True])
    number = pd.Series(np.arange(1, len(table) + 1), index=table.index)
    out = gpd.GeoDataFrame({"cluster": number.to_numpy(), "count": table["count"].to_numpy().astype("int64"),
                            "first_report": table["first_report"].to_numpy(),
                            "last_report": table["last_report"].to_numpy()},
                           geometry=shapely.buffer(hulls.reindex(table.index).to_numpy(), eps_m / 2.0, quad_segs=4),
                           crs=crs)
    num = number.reindex(summ["root"].to_numpy()).to_numpy()
    mapping = []
    for i in range(len(local)):
        sel = (summ["node"].to_numpy() >= offsets[i]) & (summ["node"].to_numpy() < offsets[i + 1])
        mapping.append(dict(zip((summ["node"].to_numpy()[sel] - offsets[i]).tolist(), num[sel].tolist(),
                                strict=True)))
    return mapping, out


# ------------------------------------------------------------------ the pipeline
def analyse_partitioned(reader: PartitionReader, *, settings: Settings, grids: gpd.GeoDataFrame | None = None,
                        as_of: datetime | None = None) -> PartitionedResult:
    """Grids and counties, piles, clusters and rebounds of reports in spatial partitions (see the module
    docstring): two tasks per partition, each reading its partition and a halo from ``reader``
    (:class:`ParquetPartitions`, :class:`PostGISPartitions`). Equal to :func:`analyse_frame` on the
    same reports."""
    import dask
    import dask.dataframe as dd

    th = Thresholds.of(settings)
    plan = reader.plan.with_regions()
    crs = plan.crs
    if grids is not None and len(grids):
        grids = grids.to_crs(crs)
    k = plan.npartitions
    live = [i for i in range(k) if plan.counts[i] > 0]
    reader_task = dask.delayed(reader, traverse=False)  # one copy in the graph, not one per partition
    nb_pile = plan.neighbours(5.0 * max(th.pile_tolerance_m, 1e-3))
    spots = dask.compute(*[dask.delayed(_spots_task)(reader_task, i, nb_pile[i], th, as_of)
                           for i in live])
    spot = pd.concat(spots, ignore_index=True).drop_duplicates("problem_id") if spots else pd.DataFrame(
        {"problem_id": [], "x": [], "y": []})
    spot = spot.sort_values("problem_id", kind="stable").reset_index(drop=True)
    found = find_piles(spot[["x", "y"]].to_numpy(dtype="float64"), min_count=th.pile_min_count,
                       tolerance_m=th.pile_tolerance_m, origin=plan.origin)
    pile_of = pd.Series(found.label, index=spot["problem_id"].to_numpy())
    pile_of = pile_of[pile_of >= 0]
    in_pile = pile_of.index.to_numpy()
    piles = gpd.GeoDataFrame({"pile": np.arange(len(found)), "count": found.count},
                             geometry=gpd.points_from_xy(found.centre[:, 0], found.centre[:, 1]) if len(found)
                             else gpd.GeoSeries([], crs=crs), crs=crs)

    nb = plan.neighbours(max(2.0 * th.eps_m, th.radius_m))
    nb_cl = plan.neighbours(th.eps_m)
    pile_task, grid_task = dask.delayed(in_pile, traverse=False), dask.delayed(grids, traverse=False)
    local = [dask.delayed(_analyse_task)(reader_task, i, nb[i], nb_cl[i], pile_task, grid_task, th, as_of)
             for i in live]
    local = list(dask.persist(*local))  # the labels stay where they were computed
    small = list(dask.compute(*[dask.delayed(_small)(r) for r in local]))
    mapping, clusters = _join_clusters(small, eps_m=th.eps_m, crs=crs)
    pile_task = dask.delayed(pile_of, traverse=False)
    rows = [dask.delayed(_report_rows)(local[n], mapping[n], pile_task) for n in range(len(live))]
    meta = pd.DataFrame({"problem_id": pd.Series(dtype="int64"), "grid_code": pd.Series(dtype="object"),
                         "county_code": pd.Series(dtype="object"), "partition": pd.Series(dtype="int64"),
                         "pile": pd.Series(dtype="int64"), "cluster": pd.Series(dtype="int64")})
    reports = dd.from_delayed(rows, meta=meta, verify_meta=False)
    import dask_geopandas  # noqa: F401  (registers the GeoDataFrame backend)

    rb_meta = _local_rebounds(pd.DataFrame({c: [] for c in (*COLUMNS, "x", "y", "grid_code")}).astype(
        {"problem_id": "int64", "reported_at": "datetime64[ns]", "closed_at": "datetime64[ns]", "x": "float64",
         "y": "float64"}), pd.DataFrame(), crs, as_of, th)
    rebounds = dd.from_delayed([dask.delayed(_rebounds_of)(r) for r in local], meta=rb_meta, verify_meta=False) \
        if local else rb_meta
    parts = pd.DataFrame({"partition": live, "reports": [r["reports"] for r in small],
                          "halo": [r["halo"] for r in small], "rebounds": [r["n_rebounds"] for r in small]})
    return PartitionedResult(reports=reports, piles=piles, clusters=clusters, rebounds=rebounds, partitions=parts)


def analyse_frame(reports: gpd.GeoDataFrame, *, settings: Settings, grids: gpd.GeoDataFrame | None = None,
                  as_of: datetime | None = None) -> PartitionedResult:
    """The same results from one frame with the single-county functions (the oracle of
    :func:`analyse_partitioned`; reports taken in ``problem_id`` order; the piles' lattice origin is
    the reports' lower-left corner)."""
    th = Thresholds.of(settings)
    projected(reports, "reports")
    _check_columns(reports.columns, "reports")
    p = reports.sort_values("problem_id", kind="stable").reset_index(drop=True)
    flat = _flat(p)
    origin = (float(flat["x"].min()), float(flat["y"].min())) if len(flat) else None
    if as_of is not None:
        flat = flat[(pd.to_datetime(flat["reported_at"]) <= pd.Timestamp(as_of)).to_numpy()].reset_index(drop=True)
    light = _light(flat, grids.to_crs(p.crs) if grids is not None and len(grids) else grids)
    xy = light[["x", "y"]].to_numpy(dtype="float64")
    found = find_piles(xy, min_count=th.pile_min_count, tolerance_m=th.pile_tolerance_m, origin=origin)
    in_pile = found.label >= 0
    use = ~in_pile if th.exclude_piles else np.ones(len(light), bool)
    res = _local_clusters(light[use].reset_index(drop=True), light.iloc[:0], [], [], th)
    mapping, clusters = _join_clusters([res], eps_m=th.eps_m, crs=p.crs)
    pile_of = pd.Series(found.label, index=light["problem_id"].to_numpy())
    lab = pd.Series(res["labels"]["label"].to_numpy(), index=res["labels"]["problem_id"].to_numpy())
    labels = light[["problem_id", "grid_code", "county_code"]].copy()
    labels["partition"] = 0
    labels["label"] = labels["problem_id"].map(lab).fillna(-1).astype("int64").to_numpy()
    out = _report_rows({"labels": labels}, mapping[0], pile_of[pile_of >= 0])
    frame = gpd.GeoDataFrame(light, geometry=gpd.points_from_xy(light["x"], light["y"]), crs=p.crs)
    keep = ~in_pile
    rebounds = rebound_pairs(frame[keep], radius_m=th.radius_m, window_days=th.window_days, as_of=as_of)
    piles = gpd.GeoDataFrame({"pile": np.arange(len(found)), "count": found.count},
                             geometry=gpd.points_from_xy(found.centre[:, 0], found.centre[:, 1]) if len(found)
                             else gpd.GeoSeries([], crs=p.crs), crs=p.crs)
    return PartitionedResult(reports=out, piles=piles, clusters=clusters,
                             rebounds=rebounds.sort_values("new_id").reset_index(drop=True),
                             partitions=pd.DataFrame({"partition": [0], "reports": [len(p)], "halo": [0],
                                                      "rebounds": [len(rebounds)]}))


def _own_frame(reader: PartitionReader, i: int) -> gpd.GeoDataFrame:
    own, _ = _read_local(reader, i, [], 0.0, [*COLUMNS, "grid_code", "x", "y"], None)
    own = own.drop(columns=[_PART])
    return gpd.GeoDataFrame(own, geometry=gpd.points_from_xy(own["x"], own["y"]), crs=reader.plan.crs)


def partitions_frame(reader: PartitionReader) -> Any:
    """The reports as a dask-geopandas frame, one partition per key range (read lazily, each by its own
    query or file), with the regions as ``spatial_partitions``: for any other per-partition work."""
    import dask
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401  (registers the GeoDataFrame backend)

    plan = reader.plan.with_regions()
    live = [i for i in range(plan.npartitions) if plan.counts[i] > 0]
    task = dask.delayed(reader, traverse=False)
    meta = _own_frame(reader, live[0]).iloc[:0] if live else None
    ddf = dd.from_delayed([dask.delayed(_own_frame)(task, i) for i in live], meta=meta)
    ddf.spatial_partitions = gpd.GeoSeries([plan.regions[i] for i in live], crs=plan.crs)
    return ddf
