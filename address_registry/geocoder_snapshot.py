"""A built geocoder written to the data folder, so that a starting API worker loads it instead of rebuilding.

One file per database (``geocoder-<key>.snap`` in an owner-only folder), written atomically (a temporary
file in the same folder, fsync, rename) after a whole build, and read by the next process that starts: it
then applies the registry's changes since the snapshot's stamp as a delta (`geocoder_cache`). At 10⁶
addresses that turns every later start from a load and build through PostGIS into reading one file.

A snapshot is trusted only when every check passes; otherwise it is ignored (and rebuilt and rewritten by
the caller), never half-used:

- the file and its folder belong to this process's user and are not writable (file: not readable) by
  anyone else, and it is a regular file (no symlink followed);
- the header names this format version, this database and the code fingerprint (a hash of the source of
  the modules whose classes and rules the pickled index holds: any change to them retires every snapshot);
- the payload has the header's length, and the HMAC-SHA256 of the header's fields and the payload under a
  random key kept in the same folder (``snapshot.key``, 0600) matches — a truncated, corrupted, edited or
  foreign file fails here, before anything is unpickled;
- its stamp is not ahead of the registry's (a database restored from an older backup), and the changes
  since it can be applied as a delta (`geocoder_cache`).

`write_in_background` is what the cache uses after a whole build (issue 14): it forks a child process that
writes the file while the parent publishes its index and serves. The child's memory is a copy-on-write image
of the parent at the moment of the fork, taken before the index is published, so no geocode and no delta
the parent applies afterwards can reach what is being pickled; the child inherits the build lock (an open
file description: the parent's `flock` stays held until the child exits), so a worker starting meanwhile
waits for the snapshot rather than building one too. A child killed mid-write leaves only its temporary
file (``.geocoder-<db>-<pid>-….tmp``, never read, removed by the next writer once that pid is gone).

The payload is a pickle of the geocoder's state (the index is a graph of Python dicts, records and shapely
lines, not flat arrays, so it is not memory-mapped: each worker process still holds its own copy — see
docs/scaling.md). The free-text parser and the answer caches are not stored; the caller attaches the parser.
"""

from __future__ import annotations

import copyreg
import dataclasses
import gc
import hashlib
import hmac
import json
import logging
import operator
import os
import pickle
import secrets
import signal
import stat
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from address_registry.geocoder import AdminName, Geocoder
from address_registry.interpolation import Anchor, RoadNumbering
from address_registry.records import AddressRecord, AliasRecord

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"SHEQU-GEOCODER-SNAPSHOT\n"
KEY_FILE = "snapshot.key"
_CHUNK = 1 << 20
# a background writer still running after this long is killed: 8–31 s at 10⁶ addresses on this machine
WRITER_TIMEOUT_S = 900.0
# the modules whose classes and rules a pickled index holds (their source is the code fingerprint)
_FINGERPRINT_MODULES = (
    "geocoder.py", "interpolation.py", "numbering.py", "records.py", "textnorm.py", "accuracy.py", "codes.py",
    "geocoder_snapshot.py", "store/geocoder_rows.py", "store/inputs.py",
)  # fmt: skip
# per-query caches: rebuilt on demand, not worth their bytes on disk
_NOT_STORED: dict[str, Any] = {"parser": None, "_est_cache": {}, "_apart_cache": {}, "_extent_cache": {}}


def _by_constructor(cls: type) -> Any:
    """A reducer that stores a slots dataclass as its constructor's positional arguments: the default
    (`dataclasses`' Python-level ``__getstate__`` / ``__setstate__`` per object) took 11 s for the 10⁵
    records of a synthetic city under load; one C-level attribute tuple per object is several times faster."""
    names = [f.name for f in dataclasses.fields(cls)]
    assert all(f.init for f in dataclasses.fields(cls)), cls
    get = operator.attrgetter(*names)
    return lambda obj: (cls, get(obj))


_REDUCERS = {cls: _by_constructor(cls) for cls in (AliasRecord, AdminName, Anchor, RoadNumbering)}
_RECORD_REST = operator.attrgetter(*[f.name for f in dataclasses.fields(AddressRecord) if f.name not in ("lon", "lat")])


def _record_at(point: tuple[float | None, float | None], code: str, level: str, components: dict[str, str],
               *rest: Any) -> AddressRecord:
    """An address record from its pickled fields, its lon / lat from ``point`` — one tuple per distinct point,
    shared in the pickle, so that the units, floors and rooms of a building share its two float objects again
    after loading (pickle stores floats by value: 10⁶ records would otherwise get 2 × 10⁶ floats of their own)."""
    return AddressRecord(code, level, components, point[0], point[1], *rest)


class _Pickler(pickle.Pickler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._points: dict[tuple[float | None, float | None], tuple[float | None, float | None]] = {}
        self.dispatch_table: dict[Any, Any] = {**copyreg.dispatch_table, **_REDUCERS,
                                               AddressRecord: self._reduce_record}

    def _reduce_record(self, rec: AddressRecord) -> tuple[Any, tuple[Any, ...]]:
        point = (rec.lon, rec.lat)
        point = self._points.setdefault(point, point)
        code, level, components, *rest = _RECORD_REST(rec)
        return _record_at, (point, code, level, components, *rest)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block: building or unpickling millions of records and dicts
    otherwise sets off full collections again and again (unpickling 10⁵ records: 6.6 s with, 2.8 s without)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def code_fingerprint() -> str:
    """A hash of the source of the modules the pickled index depends on."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in _FINGERPRINT_MODULES:
        h.update(name.encode())
        h.update((root / name).read_bytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Snapshot:
    """A geocoder read back from its snapshot, and the registry stamp it was built at."""

    stamp: tuple[int, int, int]
    geocoder: Geocoder


class SnapshotStore:
    """The snapshot file of one database in ``folder`` (created 0700 when missing)."""

    def __init__(self, folder: Path | str, database_key: str):
        self.folder = Path(folder)
        self.database_key = database_key
        digest = hashlib.sha256(database_key.encode()).hexdigest()[:24]
        self.path = self.folder / f"geocoder-{digest}.snap"
        self.lock_path = self.folder / f"geocoder-{digest}.lock"
        # why the last `read` found no usable snapshot (missing, format, stale code, corrupt, unsafe…)
        self.last_refusal: str | None = None

    # -- writing ------------------------------------------------------------------------------------
    def write(self, geocoder: Geocoder, stamp: tuple[int, int, int]) -> Path:
        """Write the geocoder at ``stamp`` atomically, in this process; the caller must keep it unchanged
        meanwhile (`write_in_background` does not need that)."""
        job = self._prepare(geocoder, stamp)
        self._write_job(job)
        return self.path

    def write_in_background(self, geocoder: Geocoder, stamp: tuple[int, int, int]) -> SnapshotWriter:
        """Write the geocoder at ``stamp`` from a forked child process and return at once (the handle tells
        when it is done). The child writes the image of ``geocoder`` as it is now: the caller may publish it
        and let geocodes and deltas change it straight away."""
        job = self._prepare(geocoder, stamp)
        _freeze_for_fork()
        try:
            pid = os.fork()
        except BaseException:
            _unfreeze_after_fork()
            raise
        if pid == 0:  # the child: write the file, then leave without the parent's exit handlers
            status = 1
            try:
                gc.disable()  # a collection would only touch (and copy) the parent's pages
                self._write_job(job, _child_hook)
                status = 0
            except BaseException:
                try:
                    traceback.print_exc()
                except BaseException:  # noqa: S110  (stderr gone: the exit status says it)
                    pass
            finally:
                os._exit(status)
        return SnapshotWriter(pid, self.path)

    def _prepare(self, geocoder: Geocoder, stamp: tuple[int, int, int]) -> dict[str, Any]:
        """Everything a write needs, read in the caller's process (the folder checked, the key, the code
        fingerprint, the state's top-level dict) — a forked child then opens no file but its own."""
        self._safe_folder(create=True)
        self._remove_abandoned()
        return {"state": dict(geocoder.__dict__) | _NOT_STORED, "stamp": list(stamp), "key": self._key(create=True),
                "code": code_fingerprint(), "addresses": len(geocoder)}

    def _write_job(self, job: dict[str, Any], hook: Callable[[str, BinaryIO], None] | None = None) -> None:
        key = job["key"]
        # named here rather than by `tempfile` (whose name generator takes a lock the first time: a forked
        # child must not wait on a lock another thread of its parent may have held at the fork)
        tmp = str(self.folder / f"{self._tmp_prefix}{os.getpid()}-{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "w+b") as fh:
                if hook is not None:
                    hook("start", fh)
                header_at = fh.tell()
                fh.write(b"\0" * 512)  # the header, filled in below once the payload's length and MAC are known
                start = fh.tell()
                with gc_paused():
                    _Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL).dump(job["state"])
                length = fh.tell() - start
                if hook is not None:
                    hook("payload", fh)
                meta = {
                    "format": FORMAT_VERSION, "code": job["code"], "database": self.database_key,
                    "stamp": job["stamp"], "length": length, "addresses": job["addresses"],
                }
                header = json.dumps(meta | {"hmac": _mac_of(fh, key, meta, start, length)}).encode()
                if len(MAGIC) + len(header) + 1 > 512:
                    raise ValueError("snapshot header too long")
                fh.seek(header_at)
                fh.write(MAGIC + header + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @property
    def _tmp_prefix(self) -> str:
        return f".{self.path.stem}-"

    def _remove_abandoned(self) -> None:
        """Remove the temporary files of this database's writers that are gone (killed mid-write)."""
        for tmp in self.folder.glob(f"{self._tmp_prefix}*.tmp"):
            pid = tmp.name[len(self._tmp_prefix):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------------------
    def read(self) -> Snapshot | None:
        """The snapshot when it exists and passes every check, else None (``last_refusal`` says why)."""
        self.last_refusal = None
        try:
            return self._read()
        except _Refused as why:
            self.last_refusal = str(why)
        except Exception as exc:  # a corrupt payload may fail in any way while unpickling: rebuilt, never used
            self.last_refusal = f"unreadable: {type(exc).__name__}: {exc}"
        if self.last_refusal != "missing":
            log.warning("geocoder snapshot %s ignored (%s); rebuilding", self.path, self.last_refusal)
        return None

    def _read(self) -> Snapshot:
        if not self.path.exists():
            raise _Refused("missing")
        self._safe_folder(create=False)
        key = self._key(create=False)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(self.path, flags), "rb") as fh:
            _check_owner_only(os.fstat(fh.fileno()), "file")
            head = fh.read(512)
            if not head.startswith(MAGIC):
                raise _Refused("not a snapshot")
            meta = json.loads(head[len(MAGIC):].split(b"\n", 1)[0])
            if meta.get("format") != FORMAT_VERSION:
                raise _Refused(f"format {meta.get('format')} (this code reads {FORMAT_VERSION})")
            if meta.get("code") != code_fingerprint():
                raise _Refused("written by other code")
            if meta.get("database") != self.database_key:
                raise _Refused("another database")
            length = int(meta["length"])
            if os.fstat(fh.fileno()).st_size != 512 + length:
                raise _Refused("truncated or padded")
            signed = {k: v for k, v in meta.items() if k != "hmac"}
            if not hmac.compare_digest(_mac_of(fh, key, signed, 512, length), str(meta.get("hmac"))):
                raise _Refused("checksum mismatch")
            fh.seek(512)
            with gc_paused():
                state = pickle.load(fh)  # noqa: S301  (owner-only file whose HMAC under our own key matched)
        if not isinstance(state, dict) or "by_code" not in state:
            raise _Refused("not a geocoder")
        geocoder = Geocoder.__new__(Geocoder)
        geocoder.__dict__.update(state)
        stamp = tuple(int(x) for x in meta["stamp"])
        if len(stamp) != 3:
            raise _Refused("bad stamp")
        return Snapshot((stamp[0], stamp[1], stamp[2]), geocoder)

    @contextmanager
    def building(self) -> Iterator[None]:
        """Hold the folder's build lock (an exclusive `flock`): a second worker starting at the same time
        waits here, then reads the snapshot the first one wrote instead of building it too. A folder that
        cannot be used (another user's, open to others, unwritable) is logged and the build goes on without
        the lock: snapshots are an optimisation, never a reason not to geocode."""
        import fcntl

        fd = None
        try:
            self._safe_folder(create=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except (OSError, _Refused) as exc:
            log.warning("geocoder snapshot folder %s not usable (%s); building without a snapshot", self.folder, exc)
            if fd is not None:
                os.close(fd)
                fd = None
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock

    # -- the folder and the key -------------------------------------------------------------------------
    def _safe_folder(self, create: bool) -> None:
        if create:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(self.folder)
        if not stat.S_ISDIR(st.st_mode):
            raise _Refused(f"{self.folder} is not a folder")
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise _Refused(f"{self.folder} is not owned by this user or is writable by others")

    def _key(self, create: bool) -> bytes:
        path = self.folder / KEY_FILE
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        if create and not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
            except FileExistsError:  # another worker made it first
                pass
        try:
            with os.fdopen(os.open(path, flags), "rb") as fh:
                _check_owner_only(os.fstat(fh.fileno()), "key")
                key = fh.read()
        except FileNotFoundError as exc:
            raise _Refused("no key") from exc
        if len(key) != 32:
            raise _Refused("bad key")
        return key


class SnapshotWriter:
    """A snapshot being written by a forked child: `wait` for it; `ok` once it wrote the file. A thread
    reaps the child (no zombie) and logs a failure; the process serves its own index either way."""

    def __init__(self, pid: int, path: Path, timeout_s: float | None = None):
        self.pid = pid
        self.path = path
        # a writer still running after this is killed (it holds the folder's lock)
        self.timeout_s = WRITER_TIMEOUT_S if timeout_s is None else timeout_s
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.seconds: float | None = None  # from the fork to the child's exit
        self.status: int | None = None  # the child's wait status (0: written)
        self.max_rss_mb: float | None = None  # the child's peak resident size (pages shared with the parent too)
        self._done = threading.Event()
        threading.Thread(target=self._reap, name=f"geocoder-snapshot-{pid}", daemon=True).start()

    def _reap(self) -> None:
        try:
            while True:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - self.started > self.timeout_s:  # stuck (e.g. on a lock copied held at
                    os.kill(self.pid, signal.SIGKILL)  # the fork): the folder's lock is freed for the next writer
                    log.warning("geocoder snapshot writer %d still running after %.0f s: killed", self.pid,
                                self.timeout_s)
                    _pid, status, usage = os.wait4(self.pid, 0)
                    break
                time.sleep(0.1)
            self.status, self.max_rss_mb = status, usage.ru_maxrss / 1024
        except ChildProcessError:  # reaped elsewhere (a server's arbiter reaps every child it gets): the file
            # tells whether it was written (the writer renames it into place last)
            done = self.path.exists() and self.path.stat().st_mtime >= self.started_wall
            self.status = 0 if done else -1
        finally:
            self.seconds = time.perf_counter() - self.started
            _unfreeze_after_fork()
            self._done.set()
        if self.status != 0:
            log.warning("geocoder snapshot %s not written (writer %d ended with status %s)", self.path, self.pid,
                        self.status)

    @property
    def ok(self) -> bool:
        """Whether the writer ended and wrote the file."""
        return self._done.is_set() and self.status == 0

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the writer ended (within ``timeout`` seconds)."""
        return self._done.wait(timeout)


# a test's hook, run by a forked writer at its stages ("start", "payload": pickled, not yet signed / renamed)
_child_hook: Callable[[str, BinaryIO], None] | None = None
_frozen = 0
_frozen_lock = threading.Lock()


def _freeze_for_fork() -> None:
    """Move every tracked object to the collector's permanent generation while a writer runs: the parent's
    collections then leave them (and their pages, shared with the child) alone (`gc.freeze`)."""
    global _frozen
    with _frozen_lock:
        _frozen += 1
        gc.freeze()


def _unfreeze_after_fork() -> None:
    global _frozen
    with _frozen_lock:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()  # the frozen objects join the oldest generation


_held = False


def freeze_shared() -> None:
    """Freeze every tracked object alive now for the rest of this process and of its forks (`gc.freeze`): a
    server that loaded the index before forking its workers calls it just before each fork, so neither it
    nor a worker ever collects over the shared objects (a collection writes to every object it visits, and
    each write copies a page out of the shared image). Counted with the writers' freezes: their unfreezes
    never release it."""
    global _frozen, _held
    with _frozen_lock:
        if not _held:
            _frozen += 1
            _held = True
        gc.freeze()


@contextmanager
def gc_frozen() -> Iterator[None]:
    """Every object alive now out of the collector's reach inside the block (`gc.freeze`); afterwards in its
    oldest generation. Counted with the writers' freezes: the last one out unfreezes."""
    _freeze_for_fork()
    try:
        yield
    finally:
        _unfreeze_after_fork()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class _Refused(Exception):
    """Why a snapshot is not used."""


def _check_owner_only(st: os.stat_result, what: str) -> None:
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise _Refused(f"{what} is not a regular file readable by its owner only")


def _mac_of(fh: BinaryIO, key: bytes, meta: dict[str, Any], start: int, length: int) -> str:
    """HMAC-SHA256 of the header's fields (canonical JSON) and ``length`` bytes of ``fh`` from ``start``."""
    mac = hmac.new(key, json.dumps(meta, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256)
    fh.seek(start)
    left = length
    while left > 0:
        chunk = fh.read(min(_CHUNK, left))
        if not chunk:
            raise _Refused("truncated")
        mac.update(chunk)
        left -= len(chunk)
    return mac.hexdigest()


def database_key(conn: Any, url: Any) -> str:
    """What identifies a database across restarts: the cluster's system identifier and the database name
    (the server address and name from ``url`` when the catalogue function is not readable)."""
    from sqlalchemy import text

    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT system_identifier, current_database() FROM pg_control_system()")).one()
        return f"pg:{row[0]}/{row[1]}"
    except Exception:  # not allowed (a managed server): the address and name stand in for it
        return f"url:{url.host}:{url.port}/{url.database}"
