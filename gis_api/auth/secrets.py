"""Generated secrets kept in files only the owner can read (folder 0700, files 0600), never in the repo."""

from __future__ import annotations

import os
import re
import secrets as _random
import stat
from pathlib import Path

from geo.errors import InvalidInput, Unavailable

from .settings import AuthSettings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def secrets_dir(settings: AuthSettings | None = None) -> Path:
    """The secrets folder, created 0700 when missing (and tightened when looser)."""
    folder = Path((settings or AuthSettings()).secrets_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder


def _path(name: str, settings: AuthSettings | None) -> Path:
    if not _NAME.match(name):
        raise InvalidInput(f"密钥文件名无效 invalid secret name: {name!r}")
    return secrets_dir(settings) / name


def _tighten(path: Path) -> None:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (0600) unless it exists; True when this call created it."""
    fd, tmp = _mkstemp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails when another process got there first
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _mkstemp(path: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600


def load_or_create(name: str, settings: AuthSettings | None = None, nbytes: int = 32) -> bytes:
    """The secret ``name`` (random bytes), created on first use in ``secrets_dir/name`` (0600)."""
    path = _path(name, settings)
    if not path.exists():
        _create_exclusive(path, _random.token_bytes(nbytes))
    _tighten(path)
    data = path.read_bytes()
    if len(data) < 16:
        raise Unavailable(f"密钥文件过短或已损坏 secret file too short or damaged: {path}")
    return data


def write_once(name: str, text: str, settings: AuthSettings | None = None) -> Path | None:
    """Write ``text`` to ``secrets_dir/name`` (0600) when the file does not exist; its path, or None."""
    path = _path(name, settings)
    return path if _create_exclusive(path, text.encode("utf-8")) else None


def append_private(name: str, text: str, settings: AuthSettings | None = None) -> Path:
    """Append ``text`` to ``secrets_dir/name``, creating it 0600 (for the demo accounts' passwords)."""
    path = _path(name, settings)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(text)
    _tighten(path)
    return path


def write_private(name: str, text: str, settings: AuthSettings | None = None) -> Path:
    """Write (or atomically replace) ``secrets_dir/name`` with ``text``, mode 0600."""
    path = _path(name, settings)
    fd, tmp = _mkstemp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
