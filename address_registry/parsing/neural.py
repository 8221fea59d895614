"""Character BiLSTM emissions in plain numpy (no torch at run time), added to the CRF's before Viterbi.

The network (trained by :mod:`.train_neural`) reads, per token, a token embedding, the embeddings of the
left and right token bigrams and the CRF's gazetteer / repetition flags; a one-layer BiLSTM and a linear
layer give a score per tag. Its weights ship as ``nn_weights.bin`` (numpy archive), already scaled by the
interpolation weight λ, so the parser decodes ``E_crf + E_nn`` with transitions ``T_crf + T_nn``.

Inference is batched: the input-to-gate products of the embeddings are precomputed per vocabulary entry
(a table lookup per token instead of a matrix product), sequences are sorted by length and run through
the recurrence in groups (one ``(B, H) @ (H, 4H)`` product per time step); the sigmoid gates use
``σ(x) = (1 + tanh(x / 2)) / 2`` with the halving folded into the weights, so each step needs one tanh
over the gate block and one over the cell.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

UNK = 1
_GROUP = 256


def tok_key(t: str) -> str:
    """Vocabulary key of a normalised token: the character itself, or the shape of a digit / Latin run."""
    if len(t) == 1:
        return t
    if t[0].isdigit():
        return f"<D{min(len(t), 5)}>"
    return f"<L{min(len(t), 3)}>"


_DIR_ARRAYS = ("tok", "bl", "br", "flags", "hh")


class _Direction:
    def __init__(self, tok: np.ndarray, bl: np.ndarray, br: np.ndarray, flags: np.ndarray, hh: np.ndarray):
        self.tok, self.bl, self.br, self.flags, self.hh = tok, bl, br, flags, hh
        self.H = hh.shape[0]

    @classmethod
    def from_weights(cls, z, sfx: str, e: int, b: int, emb: np.ndarray, bemb: np.ndarray) -> _Direction:
        W_ih = z[f"lstm__weight_ih_l0{sfx}"].astype(np.float64)
        W_hh = z[f"lstm__weight_hh_l0{sfx}"].astype(np.float64)
        bias = (z[f"lstm__bias_ih_l0{sfx}"] + z[f"lstm__bias_hh_l0{sfx}"]).astype(np.float64)
        H = W_hh.shape[1]
        # gate order i, f, g, o; i, f, o go through sigmoid = (1 + tanh(x/2)) / 2: halve their rows
        scale = np.full(4 * H, 0.5)
        scale[2 * H : 3 * H] = 1.0
        W_ih = W_ih * scale[:, None]
        W_hh = W_hh * scale[:, None]
        bias = bias * scale
        return cls(
            (emb @ W_ih[:, :e].T + bias).astype(np.float32),
            (bemb @ W_ih[:, e : e + b].T).astype(np.float32),
            (bemb @ W_ih[:, e + b : e + 2 * b].T).astype(np.float32),
            np.ascontiguousarray(W_ih[:, e + 2 * b :].T).astype(np.float32),
            np.ascontiguousarray(W_hh.T).astype(np.float32),
        )

    def run(self, ids, bl, br, flags, idx: np.ndarray, valid: np.ndarray, out: np.ndarray) -> None:
        """Recurrence over the padded grid ``idx`` (B, n) of token rows (in reading order for this
        direction); the hidden states of the valid cells go to their rows of ``out``."""
        B, n = idx.shape
        H = self.H
        Xg = self.tok[ids[idx]]  # (B, n, 4H): input-to-gate products, built per group (stays in cache)
        Xg += self.bl[bl[idx]]
        Xg += self.br[br[idx]]
        Xg += flags[idx] @ self.flags
        h = np.zeros((B, H), np.float32)
        c = np.zeros((B, H), np.float32)
        Hs = np.empty((B, n, H), np.float32)
        z = np.empty((B, 4 * H), np.float32)
        for t in range(n):
            np.matmul(h, self.hh, out=z)
            z += Xg[:, t]
            np.tanh(z, out=z)
            z[:, : 2 * H] += 1.0
            z[:, 3 * H :] += 1.0
            c *= z[:, H : 2 * H]
            c *= 0.5
            z[:, :H] *= z[:, 2 * H : 3 * H]
            z[:, :H] *= 0.5
            c += z[:, :H]
            h = np.tanh(c)
            h *= z[:, 3 * H :]
            h *= 0.5
            Hs[:, t] = h
        out[idx[valid]] = Hs[valid]


class NeuralEmitter:
    """Tag scores of the exported BiLSTM for batches of token lists."""

    def __init__(self, path: Path, labels: list[str], use_numba: bool = True):
        with np.load(path, allow_pickle=False) as z:
            got = [str(x) for x in z["labels"]]
            if got != list(labels):
                raise ValueError(f"{path}: tag set differs from the CRF's")
            vocab = [str(x) for x in z["vocab"]]
            bigrams = [str(x) for x in z["bigrams"]]
            emb = z["emb__weight"].astype(np.float64)
            bemb = z["bemb__weight"].astype(np.float64)
            e, b = emb.shape[1], bemb.shape[1]
            fw = _Direction.from_weights(z, "", e, b, emb, bemb)
            bw = _Direction.from_weights(z, "_reverse", e, b, emb, bemb)
            W_out = z["out__weight"].astype(np.float32)
            H = fw.H
            a = {
                **{f"fw_{k}": getattr(fw, k) for k in _DIR_ARRAYS},
                **{f"bw_{k}": getattr(bw, k) for k in _DIR_ARRAYS},
                "out_f": np.ascontiguousarray(W_out[:, :H].T), "out_b": np.ascontiguousarray(W_out[:, H:].T),
                "out_bias": z["out__bias"].astype(np.float32), "trans": z["trans"].astype(np.float64),
                "start": z["start"].astype(np.float64),
            }  # fmt: skip
        # bigram keys are "left\x01right" over vocabulary keys (and <S>, </S>, unknown → UNK)
        V = len(vocab) + 4
        key_id = {k: i + 2 for i, k in enumerate(vocab)}
        key_id.update({"<S>": len(vocab) + 2, "</S>": len(vocab) + 3})
        codes, bids = [], []
        for i, k in enumerate(bigrams):
            left, _, right = k.partition("\x01")
            if left in key_id and right in key_id:
                codes.append(key_id[left] * V + key_id[right])
                bids.append(i + 2)
        order = np.argsort(codes)
        a["bi_codes"] = np.array(codes, np.int64)[order]
        a["bi_ids"] = np.array(bids, np.int64)[order]
        digest = hashlib.sha256("\x02".join(bigrams).encode("utf-8")).hexdigest()
        self._setup(a, {"vocab": vocab, "bigrams_sha256": digest}, use_numba)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict, use_numba: bool = True) -> NeuralEmitter:
        """The network from :meth:`arrays` / :attr:`meta` of an earlier one (e.g. the run-time cache)."""
        self = cls.__new__(cls)
        self._setup(arrays, meta, use_numba)
        return self

    def _setup(self, a: dict[str, np.ndarray], meta: dict, use_numba: bool) -> None:
        self._arrays = a
        self.meta = meta
        self.fw = _Direction(*(a[f"fw_{k}"] for k in _DIR_ARRAYS))
        self.bw = _Direction(*(a[f"bw_{k}"] for k in _DIR_ARRAYS))
        self.out_f, self.out_b, self.out_bias = a["out_f"], a["out_b"], a["out_bias"]
        self.trans, self.start = a["trans"], a["start"]
        vocab = meta["vocab"]
        self.vocab_key = (tuple(vocab), meta["bigrams_sha256"])
        self.vocab = {k: i + 2 for i, k in enumerate(vocab)}
        self._bos, self._eos = len(vocab) + 2, len(vocab) + 3
        self._V = len(vocab) + 4
        self._bi_codes, self._bi_ids = a["bi_codes"], a["bi_ids"]
        self._cache: dict[str, int] = {}
        self._compiled = None
        if use_numba:
            try:
                from . import _lstm
            except ImportError:  # numba missing: the numpy path below
                _lstm = None  # type: ignore[assignment]
            if _lstm is not None:
                self._compiled = _lstm.emissions
                self._fw = (self.fw.tok, self.fw.bl, self.fw.br, self.fw.flags, self.fw.hh)
                self._bw = (self.bw.tok, self.bw.bl, self.bw.br, self.bw.flags, self.bw.hh)

    def arrays(self) -> dict[str, np.ndarray]:
        """The run-time arrays (with :attr:`meta`, what :meth:`from_arrays` takes)."""
        return dict(self._arrays)

    def ids(self, seqs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids and left / right bigram ids of all tokens in order (bigram lookup vectorised: the pair
        code ``left * V + right`` is searched in the sorted codes of the known bigrams)."""
        cache = self._cache
        flat = [t[0] for seq in seqs for t in seq]
        get = cache.get
        ids = np.fromiter((get(t) or self._id(t) for t in flat), dtype=np.int64, count=len(flat))
        lengths = np.fromiter((len(s) for s in seqs if s), dtype=np.int64)
        n_seq = len(lengths)
        # padded stream: <S> tokens </S> per sequence
        P = len(flat) + 2 * n_seq
        stream = np.full(P, self._eos, np.int64)
        first = np.zeros(n_seq, np.int64)
        np.cumsum(lengths[:-1] + 2, out=first[1:])
        stream[first] = self._bos
        pos = np.repeat(first + 1 - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(
            len(flat)
        )
        stream[pos] = ids
        V = self._V
        codes = stream[:-1] * V + stream[1:]
        k = np.searchsorted(self._bi_codes, codes)
        np.minimum(k, len(self._bi_codes) - 1, out=k)
        pair = np.where(self._bi_codes[k] == codes, self._bi_ids[k], UNK)
        return ids, pair[pos - 1], pair[pos]

    def _id(self, t: str) -> int:
        v = self.vocab.get(t) or self.vocab.get(tok_key(t), UNK)
        if len(self._cache) < 100_000:
            self._cache[t] = v
        return v

    def emissions(self, seqs, flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(T, L) scores for all tokens of ``seqs`` in order (``flags``/``lengths`` from the feature batch)."""
        T = int(lengths.sum())
        if T == 0:
            return np.zeros((0, len(self.out_bias)))
        return self.emissions_from_ids(*self.ids(seqs), flags, lengths)

    def emissions_from_ids(self, ids, bl, br, flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """:meth:`emissions` from the token / bigram ids of :meth:`ids`."""
        T = int(lengths.sum())
        if self._compiled is not None:
            return self._compiled(ids, bl, br, flags, lengths, self._fw, self._bw, self.out_f, self.out_b,
                                  self.out_bias)  # fmt: skip
        Hf = np.empty((T, self.fw.H), np.float32)
        Hb = np.empty((T, self.bw.H), np.float32)
        starts = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] > 0]
        for a in range(0, len(order), _GROUP):
            sel = order[a : a + _GROUP]
            ln = lengths[sel]
            n = int(ln.max())
            t = np.arange(n)[None, :]
            valid = t < ln[:, None]
            fwd = np.where(valid, starts[sel][:, None] + t, 0)
            bwd = np.where(valid, starts[sel][:, None] + ln[:, None] - 1 - t, 0)
            self.fw.run(ids, bl, br, flags, fwd, valid, Hf)
            self.bw.run(ids, bl, br, flags, bwd, valid, Hb)
        return (Hf @ self.out_f + Hb @ self.out_b + self.out_bias).astype(np.float64)


class NeuralEnsemble:
    """Several exported networks used as one: their tag scores, transitions and start scores are summed
    (each file is already scaled by its interpolation weight)."""

    def __init__(self, paths, labels: list[str], use_numba: bool = True):
        self._setup([NeuralEmitter(Path(p), labels, use_numba=use_numba) for p in paths])

    @classmethod
    def from_members(cls, members: list[NeuralEmitter]) -> NeuralEnsemble:
        """The ensemble of already loaded networks."""
        self = cls.__new__(cls)
        self._setup(members)
        return self

    def _setup(self, members: list[NeuralEmitter]) -> None:
        self.members = members
        if not self.members:
            raise ValueError("no network weights given")
        self.trans: np.ndarray = np.sum([m.trans for m in self.members], axis=0)
        self.start: np.ndarray = np.sum([m.start for m in self.members], axis=0)
        first = self.members[0].vocab_key
        self._shares_ids = [m.vocab_key == first for m in self.members]

    def emissions(self, seqs, flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The ensemble's mean tag scores per token."""
        first = self.members[0]
        if int(lengths.sum()) == 0:
            return np.zeros((0, len(first.out_bias)))
        ids = first.ids(seqs)  # members trained on the same vocabulary share the lookups
        out = first.emissions_from_ids(*ids, flags, lengths)
        for m, shared in zip(self.members[1:], self._shares_ids[1:], strict=True):
            m_ids = ids if shared else m.ids(seqs)
            out += m.emissions_from_ids(*m_ids, flags, lengths)
        return out
