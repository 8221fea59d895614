"""Pure validators of the personal and unit identifiers recorded on an address.

* 公民身份号码 (GB 11643-1999): 18 characters — 6-digit region code, 8-digit birth date, 3-digit sequence
  (odd = male, even = female), one check character by ISO 7064 MOD 11-2 (``X`` stands for 10). The 15-digit
  form issued before 1999 (2-digit year, no check character) is upgraded: ``19`` inserted before the year,
  the check character appended.
* 统一社会信用代码 (GB 32100-2015): 18 characters from the 31-character set ``0-9 A-Z`` without I O Z S V,
  one check character: ``31 - (Σ wᵢ·cᵢ mod 31)`` with weights ``3ⁱ mod 31`` (31 → ``0``).
* Passports and other foreign documents: free-form (letters, digits, 5–20 characters).
* Phones: a Chinese mobile (``1[3-9]`` + 9 digits, optional +86) or a landline (area code 0xx / 0xxx and a
  7–8 digit number, optional extension).

Errors are `residents.errors.InvalidField` subclasses naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .errors import InvalidCreditCode, InvalidField, InvalidIdNumber, InvalidPhone

ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
ID_CHECK = "10X98765432"  # index: Σ mod 11
#: first two digits of a GB/T 2260 region code (provinces, autonomous regions, municipalities, HK/MO/TW)
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43",
    "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83",
})
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: 登记管理部门代码 (first character of a credit code)
CREDIT_AUTHORITIES = frozenset("123456789ANY")
ID_TYPES = ("citizen_id", "passport", "other")

_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")
_LANDLINE = re.compile(r"^(0\d{9,11})(?:(?:转|ext\.?|x|-)(\d{1,6}))?$", re.IGNORECASE)
_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")


@dataclass(frozen=True)
class CitizenId:
    """A validated 18-character ID number with what it tells: region, birth date, sex."""

    number: str
    region: str
    birth_date: date
    sex: str  # "M" | "F"
    upgraded_from: str | None = None


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def _birth(text: str, field: str) -> date:
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise InvalidIdNumber(field, f"出生日期 {text} 无效", f"invalid birth date {text}") from None
    if born.year < 1880 or born > date.today():
        raise InvalidIdNumber(field, f"出生日期 {text} 超出范围", f"birth date {text} out of range")
    return born


def citizen_id(value: str, field: str = "id_number") -> CitizenId:
    """Validate a GB 11643-1999 ID number (18 characters, or the legacy 15 digits, upgraded)."""
    s = (value or "").strip().upper().replace(" ", "")
    upgraded = None
    if len(s) == 15:
        if not s.isdigit():
            raise InvalidIdNumber(field, "15 位身份号码应全为数字", "a 15-digit ID number has digits only")
        upgraded = s
        body = s[:6] + "19" + s[6:]
        s = body + id_check_char(body)
    if len(s) != 18:
        raise InvalidIdNumber(field, "公民身份号码应为 18 位（或旧版 15 位）",
                              "an ID number has 18 characters (or 15 digits, old form)")
    if not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        raise InvalidIdNumber(field, "前 17 位应为数字，末位为数字或 X",
                              "17 digits then a digit or X")
    if s[:2] not in PROVINCES or s[2:6] == "0000":
        raise InvalidIdNumber(field, f"地址码 {s[:6]} 无效", f"invalid region code {s[:6]}")
    born = _birth(s[6:14], field)
    expected = id_check_char(s[:17])
    if s[17] != expected:
        raise InvalidIdNumber(field, f"校验码错误（应为 {expected}）", f"wrong check character (expected {expected})",
                              {"expected": expected})
    return CitizenId(s, s[:6], born, "M" if int(s[16]) % 2 else "F", upgraded)


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(CREDIT_CHARSET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def credit_code(value: str, field: str = "credit_code") -> str:
    """Validate a GB 32100-2015 unified social credit code; the normalised (upper-case) code."""
    s = (value or "").strip().upper().replace(" ", "")
    if len(s) != 18:
        raise InvalidCreditCode(field, "统一社会信用代码应为 18 位", "a credit code has 18 characters")
    bad = sorted({c for c in s if c not in CREDIT_CHARSET})
    if bad:
        raise InvalidCreditCode(field, f"含不允许的字符 {''.join(bad)}（不使用 I、O、Z、S、V）",
                                f"characters {''.join(bad)} are not allowed (no I, O, Z, S, V)")
    if s[0] not in CREDIT_AUTHORITIES:
        raise InvalidCreditCode(field, f"登记管理部门代码 {s[0]} 无效", f"invalid registration authority {s[0]}")
    if not s[2:8].isdigit():
        raise InvalidCreditCode(field, f"登记管理机关行政区划码 {s[2:8]} 无效", f"invalid region code {s[2:8]}")
    expected = credit_check_char(s[:17])
    if s[17] != expected:
        raise InvalidCreditCode(field, f"校验码错误（应为 {expected}）", f"wrong check character (expected {expected})",
                                {"expected": expected})
    return s


def passport(value: str, field: str = "id_number") -> str:
    """A passport or other foreign document number: letters and digits, 5–20 characters (upper-cased)."""
    s = re.sub(r"[\s-]", "", value or "").upper()
    if not _PASSPORT.match(s):
        raise InvalidField(field, "护照号码应为 5–20 位字母或数字", "a passport number has 5–20 letters or digits")
    return s


def document(id_type: str, value: str, field: str = "id_number") -> tuple[str, CitizenId | None]:
    """Validate an identity document by type: (normalised number, the parsed citizen ID or None)."""
    if id_type == "citizen_id":
        parsed = citizen_id(value, field)
        return parsed.number, parsed
    if id_type in ("passport", "other"):
        return passport(value, field), None
    raise InvalidField("id_type", f"证件类型应为 {'、'.join(ID_TYPES)}", f"id_type is one of {', '.join(ID_TYPES)}")


def phone(value: str, field: str = "phone") -> str:
    """A Chinese mobile (normalised to 11 digits) or landline (normalised to ``0xx-xxxxxxxx[-ext]``)."""
    s = re.sub(r"[\s()（）]", "", value or "")
    m = _MOBILE.match(s.replace("-", ""))
    if m:
        return m.group(1)
    head, sep, rest = s.partition("-")
    m = _LANDLINE.match(head + rest if sep and len(head) <= 4 and head.startswith("0") else s)
    if m:
        digits, ext = m.groups()
        area_len = 3 if digits[1] in "12" else 4  # 010, 02x: three digits; the others four
        number = digits[area_len:]
        if 7 <= len(number) <= 8:
            return f"{digits[:area_len]}-{number}" + (f"-{ext}" if ext else "")
    raise InvalidPhone(field, "应为手机号（1 开头 11 位）或带区号的固定电话",
                       "a mobile (11 digits starting 1) or a landline with its area code")
