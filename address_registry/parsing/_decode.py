"""Compiled CRF decoding (numba): feature-key lookup, emission sums and exact Viterbi in one pass.

Optional accelerator: :mod:`.model` falls back to its numpy decoder when numba is not importable. Both
give the same tags (the tests compare them).

Layout, chosen for speed (issue 18) without changing a single sum:
- The hash table holds, per slot, the feature key and where its weights are (one cache line per probe,
  instead of a key array, a row array and a row-pointer array read one after the other).
- A feature with many label weights (the bias, frequent characters: most of the features a token hits)
  keeps them as a dense row of all labels, added with vector instructions; the others stay sparse. The
  missing labels of a dense row are 0.0, and adding 0.0 leaves a sum unchanged, so every emission score is
  the same float as with the sparse rows, added in the same order.
- The Viterbi maximum over predecessors runs over all tags with the current tags in the inner loop
  (vectorised), on the transition matrix whose forbidden moves hold −1e30. An allowed predecessor always
  scores above a forbidden one, and ties go to the lowest predecessor index as before, so the path is
  the one the loop over the allowed predecessors gave.
"""

from __future__ import annotations

import numba as nb
import numpy as np

DENSE_MIN = 8  # a feature with at least this many label weights is stored as a dense row
_EMPTY = -1


@nb.njit(cache=True, nogil=True)
def build_table(keys, ptr, cols, vals, n_labels):
    """Open-addressing hash table (linear probing, load ≤ 0.6) from feature key to its weights, and the
    dense weight rows. ``table[s] = (key, code)``: code −1 = empty slot, code ≥ 0 = sparse weights
    ``vals[start:start + count]`` for labels ``cols[…]`` (``code = start << 8 | count``), code ≤ −2 =
    dense row ``−2 − code`` of ``dense``."""
    n = len(keys)
    m = 1
    while m * 3 < n * 5 + 2:
        m *= 2
    n_dense = 0
    for r in range(n):
        if ptr[r + 1] - ptr[r] >= DENSE_MIN:
            n_dense += 1
    dense = np.zeros((n_dense, n_labels), np.float64)
    table = np.zeros((m, 2), np.int64)
    table[:, 1] = _EMPTY
    mask = np.uint64(m - 1)
    d = 0
    for r in range(n):
        a, b = ptr[r], ptr[r + 1]
        if b - a >= DENSE_MIN:
            for x in range(a, b):
                dense[d, cols[x]] = vals[x]
            code = -2 - d
            d += 1
        else:
            code = (a << 8) | (b - a)
        k = keys[r]
        s = (k ^ (k >> np.uint64(32))) & mask
        while table[s, 1] != _EMPTY:
            s = (s + np.uint64(1)) & mask
        table[s, 0] = np.int64(k)
        table[s, 1] = code
    return table, dense


@nb.njit(cache=True, nogil=True)
def decode(table, cols, vals, dense, Wf, trans, start, keys, flags, lengths, extra):  # noqa: C901  (one numba kernel: loops fused for speed)
    """Best tag per token for every sequence (tokens of all sequences in order); ``table``/``dense`` from
    :func:`build_table`. Tag ``j`` may not follow tag ``i`` where ``trans[i, j]`` is −1e30 and starts with
    score ``start[j]``. ``extra`` (T, L) holds emission scores added to the CRF's (the BiLSTM's); zero
    rows = none."""
    T, K = keys.shape
    L = trans.shape[0]
    NF = flags.shape[1]
    has_extra = extra.shape[0] == T
    mask = np.uint64(table.shape[0] - 1)
    out = np.empty(T, np.int32)
    maxlen = 1
    for n in lengths:
        if n > maxlen:
            maxlen = n
    E = np.empty((maxlen, L), np.float64)
    back = np.empty((maxlen, L), np.int32)
    delta = np.empty(L, np.float64)
    best = np.empty(L, np.float64)
    arg = np.empty(L, np.int32)
    found = np.empty(K, np.int64)
    pos = 0
    for n in lengths:
        for t in range(n):
            row = pos + t
            # the K probes first (independent loads), then the sums in feature order
            for q in range(K):
                k = keys[row, q]
                s = (k ^ (k >> np.uint64(32))) & mask
                ki = np.int64(k)
                code = _EMPTY
                while True:
                    c = table[s, 1]
                    if c == _EMPTY:
                        break
                    if table[s, 0] == ki:
                        code = c
                        break
                    s = (s + np.uint64(1)) & mask
                found[q] = code
            if has_extra:
                for j in range(L):
                    E[t, j] = extra[row, j]
            else:
                for j in range(L):
                    E[t, j] = 0.0
            for q in range(K):
                code = found[q]
                if code >= 0:
                    a = code >> 8
                    for x in range(a, a + (code & 255)):
                        E[t, cols[x]] += vals[x]
                elif code != _EMPTY:
                    d = -2 - code
                    for j in range(L):
                        E[t, j] += dense[d, j]
            for f in range(NF):
                if flags[row, f] != 0.0:
                    for j in range(L):
                        E[t, j] += Wf[f, j]
        if n == 0:
            continue
        for j in range(L):
            delta[j] = E[0, j] + start[j]
        for t in range(1, n):
            for j in range(L):
                best[j] = -1e300
                arg[j] = 0
            for i in range(L):
                di = delta[i]
                for j in range(L):
                    v = di + trans[i, j]
                    better = v > best[j]
                    best[j] = v if better else best[j]
                    arg[j] = i if better else arg[j]
            for j in range(L):
                delta[j] = best[j] + E[t, j]
                back[t, j] = arg[j]
        b = -1e300
        a = 0
        for j in range(L):
            if delta[j] > b:
                b = delta[j]
                a = j
        out[pos + n - 1] = a
        for t in range(n - 1, 0, -1):
            a = back[t, a]
            out[pos + t - 1] = a
        pos += n
    return out
