"""A TrueType CJK font for documents the product writes (PDF plates, reports): found on the system, registered
once with reportlab, embedded (subset) in every PDF that uses it, so the PDF shows Chinese on any reader."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from geo.errors import Unavailable

#: font files tried in order; WenQuanYi Zen Hei (Debian fonts-wqy-zenhei) has TrueType outlines, which
#: reportlab can embed (the CFF-outline Noto CJK files cannot be)
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
FONT_NAME = "ShequCJK"


def cjk_font_path() -> Path:
    """The TrueType CJK font file to embed (``SHEQU_CJK_FONT`` overrides the search)."""
    override = os.environ.get("SHEQU_CJK_FONT")
    for candidate in ([override] if override else []) + list(CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise Unavailable("没有可嵌入的中文 TrueType 字体 no TrueType CJK font found; install fonts-wqy-zenhei "
                      "(make setup does) or set SHEQU_CJK_FONT")


@cache
def register_cjk_font() -> str:
    """Register the CJK font with reportlab (once per process) and return its reportlab font name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = cjk_font_path()
    font = TTFont(FONT_NAME, str(path), subfontIndex=0) if path.suffix == ".ttc" else TTFont(FONT_NAME, str(path))
    pdfmetrics.registerFont(font)
    return FONT_NAME
