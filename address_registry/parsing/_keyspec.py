"""The constants of the keyed features, shared by the numpy extractor (:mod:`.features`) and its compiled twin
(:mod:`._keys`): token ids, character classes, suffix classes, the hash's seeds and multipliers. A change
here changes every key, so both — and the numba cache of `_keys` — follow it (the Makefile's warm-up lists it).
"""

from __future__ import annotations

import numpy as np

# suffix classes of a token (号 → NO, 幢 → BLD, 路 → ROAD…: features._SUFFIX_CLASS)
_SUFFIX_NAMES = ("", "NO", "LANE", "BLD", "UNIT", "FLR", "ROOM", "DASH", "HASH", "ROAD", "ADM", "TOWN", "VIL")
_SC = {name: i for i, name in enumerate(_SUFFIX_NAMES)}
_SC_POI = len(_SUFFIX_NAMES)  # pseudo-class: last character of a typical place / building name
_SC_START = _SC_POI + 1  # pseudo-class: start of the address

# token ids: a single character is its code point; runs of digits / Latin letters are shapes
_DIGITS_ID = 0x200000  # + min(len, 5)
_LATIN_ID = 0x200010
_BOS_ID = 0x200020
_EOS_ID = 0x200021
_PAD = 3  # window radius

# character classes
_C_CJK, _C_DIGIT, _C_LATIN, _C_SPACE, _C_PUNCT, _C_BOS, _C_EOS = 1, 2, 3, 4, 5, 6, 7

# the hash: 64-bit mask, multipliers, one seed per kind of key; bigram kinds' window offsets
_M = (1 << 64) - 1
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xC2B2AE3D27D4EB4F)
N_KEYS = 27
_SEEDS = np.array([((k + 1) * 0x9E3779B97F4A7C15) & _M for k in range(N_KEYS)], dtype=np.uint64)
_BI_A = [1, 2, 3, 4, 0, 5, 2]
_BI_B = [2, 3, 4, 5, 1, 6, 4]
