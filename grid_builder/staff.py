"""Grid staff (网格员 / 微网格长 …): which roles exist, at which level, and the checks of an assignment.

Pure rules, no I/O. A role has one current holder per grid (一格一员): assigning a new person closes the
previous assignment (``valid_to`` = the new ``valid_from``); rows are never deleted, so the history of who
served a grid stays. ``person_ref`` is an opaque reference to the people table that comes later
(e.g. ``person:123``).
"""

from __future__ import annotations

from datetime import datetime

from grid_builder.errors import InvalidStaffAssignment, StaffProblem, StaffTermConflict

# role -> the level it serves
ROLES: dict[str, str] = {
    "网格长": "grid",
    "网格员": "grid",
    "专职网格员": "grid",
    "兼职网格员": "grid",
    "微网格长": "microgrid",
}
MAX_PERSON_REF = 200

__all__ = [
    "MAX_PERSON_REF",
    "ROLES",
    "InvalidStaffAssignment",
    "StaffProblem",
    "StaffTermConflict",
    "check_assignment",
]


def check_assignment(
    level: str, person_ref: str, role: str, valid_from: datetime, current_from: datetime | None
) -> None:
    """Raise a StaffProblem when ``role`` does not exist or does not fit ``level``, ``person_ref`` is empty,
    ``valid_from`` has no time zone (`InvalidStaffAssignment`), or it lies before the start of the current
    holder's term (`StaffTermConflict`)."""
    if role not in ROLES:
        raise InvalidStaffAssignment(f"角色须为 {'、'.join(ROLES)} 之一 (unknown role {role!r})")
    if ROLES[role] != level:
        where = "网格" if ROLES[role] == "grid" else "微网格"
        raise InvalidStaffAssignment(
            f"{role} 只能分配给{where} (role {role} belongs to a {ROLES[role]}, not a {level})"
        )
    ref = (person_ref or "").strip()
    if not ref or len(ref) > MAX_PERSON_REF:
        raise InvalidStaffAssignment(
            f"person_ref 不能为空且不超过 {MAX_PERSON_REF} 个字符 (person_ref empty or too long)"
        )
    if valid_from.tzinfo is None:
        raise InvalidStaffAssignment(
            "valid_from 须带时区，如 2026-11-24T08:00:00+08:00 (valid_from needs a time zone)"
        )
    if current_from is not None and valid_from < current_from:
        raise StaffTermConflict(
            f"valid_from 早于现任的开始时间 {current_from.isoformat()} "
            "(valid_from before the current holder's start)"
        )
