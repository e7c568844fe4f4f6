"""The evidence archive (档案资料): its page, uploads (the campaign office), the completeness workbook."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sanigrid.geo.archive import HEADERS
from sanigrid.layers import cases
from sanigrid.layers.archive import ArchiveError, register_upload
from sanigrid.web import archivepage
from sanigrid.web.deps import CurrentUser, ProjectDep, Writer
from sanigrid.web.routes.layers import XLSX_RESPONSE, xlsx_response
from sanigrid.web.templating import render

router = APIRouter(tags=["archive 档案"])


async def _upload(project: ProjectDep, user: Writer, file: UploadFile, holder: str, document: str,
                  doc_date: str) -> dict:
    cases.check_action(user.role, "archive", own_grid=True)  # the campaign office only
    try:
        day = date.fromisoformat(doc_date) if doc_date.strip() else None
    except ValueError:
        raise ArchiveError(f"文件日期「{doc_date}」不是日期, 请写成 2026-11-15 (not a date)") from None
    limit = int(project.settings.web.photo_max_mb * 1024 * 1024)
    data = await file.read(limit + 1)  # the body itself is capped while it streams in (web.limits)
    if not data:
        raise ArchiveError("上传的文件是空的 (the uploaded file is empty)")
    result, _, _ = await run_in_threadpool(archivepage.archive_check, project)
    row = await run_in_threadpool(register_upload, project, holder=holder, document=document,
                                  filename=file.filename or "", data=data, doc_date=day, registered_by=user.name,
                                  known_holders=archivepage.holders(result))
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items() if k not in ("text", "mtime")}


FormText = Annotated[str, Form()]


@router.post("/api/archive/files", status_code=201, summary="登记档案资料: 上传一个文件 (the campaign office only)",
             responses={403: {"description": "只有创卫办可以登记档案 (office only)"},
                        422: {"description": "未知的单位/地点或档案类型, 日期有误, 或文件为空"}})
async def post_archive_file(project: ProjectDep, user: Writer,
                            file: Annotated[UploadFile, File(description="档案文件")],
                            holder: Annotated[str, Form(description="所属单位/地点 (样本点名称或部门)")],
                            document: Annotated[str, Form(description="档案类型 (目录中的名称)")] = "",
                            doc_date: Annotated[str, Form(description="文件日期 2026-11-15; 空 = 文件名中的日期")] = "",
                            ) -> dict:
    return await _upload(project, user, file, holder, document, doc_date)


@router.post("/archive/files", include_in_schema=False)
async def post_archive_form(project: ProjectDep, user: Writer, file: Annotated[UploadFile, File()],
                            holder: FormText, document: FormText = "", doc_date: FormText = "") -> Response:
    """The page's form: the same upload, then back to the page (303) with the new file named."""
    row = await _upload(project, user, file, holder, document, doc_date)
    return RedirectResponse(f"/archive?added={row['file_id']}", status_code=303)


@router.get("/archive", response_class=HTMLResponse, summary="档案资料: 完整性、重复雷同、登记 (page)")
def archive_page(project: ProjectDep, user: CurrentUser, added: int | None = None) -> str:
    data = archivepage.page_data(project)
    return render("archive.html", lang=project.settings.project.language, data=data, added=added,
                  can_upload=cases.may(user.role, "archive", own_grid=True), user=user.name,
                  title=project.settings.project.name)


@router.get("/api/downloads/archive.xlsx", summary="档案完整性 (.xlsx, as the registry stands)",
            response_class=Response, responses=XLSX_RESPONSE, tags=["downloads 下载"])
def archive_xlsx(project: ProjectDep, user: CurrentUser) -> Response:
    return xlsx_response(archivepage.workbook_sheets(project), "档案完整性.xlsx", headers=HEADERS)
