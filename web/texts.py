"""Every word of the web interface, in one table: key → (中文, English).

Pages (Jinja2 templates under ``web/templates/``), the map's script (``sanigrid.js`` gets the table as
``SG.t``) and the error pages all read :func:`texts`. One thing has one word: a case past its deadline
is 逾期 (overdue) everywhere, in the interface, the Excel headers and the command line.

Texts with ``{name}`` slots are filled by the page (``str.format`` in Python, the ``fill`` filter in
templates, ``replace`` in the script); markup never lives in a text.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en"]

TEXTS: dict[str, tuple[str, str]] = {
    # ---- shared
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "logout": ("退出", "log out"),
    "map": ("全县地图", "County map"),
    "back_to_map": ("← 全县地图", "← County map"),
    "app_name": ("创卫网格地图", "sanigrid map"),
    # ---- the county map (sanigrid.js reads these as SG.t)
    "legend": ("图例", "Legend"),
    "search": ("搜索网格编码或地名", "Grid code or place name"),
    "no_results": ("没有找到", "Nothing found"),
    "open_page": ("网格页面", "grid page"),
    "open_case": ("案件页面", "case page"),
    "overdue": ("逾期 (黑边)", "overdue (black outline)"),
    "days_overdue": ("逾期天数", "Days overdue"),
    "clusters": ("聚合 (数字为问题数)", "clusters (number of reports)"),
    "cluster": ("{n} 件问题, 未结案 {open} 件, 逾期 {late} 件", "{n} reports, {open} open, {late} overdue"),
    "basemap": ("底图", "Basemap"),
    "loading": ("正在读取…", "loading…"),
    "open_cases": ("未结案", "open"),
    "coords_wgs84": ("坐标系 WGS84 (GPS)", "coordinates WGS84 (GPS)"),
    "coords_gcj02": ("坐标系 GCJ-02 (国测局加密坐标)", "coordinates GCJ-02"),
    "coords_bd09": ("坐标系 BD-09 (百度坐标)", "coordinates BD-09"),
    "closed_cases": ("已结案", "closed"),
    "legend_hide": ("收起图例", "hide legend"),
    "legend_show": ("图例", "legend"),
    "api": ("接口文档", "API docs"),
    "dashboard": ("创卫办看板", "Office dashboard"),
    "print": ("打印排名图(A3)", "Print ranking map (A3)"),
    # ---- the grid page
    "grid": ("网格", "Grid"),
    "ranking": ("网格排名", "Ranking"),
    "rank": ("排名", "Rank"),
    "score": ("综合得分", "score"),
    "no_rank": ("尚无网格排名 (运行 {command} 生成)", "No ranking yet (run {command})"),
    "downloads": ("下载", "Downloads"),
    "duty": ("责任清单 (.xlsx)", "Responsibility list (.xlsx)"),
    "png": ("打印地图 A4 PNG", "Printable map A4 PNG"),
    "pdf": ("打印地图 A3 PDF", "Printable map A3 PDF"),
    "open": ("未结案问题 {n} 件, 其中逾期 {late} 件", "{n} open problems, {late} overdue"),
    "more": ("共 {n} 件, 仅列出前 {shown} 件; 完整清单请下载 Excel.",
             "{n} in all, the first {shown} listed; download the Excel file for all."),
    "none": ("本网格没有未结案的问题.", "No open problems in this grid."),
    "report": ("上报问题", "Report a problem"),
    "category": ("问题类别", "Category"),
    "description": ("问题描述", "Description"),
    "source": ("来源", "Source"),
    "where": ("位置", "Location"),
    "pick": ("在地图上点选", "Pick on the map"),
    "picking": ("请在左侧地图上点击问题所在位置", "Click the problem's location on the map"),
    "no_where": ("尚未选择位置", "no location chosen yet"),
    "submit": ("上报", "Report"),
    "sending": ("正在提交…", "sending…"),
    "accepted": ("已受理 编号 {id}, 处置时限 {deadline}", "Accepted: no. {id}, deadline {deadline}"),
    "dups": ("可能重复: {ids}", "possible duplicates: {ids}"),
    "need_where": ("请先在地图上点选问题位置", "Pick the problem's location on the map first"),
    "step": ("办理", "Action"),
    "note": ("办理意见", "note"),
    "stepped": ("编号 {id}: {from} → {to}", "No. {id}: {from} → {to}"),
    "failed": ("提交失败", "failed"),
    # ---- the case desk: the case list (/cases) and a case's page (/cases/{id})
    "c_list": ("问题清单", "Cases"),
    "c_title": ("问题 {id}", "Case {id}"),
    "c_found": ("共 {n} 件, 其中逾期 {late} 件", "{n} cases, {late} overdue"),
    "c_page": ("第 {page} / {pages} 页", "page {page} of {pages}"),
    "c_prev": ("← 上一页", "← previous"),
    "c_next": ("下一页 →", "next →"),
    "c_filter": ("筛选", "Filter"),
    "c_reset": ("清除筛选", "Clear"),
    "c_q": ("编号或关键词", "Case number or text"),
    "c_find": ("查找", "Find"),
    "c_all": ("全部", "all"),
    "c_open": ("未结案", "open"),
    "c_status": ("状态", "Status"),
    "c_grid": ("网格", "Grid"),
    "c_unit": ("责任单位", "Unit"),
    "c_from": ("上报起", "Reported from"),
    "c_to": ("上报止", "Reported to"),
    "c_overdue": ("逾期", "Overdue"),
    "c_priority": ("督办", "Priority"),
    "c_only_overdue": ("仅逾期", "overdue only"),
    "c_only_priority": ("仅督办", "priority only"),
    "c_not": ("否", "not"),
    "c_export": ("导出本视图 (.xlsx)", "Export this view (.xlsx)"),
    "c_none": ("没有符合条件的问题.", "No case matches."),
    "c_id": ("编号", "No."),
    "c_days": ("逾期天数", "Days overdue"),
    "c_reported": ("上报时间", "Reported"),
    "c_deadline": ("处置时限", "Deadline"),
    "c_fields": ("基本信息", "Details"),
    "c_timeline": ("办理记录", "History"),
    "c_opened": ("立案", "opened"),
    "c_no_history": ("没有办理记录 (导入的数据).", "No history recorded (imported data)."),
    "c_edited": ("修改", "edited"),
    "c_photos": ("现场照片", "Photos"),
    "c_no_photos": ("还没有照片.", "No photos yet."),
    "c_before": ("处置前", "before"),
    "c_after": ("处置后", "after"),
    "c_next_steps": ("下一步办理", "Next step"),
    "c_waiting": ("下一步 ({steps}) 由 {who} 办理; 您的账号不能办理.",
                  "The next step ({steps}) is for: {who}; your account cannot take it."),
    "c_closed": ("已结案.", "Closed."),
    "c_step_to": ("→ {to}", "→ {to}"),
    "c_note": ("办理意见", "Note"),
    "c_photo": ("拍照或选择照片", "Take or choose a photo"),
    "c_photo_needed": ("提交核查需要处置后的现场照片", "Handing in needs a photo taken after handling began"),
    "c_confirm": ("确认: {from} → {to}", "Confirm: {from} → {to}"),
    "c_do": ("确认办理", "Confirm"),
    "c_cancel": ("取消", "Cancel"),
    "c_upload": ("只上传照片", "Upload the photo only"),
    "c_uploading": ("正在上传照片…", "uploading the photo…"),
    "c_uploaded": ("照片已上传", "Photo uploaded"),
    "c_done": ("已办理: {from} → {to}", "Done: {from} → {to}"),
    "c_mark": ("标记督办", "Mark as priority"),
    "c_unmark": ("取消督办", "Remove priority"),
    "c_marked": ("督办", "priority"),
    "c_my_place": ("用我的位置", "Use my location"),
    "c_locating": ("正在定位…", "locating…"),
    "c_located": ("我的位置 {lon}, {lat} (GPS, 精度约 {m} 米)", "My location {lon}, {lat} (GPS, about {m} m)"),
    "c_no_place": ("无法取得位置: {why}", "Location unavailable: {why}"),
    # ---- the login page
    "login_title": ("登录", "Log in"),
    "login_heading": ("创卫网格地图 登录", "sanigrid map: log in"),
    "username": ("账号", "Account"),
    "password": ("密码", "Password"),
    "login": ("登录", "Log in"),
    # ---- error pages (HTML for a browser; the API answers JSON)
    "error_401": ("需要登录", "Please log in"),
    "error_403": ("无权访问", "Not allowed"),
    "error_404": ("没有找到", "Not found"),
    "error_409": ("与当前状态冲突", "Conflicts with the current state"),
    "error_422": ("请求数据有误", "Invalid request"),
    "error_other": ("出错了", "Something went wrong"),
    "error_code": ("错误代码 {code}", "Error {code}"),
    "error_back": ("← 返回上一页", "← Back"),
    "error_login": ("重新登录", "Log in again"),
    "error_own_grid": ("本网格页面", "Your grid's page"),
    # ---- the evidence archive page (/archive)
    "archive": ("档案资料", "Evidence archive"),
    "archive_as_of": ("截至 {date}, 已登记文件 {n} 个", "As of {date}, {n} files registered"),
    "archive_counts": ("应有 {required} 项: 齐全 {present}, 过期 {expired}, 缺失 {missing}; 重复雷同 {copied} 组, "
                       "疑似雷同 {near} 对", "{required} documents required: {present} present, {expired} expired, "
                       "{missing} missing; {copied} copied across holders, {near} near duplicates"),
    "archive_xlsx": ("档案完整性 (.xlsx)", "Archive completeness (.xlsx)"),
    "archive_incomplete": ("资料不全的单位和地点", "Holders with documents missing or expired"),
    "archive_holder": ("单位/地点", "Holder"),
    "archive_type": ("类型", "Type"),
    "archive_share": ("完整率(%)", "Complete (%)"),
    "archive_missing": ("缺失", "Missing"),
    "archive_expired": ("过期", "Expired"),
    "archive_complete": ("所有单位和地点的资料齐全.", "Every holder has every document."),
    "archive_more": ("另有 {n} 个未列出, 见 Excel.", "{n} more in the Excel file."),
    "archive_copies": ("重复雷同 (同一文件出现在不同单位/地点)", "Copied: one file held by different holders"),
    "archive_group": ("组", "Group"),
    "archive_file": ("文件", "File"),
    "archive_document": ("档案类型", "Document"),
    "archive_near": ("疑似雷同 (名称或正文相似)", "Near duplicates (similar names or text)"),
    "archive_by": ("依据", "By"),
    "archive_score": ("相似度", "Similarity"),
    "archive_latest": ("最近登记的文件", "Latest files"),
    "archive_date": ("文件日期", "Date"),
    "archive_upload": ("登记档案 (上传文件)", "Register a file (upload)"),
    "archive_upload_file": ("文件", "File"),
    "archive_upload_doc_auto": ("按文件名识别", "from the file name"),
    "archive_upload_date_hint": ("空: 取文件名中的日期", "blank: the date in the file name"),
    "archive_upload_submit": ("上传并登记", "Upload and register"),
    "archive_added": ("已登记文件 编号 {id}", "Registered file no. {id}"),
    "archive_none": ("无", "none"),
}

LANGUAGES: tuple[Language, ...] = ("zh", "en")


def texts(lang: str) -> dict[str, str]:
    """Every text in ``lang`` (``zh`` or ``en``; anything else falls back to Chinese)."""
    i = 1 if lang == "en" else 0
    return {k: v[i] for k, v in TEXTS.items()}


def text(key: str, lang: str) -> str:
    """One text in ``lang``; an unknown key is a programming error (KeyError names it)."""
    return TEXTS[key][1 if lang == "en" else 0]


def html_lang(lang: str) -> str:
    """The ``<html lang>`` value of an interface language."""
    return "en" if lang == "en" else "zh-CN"
