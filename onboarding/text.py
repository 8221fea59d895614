"""Attribute text encodings: UTF-8 or GB18030, honouring a declared encoding (``.cpg``, mapping, ``--encoding``)
and detecting it when absent; text that was decoded with the wrong one (mojibake) is refused."""

from __future__ import annotations

import re

from onboarding.errors import GarbledText

_CJK = re.compile(r"[\u3400-\u9fff]")
_MOJIBAKE = re.compile(r"[\u0080-\u00ff\ufffd]")
_CP_ALIASES = {"936": "gb18030", "gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "65001": "utf-8"}


def normalize_encoding(name: str) -> str:
    """'UTF-8', '936', 'GBK', 'GB2312' … → a Python codec name (GBK and GB2312 are read as their superset GB18030)."""
    key = name.strip().lower().replace("_", "-")
    key = _CP_ALIASES.get(key, key)
    return "utf-8" if key in ("utf8", "utf-8") else key


def decode(data: bytes, declared: str | None, source: str) -> tuple[str, str]:
    """(text, encoding): strict decoding with the declared encoding, else UTF-8 then GB18030.

    A declared encoding that does not decode the bytes raises `GarbledText` naming the likely one."""
    if declared:
        enc = normalize_encoding(declared)
        try:
            return data.decode("utf-8-sig" if enc == "utf-8" else enc), enc
        except UnicodeDecodeError as exc:
            other = "gb18030" if enc == "utf-8" else "utf-8"
            hint = ""
            try:
                data.decode(other)
                hint = f"; the bytes read cleanly as {other.upper()}: declare that encoding"
            except UnicodeDecodeError:
                pass
            raise GarbledText(
                f"属性文字编码错误 {source} is declared {enc.upper()} but its text is not "
                f"(byte {exc.start}){hint}"
            ) from exc
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc), "utf-8" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError:
            continue
    raise GarbledText(f"属性文字编码无法识别 {source} is neither UTF-8 nor GB18030 text")


def garbled_share(values: list) -> float:
    """Share of non-empty strings that look mis-decoded: a U+FFFD, or Latin-1 letters and no CJK character."""
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    if not texts:
        return 0.0
    bad = sum(1 for v in texts if "\ufffd" in v or (_MOJIBAKE.search(v) and not _CJK.search(v)))
    return bad / len(texts)


def check_not_garbled(values: list, source: str, china: bool, threshold: float = 0.2) -> None:
    """Refuse names that look mis-decoded (outside China Latin-1 letters are real text: only U+FFFD counts)."""
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    if china:
        share = garbled_share(texts)
    else:
        share = sum("\ufffd" in v for v in texts) / len(texts) if texts else 0.0
    if share > threshold:
        raise GarbledText(
            f"属性文字乱码 {source}: {share:.0%} of the names look mis-decoded (GB18030 read as UTF-8 or "
            "the other way round): declare the file's encoding (.cpg, mapping 'encoding', --encoding)"
        )
