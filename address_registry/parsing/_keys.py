"""Compiled keyed features (numba): the same 27 hashed keys per token as the numpy
:meth:`.features.FeatureExtractor._keys` (kept as the reference and the fallback without numba; the tests
compare the two on the whole corpus), in one pass over the padded token stream instead of a few dozen
whole-batch temporaries. Integer arithmetic only (uint64, wrapping), so every key is the same bit for bit.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._keyspec import (
    _BI_A,
    _BI_B,
    _BOS_ID,
    _C_BOS,
    _C_CJK,
    _C_DIGIT,
    _C_EOS,
    _C_LATIN,
    _C_PUNCT,
    _C_SPACE,
    _DIGITS_ID,
    _EOS_ID,
    _LATIN_ID,
    _MUL,
    _MUL2,
    _PAD,
    _SC,
    _SC_POI,
    _SC_START,
    _SEEDS,
    N_KEYS,
)

_NO = ord("号")
_ROAD, _ADM, _DASH = _SC["ROAD"], _SC["ADM"], _SC["DASH"]
_BI = np.array([_BI_A, _BI_B], np.int64).T.copy()  # bigram kinds 8…14: window offsets (as W columns)
_S31, _S29 = np.uint64(31), np.uint64(29)


@nb.njit(inline="always")
def _mix(h, v):
    h = (h ^ np.uint64(v)) * _MUL
    return h ^ (h >> _S31)


@nb.njit(inline="always")
def _final(h):
    h = h * _MUL2
    return h ^ (h >> _S29)


@nb.njit(inline="always")
def _cls(i):
    if (0x4E00 <= i <= 0x9FFF) or (0x3400 <= i <= 0x4DBF) or (0xF900 <= i <= 0xFAFF):
        return _C_CJK
    if _DIGITS_ID <= i < _DIGITS_ID + 8:
        return _C_DIGIT
    if i == _LATIN_ID:
        return _C_LATIN
    if i == 32:
        return _C_SPACE
    if i == _BOS_ID:
        return _C_BOS
    if i == _EOS_ID:
        return _C_EOS
    return _C_PUNCT


@nb.njit(cache=True, nogil=True)
def keys(ID, SUF, EXTRA, lengths):  # noqa: C901  (one kernel)
    """(T, N_KEYS) uint64 keys from the padded stream (``_PAD`` × BOS, the tokens, ``_PAD`` × EOS per
    address) of token ids, suffix classes and Latin crcs."""
    T = 0
    for n in lengths:
        T += n
    out = np.empty((T, N_KEYS), np.uint64)
    C = np.empty(len(ID), np.int64)
    for q in range(len(ID)):
        C[q] = _cls(ID[q])
    W = np.empty(7, np.int64)
    single = np.empty(17, np.int64)
    row = 0
    ps = 0  # padded position of the address's first BOS
    for n in lengths:
        first = ps + _PAD
        nd = 0  # digits, 号, road / admin / place-name words seen before the token (in this address)
        nno = 0
        road = 0
        adm = 0
        poi = 0
        # the last two structural words before the token (BOS counts as one): positions, as in the numpy
        # running maximum over the stream; the address's own BOS pads come first, so it starts there
        l1 = first - 1
        l2 = first - 2
        for i in range(n):
            p = first + i
            ndc = min(nd, 3)
            nnc = min(nno, 2)
            ctx = ndc * 64 + nnc * 16 + (road > 0) * 8 + (adm > 0) * 4 + (poi > 0) * 2
            sc1 = _SC_START if ID[l1] == _BOS_ID else SUF[l1]
            sc2 = _SC_START if ID[l2] == _BOS_ID else SUF[l2]
            ls = sc1 * 32 + sc2
            pos = min(i, 4) * 8 + min(n - 1 - i, 3)
            dx = 0
            if C[p] == _C_DIGIT:
                dx = 1 + SUF[p + 1] * 4096 + SUF[p - 1] * 64 + ndc * 4 + nnc
            c5 = (((C[p - 2] * 8 + C[p - 1]) * 8 + C[p]) * 8 + C[p + 1]) * 8 + C[p + 2]
            c3 = (C[p - 1] * 8 + C[p]) * 8 + C[p + 1]
            for d in range(7):
                W[d] = ID[p + d - 3]
            single[0] = 0
            single[1] = W[3]
            single[2] = W[2]
            single[3] = W[1]
            single[4] = W[0]
            single[5] = W[4]
            single[6] = W[5]
            single[7] = W[6]
            single[8] = c5
            single[9] = c3
            single[10] = ctx
            single[11] = ls
            single[12] = pos
            single[13] = SUF[p + 1]
            single[14] = SUF[p]
            single[15] = dx
            single[16] = EXTRA[p]
            for x in range(17):
                kind = x if x < 8 else x + 10  # kinds 0–7, then 18–26
                out[row, kind] = _final(_mix(_SEEDS[kind], single[x]))
            for x in range(7):
                out[row, 8 + x] = _final(_mix(_mix(_SEEDS[8 + x], W[_BI[x, 0]]), W[_BI[x, 1]]))
            for x in range(3):
                out[row, 15 + x] = _final(_mix(_mix(_mix(_SEEDS[15 + x], W[1 + x]), W[2 + x]), W[3 + x]))
            # counts for the next token
            nd += C[p] == _C_DIGIT
            nno += ID[p] == _NO
            road += SUF[p] == _ROAD
            adm += SUF[p] == _ADM
            poi += SUF[p] == _SC_POI
            if SUF[p] > 0 and SUF[p] != _DASH:
                l2 = l1
                l1 = p
            row += 1
        ps += n + 2 * _PAD
    return out
