"""Problem intake, status changes (the lifecycle), history and photos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from sanigrid.layers import cases
from sanigrid.layers.catalogue import PROBLEM_SOURCES
from sanigrid.web import intake as svc
from sanigrid.web.access import check_case_read
from sanigrid.web.deps import CurrentUser, ProjectDep, Writer
from sanigrid.web.features import display_geometries, row_record, store_crs
from sanigrid.web.writes import run_batched, run_write

router = APIRouter(prefix="/api/problems", tags=["problems 问题"])


class ProblemCreate(BaseModel):
    """A new report. Coordinates as the phone app gave them: say which system with ``coords``."""

    category: str = Field(description="问题类别 (one of [problems] categories in sanigrid.toml)", examples=["暴露垃圾"])
    description: str = Field("", max_length=2000, description="问题描述")
    lon: float = Field(ge=-180, le=180, description="经度 longitude (degrees)")
    lat: float = Field(ge=-90, le=90, description="纬度 latitude (degrees)")
    coords: Literal["wgs84", "gcj02", "bd09"] = Field(
        "wgs84", description="坐标系: wgs84 (GPS), gcj02 (高德/腾讯/微信), bd09 (百度)")
    source: Literal[PROBLEM_SOURCES] = Field("其他", description="来源")  # type: ignore[valid-type]
    reported_at: datetime | None = Field(None, description="上报时间 (default: now)")


class ProblemPublic(BaseModel):
    problem_id: int
    category: str
    description: str
    source: str
    status: str
    reported_at: str
    deadline: str
    grid_code: str
    unit: str | None
    lon: float
    lat: float
    possible_duplicates: list[int] = Field(description="同类别、距离很近的未结案问题编号 (possible duplicates)")


class TransitionCreate(BaseModel):
    to_status: Literal[cases.STATUSES] = Field(description="新状态")  # type: ignore[valid-type]
    note: str = Field("", max_length=2000, description="办理意见")
    actor: str | None = Field(None, max_length=100, description="经办人 (default: the account name)")


class TransitionPublic(BaseModel):
    problem_id: int
    from_status: str
    to_status: str
    at: str
    actor: str
    note: str


@router.post("", response_model=ProblemPublic, status_code=201, summary="上报问题 (intake)",
             responses={422: {"description": "坐标不在县内、类别未知等 (outside the county, unknown category)"},
                        403: {"description": "网格长只能上报本网格的问题"}})
async def create_problem(body: ProblemCreate, project: ProjectDep, user: Writer) -> ProblemPublic:
    report = svc.Report(category=body.category, lon=body.lon, lat=body.lat, coords=body.coords,
                        description=body.description, source=body.source, reported_at=body.reported_at, user=user)
    row = await run_batched(svc.intake_many, project, report)  # reports arriving together: one commit
    return ProblemPublic(**row)


@router.get("/{problem_id}", summary="问题详情, 含办理记录与照片")
def get_problem(problem_id: int, project: ProjectDep, user: CurrentUser) -> dict:
    from sanigrid.layers.catalogue import CATALOGUE

    row = svc.problem_row(project.store, problem_id)
    check_case_read(user, row["grid_code"])
    s = CATALOGUE["problems"]
    rec = row_record(row, s, s.field_names)
    pt = display_geometries([row["geometry"]], store_crs(project.store))[0]
    shots = svc.photos(project.store, problem_id)
    rec.update(lon=round(pt.x, 7), lat=round(pt.y, 7), history=svc.history(project.store, problem_id),
               photos=shots, photo_urls=[f"/api/problems/{problem_id}/photos/{p.rsplit('/', 1)[-1]}" for p in shots])
    return rec


@router.post("/{problem_id}/transitions", response_model=TransitionPublic, status_code=201,
             summary="变更状态 (only legal steps, each by the roles allowed to take it)",
             description="合法步骤及可办理的角色 (the steps and who may take each):\n\n" + "\n".join(
                 f"- {a} → {b}: " + ", ".join(f"{r} ({cases.ROLE_ZH[r]}){' 本网格' if s == cases.OWN else ''}"
                                              for r, s in who.items())
                 for (a, b), who in cases.PERMISSIONS.items()),
             responses={409: {"description": "不合法的状态变更, 或提交核查时缺少处置后照片 (illegal step; "
                                             "after-photo missing)"},
                        403: {"description": "该角色不能办理此步骤, 或不是本网格的问题 (role or grid)"}})
async def post_transition(problem_id: int, body: TransitionCreate, project: ProjectDep,
                          user: Writer) -> TransitionPublic:
    rec = await run_write(svc.transition, project, problem_id, to_status=body.to_status, note=body.note,
                          actor=body.actor, user=user)
    return TransitionPublic(**rec)


class ProblemEdit(BaseModel):
    description: str | None = Field(None, max_length=2000)
    category: str | None = Field(None, description="新类别 (处置时限随之重算)")
    grid_code: str | None = Field(None, description="改派网格 (创卫办 only)")
    unit: str | None = Field(None, max_length=200, description="责任单位")


@router.patch("/{problem_id}", summary="修改问题: 描述、类别、改派网格或责任单位",
              responses={403: {"description": "网格长不能修改他网格的问题, 也不能把问题移出本网格"}})
async def patch_problem(problem_id: int, body: ProblemEdit, project: ProjectDep, user: Writer) -> dict:
    return await run_write(svc.edit, project, problem_id, body.model_dump(exclude_none=True), user=user)


class PriorityUpdate(BaseModel):
    priority: bool = Field(description="督办 (true) 或取消督办 (false)")
    note: str = Field("", max_length=2000, description="督办意见")


@router.put("/{problem_id}/priority", summary="督办: 标记或取消 (the campaign office only)",
            responses={403: {"description": "只有创卫办可以督办 (office only)"}})
def put_priority(problem_id: int, body: PriorityUpdate, project: ProjectDep, user: Writer) -> dict:
    return svc.set_priority(project, problem_id, priority=body.priority, note=body.note, user=user)


@router.get("/{problem_id}/history", summary="办理记录 (problem_history)")
def get_history(problem_id: int, project: ProjectDep, user: CurrentUser) -> list[dict]:
    check_case_read(user, svc.problem_row(project.store, problem_id)["grid_code"])
    return svc.history(project.store, problem_id)


@router.post("/{problem_id}/photos", status_code=201, summary="上传现场照片 (JPEG/PNG/WebP)")
async def post_photo(problem_id: int, project: ProjectDep, user: Writer,
                     photo: Annotated[UploadFile, File(description="照片")]) -> dict:
    limit = int(project.settings.web.photo_max_mb * 1024 * 1024)
    data = await photo.read(limit + 1)  # the body itself is capped while it streams in (web.limits)
    path = svc.save_photo(project, problem_id, data=data, content_type=photo.content_type or "", user=user)
    return {"problem_id": problem_id, "path": path}


PHOTO_MEDIA = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@router.get("/{problem_id}/photos/{name}", summary="现场照片 (only for accounts that may read the case)",
            response_class=FileResponse,
            responses={200: {"content": {m: {} for m in PHOTO_MEDIA.values()}, "description": "the photo"}})
def get_photo(problem_id: int, name: str, project: ProjectDep, user: CurrentUser) -> FileResponse:
    check_case_read(user, svc.problem_row(project.store, problem_id)["grid_code"])
    path = svc.photo_file(project, problem_id, name)
    return FileResponse(path, media_type=PHOTO_MEDIA.get(path.suffix.lstrip("."), "application/octet-stream"),
                        headers={"Cache-Control": "private, no-store"})
