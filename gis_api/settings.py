"""Settings, read once from the environment (prefix SHEQU_; DATABASE_URL without prefix) and passed in."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def project_root() -> Path:
    """The checkout holding pyproject.toml (editable install), else the current directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


class Settings(BaseSettings):
    """Every setting of the product, from ``SHEQU_*`` environment variables (and ``DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="SHEQU_", extra="ignore")

    # Where the product keeps its own files (embedded cluster, outputs).
    data_dir: Path = Field(default_factory=lambda: project_root() / "var")
    # Embedded PostgreSQL cluster; defaults to <data_dir>/pg.
    pg_dir: Path | None = None
    pg_port: int = 54329
    pg_user: str = "shequ"
    pg_database: str = "shequ"
    # Directory of initdb/pg_ctl; found under /usr/lib/postgresql/<v>/bin when unset.
    pg_bin: Path | None = None
    # OS user that runs the server when started as root (pg_ctl refuses to run as root).
    pg_os_user: str = "postgres"
    # An external server; when set, every command uses it instead of the embedded cluster.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SHEQU_DATABASE_URL")
    )
    # A hot standby of that database (streaming replication): routes that only read are served there
    # (gis_api/replica.py); unset = everything on the one database. A replica that is down is tried again
    # after replica_retry_s, its reads served by the primary meanwhile.
    database_url_read: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL_READ", "SHEQU_DATABASE_URL_READ")
    )
    replica_retry_s: float = Field(default=5.0, gt=0)

    # Read-only real data (../shared/data beside the checkout).
    shared_data_dir: Path = Field(default_factory=lambda: project_root().parent / "shared" / "data")

    host: str = "127.0.0.1"
    port: int = 8000
    # API worker processes behind the one port (`shequ serve --workers`): forked from one parent that loaded
    # the geocoder index, which they share copy-on-write (gis_api/serving.py); each brings its copy up to
    # date from the database within 2 s of a write (address_registry/geocoder_cache.py).
    workers: int = Field(default=1, ge=1, le=64)
    # With several workers: replace a worker by a new fork of the parent after about this many requests
    # (±10 %), which shares the whole index again — the pages a worker's geocodes unshared (reference
    # counts written) are given back. 0 = never. Off by default: a replaced worker's running analysis jobs
    # are marked interrupted (gis_api/jobs.py). docs/scaling.md, "One index shared by the workers".
    worker_max_requests: int = Field(default=0, ge=0)
    # Build the geocoder index in the background when a served app starts (set by `shequ serve`), so a
    # worker's first geocode does not wait for it; off for apps made in tests and scripts.
    warm_geocoder: bool = False
    # Write each whole geocoder build to <data_dir>/geocoder (owner-only) and start from that snapshot plus
    # the registry's changes since it (address_registry/geocoder_snapshot.py): N workers, and every restart,
    # pay one build. Set by `shequ serve`; off for apps made in tests and scripts.
    geocoder_snapshots: bool = False
    # Answer GET /reverse from the in-memory reverse index held beside the geocoder (address_registry/
    # reverse_cache.py, issue 14: p99 < 10 ms) instead of one SQL statement per answer; the SQL path stays
    # the fallback while the index is not loaded. Set by `shequ serve`; off for apps made in tests and scripts.
    reverse_in_memory: bool = False
    max_upload_bytes: int = 20 * 1024 * 1024
    # Largest JSON request body on any endpoint (bytes); uploads have their own limits.
    max_json_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Every SQL statement is cancelled after this long (ms; 0 = no limit); a request waits at most
    # pool_timeout_s for a free connection, then gets 503 with Retry-After.
    statement_timeout_ms: int = Field(default=60_000, ge=0)
    pool_timeout_s: float = Field(default=10.0, gt=0)
    # Admission (gis_api/admission.py, issue 15): requests served at once per worker process, and how long
    # the next one waits for a slot before a 503 with Retry-After. 10 = the pool's 10 + 10 connections at
    # two per request (the caller's lookup and the route's transaction can overlap).
    max_in_flight: int = Field(default=10, ge=1)
    # Long analyses (POST /analysis/coverage, isochrones, siting, cameras, scenarios, coverage reports) admitted
    # at once per worker process: they run in its analysis worker processes (gis_api/offload.py,
    # SHEQU_ANALYSIS_WORKERS) and wait for them holding no general slot, thread or pooled connection; the
    # next wait admission_wait_s, then 503.
    max_analyses_in_flight: int = Field(default=2, ge=1)
    admission_wait_s: float = Field(default=2.0, ge=0)
    # API-key (and plate-report) rate limits counted in PostgreSQL, shared by every worker process (issue 15);
    # false: each process keeps its own buckets (a key then gets up to `workers` times its limit).
    shared_rate_limits: bool = True
    # The public root URL printed on QR house-number plates (never taken from a request's Host header).
    public_base_url: str = "http://127.0.0.1:8000"

    # Vector tile cache (tiles/store.py): size cap in MB (1 MB = 1,048,576 bytes of tile data; 0 = no cap).
    # Above it the least recently served tiles are evicted, down to 90 % of the cap.
    tile_cache_max_mb: float = Field(default=512, ge=0)
    # A cached tile's last-access time is refreshed at most this often (minutes), in batches.
    tile_cache_touch_minutes: float = Field(default=10, ge=0)
    # Grid edits: default snapping tolerance (m) of dragged vertices and split lines to roads, street-block
    # edges and building footprints when a request does not say (0 = off; a request may ask for 0–10 m).
    edit_snap_m: float = Field(default=0.0, ge=0, le=10)

    @property
    def pg_path(self) -> Path:
        """The embedded cluster's folder (``SHEQU_PG_DIR``), absolute. Default ``<data_dir>/pg``; as root,
        ``/var/lib/shequ-gis/<checkout>-<hash>/pg`` instead: owned by the database's OS user, outside the
        checkout, so no folder of the checkout has to be opened to that user."""
        if self.pg_dir is not None:
            return Path(self.pg_dir).resolve()
        if os.geteuid() == 0:
            root = project_root().resolve()
            tag = hashlib.blake2b(str(root).encode(), digest_size=4).hexdigest()
            return Path("/var/lib/shequ-gis") / f"{root.name}-{tag}" / "pg"
        return (self.data_dir / "pg").resolve()



@lru_cache
def get_settings() -> Settings:
    """The settings, read once per process."""
    return Settings()
