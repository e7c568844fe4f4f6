"""The layer catalogue: one declarative spec per layer kind.

Everything that knows about layers (the importers, validation, the store, the web map, the
exports) reads these specs, so adding a layer kind is adding one ``LayerSpec`` to ``_SPECS``.

Field types are ``str``, ``int``, ``float``, ``bool``, ``date`` and ``datetime``. ``allowed``
lists the values a field may take; ``allowed_from`` names a settings list instead (for
catalogues a county configures, such as problem categories).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sanigrid.layers._errors import CatalogueError
from sanigrid.layers.cases import PRIORITY, STATUS_COLOURS, STATUSES
from sanigrid.layers.projects import DATE_FIELD, PROJECT_STATUSES, STATUS_FIELD, UNIT_FIELD

FieldType = Literal["str", "int", "float", "bool", "date", "datetime"]
Role = Literal["input", "analysis"]


@dataclass(frozen=True)
class Field:
    """One attribute of a layer."""

    name: str
    dtype: FieldType
    zh: str
    en: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    allowed_from: str | None = None  # a settings list, e.g. "problem_categories"
    aliases: tuple[str, ...] = ()  # other column names recognised on import
    popup: bool = True  # shown in map popups and exports


@dataclass(frozen=True)
class Style:
    """Default map style (Leaflet path options plus a marker radius for points)."""

    color: str = "#3388ff"
    weight: float = 2.0
    fill_color: str | None = None
    fill_opacity: float = 0.2
    radius: float = 5.0
    dash: str | None = None
    # optional: colour by a field's values, e.g. {"field": "status", "values": {"结案": "#999"}}, or along a
    # colour ramp from the field's smallest to its largest value: {"field": "rank", "ramp": ("#1a9850", …)}
    by: dict[str, Any] | None = None


@dataclass(frozen=True)
class LayerSpec:
    """What a layer kind is: geometry, fields, names and default style."""

    kind: str
    zh: str
    en: str
    geometry: tuple[str, ...]
    fields: tuple[Field, ...]
    style: Style = field(default_factory=Style)
    role: Role = "input"
    optional: bool = False
    label_field: str | None = "name"  # used by the map's search box
    key: str | None = None  # a stable identifier field, when the layer has one
    big: bool = False  # served by bounding box, never inlined into a page

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise CatalogueError(
            f"layer '{self.kind}' has no field '{name}'; its fields are: "
            + ", ".join(f.name for f in self.fields)
        )

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def title(self, language: str = "zh") -> str:
        return self.zh if language == "zh" else self.en


def _f(name: str, dtype: FieldType, zh: str, en: str, **kw: Any) -> Field:
    return Field(name, dtype, zh, en, **kw)


NAME = _f("name", "str", "名称", "Name",
          aliases=("名称", "名字", "NAME", "mc", "MC", "Facility Name", "Site Name"))
ADDRESS = _f("address", "str", "地址", "Address",
             aliases=("地址", "位置", "ADDR", "Incident Address", "Street Address", "Location Address"))
GRID_CODE = _f("grid_code", "str", "网格编码", "Grid code", aliases=("网格编码", "网格", "网格号"))
OSM_ID = _f("osm_id", "str", "OSM编号", "OSM id", popup=False)
NOTE = _f("note", "str", "备注", "Note", aliases=("备注", "说明"))
YES_NO = ("是", "否")
# a facility's build project (layers.projects owns the statuses and the rules on them)
PROJECT = (
    _f(STATUS_FIELD, "str", "建设状态", "Build status", allowed=PROJECT_STATUSES,
       aliases=("建设状态", "项目状态", "建设情况", "Build Status")),
    _f(DATE_FIELD, "date", "计划建成日期", "Planned completion",
       aliases=("计划建成日期", "计划完成日期", "计划建成时间", "计划完成时间", "Planned Date")),
    _f(UNIT_FIELD, "str", "项目单位", "Project unit", aliases=("项目单位", "建设单位", "项目责任单位")),
)

#: ColorBrewer YlOrBr: rank 1 (best) pale → last dark; one hue, so it reads with colour-vision deficiencies
RANK_RAMP = ("#ffffd4", "#fed98e", "#fe9929", "#d95f0e", "#993404")
ROAD_CLASSES = ("主干路", "次干路", "支路", "街巷", "其他")
TOILET_CLASSES = ("一类", "二类", "三类", "旱厕")
PROBLEM_SOURCES = ("暗访", "督查", "巡查", "群众举报", "12345", "其他")
PROBLEM_STATUSES = STATUSES  # the case rules own them (layers.cases)
SAMPLE_CATEGORIES = (
    "医院", "学校", "车站", "建筑工地", "居民小区", "五小场所", "农贸市场", "背街小巷",
    "公厕", "垃圾中转站", "主次干道", "社区居委会", "城中村", "机关单位", "宾馆饭店", "其他",
)
#: condition of a street-furniture component (城市部件) as the 数字城管 部件普查 records it; the first is good
COMPONENT_CONDITIONS = ("完好", "破损", "缺失")
ZONE_TYPES = ("城中村", "城乡结合部")
#: colour-blind-safe (Okabe-Ito) good / damaged / missing
#: colours of the conditions: Paul Tol's bright set, none a case status's colour (the map shows both at once)
_CONDITION_COLOURS = {"完好": "#88ccee", "破损": "#ee7733", "缺失": "#cc3311"}

_SPECS: tuple[LayerSpec, ...] = (
    LayerSpec(
        "grids", "网格", "Grids", ("Polygon", "MultiPolygon"),
        (
            _f("code", "str", "网格编码", "Grid code", required=True,
               aliases=("网格编码", "编码", "网格号", "CODE", "grid_code")),
            NAME,
            _f("street_office", "str", "街道", "Sub-district", aliases=("街道", "街道办", "乡镇")),
            _f("community", "str", "社区", "Community", aliases=("社区", "居委会")),
            _f("lead_unit", "str", "牵头单位", "Lead unit", aliases=("牵头单位", "责任单位")),
            _f("head", "str", "网格长", "Grid head", aliases=("网格长", "网格员", "负责人")),
            _f("phone", "str", "联系电话", "Phone", aliases=("联系电话", "电话", "手机")),
            _f("households", "int", "户数", "Households", aliases=("户数",)),
        ),
        Style(color="#1f4e9c", weight=2, fill_color="#1f4e9c", fill_opacity=0.04, dash="6 4"),
        label_field="code", key="code",
    ),
    LayerSpec(
        "boundary", "县域边界", "County boundary", ("Polygon", "MultiPolygon"),
        (
            _f("name", "str", "名称", "Name",
               aliases=("名称", "行政区划名称", "区划名称", "县名", "NAME", "XZQMC", "Boundary Name")),
            _f("code", "str", "行政区划代码", "Division code",
               aliases=("行政区划代码", "区划代码", "代码", "XZQDM", "PAC", "adcode", "GB")),
            NOTE,
        ),
        Style(color="#000000", weight=3, fill_color=None, fill_opacity=0.0, dash="10 4 2 4"),
    ),
    LayerSpec(
        "streets", "道路", "Streets", ("LineString", "MultiLineString"),
        (
            NAME,
            _f("road_class", "str", "道路等级", "Road class", allowed=ROAD_CLASSES,
               aliases=("等级", "道路等级", "class", "CLASS")),
            _f("busy", "bool", "繁华街道", "Busy street", aliases=("繁华街道", "繁华")),
            # the level of a way (OSM bridge=*, tunnel=*, layer=*): the network joins two streets
            # where they cross only when they are at the same level
            _f("bridge", "bool", "桥梁", "Bridge", aliases=("桥梁", "桥", "天桥")),
            _f("tunnel", "bool", "隧道/地道", "Tunnel", aliases=("隧道", "地道")),
            _f("layer", "int", "层位", "Layer", aliases=("层位", "层")),
            OSM_ID,
        ),
        Style(color="#555555", weight=3, by={"field": "road_class", "values": {
            "主干路": "#4d4d4d", "次干路": "#7a7a7a", "支路": "#a8a8a8"}}),
    ),
    LayerSpec(
        "alleys", "背街小巷", "Back alleys", ("LineString", "MultiLineString"),
        (
            NAME,
            _f("hardened", "bool", "已硬化", "Hardened", aliases=("硬化", "已硬化", "路面硬化")),
            _f("lit", "bool", "有路灯", "Lit", aliases=("路灯", "有路灯", "照明")),
            _f("width_m", "float", "宽度(米)", "Width (m)", aliases=("宽度", "路宽")),
            GRID_CODE, OSM_ID,
        ),
        Style(color="#999933", weight=2, dash="4 3", by={"field": "hardened", "values": {
            True: "#999933", False: "#ee8866"}}),
    ),
    LayerSpec(
        "markets", "农贸市场", "Farmers' markets", ("Point", "Polygon", "MultiPolygon"),
        (
            NAME, ADDRESS,
            _f("stalls", "int", "摊位数", "Stalls", aliases=("摊位", "摊位数")),
            _f("standardized", "bool", "标准化", "Standardized",
               aliases=("标准化", "是否标准化", "达标")),
            *PROJECT, OSM_ID,
        ),
        Style(color="#aa4499", fill_color="#aa4499", fill_opacity=0.5, radius=7),
    ),
    LayerSpec(
        "toilets", "公厕", "Public toilets", ("Point",),
        (
            NAME, ADDRESS,
            _f("toilet_class", "str", "类别", "Class", allowed=TOILET_CLASSES,
               aliases=("类别", "等级", "公厕类别")),
            _f("seats", "int", "厕位数", "Seats", aliases=("厕位", "厕位数", "蹲位")),
            _f("accessible", "bool", "无障碍", "Accessible", aliases=("无障碍", "无障碍厕位")),
            _f("hours", "str", "开放时间", "Opening hours", aliases=("开放时间", "开放时段")),
            *PROJECT, OSM_ID,
        ),
        Style(color="#332288", fill_color="#332288", fill_opacity=0.9, radius=6),
    ),
    LayerSpec(
        "transfer_stations", "垃圾中转站", "Transfer stations", ("Point",),
        (NAME, ADDRESS, _f("capacity_tpd", "float", "规模(吨/日)", "Capacity (t/d)",
                           aliases=("规模", "处理能力", "吨/日")), *PROJECT, OSM_ID),
        Style(color="#6d4c41", fill_color="#6d4c41", fill_opacity=0.9, radius=7),
    ),
    LayerSpec(
        "collection_points", "垃圾收集点", "Collection points", ("Point",),
        (NAME, ADDRESS, _f("bins", "int", "容器数", "Bins", aliases=("桶数", "容器数")), *PROJECT, OSM_ID),
        Style(color="#44aa99", fill_color="#44aa99", fill_opacity=0.9, radius=4),
    ),
    LayerSpec(
        "residents", "居民小区", "Residential compounds", ("Point", "Polygon", "MultiPolygon"),
        (
            NAME, ADDRESS,
            _f("households", "int", "户数", "Households", aliases=("户数", "住户")),
            _f("population", "int", "人口", "Population", aliases=("人口", "人数")),
        ),
        Style(color="#ddcc77", fill_color="#ddcc77", fill_opacity=0.25, weight=1),
        optional=True,
    ),
    LayerSpec(
        "problems", "问题", "Problems", ("Point",),
        (
            _f("problem_id", "int", "编号", "ID",
               aliases=("编号", "案件号", "id", "Unique Key", "Case ID", "Request ID", "Ticket ID", "Case Number")),
            _f("category", "str", "问题类别", "Category", required=True,
               allowed_from="problem_categories",
               aliases=("类别", "问题类别", "问题类型", "小类", "Complaint Type", "Problem Type", "Request Type")),
            _f("description", "str", "问题描述", "Description",
               aliases=("描述", "问题描述", "内容", "Descriptor", "Details", "Problem Description")),
            _f("source", "str", "来源", "Source", allowed=PROBLEM_SOURCES,
               aliases=("来源", "问题来源", "Channel", "Channel Type")),
            _f("reported_at", "datetime", "上报时间", "Reported at", required=True,
               aliases=("上报时间", "发现时间", "立案时间", "时间", "Created Date", "Created At", "Date Reported",
                        "Reported Date", "Open Date")),
            _f("status", "str", "状态", "Status", allowed=PROBLEM_STATUSES,
               aliases=("状态", "办理状态", "Open/Closed", "Case Status", "Request Status")),
            _f("deadline", "datetime", "处置时限", "Deadline", aliases=("时限", "处置时限", "Due Date")),
            _f("closed_at", "datetime", "结案时间", "Closed at",
               aliases=("结案时间", "销号时间", "Closed Date", "Closed At", "Close Date", "Resolved Date")),
            GRID_CODE,
            _f("unit", "str", "责任单位", "Responsible unit",
               aliases=("责任单位", "处置单位", "Agency", "Department", "Responsible Unit")),
            _f(PRIORITY, "bool", "督办", "Priority", aliases=("督办", "是否督办")),
            # the rectification list (整改清单): what is to be done and by whom, and the inspection
            # report (暗访/督查) an item came in with
            _f("measure", "str", "整改措施", "Measure", aliases=("整改措施", "措施", "整改要求", "Measure")),
            _f("owner", "str", "责任人", "Owner", aliases=("责任人", "整改责任人", "Owner")),
            _f("batch", "str", "检查批次", "Inspection report",
               aliases=("检查批次", "督查批次", "暗访批次", "报告名称", "Batch")),
            _f("batch_date", "date", "检查日期", "Inspection date", aliases=("检查日期", "暗访日期", "督查日期")),
        ),
        Style(color="#d55e00", fill_color="#d55e00", fill_opacity=0.8, radius=4, by={
            "field": "status", "values": dict(STATUS_COLOURS)}),
        label_field="description", key="problem_id", big=True,
    ),
    LayerSpec(
        "sample_points", "样本点", "Sample points", ("Point",),
        (
            _f("category", "str", "类别", "Category", required=True, allowed=SAMPLE_CATEGORIES,
               aliases=("类别", "样本类别", "类型")),
            NAME, ADDRESS, GRID_CODE,
        ),
        Style(color="#117733", fill_color="#117733", fill_opacity=0.9, radius=6),
    ),
    LayerSpec(
        "components", "城市部件", "Street furniture", ("Point", "LineString", "MultiLineString"),
        (
            _f("kind", "str", "部件类型", "Kind", required=True, allowed_from="component_kinds",
               aliases=("部件类型", "部件", "类型", "小类", "部件小类")),
            _f("condition", "str", "完好状况", "Condition", required=True, allowed=COMPONENT_CONDITIONS,
               aliases=("完好状况", "状况", "状态", "部件状态")),
            GRID_CODE,
            _f("checked_on", "date", "检查日期", "Checked on", aliases=("检查日期", "普查日期", "巡查日期")),
            NOTE,
        ),
        Style(color="#88ccee", fill_color="#88ccee", fill_opacity=0.9, radius=3, weight=3, by={
            "field": "condition", "values": _CONDITION_COLOURS}),
        optional=True, label_field=None,  # counted for their repair, not searched by name
    ),
    LayerSpec(
        "facades", "沿街立面", "Street facades", ("LineString", "MultiLineString", "Polygon", "MultiPolygon"),
        (
            NAME, ADDRESS,
            _f("painted", "bool", "已粉刷整治", "Painted/renovated", required=True,
               aliases=("已粉刷整治", "已粉刷", "粉刷", "已整治", "是否粉刷", "是否整治")),
            _f("area_m2", "float", "立面面积(平方米)", "Facade area (m²)",
               aliases=("立面面积", "面积", "粉刷面积")),
            _f("renovated_on", "date", "整治日期", "Renovated on", aliases=("整治日期", "粉刷日期")),
            GRID_CODE,
        ),
        Style(color="#77aadd", weight=4, fill_color="#77aadd", fill_opacity=0.5, by={
            "field": "painted", "values": {True: "#77aadd", False: "#994455"}}),
        optional=True,
    ),
    LayerSpec(
        "zones", "城中村与城乡结合部", "Urban villages and urban fringe", ("Polygon", "MultiPolygon"),
        (
            NAME,
            _f("zone_type", "str", "片区类型", "Zone type", required=True, allowed=ZONE_TYPES,
               aliases=("片区类型", "类型", "区域类型")),
            NOTE,
        ),
        Style(color="#ffaabb", weight=2, fill_color="#ffaabb", fill_opacity=0.08, dash="2 4"),
        optional=True,
    ),
    # ---- analysis layers: written by geo/ through the faces, shown on the map like any other
    LayerSpec(
        "network_components", "路网连通分量", "Network components", ("LineString", "MultiLineString"),
        (_f("component", "int", "分量", "Component"), _f("length_m", "float", "长度(米)", "Length (m)"),
         _f("main", "bool", "主路网", "Main network")),
        Style(color="#ff00ff", weight=4), role="analysis", label_field=None,
    ),
    LayerSpec(
        "service_areas", "服务范围", "Service areas", ("Polygon", "MultiPolygon"),
        (_f("facility_kind", "str", "设施类型", "Facility kind"),
         _f("facility", "str", "设施", "Facility"),
         _f("radius_m", "float", "服务半径(米)", "Radius (m)"),
         _f("method", "str", "度量", "Method"),
         _f("dissolved", "bool", "合并", "Dissolved", popup=False)),
        Style(color="#2e86c1", fill_color="#5dade2", fill_opacity=0.25, weight=1),
        role="analysis", label_field="facility",
    ),
    LayerSpec(
        "coverage_gaps", "覆盖盲区", "Coverage gaps", ("LineString", "MultiLineString"),
        (_f("facility_kind", "str", "设施类型", "Facility kind"),
         _f("name", "str", "道路", "Street"),
         _f("length_m", "float", "长度(米)", "Length (m)"),
         _f("distance_m", "float", "最近设施距离(米)", "Distance to nearest (m)"),
         GRID_CODE),
        Style(color="#ff1744", weight=5), role="analysis",
    ),
    LayerSpec(
        "suggested_sites", "建议新址", "Suggested sites", ("Point",),
        (_f("facility_kind", "str", "设施类型", "Facility kind"),
         _f("rank", "int", "顺序", "Order"),
         _f("gain", "float", "新增覆盖", "Marginal gain"),
         _f("households", "float", "新增服务户数", "Households newly served"),
         GRID_CODE),
        Style(color="#009e73", fill_color="#009e73", fill_opacity=1.0, radius=8),
        role="analysis", label_field="rank",
    ),
    LayerSpec(
        "hotspot_clusters", "问题聚集区", "Problem clusters", ("Polygon", "MultiPolygon"),
        (_f("cluster", "int", "聚集区", "Cluster"), _f("count", "int", "问题数", "Reports"),
         _f("top_categories", "str", "主要类别", "Main categories"),
         _f("first_report", "datetime", "最早上报", "First report"),
         _f("last_report", "datetime", "最近上报", "Last report"),
         _f("grids", "str", "涉及网格", "Grids"),
         _f("open_share", "float", "未结案占比", "Share open")),
        Style(color="#cc79a7", fill_color="#cc79a7", fill_opacity=0.3, weight=2),
        role="analysis", label_field="cluster",
    ),
    LayerSpec(
        "gi_cells", "冷热点", "Hot and cold spots (Gi*)", ("Polygon",),
        (_f("count", "float", "问题数", "Reports"),
         _f("rate", "float", "每公里问题数", "Reports per km of street"),
         _f("z", "float", "Z得分", "z-score"),
         _f("p", "float", "P值", "p-value"), _f("label", "str", "类型", "Label"),
         _f("trend", "str", "时空模式", "Space-time pattern"),
         _f("trend_z", "float", "趋势Z得分(MK)", "Trend z (Mann-Kendall)"),
         _f("trend_p", "float", "趋势P值", "Trend p-value"),
         _f("cell", "int", "格网号", "Cell", popup=False)),
        Style(color="#999999", weight=0.5, fill_opacity=0.6, by={"field": "label", "values": {
            "热点99%": "#b2182b", "热点95%": "#ef8a62", "热点90%": "#fddbc7",
            "冷点99%": "#2166ac", "冷点95%": "#67a9cf", "冷点90%": "#d1e5f0",
            "不显著": "#ffffff"}}),
        role="analysis", label_field=None,
    ),
    LayerSpec(
        "rebounds", "反弹", "Rebounds", ("LineString",),
        (_f("category", "str", "问题类别", "Category"),
         _f("closed_id", "int", "原问题编号", "Closed problem"),
         _f("new_id", "int", "新问题编号", "New problem"),
         _f("closed_at", "datetime", "原结案时间", "Closed at"),
         _f("reported_at", "datetime", "再次上报时间", "Reported again at"),
         _f("days", "float", "间隔天数", "Days after closure"),
         _f("distance_m", "float", "距离(米)", "Distance (m)"),
         GRID_CODE),
        Style(color="#5e3c99", weight=3), role="analysis", label_field=None,
    ),
    LayerSpec(
        "scorecard", "网格排名", "Grid ranking", ("Polygon", "MultiPolygon"),
        (_f("code", "str", "网格编码", "Grid code"), NAME,
         _f("lead_unit", "str", "牵头单位", "Lead unit"),
         _f("rank", "int", "排名", "Rank"), _f("score", "float", "综合得分", "Score"),
         _f("rank_change", "int", "名次变化", "Rank change"),
         _f("reports", "int", "问题数", "Reports"),
         _f("problems_per_km", "float", "每公里问题数(收缩)", "Problems per km (shrunk)"),
         _f("on_time_rate", "float", "按期结案率(收缩)", "On-time closure rate (shrunk)"),
         _f("on_time_lo", "float", "按期结案率下限", "On-time rate, 90% low"),
         _f("on_time_hi", "float", "按期结案率上限", "On-time rate, 90% high"),
         _f("overdue", "int", "逾期数", "Overdue"),
         _f("rebound_rate", "float", "反弹率(收缩)", "Rebound rate (shrunk)"),
         _f("coverage", "float", "设施覆盖率", "Facility coverage"),
         _f("hardening_rate", "float", "背街小巷硬化率", "Alley hardening rate"),
         _f("facade_rate", "float", "立面粉刷覆盖率", "Facade painting coverage"),
         _f("components_good", "float", "部件完好率", "Components in good repair")),
        Style(color="#333333", weight=1, fill_opacity=0.4, by={"field": "rank", "ramp": RANK_RAMP}),
        role="analysis", label_field="code",
    ),
    LayerSpec(
        "sample_candidates", "样本候选点", "Sample candidates", ("Point",),
        (_f("candidate_id", "str", "候选编号", "Candidate ID"),
         _f("category", "str", "类别", "Category"), NAME, ADDRESS, GRID_CODE,
         _f("street_office", "str", "街道", "Sub-district"),
         _f("community", "str", "社区", "Community"),
         _f("source", "str", "来源图层", "Source layer", popup=False),
         _f("readiness", "float", "准备度", "Readiness"),
         _f("ready", "bool", "达标", "Ready"),
         _f("reasons", "str", "问题说明", "Reasons")),
        Style(color="#bbcc33", fill_color="#bbcc33", fill_opacity=0.8, radius=4, by={
            "field": "ready", "values": {True: "#bbcc33", False: "#cc6677"}}),
        role="analysis", key="candidate_id",
    ),
    LayerSpec(
        "sample_selection", "选定样本点", "Selected sample points", ("Point",),
        (_f("candidate_id", "str", "候选编号", "Candidate ID"),
         _f("category", "str", "类别", "Category"),
         _f("pick", "int", "序号", "No."), NAME, ADDRESS, GRID_CODE,
         _f("street_office", "str", "街道", "Sub-district"),
         _f("community", "str", "社区", "Community"),
         _f("readiness", "float", "准备度", "Readiness"),
         _f("reasons", "str", "问题说明", "Reasons"),
         _f("reason", "str", "入选理由", "Why picked"),
         _f("mode", "str", "抽样方式", "Mode", allowed=("分层", "随机"))),
        Style(color="#ee3377", fill_color="#ee3377", fill_opacity=1.0, radius=7),
        role="analysis", key="candidate_id",
    ),
)

CATALOGUE: dict[str, LayerSpec] = {s.kind: s for s in _SPECS}
INPUT_KINDS: tuple[str, ...] = tuple(s.kind for s in _SPECS if s.role == "input")
ANALYSIS_KINDS: tuple[str, ...] = tuple(s.kind for s in _SPECS if s.role == "analysis")
#: input layers of points that serve no one: the problem reports and the street furniture (a lamp or a bin is
#: counted for its repair, not as a facility with a service radius)
NOT_FACILITIES: tuple[str, ...] = ("problems", "components")
#: the layer kinds a facility preset (``[facilities.KIND]`` in the settings) may name: every input layer of
#: points (places that serve the streets around them), except :data:`NOT_FACILITIES`
FACILITY_KINDS: tuple[str, ...] = tuple(
    s.kind for s in _SPECS if s.role == "input" and "Point" in s.geometry and s.kind not in NOT_FACILITIES)


def spec(kind: str) -> LayerSpec:
    """Return the spec of a layer kind, or raise with the list of known kinds."""
    try:
        return CATALOGUE[kind]
    except KeyError:
        raise CatalogueError(
            f"unknown layer kind '{kind}'; known kinds: {', '.join(CATALOGUE)}"
        ) from None
