"""Masking of personal fields for display (GB/T 35273-2020 §7.3: 去标识化展示), and record masking by role."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import classification as cls
from .roles import Principal

_SEPARATORS = re.compile(r"([\s·•.\-]+)")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _mask_word(word: str) -> str:
    n = len(word)
    if n <= 1:
        return "*" * n
    if n == 2:
        return word[0] + "*"
    return word[0] + "*" * (n - 2) + word[-1]


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜; names in parts (阿依古丽·买买提) mask each part."""
    if not name:
        return name
    parts = _SEPARATORS.split(name.strip())
    return "".join(p if _SEPARATORS.fullmatch(p) else _mask_word(p) for p in parts if p)


def _mask_landline(digits: str) -> str:
    area_len = 3 if digits[:2] in ("01", "02") else 4
    if len(digits) <= area_len + 4:  # no room for an area code: a bare local number
        return _mask_local(digits)
    return digits[:area_len] + "-" + _mask_local(digits[area_len:])


def _mask_local(digits: str) -> str:
    if len(digits) <= 4:
        return "*" * (len(digits) - 1) + digits[-1:]
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_phone(phone: str | None) -> str | None:
    """13912345678 → 139****5678; +86 mobile kept prefixed; landline 021-63211234 → 021-****1234."""
    if not phone:
        return phone
    main = re.split(r"(?i)转|ext\.?|x", phone, maxsplit=1)[0]  # an extension is dropped
    digits = re.sub(r"\D", "", main)
    prefix = ""
    if digits.startswith("0086"):
        prefix, digits = "+86 ", digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        prefix, digits = "+86 ", digits[2:]
    if not digits:
        return "*" * len(phone)
    if _MOBILE.match(digits):
        return prefix + digits[:3] + "****" + digits[-4:]
    if digits.startswith("0"):
        return prefix + _mask_landline(digits)
    return prefix + _mask_local(digits)


def mask_id_number(id_number: str | None) -> str | None:
    """18 digits 310101199001011234 → 310101********1234; 15 digits → 310101******123 (birth date hidden)."""
    if not id_number:
        return id_number
    s = id_number.strip().upper()
    if len(s) == 18:
        return s[:6] + "*" * 8 + s[-4:]
    if len(s) == 15:
        return s[:6] + "*" * 6 + s[-3:]
    return "*" * max(len(s) - 4, 1) + s[-4:] if len(s) > 4 else "*" * len(s)


def mask_address(address: str | None) -> str | None:
    """Cut a room-level address at the building: 世纪大道1号3号楼2单元1201室 → 世纪大道1号3号楼****."""
    if not address:
        return address
    m = re.search(r"(\d+|[一二三四五六七八九十]+)(单元|层|楼层|室|户|号房)", address)
    if m:
        return address[: m.start()] + "****"
    return address


def redact(_value: Any) -> str:
    """Hide a value entirely."""
    return "***"


MASKERS = {
    "name": mask_name,
    "phone": mask_phone,
    "id_number": mask_id_number,
    "address": mask_address,
    "redact": redact,
}


def mask_value(value: Any, how: str) -> Any:
    """Mask one value with the named masker (None stays None)."""
    if value is None:
        return None
    return MASKERS.get(how, redact)(value if isinstance(value, str) else str(value))


def mask_record(
    record: Mapping[str, Any],
    fields_levels: Mapping[str, str | cls.Level],
    principal: Principal,
    in_jurisdiction: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """A masked copy of ``record`` for ``principal`` and the fields it got in clear that need an audit entry.

    ``fields_levels`` maps a record key to its classification key (``"person.name"``) or to a bare level.
    Keys not listed pass unchanged. At or below the role's `max_level`: clear (no audit). Above it: clear
    (and listed) for the field's clear-read roles inside their jurisdiction, masked for other staff,
    dropped for the public.
    """
    out = dict(record)
    clear: list[str] = []
    top = cls.max_level(principal.role)
    for key, ref in fields_levels.items():
        if key not in out:
            continue
        if isinstance(ref, cls.Level):
            level, roles, how = ref, frozenset[str](), "redact"
        else:
            found = cls.row(ref)
            level = found.level if found else cls.RESTRICTED
            roles = found.clear_roles if found else frozenset()
            how = found.mask if found else "redact"
        if level <= top:
            continue
        if principal.role in roles and in_jurisdiction:
            if out[key] is not None:
                clear.append(key)
        elif top >= cls.INTERNAL:
            out[key] = mask_value(out[key], how)
        else:
            del out[key]
    return out, clear
