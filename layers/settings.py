"""Project settings: one TOML file beside the store.

Every threshold a county might dispute lives here with a default and the source it comes from
(see STANDARDS.md). ``sanigrid init`` writes the defaults; counties edit the file. Load with
:func:`load_settings`, write with :func:`save_settings`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sanigrid.layers._errors import SanigridError, SettingsError
from sanigrid.layers.catalogue import CATALOGUE, FACILITY_KINDS, SAMPLE_CATEGORIES
from sanigrid.layers.gpkginfo import SETTINGS_NAME as SETTINGS_NAME  # re-exported: its home is gpkginfo
from sanigrid.layers.gpkginfo import settings_toml_data


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProjectSettings(_Model):
    name: str = "示例县城"
    county_code: str = Field("000000", pattern=r"^\d{6}$", description="6-digit county code (GB/T 2260)")
    crs: str = Field("", description="projected CRS in metres (e.g. EPSG:4548, or EPSG:32630 outside China); "
                     "blank = chosen from the first import (CGCS2000 Gauss-Kruger zone in China, UTM elsewhere) "
                     "and written here")
    store_url: str = Field("", description="postgresql://user@host/db for a shared PostGIS store; "
                           "blank = the GeoPackage beside the settings")
    store_schema: str = Field("sanigrid", pattern=r"^[a-z_][a-z0-9_]*$",
                              description="PostGIS schema of this county (one per county on a shared database)")
    language: Literal["zh", "en"] = "zh"
    population: int = Field(300_000, description="county population; picks the sampling quota class")
    time_zone: str = Field("Asia/Shanghai", description="IANA time zone of the county: times with a UTC offset "
                           "(+08:00, Z, -05:00) are converted to it; times without one are taken as local")
    attribution: str = ""

    @field_validator("crs", mode="before")
    @classmethod
    def _blank_crs(cls, v: object) -> object:
        return "" if v is None else v

    @field_validator("crs")
    @classmethod
    def _metric_crs(cls, v: str) -> str:
        if v.strip():
            from sanigrid.layers.crs import metric_crs

            try:
                metric_crs(v.strip(), what="[project] crs")
            except SanigridError as e:
                raise ValueError(str(e)) from None
        return v.strip()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone '{v}' is not an IANA time zone name; use e.g. Asia/Shanghai, Asia/Urumqi, "
                             "America/New_York, Europe/London") from None
        return v


class FacilityPreset(_Model):
    radius_m: float = Field(gt=0)
    source: str
    zh: str = ""


def _facilities() -> dict[str, FacilityPreset]:
    return {
        "toilets": FacilityPreset(radius_m=300, zh="公厕",
                                  source="GB 55013-2021 市容环卫工程项目规范 §5.0.1: 服务半径≤300 m"),
        "collection_points": FacilityPreset(radius_m=120, zh="垃圾收集点",
                                            source="GB 55013-2021 §3.2.2: 居住区收集点服务半径≤120 m"),
        "transfer_stations": FacilityPreset(radius_m=1000, zh="垃圾中转站",
                                            source="CJJ/T 47-2016 §2.2.7: 人力收集≤0.4 km, 最大≤1 km"),
        "markets": FacilityPreset(radius_m=500, zh="农贸市场",
                                  source="GB 50180-2018: 10分钟生活圈步行半径500 m"),
    }


def _check_facility_kinds(kinds: Iterable[str], *, where: str) -> None:
    """Refuse a facility kind that is not a point layer of the catalogue, naming it and the known kinds."""
    unknown = [str(k) for k in kinds if k not in FACILITY_KINDS]
    if unknown:
        raise ValueError(f"unknown facility kind {', '.join(repr(k) for k in unknown)} in [{where}]; "
                         f"a facility preset names a point layer kind, one of: {', '.join(FACILITY_KINDS)}")


class SpacingSettings(_Model):
    busy_street_max_m: float = 500
    ordinary_street_max_m: float = 1000
    source: str = "CJ J 14 / GB 50337-2003 地方细则: 繁华街道300-500 m, 一般街道750-1000 m"


class ToiletClassSettings(_Model):
    min_class: Literal["一类", "二类", "三类"] = "二类"
    road_classes: list[str] = ["主干路", "次干路"]
    near_m: float = Field(50, description="a toilet this close to a main road or market counts as on it")
    source: str = "2021 国家卫生城市和国家卫生县城标准; CJJ 14-2016: 主干路、农贸市场等处公厕不低于二类"


class NetworkSettings(_Model):
    snap_tolerance_m: float = Field(1.0, ge=0, description="line ends closer than this are joined")
    max_snap_m: float = Field(200, gt=0, description="facilities/demand farther than this from a street are reported")
    candidate_spacing_m: float = Field(50, gt=0, description="spacing of generated candidate sites")
    min_distance_to_existing_m: float = Field(0, ge=0)
    area_buffer_m: float = Field(25, gt=0, description="half-width of service-area polygons around reached streets")
    exact_time_limit_s: float = Field(60, gt=0, description="time limit of exact siting; best solution + bound after")


class ProblemCategory(_Model):
    name: str
    code: str = ""
    group: str = ""
    deadline: float = Field(1, gt=0)
    unit: Literal["hours", "workdays"] = "workdays"
    route_to: str = Field("", description="responsible unit; blank = the grid's lead unit")
    weight: float = Field(1.0, ge=0, description="weight in readiness and mock-check scores")


def _categories() -> list[ProblemCategory]:
    c = ProblemCategory
    return [
        c(name="暴露垃圾", code="0102", group="市容环境", deadline=4, unit="hours", weight=2),
        c(name="积存垃圾渣土", code="0103", group="市容环境", deadline=1, weight=2),
        c(name="私搭乱建", code="0101", group="市容环境", deadline=5, route_to="县城管局", weight=1.5),
        c(name="道路破损", code="0110", group="市容环境", deadline=5, route_to="县住建局"),
        c(name="非法小广告", code="0201", group="宣传广告", deadline=1),
        c(name="乱设广告", code="0202", group="宣传广告", deadline=3),
        c(name="占道经营", code="0501", group="街面秩序", deadline=2, unit="hours", weight=1.5),
        c(name="店外经营", code="0504", group="街面秩序", deadline=4, unit="hours", weight=1.5),
        c(name="机动车乱停放", code="0505", group="街面秩序", deadline=2, unit="hours",
          route_to="县公安局交警大队"),
        c(name="非机动车乱停放", code="0506", group="街面秩序", deadline=2, unit="hours"),
        c(name="乱堆物料", code="0507", group="街面秩序", deadline=1),
        c(name="沿街晾挂", code="0511", group="街面秩序", deadline=4, unit="hours", weight=0.5),
        c(name="乱拉乱挂", code="0512", group="街面秩序", deadline=1),
        c(name="乱排污水", code="0108", group="市容环境", deadline=2, weight=1.5),
        c(name="公厕脏乱", code="0120", group="环卫设施", deadline=4, unit="hours", weight=2),
        c(name="其他", code="9999", group="其他", deadline=3, weight=0.5),
    ]


class ProblemSettings(_Model):
    categories: list[ProblemCategory] = Field(default_factory=_categories)
    holidays: list[date] = Field(default_factory=list, description="non-working days besides weekends")
    workdays_extra: list[date] = Field(default_factory=list, description="weekend days worked (调休)")
    after_photo_required: bool = Field(True, description="处置 → 核查 needs a photo taken after handling began "
                                       "(issue 13: the handler shows the work; the inspector checks it)")
    snapshot_after_days: float = Field(30, gt=0, description="data whose last event is older than this are a "
                                       "snapshot: open/overdue counted at the midnight after that event, not now")
    source: str = "GB/T 30428 / CJ/T 214 事件分类; 时限由各县自定 (例: 暴露垃圾4个工作小时)"

    @model_validator(mode="after")
    def _unique(self) -> ProblemSettings:
        names = [c.name for c in self.categories]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"problem category names must be unique; repeated: {', '.join(sorted(dup))}")
        return self

    def category(self, name: str) -> ProblemCategory | None:
        return next((c for c in self.categories if c.name == name), None)


class PileSettings(_Model):
    """Default-geocode piles, one rule for the import check, the hotspots and the rebounds."""

    min_count: int = Field(20, ge=2, description="this many records within tolerance_m of one point = a pile "
                           "(a default geocode such as the city hall), warned at import, left out of analyses")
    tolerance_m: float = Field(1.0, ge=0, description="records this close to the pile's point belong to it")
    source: str = ("no standard: a judgement. A real spot rarely gets 20 reports on the same metre; geocoders "
                   "put every address they cannot place on one default point")


class ValidationSettings(_Model):
    date_order_tolerance_s: float = Field(0, ge=0, description="a case closed at most this many seconds before "
                                          "it was reported is accepted with a warning (clock skew between "
                                          "systems); more is an error")
    outside_buffer_m: float = Field(50, ge=0, description="features this close outside the grids still count as inside")
    boundary_buffer_m: float = Field(0, ge=0, description="features this far outside the county boundary layer "
                                     "(the official polygon) still count as inside")
    spread_min_count: int = Field(10, ge=3, description="without a boundary or grids, far-off points are found "
                                  "from the layer's own spread when it has at least this many features")
    spread_k: float = Field(8, gt=0, description="a feature farther from the layer's median location than "
                            "median + spread_k × 1.4826 × MAD of the distances is a robust outlier (warning)")
    spread_min_m: float = Field(3000, ge=0, description="robust outliers closer than this to the median location "
                                "are not reported (a compact town)")
    far_m: float = Field(150_000, gt=0, description="a feature this far from the layer's median location is "
                         "rejected: no county is that wide")
    spread_source: str = "robust statistics (median and MAD, Hampel 1974); thresholds a county may tune"


def _osm_road_class() -> dict[str, str]:
    # CJJ 37 urban road classes on OSM China's tagging (primary 主干路, secondary 次干路, tertiary 支路);
    # "" leaves the way out (no pedestrians, or not a usable street); values not listed become 其他
    main, second, branch, lane, other = "主干路", "次干路", "支路", "街巷", "其他"
    out = dict.fromkeys(("trunk", "trunk_link", "primary", "primary_link"), main)
    out |= dict.fromkeys(("secondary", "secondary_link"), second)
    out |= dict.fromkeys(("tertiary", "tertiary_link", "unclassified"), branch)
    out |= dict.fromkeys(("residential", "living_street", "service", "pedestrian", "footway", "path", "steps"), lane)
    out |= dict.fromkeys(("track", "cycleway", "road"), other)
    out |= dict.fromkeys(("motorway", "motorway_link", "construction", "proposed", "abandoned", "platform",
                          "raceway", "bus_guideway", "busway", "corridor", "elevator", "escape", "via_ferrata",
                          "bridleway"), "")
    return out


class ImportSettings(_Model):
    columns: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per layer kind, file column → catalogue field, e.g. [imports.columns.toilets] 厕所名称 = 'name'")
    osm_road_class: dict[str, str] = Field(
        default_factory=_osm_road_class,
        description="OSM highway=* → streets road_class; '' leaves the way out; unlisted values become 其他")
    osm_road_class_source: str = "CJJ 37-2012 城市道路分级; OSM China tagging (primary/secondary/tertiary)"
    values: dict[str, dict[str, dict[str, str]]] = Field(
        default_factory=dict,
        description="per layer kind and field, file value → allowed value, e.g. [imports.values.problems.source] "
                    "'Constituent Call' = '群众举报' (saved by `sanigrid import … --values … --save-mapping`)")


class HotspotSettings(_Model):
    exclude_piles: bool = True
    cluster_min_size: int = Field(15, ge=2)
    cluster_eps_m: float = Field(60, gt=0)
    cell_size_m: float | None = Field(None, description="blank = chosen from the data")
    band_m: float | None = Field(None, description="Gi* distance band; blank = from the cell size")
    fdr: bool = True
    weeks: int = Field(12, ge=0, description="weekly bins for the emerging hot spot trend (ArcGIS: ≥ 10)")
    per_km_street: bool = Field(False, description="Gi* on reports per km of street in each cell, not counts")


class ReboundSettings(_Model):
    radius_m: float = Field(50, gt=0)
    window_days: float = Field(30, gt=0)


class ComponentSettings(_Model):
    """Street furniture (城市部件): the kinds a ``components`` layer may hold."""

    kinds: list[str] = Field(
        default_factory=lambda: ["路沿石", "绿化带", "井盖", "路灯", "垃圾桶", "果皮箱", "护栏", "座椅", "标识牌",
                                 "其他"],
        description="component kinds (部件类型) the components layer may hold; add the county's own")
    source: str = ("GB/T 30428.2 (替代 CJ/T 214) 数字化城市管理 城市部件分类; 完好/破损/缺失 as a 部件普查 records "
                   "them; the speech: 路沿石、绿化带等市政维护不完善")


class ScorecardSettings(_Model):
    weights: dict[str, float] = Field(default_factory=lambda: {
        "problems_per_km": 0.25, "on_time_rate": 0.25, "overdue": 0.15, "rebound_rate": 0.15,
        "coverage": 0.1, "hardening_rate": 0.1, "facade_rate": 0.05, "components_good": 0.05},
        description="weight of each indicator in the composite score; an indicator a grid lacks (no facades or "
                    "components layer) drops out with its weight")
    prior_strength: float = Field(20, gt=0, description="pseudo-count of the shrinkage prior")
    unit_weights: dict[str, float] = Field(default_factory=lambda: {
        "on_time_rate": 0.4, "overdue_rate": 0.3, "rebound_rate": 0.2, "priority_rate": 0.1},
        description="weights of the department ranking (职能部门排名: 按期结案率, 逾期率, 反弹率, 督办率); "
                    "a county's own choice, no standard sets them")


def _quota_table() -> dict[str, dict[str, int]]:
    # rows 主次干道 and 社区居委会 are the 2014 technical-evaluation minimums (V); the other rows were
    # not found in a source and are a starting point for the county to set
    base = {"医院": (4, 5, 6), "学校": (6, 8, 10), "车站": (2, 3, 4), "建筑工地": (4, 5, 6),
            "居民小区": (8, 10, 12), "五小场所": (20, 26, 32), "农贸市场": (3, 4, 5), "背街小巷": (10, 13, 16),
            "公厕": (8, 10, 12), "垃圾中转站": (2, 3, 4), "主次干道": (8, 12, 15), "社区居委会": (2, 3, 4)}
    return {cls: {cat: n[i] for cat, n in base.items()} for i, cls in enumerate(("small", "medium", "large"))}


def _gap_kinds() -> dict[str, list[str]]:
    street = ("toilets", "collection_points")
    return {"主次干道": [*street], "背街小巷": [*street], "农贸市场": [*street], "车站": ["toilets"],
            "居民小区": ["collection_points", "markets", "toilets"], "城中村": [*street, "transfer_stations"],
            "五小场所": ["collection_points"]}


def _penalties() -> dict[str, float]:
    return {"overdue": 15, "open": 5, "rebound": 10, "coverage_gap": 10, "unhardened": 25, "unlit": 10,
            "toilet_class": 15, "dry_toilet": 40, "market_unstandardized": 20, "missing_document": 10,
            "expired_document": 5}


class SamplingSettings(_Model):
    quota_table: dict[str, dict[str, int]] = Field(
        default_factory=_quota_table,
        description="sample points per category by population class small (<50万) / medium (50-200万) / large")
    population_breaks: list[int] = Field([500_000, 2_000_000], description="population class limits")
    quotas: dict[str, int] = Field(default_factory=dict,
                                   description="county overrides of the quota table, e.g. 公厕 = 12")
    quota_source: str = ("2014 技术评估 最少抽查单位 (人口<50万/50-200万/>200万): 主次干道8/12/15, "
                         "社区居委会2/3/4 (V); 其余类别未见原文, 按本县实际设定")
    min_spacing_m: float = Field(200, ge=0, description="minimum distance between two picks of one category")
    radius_m: float = Field(50, gt=0, description="problems within this distance count against a place")
    gap_near_m: float = Field(30, ge=0, description="a place this close to a coverage-gap street lies in the gap")
    gap_kinds: dict[str, list[str]] = Field(
        default_factory=_gap_kinds,
        description="sample category → facility kinds whose coverage gaps count against its places "
                    "(a judgement, not a standard: edit to the county's checklist)")

    @field_validator("gap_kinds")
    @classmethod
    def _known_gap_kinds(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for category, kinds in v.items():
            _check_facility_kinds(kinds, where=f"sampling.gap_kinds.{category}")
        return v
    rebound_window_days: float = Field(90, gt=0, description="rebounds reported again within this many days "
                                                             "before the as-of date count against a place")
    dedupe_m: float = Field(20, ge=0, description="a listed sample point this close to a layer feature of "
                                                  "the same category is the same place")
    street_classes: list[str] = Field(["主干路", "次干路"], description="road classes sampled as 主次干道")
    penalties: dict[str, float] = Field(
        default_factory=_penalties,
        description="readiness points lost per finding (problems: times the category weight); start 100")
    pass_score: float = Field(80, ge=0, le=100, description="readiness below this fails a spot-check")
    spot_checks: dict[str, int] = Field(default_factory=dict, description="places drawn per category by the "
                                                                           "inspectors; missing = spot_check_default")
    spot_check_default: int = Field(3, gt=0)
    deduction: float = Field(1.0, ge=0, description="score points lost by a drawn place at readiness 0 "
                                                    "(scaled by 1 - readiness/100 for failing places)")
    draws: int = Field(10_000, gt=0)
    seed: int = 2026

    def population_class(self, population: int) -> str:
        """``small`` / ``medium`` / ``large`` from the county population."""
        lo, hi = (sorted(self.population_breaks) + [2**62, 2**62])[:2]
        return "small" if population < lo else "medium" if population < hi else "large"

    def quotas_for(self, population: int) -> dict[str, int]:
        """The quota per category: the population class's row of the table, then the county overrides."""
        table = self.quota_table.get(self.population_class(population)) or next(iter(self.quota_table.values()),
                                                                                {})
        return {**table, **self.quotas}


class DocumentRequirement(_Model):
    """One document of the evidence archive (档案资料) that some places or departments must hold."""

    name: str = Field(description="the document, e.g. 卫生许可证")
    indicator: str = Field("", description="the indicator of the standard it supports")
    categories: list[str] = Field(default_factory=list, description="sample-point categories whose every place "
                                  "must hold it (e.g. 五小场所)")
    departments: list[str] = Field(default_factory=list, description="departments (units) that must hold it")
    valid_days: float | None = Field(None, gt=0, description="expires this many days after its date (a health "
                                     "certificate: 365); blank = never")
    keywords: list[str] = Field(default_factory=list, description="words in a file's name (or its folder's) "
                                "that make it this document; blank = the name itself")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in SAMPLE_CATEGORIES]
        if unknown:
            raise ValueError(f"unknown sample-point category {', '.join(map(repr, unknown))}; "
                             f"one of: {', '.join(SAMPLE_CATEGORIES)}")
        return v

    @model_validator(mode="after")
    def _someone_holds_it(self) -> DocumentRequirement:
        if not self.categories and not self.departments:
            raise ValueError(f"document '{self.name}' names no categories and no departments that must hold it")
        return self

    @property
    def words(self) -> list[str]:
        return list(self.keywords) or [self.name]


def _documents() -> list[DocumentRequirement]:
    d = DocumentRequirement
    five = ["五小场所", "宾馆饭店"]
    return [
        d(name="卫生许可证", indicator="重点场所卫生: 公共场所证照齐全", categories=five, valid_days=4 * 365,
          keywords=["卫生许可证", "卫生许可"]),
        d(name="健康证", indicator="重点场所卫生: 从业人员持健康证明上岗", categories=[*five, "农贸市场"],
          valid_days=365, keywords=["健康证", "健康证明", "体检合格证"]),
        d(name="消毒记录", indicator="重点场所卫生: 公用物品清洗消毒", categories=five, valid_days=31,
          keywords=["消毒记录", "消毒登记", "消毒台账"]),
        d(name="市场管理制度", indicator="农贸市场: 管理制度上墙, 专人保洁", categories=["农贸市场"],
          keywords=["管理制度", "市场制度"]),
        d(name="病媒生物防制记录", indicator="病媒生物防制: 三防设施与记录", categories=["农贸市场", "五小场所"],
          valid_days=92, keywords=["病媒", "除四害", "灭鼠", "灭蟑"]),
        d(name="保洁记录", indicator="市容环境卫生: 公厕专人管理保洁", categories=["公厕"], valid_days=31,
          keywords=["保洁记录", "保洁台账", "清扫记录"]),
        d(name="会议纪要", indicator="组织管理: 定期研究创卫工作", categories=["社区居委会"],
          departments=["县创卫办"], valid_days=92,
          keywords=["会议纪要", "会议记录"]),
        d(name="长效机制方案", indicator="组织管理: 建立长效管理机制", departments=["县创卫办"],
          keywords=["长效机制", "长效管理"]),
        d(name="创卫工作方案", indicator="组织管理: 创卫工作纳入政府议事日程", departments=["县创卫办"],
          keywords=["工作方案", "实施方案"]),
        d(name="背街小巷整治台账", indicator="市容环境卫生: 背街小巷整治", departments=["县城管局"],
          valid_days=92, keywords=["背街小巷", "整治台账"]),
        d(name="五小行业监管台账", indicator="重点场所卫生: 五小行业监管", departments=["县市场监管局"],
          valid_days=92, keywords=["五小", "监管台账"]),
        d(name="病媒生物防制方案", indicator="病媒生物防制: 防制方案与评估", departments=["县卫健委"],
          keywords=["病媒生物防制方案", "病媒防制方案"]),
    ]


class ArchiveSettings(_Model):
    """The evidence archive (创卫档案资料): where its files are and which documents each holder must have."""

    folder: str = Field("档案", description="the archive folder (beside the settings unless absolute): one "
                        "subfolder per holder, named as the sample point or the department, files below it")
    documents: list[DocumentRequirement] = Field(default_factory=_documents, description="the catalogue of "
                                                 "documents, each with the indicator it supports")
    source: str = ("示例目录, 按本县迎检资料清单修改: 卫生许可证有效期4年, 健康证明1年 (P); 其余有效期为本县自定的"
                   "更新周期 (R). 2021 国家卫生县城标准: 档案资料是技术评估必查内容, 不得缺项漏项、重复雷同")
    near_name_score: float = Field(90, ge=0, le=100, description="two files of different holders whose names "
                                   "(without holder names, dates and document words) are this similar "
                                   "(rapidfuzz ratio, 0-100) are near duplicates")
    near_name_min_chars: int = Field(6, ge=1, description="names shorter than this once cleaned are not compared")
    near_text_score: float = Field(90, ge=0, le=100, description="two PDFs of different holders whose text "
                                   "(without the holders' names) is this similar are near duplicates")
    text_min_chars: int = Field(50, ge=1, description="PDF text shorter than this is not compared (a scan)")
    pdf_pages: int = Field(3, ge=1, description="pages of a PDF read for its text")

    @model_validator(mode="after")
    def _unique(self) -> ArchiveSettings:
        names = [d.name for d in self.documents]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"archive document names must be unique; repeated: {', '.join(dup)}")
        return self

    def document(self, name: str) -> DocumentRequirement | None:
        return next((d for d in self.documents if d.name == name), None)


class BasemapSettings(_Model):
    url: str = Field("", description="XYZ tile URL; blank = no basemap (the streets are the map)")
    attribution: str = ""
    coords: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    subdomains: str = ""
    tk: str = Field("", description="天地图 key, substituted for {tk} in the URL")
    max_zoom: int = 18


class WebSettings(_Model):
    host: str = "127.0.0.1"
    port: int = 8000
    inline_max_features: int = Field(2000, description="larger layers are served by bounding box")
    map_max_points: int = Field(1500, gt=0, description="more points than this in view are clustered on the server")
    cluster_cell_px: int = Field(64, gt=0, description="size of a server-side cluster cell on screen (pixels)")
    cases_per_page: int = Field(50, ge=5, le=1000, description="rows per page of the case list (/cases); its "
                                "Excel export has every row of the view")
    street_label_zoom: int = Field(16, ge=0, le=22, description="street names are drawn on the web map from this "
                                   "zoom level on (16 ≈ 2.4 m per pixel: a few streets per screen, names legible; "
                                   "judgement, as 数字城管 maps label streets at block scale)")
    street_label_max_scale: float = Field(10_000, gt=0, description="printed maps name the streets when their "
                                          "scale is 1:N or larger, N this value (about web zoom 16)")
    duplicate_radius_m: float = Field(10, ge=0, description="an open report of the same category this close "
                                      "to a new one flags it as a possible duplicate")
    session_hours: float = Field(12, gt=0, description="a password login's token lasts this long")
    photo_max_mb: float = Field(10, gt=0, description="largest photo upload; a longer request body is cut off "
                                "while it streams in (413)")
    password_min_length: int = Field(10, ge=1, description="shortest password an account may have "
                                     "(NIST SP 800-63B §3.1.1.2 asks for at least 8; `user add` makes 16)")
    login_max_failures: int = Field(10, ge=1, description="failed logins per account within "
                                    "login_window_minutes before further tries get 429 (OWASP authentication "
                                    "cheat sheet: throttle per account)")
    login_max_failures_per_address: int = Field(30, ge=1, description="failed logins per client address within "
                                                "login_window_minutes before further tries get 429")
    login_window_minutes: float = Field(15, gt=0, description="the window of the login limits")
    reported_earliest: str = Field("2000-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$",
                                   description="a report dated before this is refused (422)")
    reported_ahead_hours: float = Field(24, ge=0, description="a report dated later than now plus this is "
                                        "refused (422); clocks of phones drift, years typed wrong do not")


class Settings(_Model):
    project: ProjectSettings = Field(default_factory=ProjectSettings)
    facilities: dict[str, FacilityPreset] = Field(default_factory=_facilities)
    spacing: SpacingSettings = Field(default_factory=SpacingSettings)
    toilet_class: ToiletClassSettings = Field(default_factory=ToiletClassSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    problems: ProblemSettings = Field(default_factory=ProblemSettings)
    piles: PileSettings = Field(default_factory=PileSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
    hotspots: HotspotSettings = Field(default_factory=HotspotSettings)
    rebound: ReboundSettings = Field(default_factory=ReboundSettings)
    scorecard: ScorecardSettings = Field(default_factory=ScorecardSettings)
    components: ComponentSettings = Field(default_factory=ComponentSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    basemap: BasemapSettings = Field(default_factory=BasemapSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @model_validator(mode="before")
    @classmethod
    def _old_pile_keys(cls, data: object) -> object:
        """Files written before ``[piles]`` had pile_min_count/pile_tolerance_m in [validation] and [hotspots]."""
        if not isinstance(data, dict):
            return data
        piles = dict(data.get("piles") or {})
        for section in ("hotspots", "validation"):  # hotspots' values were the ones analyses used
            sec = data.get(section)
            if not isinstance(sec, dict) or not any(k.startswith("pile_") for k in sec):
                continue
            sec = dict(sec)
            for old, new in (("pile_min_count", "min_count"), ("pile_tolerance_m", "tolerance_m")):
                if old in sec:
                    piles.setdefault(new, sec.pop(old))
            data = {**data, section: sec}
        return {**data, "piles": piles} if piles else data

    @field_validator("facilities")
    @classmethod
    def _known_facilities(cls, v: dict[str, FacilityPreset]) -> dict[str, FacilityPreset]:
        _check_facility_kinds(v, where="facilities")
        return v

    def facility_title(self, kind: str, lang: str = "zh") -> str:
        """A facility kind's name: in Chinese the preset's ``zh`` (else the layer's), in English the layer's."""
        preset = self.facilities.get(kind)
        if lang == "zh" and preset is not None and preset.zh:
            return preset.zh
        return CATALOGUE[kind].title(lang) if kind in CATALOGUE else kind

    @property
    def problem_categories(self) -> list[str]:
        return [c.name for c in self.problems.categories]

    def allowed(self, name: str) -> list[str]:
        """Values of a settings list named by a catalogue field's ``allowed_from``."""
        if name == "problem_categories":
            return self.problem_categories
        if name == "component_kinds":
            return list(self.components.kinds)
        raise SettingsError(f"no settings list named '{name}'")


def load_settings(path: str | Path) -> Settings:
    """Read a settings TOML file; a missing file gives the defaults."""
    path = Path(path)
    if not path.exists():
        return Settings()
    data = settings_toml_data(path)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        msgs = [f"{path}: [{'.'.join(str(p) for p in err['loc'])}] {err['msg']}" for err in e.errors()]
        raise SettingsError("settings file has errors:\n" + "\n".join(msgs)) from None


def _descriptions(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """(section…, key) → the field's description, for comments in the written file."""
    out: dict[tuple[str, ...], str] = {}
    for name, info in model.model_fields.items():
        if info.description:
            out[prefix + (name,)] = info.description
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_descriptions(ann, prefix + (name,)))
    return out


def settings_toml(settings: Settings) -> str:
    """The settings as TOML text, each described field preceded by its description as a comment."""
    text = tomli_w.dumps(settings.model_dump(mode="json", exclude_none=True))
    notes = _descriptions(Settings)
    section: tuple[str, ...] = ()
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            section = tuple(stripped.strip("[]").split("."))
        elif stripped.startswith("[["):
            section = tuple(stripped.strip("[]").split("."))
        elif "=" in line and not line.startswith((" ", "\t")):
            key = line.split("=", 1)[0].strip().strip('"')
            note = notes.get(section + (key,))
            if note:
                lines.append(f"# {note}")
        lines.append(line)
    return (
        "# sanigrid project settings: every threshold has a default and its source.\n"
        "# Edit values here; `sanigrid init` wrote the defaults.\n\n" + "\n".join(lines) + "\n"
    )


def save_settings(settings: Settings, path: str | Path) -> None:
    """Write settings as TOML (atomically: a temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(settings_toml(settings), encoding="utf-8")
    tmp.replace(path)
