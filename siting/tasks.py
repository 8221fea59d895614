"""The analyses an analysis job can run: ``run(kind, conn, params, progress)`` → a JSON-able result.

``params`` are the request's validated fields (the API checks them before the job is queued);
``progress(fraction, message)`` reports how far the job is and raises when the job was cancelled, so a
cancelled job stops at its next report and its transaction (a saved scenario included) is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable

from . import service
from .errors import SitingInputError

Progress = Callable[[float, str | None], None]


def _coverage(conn, p: dict, progress: Progress) -> dict:
    from . import store

    progress(0.05, "计算覆盖 computing coverage")
    res = service.coverage_analysis(conn, p["facility_type"], distance=p.get("distance"), radius_m=p.get("radius_m"),
                                    community_code=p.get("community_code"),
                                    include_buildings=p.get("include_buildings", True),
                                    area_geojson=p.get("area"))
    if p.get("save"):
        res["summary"]["result_id"] = store.save_result(conn, "coverage", p, res["summary"])
        if p.get("area") is None:
            store.replace_coverage_gap(conn, res["summary"], res["layers"]["uncovered_area"])
    return res


def _siting(conn, p: dict, progress: Progress) -> dict:
    progress(0.05, "选址求解 solving")
    return service.siting_analysis(
        conn, p["facility_type"], model=p.get("model", "mclp"), new_sites=p.get("new_sites"), p=p.get("p"),
        distance=p.get("distance"), radius_m=p.get("radius_m"), candidates=tuple(p.get("candidates") or ("buildings",)),
        community_code=p.get("community_code"), keep_existing=p.get("keep_existing", True),
        method=p.get("method", "auto"), time_limit_s=p.get("time_limit_s", 60.0))


def _isochrones(conn, p: dict, progress: Progress) -> dict:
    progress(0.05, "加载路网 loading the network")
    return service.isochrone_analysis(conn, p["facility_type"], minutes=tuple(p.get("minutes") or (5, 10, 15)),
                                      speed_m_per_min=p.get("speed_m_per_min"), buffer_m=p.get("buffer_m", 50.0),
                                      community_code=p.get("community_code"), progress=progress)


def _scenario(conn, p: dict, progress: Progress) -> dict:
    from . import scenarios

    progress(0.05, "选址求解 solving")
    return scenarios.run_and_save(conn, p, progress)


TASKS: dict[str, Callable[..., dict]] = {
    "coverage": _coverage, "siting": _siting, "isochrones": _isochrones, "scenario": _scenario,
}


def run(kind: str, conn, params: dict, progress: Progress) -> dict:
    """Run the analysis ``kind`` with ``params`` on ``conn`` (one transaction, the caller's)."""
    task = TASKS.get(kind)
    if task is None:
        raise SitingInputError(f"未知任务类型 {kind!r} (kinds: {', '.join(TASKS)})")
    return task(conn, params, progress)
