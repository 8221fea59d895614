"""``/analysis/jobs``: long analyses as jobs (POST → id, GET status / result, POST …/cancel, DELETE removes).

Thin adapter over :mod:`gis_api.jobs` (the runner and its worker processes). Jobs are the caller's own;
an admin sees everyone's. Parameters are validated (and candidate CSVs parsed) before the job is queued,
so bad input is a 4xx at once, never a failed job later.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis_api import jobs as j
from gis_api.analysis_tasks import scenario_params
from gis_api.auth import roles as r
from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.params import RowIdPath
from gis_api.schemas.workbench import JobRequest

router = APIRouter(prefix="/analysis/jobs", tags=["analysis jobs 分析任务"])
_JOBS = Depends(requires("analysis:jobs"))


def _owner(principal: r.Principal) -> str | None:
    return None if principal.role == r.ADMIN else principal.actor


def _status(job: dict) -> dict:
    out = {k: job[k] for k in ("id", "kind", "state", "progress", "message", "created_by", "created_at",
                               "started_at", "finished_at")}
    out["links"] = {"self": f"/analysis/jobs/{job['id']}", "result": f"/analysis/jobs/{job['id']}/result"}
    return out


@router.post("", status_code=202, summary="提交分析任务 submit an analysis job")
def submit(req: JobRequest, request: Request, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = _JOBS) -> JSONResponse:
    """排队一个分析任务（coverage / siting / isochrones / scenario），立即返回任务编号；在工作进程中运行。
    Queue a job; it runs in a worker process. Poll ``GET /analysis/jobs/{id}``, then read ``…/result``."""
    params = req.params.model_dump()
    if req.kind == "scenario":
        params = scenario_params(conn, req.params, principal.actor)
    runner = j.runner_of(request.app)
    job_id = runner.submit(req.kind, params, principal.actor)
    job = j.get_job(conn, job_id, None)
    return JSONResponse(_jsonable(_status(job)), status_code=202, headers={"Location": f"/analysis/jobs/{job_id}"})


@router.get("", summary="我的分析任务 my analysis jobs")
def listing(request: Request, conn: Connection = Depends(db_conn, scope="function"),
            principal: r.Principal = _JOBS) -> list[dict]:
    """最近 100 个任务（管理员：所有人的）。The 100 latest jobs (admin: everyone's)."""
    j.runner_of(request.app)  # fails what a previous run left running
    rows = conn.execute(text(f"SELECT {j.COLUMNS} FROM analysis_job WHERE CAST(:u AS text) IS NULL OR created_by = :u "
                             "ORDER BY id DESC LIMIT 100"), {"u": _owner(principal)}).mappings().all()
    return [_status(dict(row)) for row in rows]


@router.get("/{job_id:int}", summary="任务状态 job status")
def status(job_id: RowIdPath, request: Request, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = _JOBS) -> dict:
    """状态、进度与消息。State (queued, running, done, failed, cancelled), progress 0–1, message."""
    j.runner_of(request.app).fail_orphans(job_id)
    return _status(j.get_job(conn, job_id, _owner(principal)))


@router.get("/{job_id:int}/result", summary="任务结果 job result",
            responses={409: {"description": "任务未完成、失败或已取消 not finished, failed or cancelled"}})
def result(job_id: RowIdPath, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = _JOBS) -> dict:
    """已完成任务的结果（与同步接口相同的 JSON）；未完成、失败或取消时 409。"""
    return j.job_result(conn, job_id, _owner(principal))


@router.post("/{job_id:int}/cancel", summary="取消任务 cancel a job",
             responses={409: {"description": "任务已结束 the job has already ended"}})
def cancel(job_id: RowIdPath, request: Request, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = _JOBS) -> dict:
    """取消排队或运行中的任务；其结果不会保存，任务记录保留（状态 cancelled）。
    Cancel a queued or running job: nothing it computed is kept; the job stays readable as ``cancelled``."""
    return _status(j.runner_of(request.app).cancel(conn, job_id, _owner(principal)))


@router.delete("/{job_id:int}", status_code=204, summary="删除任务 delete a job",
               response_class=Response, responses={204: {"description": "已删除 deleted"}})
def delete(job_id: RowIdPath, request: Request, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = _JOBS) -> Response:
    """删除任务及其结果（排队或运行中的先取消）；之后读取为 404。
    Delete a job and its result (a queued or running one is cancelled first); reading it after is a 404."""
    j.runner_of(request.app).delete(conn, job_id, _owner(principal))
    return Response(status_code=204)


def _jsonable(d: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()}
