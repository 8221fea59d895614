"""A bounded slice of the load run (issue 15, `benchmarks/bench_load.py`): `shequ serve --workers 2` on a copy
of the test database, auth on, 10 locust clients for 10 s mixing tiles, OGC features, geocode, reverse, grid
locate, edit previews and drafts. Asserted: no error (timeout, reset, 5xx other than a 503 with
Retry-After), no other 4xx, every kind answered, the drafts really written, the server answering /health and
a pooled read after the load, no traceback in its log. No timing is asserted: the figures are the bench's
(`docs/benchmarks.md`, "Load (issue 15)")."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gis_api.backup import backup, restore
from gis_api.settings import project_root

sys.path.insert(0, str(project_root() / "benchmarks"))
import bench_load  # noqa: E402

DB = "shequ_load"


@pytest.fixture(scope="module")
def load_db(pg_url, jurisdictions, tmp_path_factory):
    """A copy of the test database (its registry and grids built by `jurisdictions`): the drafts the load
    writes never reach the other tests."""
    folder = tmp_path_factory.mktemp("load")
    url = make_url(pg_url).set(database=DB).render_as_string(hide_password=False)
    backup(pg_url, folder / "load.dump")
    restore(url, folder / "load.dump")
    (folder / "load.dump").unlink()
    yield url, folder
    admin = create_engine(make_url(pg_url).set(drivername="postgresql+psycopg", database="postgres"),
                          isolation_level="AUTOCOMMIT")
    from gis_api.db import get_engine

    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
    admin.dispose()


def test_ten_clients_ten_seconds_no_error_and_the_server_recovers(load_db):
    from gis_api.db import get_engine

    url, folder = load_db
    plan = bench_load.prepare(url, folder, weights={"system": 4, "grid_manager": 1})
    s = bench_load.load_run(url, folder, users=10, seconds=10, workers=2, tag="test", warm_up=False)

    assert s["errors"] == 0, s["error_kinds"]
    assert s["refused"] == 0, s["refused_statuses"]  # no 401 / 403 / 422 / 429: auth and inputs hold
    for kind in bench_load.KINDS:
        assert s["kinds"][kind]["ok"] > 0, (kind, s["kinds"].get(kind))
    assert s["answers"] == sum(k["ok"] + k["busy"] for k in s["kinds"].values())
    with get_engine(url).connect() as conn:
        drafts = conn.execute(text("SELECT count(*) FROM grid_edit WHERE created_by = :u AND status = 'draft' "
                                   "AND community_code = :c"),
                              {"u": bench_load.GM_NAME, "c": plan["community"]}).scalar()
    assert drafts == s["kinds"]["edit draft"]["ok"]  # every 201 is a row, nothing else was written
    assert s["recovery"]["health_s"] is not None and s["recovery"]["locate_s"] is not None
    assert s["recovery"]["after"]["statuses"] == [200]
    assert s["health_during"]["n"] >= 1 and s["health_during"]["ok"] == s["health_during"]["n"]
    assert s["server_log"] == {"tracebacks": 0, "pool_timeouts": 0, "http_500_lines": 0}
