"""/analysis/jobs: jobs run in worker processes with progress and a kept result; cancel; restart recovery;
roles; bad input is a 4xx before anything is queued; a failed or cancelled job's result is a clear 409."""

import secrets
import time

import pytest
from sqlalchemy import text

TIMEOUT_S = 180


def _wait(client, headers, job_id, until=("done", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        st = client.get(f"/analysis/jobs/{job_id}", headers=headers).json()
        if st["state"] in until or time.monotonic() > deadline:
            return st
        time.sleep(0.3)


@pytest.fixture(scope="module")
def planner(role_headers):
    return role_headers["planner"]


def test_coverage_job_runs_in_a_worker_and_keeps_its_result(client, planner, jurisdictions):
    r = client.post("/analysis/jobs", headers=planner, json={
        "kind": "coverage", "params": {"facility_type": "幼儿园", "distance": "walk",
                                       "community_code": jurisdictions["community"]}})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] in ("queued", "running", "done") and r.headers["location"] == f"/analysis/jobs/{job['id']}"
    st = _wait(client, planner, job["id"])
    assert st["state"] == "done" and st["progress"] == 1, st
    res = client.get(f"/analysis/jobs/{job['id']}/result", headers=planner)
    assert res.status_code == 200
    body = res.json()
    sync = client.post("/analysis/coverage", headers=planner, json={
        "facility_type": "幼儿园", "distance": "walk", "community_code": jurisdictions["community"]}).json()
    assert body["summary"]["covered_households"] == sync["summary"]["covered_households"]
    assert body["summary"]["households"] > 0
    ids = [j["id"] for j in client.get("/analysis/jobs", headers=planner).json()]
    assert job["id"] in ids
    # a finished job cannot be cancelled; deleting it removes it (and its result)
    assert client.post(f"/analysis/jobs/{job['id']}/cancel", headers=planner).status_code == 409
    assert client.delete(f"/analysis/jobs/{job['id']}", headers=planner).status_code == 204
    assert client.get(f"/analysis/jobs/{job['id']}", headers=planner).status_code == 404
    assert client.get(f"/analysis/jobs/{job['id']}/result", headers=planner).status_code == 404
    assert job["id"] not in [j["id"] for j in client.get("/analysis/jobs", headers=planner).json()]
    assert client.delete(f"/analysis/jobs/{job['id']}", headers=planner).status_code == 404


def test_isochrone_job(client, planner):
    r = client.post("/analysis/jobs", headers=planner, json={
        "kind": "isochrones", "params": {"facility_type": "幼儿园", "minutes": [5, 10]}})
    assert r.status_code == 202, r.text
    st = _wait(client, planner, r.json()["id"])
    assert st["state"] == "done", st
    res = client.get(f"/analysis/jobs/{st['id']}/result", headers=planner).json()
    assert {f["properties"]["minutes"] for f in res["layers"]["isochrones"]["features"]} == {5, 10}


def test_cancel_stops_a_job_and_keeps_nothing(client, planner, engine):
    heavy = {"kind": "scenario", "params": {"name": f"取消测试-{secrets.token_hex(3)}", "facility_type": "幼儿园",
                                            "model": "mclp", "new_sites": 60, "distance": "walk",
                                            "candidates": ["buildings", "intersections"], "time_limit_s": 6}}
    ids = [client.post("/analysis/jobs", headers=planner, json=heavy).json()["id"] for _ in range(3)]
    first = _wait(client, planner, ids[0], until=("running", "done", "failed", "cancelled"))
    assert first["state"] == "running", first  # cancelled while a worker is solving it
    for job_id in ids:  # the others: running in the second worker, or still queued
        r = client.post(f"/analysis/jobs/{job_id}/cancel", headers=planner)
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    for job_id in ids:
        st = client.get(f"/analysis/jobs/{job_id}", headers=planner).json()
        assert st["state"] == "cancelled"
        res = client.get(f"/analysis/jobs/{job_id}/result", headers=planner)
        assert res.status_code == 409 and "取消" in res.json()["message"]
    # the workers stop at their next progress report and roll their transaction back: once they are all
    # through, no scenario of that name was saved
    runner = client.app.state.job_runner
    deadline = time.monotonic() + TIMEOUT_S
    while any(runner.busy(i) for i in ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(runner.busy(i) for i in ids)
    with engine.connect() as conn:
        saved = conn.execute(text("SELECT count(*) FROM siting_scenario WHERE name = :n"),
                             {"n": heavy["params"]["name"]}).scalar_one()
        states = conn.execute(text("SELECT DISTINCT state FROM analysis_job WHERE id = ANY(:i)"),
                              {"i": ids}).scalars().all()
    assert saved == 0 and states == ["cancelled"]


def test_failed_job_has_a_clear_message(client, planner, jurisdictions):
    # p above the candidate count only shows when the candidates are known: the job fails, its result is a 409
    r = client.post("/analysis/jobs", headers=planner, json={
        "kind": "siting", "params": {"facility_type": "幼儿园", "model": "mclp", "new_sites": 10_000,
                                     "community_code": jurisdictions["community"]}})
    assert r.status_code == 202, r.text
    st = _wait(client, planner, r.json()["id"])
    assert st["state"] == "failed" and "p larger" in st["message"], st
    res = client.get(f"/analysis/jobs/{st['id']}/result", headers=planner)
    assert res.status_code == 409 and "失败" in res.json()["message"]
    assert client.post(f"/analysis/jobs/{st['id']}/cancel", headers=planner).status_code == 409


@pytest.mark.parametrize("body,status", [
    ({"kind": "nope", "params": {}}, 422),
    ({"kind": "coverage", "params": {"facility_type": "幼儿园", "radius_m": 0}}, 422),
    ({"kind": "coverage", "params": {"facility_type": "幼儿园", "radius_m": -50}}, 422),
    ({"kind": "isochrones", "params": {"facility_type": "幼儿园", "minutes": []}}, 422),
    ({"kind": "scenario", "params": {"name": "x", "facility_type": "幼儿园", "candidates": ["points"],
                                     "points_csv": "id,foo,bar\n1,2,3\n"}}, 422),
    ({"kind": "scenario", "params": {"name": "x", "facility_type": "幼儿园", "area_code": "999999999999"}}, 404),
])
def test_bad_input_is_refused_before_queueing(client, planner, engine, body, status):
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM analysis_job")).scalar_one()
    r = client.post("/analysis/jobs", headers=planner, json=body)
    assert r.status_code == status, r.text
    assert r.json()["message"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analysis_job")).scalar_one() == before


def test_unknown_job_is_404(client, planner):
    assert client.get("/analysis/jobs/987654321", headers=planner).status_code == 404
    assert client.post("/analysis/jobs/987654321/cancel", headers=planner).status_code == 404
    assert client.delete("/analysis/jobs/987654321", headers=planner).status_code == 404


@pytest.mark.parametrize("role,status", [("public", 401), ("community", 403), ("grid_manager", 403),
                                         ("police", 403), ("admin", 202)])
def test_only_planners_and_admins_submit_jobs(client, anon_client, role_headers, role, status):
    r = (anon_client if role == "public" else client).post("/analysis/jobs", headers=role_headers[role],
                    json={"kind": "isochrones", "params": {"facility_type": "幼儿园", "minutes": [5]}})
    assert r.status_code == status, r.text


def test_jobs_of_a_runner_that_is_gone_are_failed_on_start_and_on_read(client, planner, engine):
    from gis_api import jobs

    dead_key, live_key = secrets.randbits(62), secrets.randbits(62)
    with engine.connect() as holder:  # a live runner elsewhere holds its key
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": live_key})
        holder.commit()
        with engine.begin() as conn:
            dead, live = (conn.execute(text(
                "INSERT INTO analysis_job (kind, params, state, created_by, runner_key) "
                "VALUES ('coverage', '{}', 'running', 'm-planner', :k) RETURNING id"), {"k": k}).scalar_one()
                for k in (dead_key, live_key))
        st = client.get(f"/analysis/jobs/{dead}", headers=planner).json()
        assert st["state"] == "failed" and "重启" in st["message"]
        assert client.get(f"/analysis/jobs/{live}", headers=planner).json()["state"] == "running"
        runner = jobs.JobRunner(engine, workers=1)  # a fresh start fails every orphan, not live ones
        try:
            assert runner.recovered == 0  # the dead one was already failed on read
        finally:
            runner.close()
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": live_key})
        holder.commit()
    runner = jobs.JobRunner(engine, workers=1)
    try:
        assert runner.recovered >= 1
    finally:
        runner.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM analysis_job WHERE id = :i"), {"i": live}).scalar_one() == "failed"


def test_openapi_documents_the_job_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths["/analysis/jobs"])
    assert {"get", "delete"} <= set(paths["/analysis/jobs/{job_id}"])
    assert "409" in paths["/analysis/jobs/{job_id}/result"]["get"]["responses"]
