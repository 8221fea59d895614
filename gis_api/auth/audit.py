"""Append-only, tamper-evident audit log: each entry carries the previous entry's hash.

``hash = sha256(canonical_json(entry) + prev_hash)`` where the entry holds every stored column but the
two hashes. Appends take ``pg_advisory_xact_lock(AUDIT_LOCK)`` in the caller's transaction, so the chain
has one order and an append commits (or vanishes) with the change it records. The table refuses UPDATE,
DELETE and TRUNCATE (trigger, migration 0010_accounts); ``verify`` walks the chain and names the first
entry whose hash or link does not match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .roles import Principal

AUDIT_LOCK = 0x5345_4355_4144  # "SEQUAD": one fixed advisory lock key for the chain
GENESIS = "0" * 64
FIELDS = ("id", "at", "actor", "actor_role", "ip", "request_id", "action", "endpoint", "record_ids",
          "before", "after", "outcome", "detail")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept, timestamps as ISO text: the bytes that are hashed."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _jsonable(value: Any) -> Any:
    """What jsonb gives back for ``value`` (so the stored entry hashes as it was hashed)."""
    return None if value is None else _numbers(json.loads(canonical_json(value)))


def _numbers(value: Any) -> Any:
    """Floats as jsonb returns them: NaN/inf as text, large integral floats (1e+20) as integers."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and "e" in repr(value):
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def entry_hash(entry: dict[str, Any], prev_hash: str) -> str:
    """The hash of one entry given its predecessor's."""
    body = {k: entry.get(k) for k in FIELDS}
    if isinstance(body["at"], datetime):
        body["at"] = _iso(body["at"])
    body["record_ids"] = list(body["record_ids"] or [])
    return hashlib.sha256((canonical_json(body) + prev_hash).encode("utf-8")).hexdigest()


@dataclass
class AuditEntry:
    """One event: who (principal), from where, what (action, endpoint, records), before/after of writes."""

    action: str
    actor: str = "anonymous"
    actor_role: str = "public"
    ip: str | None = None
    request_id: str | None = None
    endpoint: str | None = None
    record_ids: list[str] = field(default_factory=list)
    before: Any = None
    after: Any = None
    outcome: str = "ok"
    detail: Any = None

    @classmethod
    def of(cls, principal: Principal, action: str, **kw: Any) -> AuditEntry:
        """An entry by ``principal`` (its actor name and role)."""
        return cls(action=action, actor=principal.actor, actor_role=principal.role, **kw)


def append(conn: Connection, entry: AuditEntry) -> dict[str, Any]:
    """Append ``entry`` in the caller's transaction (serialised by the advisory lock); the stored row."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})
    prev = conn.execute(text("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")).scalar()
    new_id = conn.execute(text("SELECT nextval('audit_log_id_seq')")).scalar_one()
    row: dict[str, Any] = {
        "id": int(new_id),
        "at": datetime.now(UTC),
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "ip": entry.ip,
        "request_id": entry.request_id,
        "action": entry.action,
        "endpoint": entry.endpoint,
        "record_ids": [str(r) for r in entry.record_ids],
        "before": _jsonable(entry.before),
        "after": _jsonable(entry.after),
        "outcome": entry.outcome,
        "detail": _jsonable(entry.detail),
    }
    row["prev_hash"] = prev or GENESIS
    row["hash"] = entry_hash(row, row["prev_hash"])
    conn.execute(
        text(
            "INSERT INTO audit_log (id, at, actor, actor_role, ip, request_id, action, endpoint, record_ids, "
            "before, after, outcome, detail, prev_hash, hash) VALUES (:id, :at, :actor, :actor_role, :ip, "
            ":request_id, :action, :endpoint, :record_ids, CAST(:before AS jsonb), CAST(:after AS jsonb), "
            ":outcome, CAST(:detail AS jsonb), :prev_hash, :hash)"
        ),
        {**row, **{k: None if row[k] is None else canonical_json(row[k]) for k in ("before", "after", "detail")}},
    )
    return row


def first_break(conn: Connection, batch: int = 5000) -> tuple[int, str] | None:
    """(id, reason) of the first entry whose link or hash does not match, or None when the chain holds."""
    prev = GENESIS
    last_id = 0
    cols = ", ".join((*FIELDS, "prev_hash", "hash"))
    while True:
        rows = conn.execute(
            text(f"SELECT {cols} FROM audit_log WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last_id, "n": batch},
        ).mappings().all()
        if not rows:
            return None
        for r in rows:
            entry = dict(r)
            if entry["prev_hash"] != prev:
                return int(entry["id"]), "prev_hash 与上一条不符 link to the previous entry broken"
            if entry_hash(entry, prev) != entry["hash"]:
                return int(entry["id"]), "内容与散列不符 content does not match its hash"
            prev = entry["hash"]
            last_id = entry["id"]


def verify(conn: Connection) -> int | None:
    """The id of the first broken entry, or None when the whole chain verifies."""
    found = first_break(conn)
    return found[0] if found else None
