"""Character-level normalisation of Chinese address text, keeping a map back to the original offsets.

Three steps, all applied per character so that every output character knows which input character(s)
it came from:

1. **Width**: full-width ASCII (``０-９``, ``Ａ-Ｚ``, ``－``, ``（``…) becomes half-width, the ideographic
   space ``U+3000`` and other Unicode spaces become ``" "``, dash variants (``—``, ``–``, ``－``, ``﹣``)
   become ``"-"``, ``〇`` becomes ``零``.
2. **Numerals**: a run of Chinese numerals (``零一二三四五六七八九十百千两``) directly followed by a
   number suffix (号 幢 栋 座 号楼 单元 门 层 楼 室 户 弄 …) becomes Arabic digits: ``三十二号`` → ``32号``,
   ``二〇一室`` → ``201室``, ``十一楼`` → ``11楼``. Runs not followed by such a suffix (``八一路``,
   ``三门县``, ``九溪``) are left alone: they are names, not numbers.
3. **Variant words** (only in :func:`normalize`, not in the tokens the tagger sees): after a number,
   ``栋``/``座``/``号楼`` → ``幢``, ``门`` → ``单元``, ``户`` → ``室``; so ``3栋2门5户`` and ``3幢2单元5室``
   normalise to the same text.

:func:`tokenize` is what the parser uses: it applies steps 1–2 and cuts the text into tokens the way the
training corpus does (a run of digits is one token, a run of Latin letters is one token, every other
character is its own token). Each :class:`Token` carries ``start``/``end`` offsets into the original text.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_CN_DIGIT = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL_CHARS = frozenset(_CN_DIGIT) | frozenset(_CN_UNIT)

# Suffixes that make a preceding Chinese numeral a house / building / unit / floor / room number.
# 门 and 户 only count when not followed by another CJK character (三门县, 五户村 are names).
_NUMBER_SUFFIXES = (
    "号楼",
    "单元",
    "号",
    "幢",
    "栋",
    "座",
    "层",
    "楼",
    "室",
    "弄",
    "门",
    "户",
    "组",
    "排",
    "区",
)
_WEAK_SUFFIXES = frozenset({"门", "户", "区", "组", "排", "楼"})

_DASHES = {
    "\u2014": "-",
    "\u2013": "-",
    "\u2012": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\ufe63": "-",
    "\u2212": "-",
}
_SPACES = frozenset("\u3000\u00a0\u2002\u2003\u2009\u200b\t\r\n\x0b\x0c")


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph."""
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF


def chinese_numeral_value(s: str) -> int | None:
    """Value of a Chinese numeral string: 三十二 → 32, 一百零五 → 105, 二零一 → 201, 十 → 10. None if not one."""
    if not s or any(c not in _CN_NUMERAL_CHARS for c in s):
        return None
    if not any(c in _CN_UNIT for c in s):
        # digit by digit, as in room numbers: 二零一 → 201
        return int("".join(str(_CN_DIGIT[c]) for c in s))
    total, digit, last_unit = 0, None, 10_000
    for c in s:
        if c in _CN_DIGIT:
            if digit is not None and _CN_DIGIT[c] != 0:
                return None  # two digits without a unit between them in a positional numeral
            digit = _CN_DIGIT[c] if _CN_DIGIT[c] != 0 else None
        else:
            unit = _CN_UNIT[c]
            if unit >= last_unit:
                return None
            total += (digit if digit is not None else 1) * unit
            digit, last_unit = None, unit
    if digit is not None:
        total += digit
    return total


def _followed_by_suffix(chars: str, j: int) -> bool:
    """True if ``chars[j:]`` starts with a number suffix (allowing for weak-suffix exceptions)."""
    n = len(chars)
    for suf in _NUMBER_SUFFIXES:
        k = j + len(suf)
        if chars.startswith(suf, j):
            if suf in _WEAK_SUFFIXES and k < n and is_cjk(chars[k]) and chars[k] not in _CN_NUMERAL_CHARS:
                # 三门县, 五楼村: a name; but 一楼东, 八楼整层 are still floors when 楼 is followed by
                # something other than a place-name suffix.
                if suf != "楼" or chars[k] in "村镇乡县路街巷弄桥山湖":
                    return False
            return True
    return False


class Token(NamedTuple):
    """One token of the input: ``norm`` is its normalised text, ``start``/``end`` its span in the original."""

    norm: str
    start: int
    end: int


_WIDTH_TABLE = {o: chr(o - 0xFEE0) for o in range(0xFF01, 0xFF5F)}
_WIDTH_TABLE.update({ord(c): " " for c in _SPACES})
_WIDTH_TABLE.update({ord(k): v for k, v in _DASHES.items()})
_WIDTH_TABLE[ord("〇")] = "零"
_TOKEN_RX = re.compile(r"[0-9]+|[A-Za-z]+|[零一二两三四五六七八九十百千]+|.", re.S)


def _width_pass(text: str) -> str:
    """Step 1 over a whole string; one output character per input character."""
    return text.translate(_WIDTH_TABLE)


def tokenize_fast(text: str) -> list[tuple[str, int, int]]:
    """:func:`tokenize` as plain ``(norm, start, end)`` tuples (the parser's hot path)."""
    s = _width_pass(text)
    out: list[tuple[str, int, int]] = []
    append = out.append
    pos = 0
    for t in _TOKEN_RX.findall(s):
        j = pos + len(t)
        if t[0] in _CN_NUMERAL_CHARS:
            value = chinese_numeral_value(t) if _followed_by_suffix(s, j) else None
            if value is not None:
                append((str(value), pos, j))
            else:
                out.extend((t[k], pos + k, pos + k + 1) for k in range(len(t)))
        else:
            append((t, pos, j))
        pos = j
    return out


def tokenize(text: str) -> list[Token]:
    """Cut ``text`` into tokens (normalisation steps 1–2), each with offsets into ``text``."""
    return [Token(*t) for t in tokenize_fast(text)]


# Variant words after a number (step 3). Applied on the width/numeral-normalised text.
_VARIANTS = [
    (re.compile(r"(?<=[0-9A-Za-z])(?:号楼|栋|座)"), "幢"),
    (re.compile(r"(?<=[0-9])门(?![\u4e00-\u9fff])"), "单元"),
    (re.compile(r"(?<=[0-9])户(?![\u4e00-\u9fff])"), "室"),
]


def normalize_with_offsets(text: str, variants: bool = True) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the offset of the original character it comes from.

    ``offsets`` has ``len(normalized) + 1`` entries; the last one is ``len(text)``, so the original span of
    normalised characters ``[i, j)`` is ``text[offsets[i]:offsets[j]]`` when ``j`` ends a token.
    """
    out: list[str] = []
    offs: list[int] = []
    for tok in tokenize(text):
        out.extend(tok.norm)
        if len(tok.norm) == tok.end - tok.start:
            offs.extend(range(tok.start, tok.end))
        else:  # converted Chinese numeral: every digit points at the numeral's first character
            offs.extend([tok.start] * len(tok.norm))
    if variants:
        s = "".join(out)
        for rx, repl in _VARIANTS:
            new_out: list[str] = []
            new_offs: list[int] = []
            pos = 0
            for m in rx.finditer(s):
                new_out.append(s[pos : m.start()])
                new_offs.extend(offs[pos : m.start()])
                new_out.append(repl)
                new_offs.extend([offs[m.start()]] * len(repl))
                pos = m.end()
            new_out.append(s[pos:])
            new_offs.extend(offs[pos:])
            s = "".join(new_out)
            offs = new_offs
        out = list(s)
    offs.append(len(text))
    return "".join(out), offs


def normalize(text: str) -> str:
    """Normalise an address string: full-width → half-width, Chinese house/building/unit/floor/room numerals
    → Arabic digits, variant words after numbers → one spelling (栋/座/号楼 → 幢, 门 → 单元, 户 → 室).

    >>> normalize("杭州市文三路三十二号３栋２门５０１户")
    '杭州市文三路32号3幢2单元501室'
    """
    return normalize_with_offsets(text)[0]
