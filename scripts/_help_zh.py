"""Chinese ``--help`` for every command: one table of the words, applied to the click commands typer builds.

The command modules keep their help as their authors wrote it (English, or 中文 / English); a command or
option whose help does not open in Chinese gets the Chinese here in front (``中文 / English``), the panels of the help
screen are named in Chinese and ``--help`` itself is explained in Chinese. ``tests/test_cli_help.py`` runs
``--help`` of every command and fails on any option or command left without Chinese, so a new option
cannot be forgotten.
"""

from __future__ import annotations

import re
from typing import Any

#: help that opens in Chinese (its first letter, past digits and punctuation, is a Han character)
_CJK = re.compile(r"^[\W\d_]*[\u4e00-\u9fff]")

#: command (``"user add"`` for a sub-command) → its summary in Chinese
COMMANDS: dict[str, str] = {
    "analyse": "运行全部分析 (覆盖、选址、问题、热点、排名、档案、抽样)",
    "demo": "生成演示县 (贵溪真实路网) 并列出其图层",
    "init": "新建项目: 空的 GeoPackage 数据库和默认设置文件",
    "layers": "列出数据库中的图层: 要素数、坐标系、范围和最近修改时间",
    "import": "导入文件为图层: 逐行检查, 导入合格行, 其余写入退回文件",
    "validate": "只检查文件不导入 (有退回行时退出码为 1)",
    "export": "导出图层 (Excel、QGIS/ArcGIS 或其他系统)",
    "sample": "按类别选取样本点: 准备度、分层与间距、缺口",
    "mock-check": "模拟随机抽查 (模拟技术评估): 各类别不合格风险与整改优先顺序",
    "user add": "新增网页账号",
    "user list": "列出网页账号",
    "user remove": "删除网页账号 (其登录随即失效)",
}

#: option or argument name → its help in Chinese (every command alike)
OPTIONS: dict[str, str] = {
    "project": "项目文件夹 (含 sanigrid.gpkg 与 sanigrid.toml)",
    "only": "只运行名称包含此文字的步骤",
    "kind": "图层或设施类型",
    "radius": "服务半径 (米)",
    "euclidean": "按直线距离而非路网距离",
    "with_planned": "同时计算规划与在建设施建成后的覆盖",
    "as_of": "统计截至日期 (默认: 现在)",
    "new": "新增设施数",
    "exact": "求解整数规划 (有时间限制)",
    "lscp": "同时求覆盖全部可达需求的最少设施数",
    "candidates": "候选点文件",
    "exclude": "禁建区文件",
    "planned": "规划与在建设施是否视为已有",
    "host": "监听地址 (127.0.0.1 仅本机)",
    "port": "端口",
    "paper": "纸张 (A3 或 A4, 横向)",
    "format": "格式 (pdf 或 png)",
    "fmt": "格式 (pdf 或 png)",
    "seed": "随机种子 (种子相同, 结果相同)",
    "problems": "问题数 (≥ 300)",
    "analyses": "生成后运行全部分析",
    "serve": "完成后启动网页地图",
    "since": "只用此日期以后的问题",
    "category": "问题类别 (可重复)",
    "period": "统计期: 月、周或季度",
    "by": "排名对象: 网格或责任单位",
    "county_code": "6 位县级行政区划代码",
    "crs": "投影坐标系, 如 EPSG:4548; 默认由数据决定",
    "overwrite": "已有项目时重新开始",
    "file": "文件",
    "layer": "要读取的 GeoPackage 图层或 Excel 工作表",
    "strict": "有任何一行退回即拒绝整个文件",
    "replace": "替换图层而非追加",
    "fix": "修复能修复的: 经纬度互换、几何修复、多部件拆分等",
    "add_categories": "把文件中 sanigrid.toml 没有的问题类别加入设置",
    "save_mapping": "把 --map 与 --values 保存到 sanigrid.toml 供下次导入",
    "map_": "列名对应 (文件列=字段)",
    "out": "输出文件",
    "xlsx": "同时写出责任清单 .xlsx",
    "values": "取值对应 (字段:原值=新值)",
    "coords": "输入坐标系 (wgs84、gcj02、bd09 等)",
    "encoding": "属性编码 (Shapefile: GBK 或 UTF-8)",
    "random": "完全随机抽取 (如检查组抽样)",
    "maps": "同时为每个类别绘制一张 A4 地图 (PNG)",
    "prints": "同时绘制可打印地图 (每个样本类别一张 A4 PNG)",
    "draws": "模拟抽查次数",
    "theme": "专题",
    "date": "日期",
    "output": "输出文件",
    "name": "名称",
    "role": "角色 (office 创卫办 | grid_head 网格长 | inspector 监督员 | viewer 只读)",
    "grid": "网格编码",
    "password": "密码 (不填则生成一个并显示一次)",
    "api_only": "只发接口令牌 (给其他系统用)",
    "workers": "工作进程数",
    "scheduler": "调度器地址 (Dask)",
    "counties": "各县 (项目文件夹, 或县的个数)",
    "store_url": "各县共用的 PostGIS 数据库地址",
    "settings": "设置文件",
    "folder": "文件夹",
}

HELP_OPTION = "显示本帮助并退出 / show this help and exit"
PANELS = {"ARGUMENTS_PANEL_TITLE": "参数 Arguments", "OPTIONS_PANEL_TITLE": "选项 Options",
          "COMMANDS_PANEL_TITLE": "命令 Commands"}


def _both(zh: str, text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        return zh
    return text if _CJK.match(text) else f"{zh} / {text}"


def missing(command: Any, path: str = "") -> list[str]:
    """Commands and options of ``command`` (a click command or group) whose help has no Chinese."""
    out: list[str] = []
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            out += missing(sub, f"{path} {name}".strip())
        return out
    if not _CJK.match((command.help or "").strip()):
        out.append(path)
    for p in command.params:
        if not _CJK.match((getattr(p, "help", None) or "").strip()) and p.name not in ("help", "_click_default_help"):
            out.append(f"{path} {p.opts[0] if p.opts else p.name}")
    return out


def apply(command: Any, path: str = "") -> Any:
    """Put the Chinese of the tables into ``command`` (a click command or group, changed in place)."""
    import click
    import typer.rich_utils as ru

    for name, title in PANELS.items():
        setattr(ru, name, title)
    if path in COMMANDS:
        command.help = _both(COMMANDS[path], command.help)
        command.short_help = None
    opt = command.get_help_option(click.Context(command))
    if opt is not None:
        opt.help = HELP_OPTION
    subs = getattr(command, "commands", None)
    for name, sub in (subs or {}).items():
        apply(sub, f"{path} {name}".strip())
    if not subs:
        for p in command.params:
            zh = OPTIONS.get(p.name or "")
            if zh and hasattr(p, "help"):
                p.help = _both(zh, p.help)
    return command
