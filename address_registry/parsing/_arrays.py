"""The parser's run-time arrays, derived once from the shipped weights and kept on disk, memory-mapped.

Loading the shipped model from its ``.npz`` archives means decompressing them and deriving the arrays the
kernels read: the BiLSTM's input-to-gate tables (a float64 product per vocabulary and bigram entry, rounded
to float32: ≈ 140 MB of tables for the three networks), the CRF's sparse rows and hash table, the
BIO-constrained transitions, the compiled flags' gazetteer trie. That took most of a one-address ``shequ parse`` (issue 18). The result is
saved here as one uncompressed file and later mapped into memory copy-on-write: a fresh process reads only
the pages it touches and computes nothing. Same idea, and same place, as numba's ``cache=True``.

The file is keyed by the size and modification time of the weight files and of the modules that derive
the arrays, so a retrained model or an edited derivation builds a new one (older files in that folder are
removed). Folder: ``SHEQU_PARSER_CACHE_DIR`` when set, else the package's ``__pycache__`` when writable, else
``$XDG_CACHE_HOME/shequ-gis`` (``~/.cache/shequ-gis``). A folder that cannot be written only means the
arrays are derived in memory each time; a damaged file is rebuilt.

Format: 8 bytes magic, 8 bytes header length (little-endian), a JSON header ``{"meta": …, "arrays": [[name,
dtype, shape, offset], …]}``, then each array's raw bytes at a 64-byte aligned offset.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
MAGIC = b"SHQPARS1"
_ALIGN = 64
PACKAGE_DIR = Path(__file__).resolve().parent
# the modules whose code derives the cached arrays: editing one invalidates the cache
_DERIVING = ("model.py", "neural.py", "features.py", "_keyspec.py", "_arrays.py", "_decode.py", "_flags.py")


def cache_dirs() -> list[Path]:
    """Folders to try, in order (the first writable one stores the file)."""
    env = os.environ.get("SHEQU_PARSER_CACHE_DIR")
    if env:
        return [Path(env)]
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [PACKAGE_DIR / "__pycache__", Path(xdg) / "shequ-gis"]


def cache_key(sources: Sequence[Path]) -> str:
    """Digest of what the arrays are derived from: the files' names, sizes and modification times."""
    parts: list[Any] = [FORMAT, np.__version__.split(".")[0]]
    for p in [*sources, *(PACKAGE_DIR / name for name in _DERIVING)]:
        st = Path(p).stat()
        parts.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def _file_name(key: str) -> str:
    return f"parser-arrays-{key}.bin"


def load(key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta saved under ``key`` (memory-mapped, copy-on-write), or None."""
    for d in cache_dirs():
        path = d / _file_name(key)
        try:
            with open(path, "rb") as f:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except (OSError, ValueError):
            continue
        try:
            return _read(mm)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            continue  # damaged or foreign: rebuilt by the caller
    return None


def _read(mm: mmap.mmap) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if mm[:8] != MAGIC:
        raise ValueError("not a parser array file")
    n = int.from_bytes(mm[8:16], "little")
    header = json.loads(mm[16 : 16 + n].decode("utf-8"))
    base = _aligned(16 + n)
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape, offset in header["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if base + offset + count * dt.itemsize > len(mm):
            raise ValueError("truncated parser array file")
        arrays[name] = np.frombuffer(mm, dtype=dt, count=count, offset=base + offset).reshape(shape)
    return arrays, header["meta"]


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def save(key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path | None:
    """Write the arrays under ``key`` into the first writable cache folder (atomically: a temporary file
    renamed into place); older array files there are removed. None when no folder could be written."""
    entries: list[tuple[str, str, list[int], int]] = []
    offset = 0
    for name, a in arrays.items():
        entries.append((name, a.dtype.str, list(a.shape), offset))
        offset = _aligned(offset + a.nbytes)
    header = json.dumps({"meta": meta, "arrays": entries}, ensure_ascii=False).encode("utf-8")
    for d in cache_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".parser-arrays-", dir=d)
        except OSError:
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + len(header).to_bytes(8, "little") + header)
                f.write(b"\0" * (_aligned(16 + len(header)) - 16 - len(header)))
                pos = 0
                for (_name, _dt, _shape, off), a in zip(entries, arrays.values(), strict=True):
                    f.write(b"\0" * (off - pos))
                    f.write(np.ascontiguousarray(a).tobytes())
                    pos = off + a.nbytes
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache is as readable as the package
            dest = d / _file_name(key)
            os.replace(tmp, dest)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            continue
        for old in d.glob("parser-arrays-*.bin"):
            if old != dest:
                old.unlink(missing_ok=True)
        return dest
    return None
