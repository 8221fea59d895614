"""Token features for the CRF tagger, computed for a whole batch of addresses at once with numpy.

Every feature is either

* a **keyed** feature: a (kind, values…) tuple hashed to a 64-bit key — one per kind and token. Kinds: the
  token and its neighbours in a ±3 window (unigrams, bigrams, trigrams, skip-bigram), the character
  classes around it, the number-suffix class of the token and of the next one (号 → number, 幢/栋/座 →
  building, 单元/门 → unit, 层/楼 → floor, 室/户 → room, 路/街 → road, 省/市/区/县 → admin…), what the
  address has shown so far (how many numbers, how many 号, whether a road / admin word / place-name head
  came before, the last two structural words), the position from both ends; or
* a **flag** (dense 0/1 column): where a gazetteer name (GB/T 2260 province / city / county names, full and
  short forms) begins, continues or ends, whether that name occurred earlier / occurs later in the address,
  and whether the 2-/3-token string starting here repeats earlier or later (the corpus marks repeated
  levels as ``redundant``).

Training (``train.py``) hands the same keys to CRFsuite as attribute strings (``k<hex key>``, ``f<flag column>``), so
what the tagger sees at run time is exactly what it was trained on. Tokens are normalised first
(:mod:`.normalize`): full-width digits, Chinese house numerals (三十二号 → 32号) look like the corpus.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

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
    _M,
    _MUL,
    _MUL2,
    _PAD,
    _SC,
    _SC_POI,
    _SC_START,
    _SEEDS,
    N_KEYS,
)

# Short forms of administrative names: 杭州市 → 杭州, 广西壮族自治区 → 广西 (only when ≥ 2 characters remain).
_ADMIN_SUFFIXES = (
    "维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "自治州", "自治县", "地区",
    "新区", "林区", "矿区", "省", "市", "区", "县", "盟", "旗",
)  # fmt: skip

_SUFFIX_CLASS = {
    "号": "NO", "弄": "LANE", "幢": "BLD", "栋": "BLD", "座": "BLD", "单": "UNIT", "门": "UNIT",
    "层": "FLR", "楼": "FLR", "室": "ROOM", "户": "ROOM", "-": "DASH", "#": "HASH",
    "路": "ROAD", "街": "ROAD", "道": "ROAD", "巷": "ROAD",
    "省": "ADM", "市": "ADM", "区": "ADM", "县": "ADM", "镇": "TOWN", "乡": "TOWN", "村": "VIL", "社": "VIL",
}  # fmt: skip
_SUFFIX_ID = {k: _SC[v] for k, v in _SUFFIX_CLASS.items()}
# last characters of typical place / building names (小区, 花园, 大厦, 中心, 市场, 公司…)
_POI_HEADS = frozenset("苑园城厦场心司店院馆寓庄墅府湾邸居舍坊中学厂")

# flag columns
_LEX_KINDS = ("p", "ps", "c", "cs", "d", "ds")
FLAG_NAMES: tuple[str, ...] = (
    *(f"l{pos}{k}" for pos in "BIE" for k in _LEX_KINDS),
    *(f"lR{k}" for k in _LEX_KINDS),
    *(f"lL{n}" for n in range(2, 7)),
    "lF", "rb2", "rf2", "rb3", "rf3",
)  # fmt: skip
_FLAG = {name: i for i, name in enumerate(FLAG_NAMES)}
N_FLAGS = len(FLAG_NAMES)
_F_LF = _FLAG["lF"]
_REP_FLAGS = ((2, _FLAG["rb2"], _FLAG["rf2"]), (3, _FLAG["rb3"], _FLAG["rf3"]))

_TOKEN_CACHE = 100_000


def short_admin_name(name: str) -> str | None:
    """An admin name without its suffix (杭州市 → 杭州), None when too short or no suffix."""
    for suf in _ADMIN_SUFFIXES:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            return name[: -len(suf)]
    return None


def build_lexicon(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Gazetteer from (code, name) rows of GB/T 2260: name → kinds ``p`` (province, 2-digit code), ``c``
    (city, 4-digit), ``d`` (county-level, 6-digit), with an ``s`` suffix for short forms (杭州 for 杭州市)."""
    lex: dict[str, set[str]] = {}
    for code, name in rows:
        kind = {2: "p", 4: "c", 6: "d"}.get(len(code))
        if kind is None or not name:
            continue
        lex.setdefault(name, set()).add(kind)
        short = short_admin_name(name)
        if short:
            lex.setdefault(short, set()).add(kind + "s")
    return {k: sorted(v) for k, v in lex.items()}


def _hash(kind: int, *values: np.ndarray) -> np.ndarray:
    """64-bit key of (kind, values…), elementwise (multiply–xorshift mixing; collisions ~2⁻⁶⁴ per pair)."""
    h = np.full(values[0].shape, np.uint64(((kind + 1) * 0x9E3779B97F4A7C15) & _M), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for v in values:
            h = (h ^ v.astype(np.uint64)) * _MUL
            h ^= h >> np.uint64(31)
        h = h * _MUL2
        h ^= h >> np.uint64(29)
    return h


def _token_info(t: str) -> tuple[int, int, int]:
    """(token id, suffix class, Latin crc) of one normalised token."""
    c = t[0]
    if len(t) == 1 and not (c.isascii() and c.isalnum()):
        return ord(c), _SUFFIX_ID.get(t, _SC_POI if t in _POI_HEADS else 0), 0
    if c.isdigit():
        return _DIGITS_ID + min(len(t), 5), 0, 0
    return _LATIN_ID, 0, zlib.crc32(t.lower().encode()) + 1


class FeatureExtractor:
    """Builds keyed features (uint64, one column per kind) and flags (0/1) for batches of token lists."""

    def __init__(self, lexicon: dict[str, list[str]], trie: dict[str, np.ndarray] | None = None):
        """``trie``: the compiled flags' gazetteer arrays of this lexicon (:meth:`trie_arrays` of an earlier
        extractor, e.g. from the parser's run-time cache); built here when not given."""
        # name → ((column of lB<kind>, lI<kind>, lE<kind>, lR<kind>), …)
        self.lexicon = {
            name: tuple((_FLAG["lB" + k], _FLAG["lI" + k], _FLAG["lE" + k], _FLAG["lR" + k]) for k in kinds)
            for name, kinds in lexicon.items()
        }
        # (token id, suffix class, Latin crc, character or 0) of the tokens seen so far: row of a token, rows
        # (one parser serves many threads: rows are added under a lock, and a row is written before the
        # token maps to it, so a reader never sees a row that is not filled in)
        self._token_row: dict[str, int] = {}
        self._token_table = np.zeros((1024, 4), np.int64)
        self._token_lock = threading.Lock()
        self._trie: dict[str, np.ndarray] | None = None
        self._compiled_flags: tuple[Any, tuple[np.ndarray, ...], tuple[Any, ...]] | None = None
        self._compiled_keys: Any = None
        try:
            from . import _flags, _keys
        except ImportError:  # numba missing: the plain Python flags and numpy keys (the same)
            return
        self._compiled_keys = _keys.keys
        self._trie = trie if trie is not None else _flags.build_trie(self.lexicon)
        len_cols = np.zeros(7, np.int64)
        len_cols[2:] = [_FLAG[f"lL{n}"] for n in range(2, 7)]
        consts = (len_cols, _F_LF, np.array(_REP_FLAGS, np.int64))
        self._compiled_flags = (_flags.flags, tuple(self._trie[k] for k in _flags.TRIE_ARRAYS), consts)

    def trie_arrays(self) -> dict[str, np.ndarray] | None:
        """The compiled flags' gazetteer arrays (None without numba), what ``trie`` takes."""
        return self._trie

    @cached_property
    def prefixes(self) -> frozenset[str]:
        """Every prefix of two or more characters of a gazetteer name (the Python flags' lookup)."""
        return frozenset(k[:m] for k in self.lexicon for m in range(2, len(k) + 1))

    # -- flags: gazetteer and repetition (per address, plain Python over a short string: the reference, and
    # the fallback without numba; `_flags.flags` computes the same flags compiled, for a whole batch) ----

    def _flags(self, toks: Sequence[str], row0: int, cells: list[int]) -> None:  # noqa: C901  (per-token hot loop)
        """Append the flat indices (row * N_FLAGS + column) of this address's set flags to ``cells``."""
        n = len(toks)
        NF = N_FLAGS
        # one character per token: multi-character tokens (digits, Latin) never occur in admin names
        s = "".join(t if len(t) == 1 else "\x00" for t in toks)
        lex = self.lexicon
        prefixes = self.prefixes
        seen: set[str] = set()
        add = cells.append
        base = row0 * NF
        for i in range(n - 1):
            if s[i : i + 2] not in prefixes:
                continue
            best = 0
            j = i + 2
            while j <= n:
                name = s[i:j]
                if name not in prefixes:
                    break
                kinds = lex.get(name)
                if kinds is not None:
                    best = j - i
                    rep = name in seen
                    seen.add(name)
                    for cb, ci, ce, cr in kinds:
                        add(base + i * NF + cb)
                        for m in range(i + 1, j - 1):
                            add(base + m * NF + ci)
                        add(base + (j - 1) * NF + ce)
                        if rep:
                            for m in range(i, j):
                                add(base + m * NF + cr)
                j += 1
            if best:
                add(base + i * NF + _FLAG["lL" + str(min(best, 6))])
                if s.find(s[i : i + best], i + best) >= 0:
                    for m in range(i, i + best):
                        add(base + m * NF + _F_LF)
        for L, fb, ff in _REP_FLAGS:
            first: dict[str, int] = {}
            last: dict[str, int] = {}
            subs = [s[i : i + L] for i in range(n - L + 1)]
            for i, sub in enumerate(subs):
                if sub in first:
                    if first[sub] + L <= i and "\x00" not in sub:
                        for m in range(i, i + L):
                            add(base + m * NF + fb)
                else:
                    first[sub] = i
                last[sub] = i
            for i, sub in enumerate(subs):
                if last[sub] >= i + L and "\x00" not in sub:
                    for m in range(i, i + L):
                        add(base + m * NF + ff)

    # -- the batch ---------------------------------------------------------------------------------------

    def batch(self, seqs: Sequence[Sequence[tuple[str, int, int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features of many token lists: ``keys`` (T, K) uint64, ``flags`` (T, N_FLAGS) float32 and
        ``lengths`` (len(seqs),), where T is the total number of tokens, in order."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        total = int(lengths.sum())
        flags = np.zeros((total, N_FLAGS), dtype=np.float32)
        if total == 0:
            return np.zeros((0, N_KEYS), np.uint64), flags, lengths
        flat = [t[0] for seq in seqs for t in seq]
        get = self._token_row.get
        per_token = self._token_table[np.fromiter((get(t, -1) for t in flat), np.int64, count=total)]
        # a token not seen before reads row −1, kept all zero (see _info_row); a real token id is never 0,
        # except for NUL, which is then recomputed to the same values
        for i in np.flatnonzero(per_token[:, 0] == 0).tolist():
            per_token[i] = self._info_row(flat[i])
        if self._compiled_flags is not None:
            kernel, trie, consts = self._compiled_flags
            kernel(np.ascontiguousarray(per_token[:, 3]), lengths, *trie, *consts, flags)
        else:
            cells: list[int] = []
            row = 0
            for n in lengths.tolist():
                if n:
                    self._flags(flat[row : row + n], row, cells)
                    row += n
            if cells:
                flags.ravel()[cells] = 1
        # the padded stream: _PAD × BOS, the tokens, _PAD × EOS per address (suffix class and crc 0 there)
        n_seq = len(lengths)
        first = np.zeros(n_seq, np.int64)
        np.cumsum(lengths[:-1] + 2 * _PAD, out=first[1:])  # padded start of each address
        P = total + 2 * _PAD * n_seq
        pos = np.repeat(first + _PAD - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        ids = np.full(P, _EOS_ID, np.int64)
        ids[(first[:, None] + np.arange(_PAD)).ravel()] = _BOS_ID
        ids[pos] = per_token[:, 0]
        sufs = np.zeros(P, np.int64)
        sufs[pos] = per_token[:, 1]
        extra = np.zeros(P, np.int64)
        extra[pos] = per_token[:, 2]
        if self._compiled_keys is not None:
            return self._compiled_keys(ids, sufs, extra, lengths), flags, lengths
        return self._keys(ids, sufs, extra, lengths), flags, lengths

    def _info_row(self, t: str) -> tuple[int, int, int, int]:
        """(token id, suffix class, Latin crc, character or 0) of a token not seen before, remembered for the
        next batches (up to 100,000 distinct tokens)."""
        v = (*_token_info(t), ord(t) if len(t) == 1 else 0)
        with self._token_lock:
            n = len(self._token_row)
            if t not in self._token_row and n < _TOKEN_CACHE:
                if n + 1 >= len(self._token_table):  # the last row stays zero: what a new token's row −1 reads
                    table = np.concatenate([self._token_table, np.zeros_like(self._token_table)])
                    table[n] = v
                    self._token_table = table
                else:
                    self._token_table[n] = v
                self._token_row[t] = n
        return v

    def _keys(self, ID: np.ndarray, SUF: np.ndarray, EXTRA: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        P = len(ID)
        # class per padded position
        C = np.full(P, _C_PUNCT, np.int64)
        cjk = (
            ((ID >= 0x4E00) & (ID <= 0x9FFF))
            | ((ID >= 0x3400) & (ID <= 0x4DBF))
            | ((ID >= 0xF900) & (ID <= 0xFAFF))
        )
        C[cjk] = _C_CJK
        C[(ID >= _DIGITS_ID) & (ID < _DIGITS_ID + 8)] = _C_DIGIT
        C[ID == _LATIN_ID] = _C_LATIN
        C[ID == 32] = _C_SPACE
        C[ID == _BOS_ID] = _C_BOS
        C[ID == _EOS_ID] = _C_EOS

        # positions of real tokens; sentence index and index within the sentence
        n_seq = len(lengths)
        seq_start = np.zeros(n_seq, np.int64)  # padded position of each sentence's first token
        if n_seq > 1:
            seq_start[1:] = np.cumsum(lengths[:-1] + 2 * _PAD)
        seq_start += _PAD
        sid = np.repeat(np.arange(n_seq), lengths)
        p = np.arange(int(lengths.sum()), dtype=np.int64)
        first_tok = np.zeros(n_seq, np.int64)
        if n_seq > 1:
            first_tok[1:] = np.cumsum(lengths[:-1])
        i_in = p - first_tok[sid]
        p = seq_start[sid] + i_in  # padded positions of the real tokens
        n_of = lengths[sid]

        # what came before (exclusive running counts that restart with every address)
        is_digit = (C == _C_DIGIT).astype(np.int64)
        is_no = (ID == ord("号")).astype(np.int64)
        is_road = (SUF == _SC["ROAD"]).astype(np.int64)
        is_adm = (SUF == _SC["ADM"]).astype(np.int64)
        is_poi = (SUF == _SC_POI).astype(np.int64)

        def before(x: np.ndarray) -> np.ndarray:
            cs = np.cumsum(x) - x  # exclusive
            return cs[p] - cs[seq_start[sid]]

        nd = np.minimum(before(is_digit), 3)
        nn = np.minimum(before(is_no), 2)
        ctx = (
            nd * 64
            + nn * 16
            + (before(is_road) > 0) * 8
            + (before(is_adm) > 0) * 4
            + (before(is_poi) > 0) * 2
        )

        # last two structural words before the token (suffix classes other than DASH, or a place-name head)
        struct = (SUF > 0) & (SUF != _SC["DASH"])
        SC = SUF.copy()
        SC[ID == _BOS_ID] = _SC_START
        marker = np.where(struct | (ID == _BOS_ID), np.arange(P), -1)
        last_at = np.maximum.accumulate(marker)  # last structural position ≤ q
        l1 = last_at[p - 1]
        l2 = last_at[np.maximum(l1 - 1, 0)]
        ls = SC[l1] * 32 + SC[l2]

        pos = np.minimum(i_in, 4) * 8 + np.minimum(n_of - 1 - i_in, 3)
        digit_tok = C[p] == _C_DIGIT
        dx = np.where(digit_tok, 1 + SUF[p + 1] * 4096 + SUF[p - 1] * 64 + nd * 4 + nn, 0)
        c5 = (((C[p - 2] * 8 + C[p - 1]) * 8 + C[p]) * 8 + C[p + 1]) * 8 + C[p + 2]
        c3 = (C[p - 1] * 8 + C[p]) * 8 + C[p + 1]

        W = ID[p[:, None] + _WINDOW]  # (T, 7): offsets -3..3, W[:, 3] is the token itself
        out = np.empty((len(p), N_KEYS), np.uint64)
        single = np.stack(
            [np.zeros_like(p), W[:, 3], W[:, 2], W[:, 1], W[:, 0], W[:, 4], W[:, 5], W[:, 6],
             c5, c3, ctx, ls, pos, SUF[p + 1], SUF[p], dx, EXTRA[p]],
            axis=1,
        )  # fmt: skip
        out[:, _KINDS_1] = _hash_group(_KINDS_1, single)
        out[:, _KINDS_2] = _hash_group(_KINDS_2, W[:, _BI_A], W[:, _BI_B])
        out[:, _KINDS_3] = _hash_group(_KINDS_3, W[:, _TRI_A], W[:, _TRI_B], W[:, _TRI_C])
        return out


# keyed feature kinds by number of values: 0 bias; 1–7 tokens at offsets 0,-1,-2,-3,+1,+2,+3;
# 8–14 bigrams (-2,-1) (-1,0) (0,+1) (+1,+2) (-3,-2) (+2,+3) (-1,+1); 15–17 trigrams (-2..0) (-1..+1)
# (0..+2); 18 classes -2..+2; 19 classes -1..+1; 20 context counts; 21 last two structural words;
# 22 position; 23 next suffix class; 24 own suffix class; 25 digit context; 26 Latin token
_WINDOW = np.arange(-3, 4)
_KINDS_1 = np.array([0, 1, 2, 3, 4, 5, 6, 7, 18, 19, 20, 21, 22, 23, 24, 25, 26])
_KINDS_2 = np.arange(8, 15)
_KINDS_3 = np.arange(15, 18)
_TRI_A, _TRI_B, _TRI_C = [1, 2, 3], [2, 3, 4], [3, 4, 5]


def _hash_group(kinds: np.ndarray, *values: np.ndarray) -> np.ndarray:
    """:func:`_hash` for several kinds at once: ``values`` are (T, len(kinds)) arrays; the result equals
    ``_hash(kinds[j], values[0][:, j], values[1][:, j], …)`` in column ``j``."""
    h = np.broadcast_to(_SEEDS[kinds], values[0].shape)
    with np.errstate(over="ignore"):
        for v in values:
            h = (h ^ v.astype(np.uint64)) * _MUL
            h ^= h >> np.uint64(31)
        h = h * _MUL2
        h ^= h >> np.uint64(29)
    return h




def attribute_strings(keys: np.ndarray, flags: np.ndarray) -> list[list[str]]:
    """CRFsuite attribute names for the tokens of one address (training only)."""
    out = []
    for krow, frow in zip(keys, flags, strict=True):
        a = ["k" + format(int(k), "x") for k in krow]
        a.extend("f" + str(j) for j in np.flatnonzero(frow))
        out.append(a)
    return out


# the 21 labels of the corpus (labels.txt), in its order
ALL_LABELS = (
    "country", "prov", "city", "district", "devzone", "town", "community", "road", "subroad", "roadno",
    "subroadno", "poi", "subpoi", "houseno", "cellno", "floorno", "roomno", "person", "assist", "redundant",
    "otherinfo",
)  # fmt: skip
