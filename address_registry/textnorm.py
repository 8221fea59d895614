"""Text normalisation shared by the registry (unique keys) and the geocoder (queries).

Both sides go through the same function, so a query written with full-width digits, Chinese
numerals (三十二号), variant words (栋/座/号楼 → 幢, 门 → 单元, 户 → 室, 楼 before a room → 层),
spaces, punctuation or a phone number meets the registry's key. Chinese numerals are converted
only in front of a number word (号, 弄, 幢, 单元, 层, 室…), so road names such as 中山东一路 keep
theirs.
"""

from __future__ import annotations

import re
import unicodedata

_CN_DIGIT = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
             "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "[零〇○一二两三四五六七八九十百千]+"
# Words a number is written before (the longest first, so 号楼 wins over 号).
NUMBER_WORDS = ("支弄", "号楼", "单元", "号", "弄", "幢", "栋", "座", "门", "层", "楼", "室", "户")
_NUMBER_WORDS_RE = "|".join(NUMBER_WORDS)
# …unless the word is itself followed by a road word (六门路, 三号桥路 are names, not numbers)
_CN_NUMBER_BEFORE_WORD = re.compile(rf"(第)?({_CN_NUM})(?=(?:{_NUMBER_WORDS_RE})(?![路街道巷桥]))")
_PHONE = re.compile(r"(?<!\d)(?:\+?86-?)?1[3-9]\d{9}(?!\d)|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")
# Traditional forms seen in addresses (a small table, not a converter).
_TRADITIONAL = str.maketrans("東號區門單樓層濱實場廣園莊灣環鎮鄉貫紀體學館廈華經濟場",
                             "东号区门单楼层滨实场广园庄湾环镇乡贯纪体学馆厦华经济场")
_DASHES = re.compile(r"[‐‑‒–—―−~～_]")
# Anything that is not a CJK ideograph, ASCII letter/digit or '-' is noise for matching.
_NOISE = re.compile(r"[^0-9a-z\u3400-\u9fff\-]+")
_VARIANTS = (
    (re.compile(r"(\d+)(?:号楼|栋|座|幢)"), r"\1幢"),
    (re.compile(r"(\d+)(?:门|单元)"), r"\1单元"),
    (re.compile(r"(\d+)(?:户|室)"), r"\1室"),
    (re.compile(r"(\d+)(?:楼|层|f)(?=\d|$)"), r"\1层"),
)


def cn_to_int(text: str) -> int:
    """Chinese numeral → int: 三十二 → 32, 一百零五 → 105, 十二 → 12, 二〇三 → 203 (digit by digit)."""
    if all(ch in _CN_DIGIT for ch in text):
        return int("".join(str(_CN_DIGIT[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGIT:
            current = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            total += (current or 1) * _CN_UNIT[ch]
            current = 0
        else:
            raise ValueError(f"not a Chinese numeral: {text!r}")
    return total + current


_INT_CN = "零一二三四五六七八九"


def int_to_cn(n: int) -> str:
    """int → Chinese numeral as people write house numbers (32 → 三十二, 105 → 一百零五, 2727 → 二千七百二十七)."""
    if n < 0:
        raise ValueError(n)
    if n < 10:
        return _INT_CN[n]
    if n < 20:
        return "十" + (_INT_CN[n - 10] if n > 10 else "")
    out: list[str] = []
    digits = str(n)
    units = ["", "十", "百", "千", "万"]
    zero = False
    for i, ch in enumerate(digits):
        d = int(ch)
        unit = units[len(digits) - 1 - i]
        if d == 0:
            zero = True
            continue
        if zero and out:
            out.append("零")
        zero = False
        out.append(_INT_CN[d] + unit)
    return "".join(out)


def _cn_number_repl(match: re.Match) -> str:
    return str(cn_to_int(match.group(2)))


def normalize_text(text: str) -> str:
    """Normalise address text for matching and for the registry's unique key."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text).lower().translate(_TRADITIONAL)
    t = _DASHES.sub("-", t)
    t = _PHONE.sub(" ", t)
    t = _CN_NUMBER_BEFORE_WORD.sub(_cn_number_repl, t)
    t = _NOISE.sub("", t)
    for pattern, repl in _VARIANTS:
        t = pattern.sub(repl, t)
    return t


def normalize_house_number(value: str) -> str:
    """Canonical house-number text: '32' → '32号', '32-1' → '32-1号', '12弄3' → '12弄3号', '附5' → '附5号',
    'No. 8' → '8号', '98~114' → '98-114号', '15甲' → '15甲号'."""
    t = normalize_text(re.sub(r"^\s*no\.?\s*", "", value or "", flags=re.IGNORECASE))
    if not t:
        return ""
    if t.endswith(("号", "弄")):
        return t
    return t + "号"


_HOUSE_RE = re.compile(r"^(?:(?P<lane>\d+)弄)?(?P<fu>附)?(?P<main>\d+)(?P<suffix>[甲乙丙丁a-z])?(?:-(?P<sub>\d+))?号$")
_LANE_RE = re.compile(r"^(?P<lane>\d+)弄$")


def house_number_parts(house: str) -> dict | None:
    """Structure of a canonical house number: lane, attached (附), main number, sub number.

    Returns None when the text is not a recognised house number (e.g. a named gate).
    """
    m = _HOUSE_RE.match(house)
    if m:
        out: dict = {"lane": int(m["lane"]) if m["lane"] else None, "fu": bool(m["fu"]),
               "main": int(m["main"]), "sub": int(m["sub"]) if m["sub"] else None}
        if m["suffix"]:
            out["suffix"] = m["suffix"]
        main, sub = out["main"], out["sub"]
        if sub is not None and sub > main + 1 and (sub - main) % 2 == 0 and not m["suffix"]:
            # 151-171号 on one side of the street is a range of numbers, not number 151's sub-number 171
            out["range"] = (main, sub)
        return out
    m = _LANE_RE.match(house)
    if m:
        return {"lane": None, "fu": False, "main": int(m["lane"]), "sub": None, "lane_only": True}
    return None
