"""A private PostgreSQL + PostGIS cluster kept in the project's data folder.

`shequ db start` creates it on first use (initdb), configures it to listen on a Unix socket inside the
folder and on 127.0.0.1:<port>, starts it and makes sure the database and the PostGIS extension exist.
pg_ctl refuses to run as root, so when we are root the server runs as an unprivileged OS user (created
if missing) that owns the cluster folder; the folder then defaults to one outside the checkout
(`gis_api.settings.Settings.pg_path`), and no permission of any folder above it is changed: a folder the
server user cannot reach is an error naming the fix.

Nothing is trusted: every connection, over loopback TCP or the private socket, authenticates with a
generated password (scram-sha-256) kept in ``<folder>/password`` (0600, owned by whoever runs `shequ`).
A cluster made by an older version with `trust` is switched over at the next start.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo.errors import Unavailable


class EmbeddedPgError(Unavailable, RuntimeError):
    """The embedded cluster cannot be set up or run: a one-line cause and a fix (the CLI exits with 1)."""


@dataclass
class PgStatus:
    """Is the cluster running, its postmaster pid, and a one-line description."""

    running: bool
    pid: int | None
    message: str


def find_pg_bin(preferred: Path | None = None, major: str = "15") -> Path:
    """The folder holding initdb, pg_ctl and postgres (``preferred``, PostgreSQL ``major``, any other, PATH)."""
    candidates: list[Path] = []
    if preferred:
        candidates.append(Path(preferred))
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).resolve().parent)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists() and (c / "postgres").exists():
            return c
    raise EmbeddedPgError(
        "PostgreSQL server binaries not found (initdb/pg_ctl/postgres); fix: apt-get install postgresql-15 "
        "postgresql-15-postgis-3, or set SHEQU_PG_BIN, or set DATABASE_URL to an existing PostGIS server"
    )


def _share_dir(bin_dir: Path) -> Path:
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return Path("/usr/share/postgresql") / bin_dir.parent.name


def check_postgis(bin_dir: Path) -> None:
    """Raise `EmbeddedPgError` (with the apt-get fix) unless PostGIS is installed for this PostgreSQL."""
    control = _share_dir(bin_dir) / "extension" / "postgis.control"
    if not control.exists():
        major = bin_dir.parent.name
        raise EmbeddedPgError(
            f"PostGIS is not installed for PostgreSQL {major} ({control} missing); "
            f"fix: apt-get install postgresql-{major}-postgis-3"
        )


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when another program already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for throw-away clusters)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedPostgres:
    """A private cluster under ``root`` (``data/``, socket folder ``run/``, ``server.log``) on ``port``.

    ``os_user`` runs the server when we are root; ``fast`` turns durability off for throw-away test clusters.
    """

    def __init__(self, root: Path, port: int, user: str = "shequ", database: str = "shequ",
                 bin_dir: Path | None = None, os_user: str = "postgres", fast: bool = False):
        self.root = Path(root).resolve()
        self.port = int(port)
        self.user = user
        self.database = database
        self._bin_dir = bin_dir
        self.os_user = os_user
        self.fast = fast  # fsync off etc.: for throw-away test clusters

    # -- paths ---------------------------------------------------------------------------------
    @property
    def data(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """The private Unix socket folder."""
        return self.root / "run"

    @property
    def log(self) -> Path:
        """The server log file."""
        return self.root / "server.log"

    @property
    def bin_dir(self) -> Path:
        """The PostgreSQL binaries in use (found on first use)."""
        if self._bin_dir is None or not (Path(self._bin_dir) / "pg_ctl").exists():
            self._bin_dir = find_pg_bin(self._bin_dir)
        return Path(self._bin_dir)

    @property
    def password_file(self) -> Path:
        """The generated password of the cluster's user (0600, owned by whoever runs `shequ`)."""
        return self.root / "password"

    def password(self) -> str:
        """The cluster user's password (generated at initdb)."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError as exc:
            raise EmbeddedPgError(f"the cluster's password file {self.password_file} is missing; "
                                  "fix: run `shequ db start` (it sets a new one)") from exc

    def url(self) -> str:
        """The libpq URL of the cluster's database over loopback TCP (with the generated password)."""
        from urllib.parse import quote

        return f"postgresql://{self.user}:{quote(self.password(), safe='')}@127.0.0.1:{self.port}/{self.database}"

    # -- running as the right OS user ----------------------------------------------------------
    def _run_as(self) -> str | None:
        """The OS user to run server commands as: None = ourselves; a name when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            self.os_user], check=True, capture_output=True)
        return self.os_user

    def _cmd(self, args: list[str], check: bool = True, timeout: float = 120,
             password: str | None = None) -> subprocess.CompletedProcess:
        run_as = self._run_as()
        kwargs: dict[str, Any] = {}
        if run_as:
            ent = pwd.getpwnam(run_as)
            kwargs = {"user": ent.pw_uid, "group": ent.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        if password is not None:
            env["PGPASSWORD"] = password
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd="/", **kwargs)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise EmbeddedPgError(f"{Path(args[0]).name} failed: {' | '.join(tail)}; see {self.log}")
        return proc

    def _prepare_dirs(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except PermissionError as exc:
            raise EmbeddedPgError(f"cannot create the data folder {self.root} ({exc.strerror}); "
                                  f"fix: point SHEQU_PG_DIR at a folder you can write") from exc
        run_as = self._run_as()
        if run_as:
            ent = pwd.getpwnam(run_as)
            # the server user must reach the folder; nothing above it is changed to make that so
            for parent in self.root.parents:
                st = parent.stat()
                if st.st_uid != ent.pw_uid and not st.st_mode & 0o001:
                    raise EmbeddedPgError(
                        f"the database user '{run_as}' cannot reach {self.root}: {parent} is not traversable "
                        f"by other users; fix: leave SHEQU_PG_DIR unset (as root the cluster lives under "
                        f"/var/lib/shequ-gis) or point it at a folder '{run_as}' can reach")
            os.chmod(self.root, 0o700)
            for p in (self.root, self.socket_dir):
                p.mkdir(parents=True, exist_ok=True)
                os.chown(p, ent.pw_uid, ent.pw_gid)
            if self.log.exists():
                os.chown(self.log, ent.pw_uid, ent.pw_gid)
        else:
            for p in (self.root, self.data):
                if p.exists() and p.stat().st_uid != os.geteuid():
                    owner = pwd.getpwuid(p.stat().st_uid).pw_name
                    raise EmbeddedPgError(
                        f"data folder {p} is owned by '{owner}', not by you; fix: run as '{owner}' or root, "
                        f"or point SHEQU_PG_DIR at a folder of your own"
                    )
            self.socket_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def initialized(self) -> bool:
        """True once initdb has made the data directory."""
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster (initdb and its configuration) unless it exists; idempotent."""
        check_postgis(self.bin_dir)
        self._prepare_dirs()
        if self.initialized():
            return
        password = self._new_password()
        pwfile = self.root / ".initdb-pwfile"
        self._write_private(pwfile, password, for_server=True)
        try:
            self._cmd([str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.user,
                       "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale",
                       "--no-instructions"])
        finally:
            pwfile.unlink(missing_ok=True)
        conf = [
            "# written by shequ db start",
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            "max_connections = 100",
            "shared_buffers = 256MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            "logging_collector = off",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data / "postgresql.auto.conf", "a") as fh:
            fh.write("\n".join(conf) + "\n")

    def _new_password(self) -> str:
        """A new random password, written to `password_file` (0600) before any server sees it."""
        password = secrets.token_urlsafe(24)
        self._write_private(self.password_file, password)
        return password

    def _write_private(self, path: Path, text: str, for_server: bool = False) -> None:
        """Write ``text`` to ``path`` with mode 0600 (owned by the server user when ``for_server``)."""
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        run_as = self._run_as()
        if for_server and run_as:
            ent = pwd.getpwnam(run_as)
            os.chown(path, ent.pw_uid, ent.pw_gid)

    def _secure_existing(self) -> None:
        """A cluster made with `trust` (older versions): set a password, switch pg_hba to scram-sha-256."""
        hba = self.data / "pg_hba.conf"
        text = hba.read_text()
        if self.password_file.exists() and " trust" not in text:
            return
        password = self._new_password()
        self._psql(f"ALTER ROLE \"{self.user}\" PASSWORD '{password}'", password=password)
        lines = [ln.replace(" trust", " scram-sha-256") if not ln.lstrip().startswith("#") else ln
                 for ln in text.splitlines()]
        tmp = self.root / ".pg_hba.tmp"
        self._write_private(tmp, "\n".join(lines), for_server=True)
        self._cmd(["cp", str(tmp), str(hba)])
        tmp.unlink(missing_ok=True)
        self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "reload"])

    def status(self) -> PgStatus:
        """Whether the server runs (a stale pid file after a kill is reported as such)."""
        if not self.initialized():
            return PgStatus(False, None, f"not initialised ({self.data}); run: shequ db start")
        pidfile = self.data / "postmaster.pid"
        proc = self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        if proc.returncode == 0:
            pid = None
            for line in proc.stdout.splitlines():
                if "PID:" in line:
                    pid = int(line.split("PID:")[1].strip().rstrip(")").split()[0])
            return PgStatus(True, pid, f"running (pid {pid}) on 127.0.0.1:{self.port}, socket {self.socket_dir}")
        if pidfile.exists():
            return PgStatus(False, None, "stopped: stale postmaster.pid (the server was killed); "
                                         "run: shequ db start")
        return PgStatus(False, None, "stopped")

    def start(self, timeout: float = 60) -> PgStatus:
        """Initialise if needed, start the server and make sure the database and PostGIS exist; idempotent."""
        self.init()
        st = self.status()
        if st.running:
            self._secure_existing()
            self._ensure_database()
            return st
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # stale: pg_ctl status said no server runs on it
            pidfile.unlink()
        if port_in_use(self.port):
            raise EmbeddedPgError(
                f"port {self.port} on 127.0.0.1 is already in use by another program; "
                f"fix: set SHEQU_PG_PORT to a free port (or stop that program)"
            )
        self._prepare_dirs()
        self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                   "-t", str(int(timeout)), "-o", f"-p {self.port}", "start"], timeout=timeout + 10)
        self._secure_existing()
        self._ensure_database()
        return self.status()

    def stop(self) -> PgStatus:
        """Stop the server (fast shutdown); idempotent."""
        if not self.initialized():
            return PgStatus(False, None, "not initialised")
        if self.status().running:
            self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        return self.status()

    def make_replica(self, root: Path, port: int) -> EmbeddedPostgres:
        """A hot standby of this running cluster under ``root`` on ``port``, started (issue 14).

        ``pg_basebackup -R -X stream`` copies the cluster over a replication connection and writes the
        standby's ``primary_conninfo``; the copy gets its own port and socket folder and the same password
        (same users: it is a copy). Reads only; it follows the primary by streaming replication.
        """
        standby = EmbeddedPostgres(root, port, self.user, self.database, self._bin_dir, self.os_user, self.fast)
        if not standby.initialized():
            standby._prepare_dirs()
            standby._write_private(standby.password_file, self.password())
            self._cmd([str(self.bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port),
                       "-U", self.user, "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
                       "-w"], password=self.password(), timeout=600)
            with open(standby.data / "postgresql.auto.conf", "a") as fh:  # later lines win over the copy's
                fh.write(f"# standby of 127.0.0.1:{self.port}\nport = {port}\n"
                         f"unix_socket_directories = '{standby.socket_dir}'\n")
        standby.start()
        return standby

    def _psql(self, sql: str, database: str = "postgres", password: str | None = None) -> str:
        pw = password if password is not None else (self.password() if self.password_file.exists() else "")
        proc = self._cmd([str(self.bin_dir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
                          "-U", self.user, "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         password=pw)
        return proc.stdout.strip()

    def _ensure_database(self) -> None:
        deadline = time.time() + 30
        while True:
            try:
                exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'")
                break
            except EmbeddedPgError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        if self._psql("SELECT pg_is_in_recovery()") == "t":
            return  # a standby (`make_replica`): a read-only copy of a primary that has both
        if exists != "1":
            self._psql(f'CREATE DATABASE "{self.database}"')
        self._psql("CREATE EXTENSION IF NOT EXISTS postgis", database=self.database)


def from_settings(settings) -> EmbeddedPostgres:
    """The embedded cluster the settings describe (folder, port, user, database, binaries, OS user)."""
    return EmbeddedPostgres(settings.pg_path, settings.pg_port, settings.pg_user, settings.pg_database,
                            settings.pg_bin, settings.pg_os_user)
