"""The fixed facts of the demo county: where it is, its codes, its period, its place names and words.

Place names are those of the OSM extract (communities, villages, the government); which community
belongs to which sub-district (街道), the lead units and every person's name are synthetic.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import sanigrid.layers

#: the extract travels in the package data of sanigrid.layers (with its ODbL attribution)
OSM_PATH = Path(sanigrid.layers.__file__).parent / "data" / "guixi-center.osm"
OSM_BOUNDS = (117.19116, 28.28171, 117.25519, 28.32252)  # lon/lat of the extract (WGS84)
DEMO_CRS = "EPSG:4548"
COUNTY_CODE = "360681"
COUNTY_NAME = "贵溪市(演示)"
OSM_SOURCE = "OpenStreetMap guixi-center.osm, © OpenStreetMap contributors, ODbL 1.0"
ATTRIBUTION = "© OpenStreetMap 贡献者 (contributors), ODbL 1.0 (道路与 OSM 背街小巷); 其余图层为合成数据"
START = pd.Timestamp("2026-05-16 00:00:00")
END = pd.Timestamp("2026-11-15 23:59:59")
AS_OF = pd.Timestamp("2026-11-16 00:00:00")  # statuses are as at the end of the six months
ROW_M = 400.0  # height of a numbering row (grids are numbered west→east within rows north→south)

BUSY_STREETS = ("北大街", "信州路", "雄石路", "站前路", "永泰路", "建设路")
NIGHT_MARKET_STREET = "永泰路"
DEFAULT_GEOCODE = "贵溪市人民政府"

# communities (OSM place nodes of the extract) and the sub-district (街道) each belongs to here;
# the assignment is part of the synthetic data, not the real administrative map
STREET_OFFICES: dict[str, tuple[str, ...]] = {
    "东门街道": ("北街社区", "西街社区", "南街社区", "东街社区", "城北社区", "江边社区", "信江社区"),
    "雄石街道": ("雄石社区", "木丝岭社区", "烧箕山社区", "发电厂社区", "白果社区"),
    "花园街道": ("花园社区", "四建社区", "炼厂社区", "化肥厂社区"),
}
LEAD_UNITS = (
    "县住建局", "县卫健委", "县教育局", "县城管局", "县市场监管局", "县公安局", "县财政局",
    "县交通运输局", "县自然资源局", "县生态环境局", "县农业农村局", "县水利局", "县民政局",
    "县人社局", "县文广旅局", "县商务局", "县发改委", "县审计局", "县统计局", "县应急管理局",
    "县税务局", "县供电公司", "县自来水公司", "县人民医院", "县融媒体中心",
)
# how long each unit takes to close a case, relative to the others (1): the department ranking has one
# unit far ahead (the housing bureau, roads mended quickly) and one far behind (the traffic police)
UNIT_PACE = {"县住建局": 0.35, "县公安局交警大队": 2.6}
# the demo's 暗访 report (an inspection report imported as one batch): its name, the day it starts and
# how many items it holds; each item gets the measure of its category (整改措施) and a named owner
INSPECTION_NAME = "2026年10月县创卫办暗访"
INSPECTION_START = pd.Timestamp("2026-10-08")
INSPECTION_ITEMS = 60
MEASURES = {
    "暴露垃圾": "当日清运, 增设垃圾桶, 落实门前三包保洁责任", "积存垃圾渣土": "限期清运渣土, 设置围挡并覆盖",
    "私搭乱建": "限期自行拆除, 逾期依法强制拆除", "道路破损": "修补路面, 设置警示标志",
    "非法小广告": "清除小广告, 对发布号码停机处理", "乱设广告": "拆除违规广告牌, 按规定审批设置",
    "占道经营": "劝离摊点, 引导入市经营", "店外经营": "责令退店经营, 签订门前三包责任书",
    "机动车乱停放": "施划停车位, 对违停车辆依法处罚", "非机动车乱停放": "规范摆放, 设置非机动车停放点",
    "乱堆物料": "清理堆放物料, 责令限期整改", "沿街晾挂": "劝导拆除晾挂, 设置统一晾晒点",
    "乱拉乱挂": "拆除乱拉线缆和横幅", "乱排污水": "疏通管网, 查处违规排污", "公厕脏乱": "增加保洁频次, 维修设施",
}
DEFAULT_MEASURE = "限期整改, 落实长效管理"
SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余")
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "建国", "建华", "志强", "海燕", "小红", "春梅", "国平", "文斌")
ALLEY_WORDS = ("井头", "打铁", "槐树", "石板", "仓前", "书院", "油坊", "米行", "县前", "竹篙", "水井",
               "豆腐", "染坊", "盐仓", "花墙", "学前", "祠堂", "古井", "钟楼", "柴市")
CN_NUM = "一二三四五六七八九十"
COMPOUND_WORDS = ("信江", "东方", "阳光", "锦绣", "金色", "银河", "翠竹", "桂花", "龙虎", "华府", "天一",
                  "滨江", "幸福", "和平", "建设", "文化", "电厂", "冶炼", "铜都", "雄石", "状元", "凤凰")
COMPOUND_SUFFIX = ("小区", "花园", "苑", "家园", "新村", "公寓", "宿舍")
