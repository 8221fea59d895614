"""Helpers of the fault tests (issue 15, `tests/gis_api/test_faults*.py`): throw-away embedded clusters,
waiting on what the server shows (never on sleeps), `kill -9` of the postmaster or of a real API process,
and the invariants checked after a crash (versions, audit chain, tile cache).

Nothing here mocks anything: every helper drives a real PostgreSQL, a real `shequ serve` (uvicorn) child
process, or reads the real tables."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from gis_api.db import get_engine
from gis_api.embedded_pg import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left to an init that does not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return False


def wait_until(cond: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Poll ``cond`` every 50 ms until it is true; an AssertionError naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def throwaway_cluster(prefix: str, root: Path | None = None) -> Iterator[EmbeddedPostgres]:
    """A started embedded cluster of its own (durability off) under a temp folder (or ``root``), removed after."""
    own = root is None
    folder = Path(tempfile.mkdtemp(prefix=prefix)) if root is None else root
    pg = EmbeddedPostgres(folder, free_port(), fast=True)
    try:
        pg.start()
        yield pg
    finally:
        if pg.password_file.exists():
            get_engine(pg.url()).dispose()
        try:
            pg.stop()
        finally:
            if own:
                shutil.rmtree(folder, ignore_errors=True)


def backends(engine: Engine, where: str = "true") -> list[int]:
    """Pids of the client backends of this database (other than ours) matching the SQL condition ``where``
    over pg_stat_activity; a new transaction each time (pg_stat_activity is a snapshot)."""
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
            f"AND datname = current_database() AND ({where})")).scalars())


def server_pids(engine: Engine) -> list[int]:
    """Every process of the server (postmaster's children included) that pg_stat_activity lists."""
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT pid FROM pg_stat_activity")).scalars())


def kill_postmaster(cluster: EmbeddedPostgres, pids: list[int] | None = None) -> int:
    """``kill -9`` of the cluster's postmaster (pid from postmaster.pid); returns once it and ``pids`` (its
    backends) are gone and pg_ctl no longer counts it as running. The data folder is left as the crash left it."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().splitlines()[0])
    os.kill(postmaster, signal.SIGKILL)
    get_engine(cluster.url()).dispose()
    # the orphaned backends notice the postmaster's death and exit (pg_ctl status counts the killed
    # postmaster as running until its parent has reaped it)
    wait_until(lambda: not any(alive(p) for p in [postmaster, *(pids or [])]) and not cluster.status().running,
               "the old server processes to exit")
    return postmaster


def counts(engine: Engine, tables: tuple[str, ...]) -> dict[str, int]:
    """Row count of each table."""
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def version_breaks(conn: Connection, table: str) -> list[str]:
    """Codes of a versioned table (`grid`, `standard_address`) whose versions are not 1..n with at most one
    current row (``valid_to IS NULL``), the newest — what a half-written new version would leave."""
    return list(conn.execute(text(
        f"SELECT code FROM {table} GROUP BY code HAVING "
        "count(*) FILTER (WHERE valid_to IS NULL) > 1 OR min(version) <> 1 OR max(version) <> count(*) "
        "OR count(DISTINCT version) <> count(*) OR (count(*) FILTER (WHERE valid_to IS NULL) = 1 AND "
        "max(version) FILTER (WHERE valid_to IS NULL) <> max(version))")).scalars())


class ApiProcess:
    """`shequ serve` as a real child process (uvicorn; one worker, or ``workers`` processes forked by
    gunicorn's arbiter) on ``port``, against ``db_url``."""

    def __init__(self, db_url: str, port: int | None = None, workers: int = 1):
        self.db_url = db_url
        self.port = port or free_port()
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="shequ-api-", suffix=".log")[1])

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> ApiProcess:
        """Start the server and wait until `/health` answers ok."""
        env = {**os.environ, "DATABASE_URL": self.db_url, "SHEQU_DATABASE_URL": self.db_url,
               "SHEQU_JOB_WORKERS": "1"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gis_api.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 *(["--workers", str(self.workers)] if self.workers > 1 else [])],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                return httpx.get(f"{self.base}/health", timeout=5).json().get("status") == "ok"
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(up, "the API process to answer /health", timeout)
        return self

    def kill9(self) -> None:
        """``kill -9`` of the server process; returns once it is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        """Stop the server if it runs (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.unlink(missing_ok=True)


def roads_csv(prefix: str, rows: int, *, district: str = "310101", per_row: int = 50) -> bytes:
    """An address-import CSV of ``rows`` new roads named ``{prefix}{i}路`` in a district near the Bund (a road's
    parent is the district, so no other base data is needed), ``per_row`` points per row of a small lattice."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["district", "road", "lon", "lat"])
    for i in range(rows):
        w.writerow([district, f"{prefix}{i}路", f"{121.485 + (i % per_row) * 0.0001:.6f}",
                    f"{31.232 + (i // per_row) * 0.00005:.6f}"])
    return buf.getvalue().encode("utf-8")
