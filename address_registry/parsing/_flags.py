"""Compiled gazetteer and repetition flags (numba), the same flags as
:meth:`.features.FeatureExtractor._flags` (kept as the reference and the fallback without numba; the tests
compare the two on the whole corpus).

Per address, over its characters (one per token; a multi-character token — a run of digits or Latin
letters — is 0, as the reference's ``"\\x00"``):
- the gazetteer is a trie of its names (a node per prefix, so a node id stands for one string); from every
  position the longest walk down the trie finds each name starting there (begin / inside / end flags per
  kind, "repeated" when the same name was found earlier in the address), the length of the longest one,
  and whether that longest name occurs again later;
- the 2- and 3-character repetition flags compare the short substrings directly (addresses are short).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_EMPTY = -1
TRIE_ARRAYS = ("table", "is_name", "term_ptr", "term_cols")  # what build_trie returns, in the kernel's order


def build_trie(names_kinds: dict[str, tuple[tuple[int, int, int, int], ...]]) -> dict[str, np.ndarray]:
    """Trie arrays of a gazetteer {name: ((B, I, E, R flag columns) per kind, …)}: an open-addressing table
    from (node, character) to child node, whether a node ends a name, and per node the flag columns of that
    name (``term_cols[term_ptr[node]:term_ptr[node + 1]]``)."""
    children: dict[tuple[int, int], int] = {}
    term: dict[int, tuple[tuple[int, int, int, int], ...]] = {}  # node → flag columns of the name ending there
    n_nodes = 1  # node 0: the root
    for name, kinds in names_kinds.items():
        if len(name) < 2:
            continue  # only names of two or more characters are looked up
        node = 0
        for ch in name:
            key = (node, ord(ch))
            if key not in children:
                children[key] = n_nodes
                n_nodes += 1
            node = children[key]
        term[node] = kinds
    m = 1
    while m < 2 * len(children) + 2:
        m *= 2
    assert m <= 1 << 24, "the slot hash keeps 24 bits"
    table = np.zeros((m, 2), np.int64)
    table[:, 1] = _EMPTY
    for (node, cp), child in children.items():
        k = node * (1 << 21) + cp
        s = _slot(k, m - 1)
        while table[s, 1] != _EMPTY:
            s = (s + 1) & (m - 1)
        table[s] = (k, child)
    term_ptr = np.zeros(n_nodes + 1, np.int64)
    for node, kinds in term.items():
        term_ptr[node + 1] = len(kinds)
    np.cumsum(term_ptr, out=term_ptr)
    term_cols = np.zeros((max(int(term_ptr[-1]), 1), 4), np.int64)
    is_name = np.zeros(n_nodes, np.bool_)
    for node, kinds in term.items():
        term_cols[term_ptr[node] : term_ptr[node + 1]] = kinds
        is_name[node] = True
    return {"table": table, "is_name": is_name, "term_ptr": term_ptr, "term_cols": term_cols}


def _slot(k: int, mask: int) -> int:
    return ((k * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)) >> 40 & mask


@nb.njit(inline="always")
def _child(table, node, cp):
    mask = table.shape[0] - 1
    k = node * (1 << 21) + cp
    s = ((np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & np.uint64(mask)
    while True:
        v = table[s, 1]
        if v == _EMPTY:
            return -1
        if table[s, 0] == k:
            return v
        s = (s + np.uint64(1)) & np.uint64(mask)


@nb.njit(inline="always")
def _occurs(cps, a, length, frm, end):
    """True when cps[a:a + length] occurs in cps[frm:end]."""
    for p in range(frm, end - length + 1):
        same = True
        for d in range(length):
            if cps[p + d] != cps[a + d]:
                same = False
                break
        if same:
            return True
    return False


@nb.njit(cache=True, nogil=True)
def flags(cps, lengths, table, is_name, term_ptr, term_cols, len_cols, f_lf, rep_cols, out):  # noqa: C901  (one kernel)
    """Set the flags of every token in ``out`` (T, N_FLAGS), zero on entry; ``cps`` (T,) the character of
    each token (0 for a multi-character token); ``len_cols[b]``: the column of "longest name has b
    characters" (b = 2…6); ``rep_cols`` rows (L, backward column, forward column) for L = 2, 3."""
    maxlen = 1
    for n in lengths:
        maxlen = max(maxlen, n)
    seen = np.empty(64, np.int64)  # trie nodes of the names found so far in this address
    pos = 0
    for n in lengths:
        c = cps[pos : pos + n]
        n_seen = 0
        for i in range(n - 1):
            node = 0
            best = 0
            for j in range(i, n):
                node = _child(table, node, c[j])
                if node < 0:
                    break
                length = j - i + 1
                if length < 2 or not is_name[node]:
                    continue
                best = length
                rep = False
                for x in range(n_seen):
                    if seen[x] == node:
                        rep = True
                        break
                if not rep:
                    if n_seen == len(seen):
                        more = np.empty(2 * len(seen), np.int64)
                        more[:n_seen] = seen
                        seen = more
                    seen[n_seen] = node
                    n_seen += 1
                for x in range(term_ptr[node], term_ptr[node + 1]):
                    out[pos + i, term_cols[x, 0]] = 1.0
                    for m in range(i + 1, j):
                        out[pos + m, term_cols[x, 1]] = 1.0
                    out[pos + j, term_cols[x, 2]] = 1.0
                    if rep:
                        for m in range(i, j + 1):
                            out[pos + m, term_cols[x, 3]] = 1.0
            if best:
                out[pos + i, len_cols[min(best, 6)]] = 1.0
                if _occurs(c, i, best, i + best, n):
                    for m in range(i, i + best):
                        out[pos + m, f_lf] = 1.0
        for r in range(rep_cols.shape[0]):
            L, fb, ff = rep_cols[r, 0], rep_cols[r, 1], rep_cols[r, 2]
            for i in range(n - L + 1):
                has_zero = False
                for d in range(L):
                    if c[i + d] == 0:
                        has_zero = True
                if has_zero:
                    continue
                # backward: the first occurrence ends at or before i; forward: the last one starts at ≥ i + L
                if _occurs(c, i, L, 0, i):
                    for m in range(i, i + L):
                        out[pos + m, fb] = 1.0
                if _occurs(c, i, L, i + L, n):
                    for m in range(i, i + L):
                        out[pos + m, ff] = 1.0
        pos += n
