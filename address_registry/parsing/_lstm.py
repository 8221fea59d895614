"""Compiled BiLSTM emissions (numba): per sequence, both directions, fused table lookups, recurrence and
output layer — no large temporaries. Optional accelerator for :mod:`.neural` (same results as its numpy
path up to float rounding; ``tanh`` is a rational approximation accurate to float32 precision).
"""

from __future__ import annotations

import numba as nb
import numpy as np

# rational approximation of tanh on [-7.9053, 7.9053] (odd numerator of degree 13, even denominator of
# degree 6; the coefficients are the widely used float32 minimax fit, e.g. Eigen's ``ptanh``)
_f = np.float32
_CLAMP = _f(7.90531110763549805)
_A1, _A3 = _f(4.89352455891786e-03), _f(6.37261928875436e-04)
_A5, _A7 = _f(1.48572235717979e-05), _f(5.12229709037114e-08)
_A9, _A11, _A13 = _f(-8.60467152213735e-11), _f(2.00018790482477e-13), _f(-2.76076847742355e-16)
_B0, _B2 = _f(4.89352518554385e-03), _f(2.26843463243900e-03)
_B4, _B6 = _f(1.18534705686654e-04), _f(1.19825839466702e-06)
_HALF = _f(0.5)


@nb.njit(inline="always", fastmath=True)
def _tanh(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    p = p * x
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return p / q


@nb.njit(cache=True, nogil=True, fastmath=True)
def _direction(ids, bl, br, flags, lengths, tok, tbl, tbr, wf, hh, wout, E, reverse):
    H = hh.shape[0]
    G = 4 * H
    L = wout.shape[1]
    NF = flags.shape[1]
    e = np.empty(L, np.float32)
    a4 = np.empty(G, np.float32)
    z = np.empty(G, np.float32)
    zh = np.empty(G, np.float32)
    h = np.empty(H, np.float32)
    c = np.empty(H, np.float32)
    pos = 0
    for n in lengths:
        for k in range(H):
            h[k] = 0.0
            c[k] = 0.0
        for s in range(n):
            row = pos + (n - 1 - s if reverse else s)
            x, y, w = ids[row], bl[row], br[row]
            for j in range(G):
                z[j] = tok[x, j] + tbl[y, j] + tbr[w, j]
            for f in range(NF):  # flags are 0/1
                if flags[row, f] != 0.0:
                    for j in range(G):
                        z[j] += wf[f, j]
            np.dot(h, hh, zh)
            for j in range(G):
                z[j] += zh[j]
            # gates i, f, g, o; i, f, o rows were pre-halved: sigmoid(x) = (1 + tanh(x / 2)) / 2
            for j in range(G):
                a4[j] = _tanh(z[j])
            for k in range(H):
                c[k] = (_HALF + _HALF * a4[H + k]) * c[k] + (_HALF + _HALF * a4[k]) * a4[2 * H + k]
            for k in range(H):
                h[k] = (_HALF + _HALF * a4[3 * H + k]) * _tanh(c[k])
            np.dot(h, wout, e)
            for j in range(L):
                E[row, j] += e[j]
        pos += n


@nb.njit(cache=True, nogil=True)
def emissions(ids, bl, br, flags, lengths, fw, bw, out_f, out_b, bias):
    """(T, L) tag scores; ``fw``/``bw``: (token table, left-bigram table, right-bigram table, flag rows,
    recurrent weights (H, 4H)) per direction."""
    T = ids.shape[0]
    L = bias.shape[0]
    E = np.empty((T, L), np.float64)
    for r in range(T):
        for j in range(L):
            E[r, j] = bias[j]
    _direction(ids, bl, br, flags, lengths, fw[0], fw[1], fw[2], fw[3], fw[4], out_f, E, False)
    _direction(ids, bl, br, flags, lengths, bw[0], bw[1], bw[2], bw[3], bw[4], out_b, E, True)
    return E
