"""The embedded PostGIS lifecycle through the real `shequ db` commands (a separate throw-away cluster)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gis_api.embedded_pg import free_port


def shequ(*args, env_extra=None, **kw):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "gis_api.cli", *args], capture_output=True, text=True,
                          env=env, timeout=180, **kw)


@pytest.fixture
def cluster_env():
    root = Path(tempfile.mkdtemp(prefix="shequ-it-"))
    root.chmod(0o755)  # the test's own folder: reachable by the database's OS user (nothing above is changed)
    env = {"SHEQU_PG_DIR": str(root / "pg"), "SHEQU_PG_PORT": str(free_port())}
    yield root, env
    shequ("db", "stop", env_extra=env)
    shutil.rmtree(root, ignore_errors=True)


def test_lifecycle_idempotent_killed_and_restarted(cluster_env):
    root, env = cluster_env
    assert shequ("db", "status", env_extra=env).returncode == 3  # not initialised yet
    first = shequ("db", "start", env_extra=env)
    assert first.returncode == 0, first.stderr
    assert "initialised and started" in first.stdout
    again = shequ("db", "start", env_extra=env)  # idempotent
    assert again.returncode == 0 and "running" in again.stdout and "initialised" not in again.stdout
    url = shequ("db", "url", env_extra=env).stdout.strip()
    password = (root / "pg" / "password").read_text().strip()
    assert url == f"postgresql://shequ:{password}@127.0.0.1:{env['SHEQU_PG_PORT']}/shequ"
    assert len(password) >= 24 and ((root / "pg" / "password").stat().st_mode & 0o777) == 0o600
    version = subprocess.run(["psql", url, "-At", "-c", "SELECT postgis_lib_version()"], capture_output=True,
                             text=True)
    assert version.stdout.startswith("3.")
    # nothing is trusted: no password, a wrong one, or the socket without one are refused
    no_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for bad in (f"postgresql://shequ@127.0.0.1:{env['SHEQU_PG_PORT']}/shequ",
                f"postgresql://shequ:wrong@127.0.0.1:{env['SHEQU_PG_PORT']}/shequ",
                f"postgresql://shequ@/shequ?host={root / 'pg' / 'run'}&port={env['SHEQU_PG_PORT']}"):
        refused = subprocess.run(["psql", bad, "-w", "-At", "-c", "SELECT 1"], capture_output=True, text=True,
                                 env=no_env)
        assert refused.returncode != 0 and "password" in refused.stderr, (bad, refused.stderr)
    assert (root / "pg" / "run").is_dir()  # the Unix socket lives in the data folder

    # kill the server the hard way: status detects it, start restarts it despite the stale pid file
    pid = int((root / "pg" / "data" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        try:
            os.kill(pid, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    st = shequ("db", "status", env_extra=env)
    assert st.returncode == 3 and "killed" in st.stdout
    restarted = shequ("db", "start", env_extra=env)
    assert restarted.returncode == 0, restarted.stderr
    assert shequ("db", "status", env_extra=env).returncode == 0

    stopped = shequ("db", "stop", env_extra=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert shequ("db", "stop", env_extra=env).returncode == 0  # idempotent


def test_port_in_use_gives_cause_and_fix(cluster_env):
    _root, env = cluster_env
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", int(env["SHEQU_PG_PORT"])))
        s.listen(1)
        proc = shequ("db", "start", env_extra=env)
    assert proc.returncode != 0
    assert "already in use" in proc.stderr and "SHEQU_PG_PORT" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_postgis_gives_cause_and_fix(cluster_env, tmp_path):
    root, env = cluster_env
    fake_bin = tmp_path / "pgfake" / "bin"  # server binaries present, but no PostGIS beside them
    fake_bin.mkdir(parents=True)
    for tool in ("initdb", "pg_ctl", "postgres", "psql"):
        (fake_bin / tool).symlink_to(f"/usr/lib/postgresql/15/bin/{tool}")
    proc = shequ("db", "start", env_extra={**env, "SHEQU_PG_BIN": str(fake_bin)})
    assert proc.returncode != 0
    assert "PostGIS is not installed" in proc.stderr and "apt-get install" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_data_folder_owned_by_someone_else(cluster_env):
    """An ordinary user pointing at a cluster folder owned by root gets a cause and a fix."""
    import pwd

    from gis_api.embedded_pg import EmbeddedPgError, EmbeddedPostgres

    root, env = cluster_env
    (root / "pg" / "data").mkdir(parents=True)
    os.chmod(root, 0o755)
    nobody = pwd.getpwnam("nobody")
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # become `nobody` in a forked child (the venv's python is not executable by it)
        os.close(read_fd)
        message = "no error"
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            EmbeddedPostgres(root / "pg", int(env["SHEQU_PG_PORT"])).init()
        except EmbeddedPgError as exc:
            message = str(exc)
        except BaseException as exc:  # report anything else too
            message = f"unexpected {type(exc).__name__}: {exc}"
        os.write(write_fd, message.encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(child, 0)
    message = os.read(read_fd, 4096).decode()
    os.close(read_fd)
    assert "is owned by 'root'" in message and "fix:" in message, message


def test_every_command_has_help():
    for args in (["--help"], ["db", "--help"], ["db", "start", "--help"], ["migrate", "--help"],
                 ["demo", "load", "--help"], ["demo", "all", "--help"], ["serve", "--help"]):
        proc = shequ(*args)
        assert proc.returncode == 0, args
        assert "Usage" in proc.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an ordinary user")
def test_start_and_stop_as_an_ordinary_user(tmp_path):
    """As a non-root user the server runs as that user, in a folder of its own."""
    import json
    import pwd

    from gis_api.embedded_pg import EmbeddedPostgres

    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(prefix="shequ-user-"))
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    port = free_port()
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_fd)
        report = {}
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            pg = EmbeddedPostgres(root / "pg", port, fast=True)
            report["started"] = pg.start().running
            report["owner_uid"] = (root / "pg" / "data").stat().st_uid
            report["stopped"] = not pg.stop().running
        except BaseException as exc:
            report["error"] = f"{type(exc).__name__}: {exc}"
        os.write(write_fd, json.dumps(report).encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(child, 0)
    report = json.loads(os.read(read_fd, 65536).decode())
    os.close(read_fd)
    shutil.rmtree(root, ignore_errors=True)
    assert report == {"started": True, "owner_uid": nobody.pw_uid, "stopped": True}


@pytest.mark.skipif(os.geteuid() != 0, reason="the folder rules for the server's OS user apply when run as root")
def test_as_root_no_folder_above_the_cluster_is_opened(tmp_path):
    """As root the server runs as another OS user: a cluster folder that user cannot reach is refused with
    the fix; the folders above it keep their permissions."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    env = {"SHEQU_PG_DIR": str(closed / "pg"), "SHEQU_PG_PORT": str(free_port())}
    proc = shequ("db", "start", env_extra=env)
    assert proc.returncode == 1 and "cannot reach" in proc.stderr and "SHEQU_PG_DIR" in proc.stderr
    assert (closed.stat().st_mode & 0o777) == 0o700


def test_default_cluster_folder_as_root_is_outside_the_checkout():
    from gis_api.settings import Settings, project_root

    path = Settings(pg_dir=None).pg_path
    if os.geteuid() == 0:
        assert not path.is_relative_to(project_root()) and path.is_relative_to("/var/lib/shequ-gis")
    else:
        assert path == (project_root() / "var" / "pg").resolve()
