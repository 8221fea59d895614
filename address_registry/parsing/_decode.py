"""Compiled CRF decoding (numba): feature-key lookup, emission sums and exact Viterbi in one pass.

Optional accelerator: :mod:`.model` falls back to its numpy decoder when numba is not importable. Both
give the same tags (the tests compare them).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def build_table(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Open-addressing hash table (linear probing, load ≤ 0.5) from feature key → row."""
    m = 1
    while m < 2 * len(keys) + 2:
        m *= 2
    tkeys = np.zeros(m, np.uint64)
    trows = np.full(m, -1, np.int32)
    mask = np.uint64(m - 1)
    for r in range(len(keys)):
        k = keys[r]
        s = (k ^ (k >> np.uint64(32))) & mask
        while trows[s] != -1:
            s = (s + np.uint64(1)) & mask
        tkeys[s] = k
        trows[s] = r
    return tkeys, trows


@nb.njit(cache=True, nogil=True)
def decode(tkeys, trows, ptr, cols, vals, Wf, trans, start, prev_ptr, prev_idx, keys, flags, lengths, extra):  # noqa: C901  (one numba kernel: loops fused for speed)
    """Best tag per token for every sequence (tokens of all sequences in order). State weights are sparse
    rows: feature ``r`` has weights ``vals[ptr[r]:ptr[r+1]]`` for labels ``cols[ptr[r]:ptr[r+1]]``. Tag ``j``
    may follow only the tags ``prev_idx[prev_ptr[j]:prev_ptr[j+1]]`` and start with score ``start[j]``.
    ``extra`` (T, L) holds emission scores added to the CRF's (the BiLSTM's); zero rows = none."""
    T, K = keys.shape
    L = trans.shape[0]
    NF = flags.shape[1]
    has_extra = extra.shape[0] == T
    n_unknown = -1
    mask = np.uint64(len(tkeys) - 1)
    out = np.empty(T, np.int32)
    maxlen = 1
    for n in lengths:
        if n > maxlen:
            maxlen = n
    E = np.empty((maxlen, L), np.float64)
    back = np.empty((maxlen, L), np.int32)
    delta = np.empty(L, np.float64)
    nxt = np.empty(L, np.float64)
    pos = 0
    for n in lengths:
        for t in range(n):
            row = pos + t
            if has_extra:
                for j in range(L):
                    E[t, j] = extra[row, j]
            else:
                for j in range(L):
                    E[t, j] = 0.0
            for q in range(K):
                k = keys[row, q]
                s = (k ^ (k >> np.uint64(32))) & mask
                r = n_unknown
                while trows[s] != -1:
                    if tkeys[s] == k:
                        r = trows[s]
                        break
                    s = (s + np.uint64(1)) & mask
                if r != n_unknown:
                    for x in range(ptr[r], ptr[r + 1]):
                        E[t, cols[x]] += vals[x]
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
                best = -1e300
                arg = 0
                for x in range(prev_ptr[j], prev_ptr[j + 1]):
                    i = prev_idx[x]
                    v = delta[i] + trans[i, j]
                    if v > best:
                        best = v
                        arg = i
                nxt[j] = best + E[t, j]
                back[t, j] = arg
            for j in range(L):
                delta[j] = nxt[j]
        best = -1e300
        arg = 0
        for j in range(L):
            if delta[j] > best:
                best = delta[j]
                arg = j
        out[pos + n - 1] = arg
        for t in range(n - 1, 0, -1):
            arg = back[t, arg]
            out[pos + t - 1] = arg
        pos += n
    return out
