"""Reading demand/site CSVs (``id,x,y[,weight][,capacity]``, metres) for ``shequ siting solve``; pure."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["InputError", "PointTable", "check_projected", "read_points"]


@dataclass
class PointTable:
    """Points read from a CSV: ids, metric x/y, weights and optional capacities."""
    ids: list
    xy: np.ndarray
    weight: np.ndarray
    capacity: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ids)


def _id(v: str):
    v = v.strip()
    try:
        return int(v)
    except ValueError:
        return v


def read_points(path: str | Path, what: str) -> PointTable:
    """Read a CSV with header ``id,x,y`` and optional ``weight`` / ``capacity`` columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} 文件不存在 (file not found): {path}")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in ("id", "x", "y") if c not in header]
        if missing:
            raise InputError(f"{what} CSV 缺少列 {', '.join(missing)} (needs columns id,x,y[,weight]): {path}")
        ids, xs, ys, ws, caps = [], [], [], [], []
        for n, row in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
            if not any(v.strip() for v in row.values()):
                continue
            try:
                xs.append(float(row["x"]))
                ys.append(float(row["y"]))
                ws.append(float(row["weight"]) if row.get("weight", "").strip() else 1.0)
                caps.append(float(row["capacity"]) if row.get("capacity", "").strip() else np.inf)
            except ValueError:
                raise InputError(f"{what} CSV 第 {n} 行数值无效 (not a number on line {n}): {path}") from None
            if not row["id"].strip():
                raise InputError(f"{what} CSV 第 {n} 行缺少 id (empty id on line {n})")
            ids.append(_id(row["id"]))
    if not ids:
        raise InputError(f"{what} 为空 (no rows in {path})")
    xy = np.column_stack([xs, ys])
    if not np.all(np.isfinite(xy)):
        raise InputError(f"{what} 坐标含非有限值 (non-finite coordinates)")
    w = np.asarray(ws)
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise InputError(f"{what} 权重必须为非负数 (weights must be ≥ 0)")
    if len(set(ids)) != len(ids):
        raise InputError(f"{what} id 重复 (duplicate ids)")
    cap = np.asarray(caps)
    check_projected(xy, what)
    return PointTable(ids, xy, w, None if np.isinf(cap).all() else cap)


def check_projected(xy: np.ndarray, what: str) -> None:
    """Reject coordinates that look like lon/lat degrees where metres are expected.

    Degrees look like: every x within ±180 and y within ±90, fractional values, and the whole set
    spanning a few units at most (a real metric instance spans hundreds of metres or more).
    """
    x, y = xy[:, 0], xy[:, 1]
    in_range = bool((np.abs(x) <= 180).all() and (np.abs(y) <= 90).all())
    fractional = bool((np.abs(xy - np.round(xy)) > 1e-9).any())
    small = (np.ptp(x) <= 5.0) and (np.ptp(y) <= 5.0)
    if in_range and fractional and small:
        raise InputError(
            f"{what} 坐标看起来是经纬度（度），此处需要投影坐标（米），例如 EPSG:32651 "
            "(coordinates look like lon/lat degrees; project them to metres first)"
        )
