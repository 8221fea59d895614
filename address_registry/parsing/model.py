"""The shipped CRF: weights exported from CRFsuite, decoded here with numpy over whole batches.

CRFsuite trains the model (``train.py``); its state and transition weights are exported to
``crf_weights.bin`` (a numpy ``.npz`` archive). Run time needs numpy (and numba, when present, for a compiled
decoder): feature keys are looked up in a hash table (numpy: ``searchsorted``), emission scores summed,
and an exact Viterbi restricted to well-formed BIO paths (``I-x`` only after ``B-x``/``I-x``) picks the
tags. Both decoders give identical results.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .features import FeatureExtractor
from .normalize import Token, tokenize_fast

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_PATH = PACKAGE_DIR / "crf_weights.bin"
LEXICON_PATH = PACKAGE_DIR / "admin_lexicon.json"
NEURAL_PATH = PACKAGE_DIR / "nn_weights.bin"  # first network; more ship as nn_weights_<n>.bin (an ensemble)
_CHUNK_TOKENS = 4096
_NEG = -1e30


@dataclass(frozen=True, slots=True)
class Component:
    """One labelled part of an address: ``text == original[start:end]`` (character offsets, end exclusive)."""

    label: str
    text: str
    start: int
    end: int


def load_lexicon(path: Path = LEXICON_PATH) -> dict[str, list[str]]:
    """The admin-name gazetteer shipped with the model ({} when absent)."""
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def export_weights(crfsuite_model: Path, out: Path) -> None:
    """CRFsuite model file → ``.npz`` weights: sorted feature keys, sparse state weights, flag weights,
    transition matrix and labels."""
    import pycrfsuite

    from .features import N_FLAGS

    tagger = pycrfsuite.Tagger()
    tagger.open(str(crfsuite_model))
    info = tagger.info()
    labels = sorted(info.labels, key=lambda lab: (lab[2:], lab))
    li = {lab: i for i, lab in enumerate(labels)}
    key_of: dict[str, int] = {}
    flag_rows, flag_cols, flag_vals = [], [], []
    rows, cols, vals = [], [], []
    for (attr, lab), w in info.state_features.items():
        if attr.startswith("f"):
            flag_rows.append(int(attr[1:]))
            flag_cols.append(li[lab])
            flag_vals.append(w)
        else:
            rows.append(key_of.setdefault(attr, len(key_of)))
            cols.append(li[lab])
            vals.append(w)
    keys = np.array([int(a[1:], 16) for a in key_of], dtype=np.uint64)
    order = np.argsort(keys)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    flags_w = np.zeros((N_FLAGS, len(labels)), np.float64)
    flags_w[flag_rows, flag_cols] = flag_vals
    trans = np.zeros((len(labels), len(labels)), np.float64)
    for (a, b), w in info.transitions.items():
        trans[li[a], li[b]] = w
    with open(out, "wb") as f:
        np.savez_compressed(
            f, keys=keys[order], rows=rank[np.array(rows, np.int64)].astype(np.int32),
            cols=np.array(cols, np.int16), vals=np.array(vals, np.float64), flags=flags_w, trans=trans,
            labels=np.array(labels),
        )  # fmt: skip


def _crf_arrays(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Run-time arrays of an exported CRF (see :class:`CRFModel`) and its labels."""
    with np.load(path, allow_pickle=False) as z:
        keys = z["keys"]
        n = len(keys)
        labels = [str(x) for x in z["labels"]]
        L = len(labels)
        # state weights as sparse rows (row n: unknown features, all zero); rows sorted
        w_rows, w_cols, w_vals = z["rows"].astype(np.int64), z["cols"].astype(np.int32), z["vals"]
        order = np.lexsort((w_cols, w_rows))
        w_rows, w_cols, w_vals = w_rows[order], w_cols[order], w_vals[order].astype(np.float64)
        ptr = np.zeros(n + 2, np.int64)
        np.cumsum(np.bincount(w_rows, minlength=n + 1), out=ptr[1:])
        flags_w = z["flags"].astype(np.float64)
        trans = z["trans"].astype(np.float64)
    # BIO-constrained decoding: I-x only after B-x or I-x, never first
    start = np.zeros(L)
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            start[j] = _NEG
            ok = {f"B-{lab[2:]}", lab}
            for i, prev in enumerate(labels):
                if prev not in ok:
                    trans[i, j] = _NEG
    arrays = {
        "keys": keys, "ptr": ptr, "cols": w_cols, "vals": w_vals, "flags_w": flags_w, "trans": trans,
        "start": start,
    }  # fmt: skip
    return arrays, labels


class CRFModel:
    """Exported CRF weights and a batched exact Viterbi decoder."""

    def __init__(self, path: Path, use_numba: bool = True):
        self._setup(*_crf_arrays(path), use_numba)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], labels: list[str], use_numba: bool = True) -> CRFModel:
        """The model from :meth:`arrays` of an earlier one (e.g. memory-mapped from the run-time cache)."""
        self = cls.__new__(cls)
        self._setup(arrays, labels, use_numba)
        return self

    def _setup(self, a: dict[str, np.ndarray], labels: list[str], use_numba: bool) -> None:
        self.keys = a["keys"]
        self.n_keys = len(self.keys)
        self.labels = labels
        self._ptr, self._cols, self._vals = a["ptr"], a["cols"], a["vals"]
        self._W = None  # scipy matrix of the numpy decoder, built on first use
        self.flags_w = a["flags_w"]
        self.trans = a["trans"]
        self.start = a["start"]
        self._compiled = None
        # the compiled decoder's hash table and dense weight rows (see _decode.build_table)
        self._table: tuple[np.ndarray, np.ndarray] | None = (a["table"], a["dense"]) if "table" in a else None
        if use_numba:
            try:
                from . import _decode
            except ImportError:  # numba missing: the numpy decoder does the same, slower
                _decode = None  # type: ignore[assignment]
            if _decode is not None:
                if self._table is None:
                    self._table = self._build_table(_decode)
                self._compiled = _decode.decode
        self.tag_label = [lab.partition("-")[2] for lab in self.labels]
        self.label_names = sorted(set(self.tag_label))
        self.tag_begin = [lab.startswith("B-") for lab in self.labels]

    def arrays(self) -> dict[str, np.ndarray]:
        """The run-time arrays (what :meth:`from_arrays` takes), the compiled decoder's hash table included
        when numba is there."""
        out = {
            "keys": self.keys, "ptr": self._ptr, "cols": self._cols, "vals": self._vals, "flags_w": self.flags_w,
            "trans": self.trans, "start": self.start,
        }  # fmt: skip
        table = self._table
        if table is None:
            try:
                from . import _decode
            except ImportError:
                return out
            table = self._build_table(_decode)
        out["table"], out["dense"] = table
        return out

    def _build_table(self, _decode) -> tuple[np.ndarray, np.ndarray]:
        return _decode.build_table(self.keys, self._ptr[: self.n_keys + 1], self._cols, self._vals, len(self.labels))

    @property
    def W(self):  # noqa: N802  (the weight matrix's usual name)
        """State weights as a scipy CSR matrix (row ``n_keys``: unknown features), for the numpy decoder."""
        if self._W is None:
            from scipy import sparse

            shape = (self.n_keys + 1, len(self.labels))
            self._W = sparse.csr_matrix((self._vals, self._cols, self._ptr), shape=shape)
        return self._W

    def emissions(self, keys: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """Tag scores per token from sparse feature keys and dense flags."""
        from scipy import sparse

        out = flags @ self.flags_w
        n = self.n_keys
        for a in range(0, len(keys), _CHUNK_TOKENS):
            k = keys[a : a + _CHUNK_TOKENS]
            idx = np.searchsorted(self.keys, k)
            np.minimum(idx, n - 1, out=idx)
            rows = np.where(self.keys[idx] == k, idx, n)
            c, K = rows.shape
            X = sparse.csr_matrix(
                (np.ones(c * K), rows.ravel(), np.arange(0, c * K + 1, K)), shape=(c, n + 1)
            )  # token × feature incidence
            out[a : a + _CHUNK_TOKENS] += (X @ self.W).toarray()
        return out

    def add_scores(self, trans: np.ndarray, start: np.ndarray) -> None:
        """Add another model's transition and start scores (BIO-forbidden moves stay forbidden)."""
        self.trans = np.where(self.trans > _NEG / 2, self.trans + trans, self.trans)
        self.start = np.where(self.start > _NEG / 2, self.start + start, self.start)

    def decode(
        self, keys: np.ndarray, flags: np.ndarray, lengths: np.ndarray, extra: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """Best tag index sequence per address (compiled when numba is there, else numpy); ``extra``: more
        emission scores per token, added to the CRF's."""
        if self._compiled is None:
            E = self.emissions(keys, flags)
            if extra is not None:
                E += extra
            return self.viterbi(E, lengths)
        if extra is None:
            extra = np.zeros((0, len(self.labels)))
        assert self._table is not None  # set with the compiled decoder
        table, dense = self._table
        tags = self._compiled(table, self._cols, self._vals, dense, self.flags_w, self.trans, self.start, keys, flags,
                              lengths, extra)  # fmt: skip
        starts = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        return [tags[starts[i] : starts[i + 1]] for i in range(len(lengths))]

    def viterbi(self, E: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """Best tag index sequence per address; ``E`` holds the emissions of all tokens in order."""
        starts = np.zeros(len(lengths), np.int64)
        if len(lengths) > 1:
            starts[1:] = np.cumsum(lengths[:-1])
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(lengths)
        T = self.trans
        for n in np.unique(lengths):
            if n == 0:
                continue
            sel = np.flatnonzero(lengths == n)
            Eb = E[starts[sel][:, None] + np.arange(n)[None, :]]  # (B, n, L)
            B, L = len(sel), E.shape[1]
            delta = Eb[:, 0] + self.start
            back = np.empty((B, n, L), np.int16)
            for t in range(1, n):
                cand = delta[:, :, None] + T[None]  # (B, prev, cur)
                arg = cand.argmax(axis=1)
                back[:, t] = arg
                delta = np.take_along_axis(cand, arg[:, None, :], axis=1)[:, 0] + Eb[:, t]
            path = np.empty((B, n), np.int64)
            path[:, n - 1] = delta.argmax(axis=1)
            ar = np.arange(B)
            for t in range(n - 1, 0, -1):
                path[:, t - 1] = back[ar, t, path[:, t]]
            for b, i in enumerate(sel):
                out[i] = path[b]
        return out


def neural_files(neural_path: Path | Sequence[Path] | None) -> list[Path]:
    """The network files to load: none for ``None``; for the shipped ``NEURAL_PATH``, it and its siblings
    ``nn_weights_<n>.bin`` (members of the shipped ensemble); otherwise the given existing file(s)."""
    if neural_path is None:
        return []
    if isinstance(neural_path, (str, Path)):
        p = Path(neural_path)
        if not p.exists():
            return []
        siblings = sorted(p.parent.glob(f"{p.stem}_*{p.suffix}"), key=lambda q: (len(q.name), q.name))
        return [p, *(siblings if p == NEURAL_PATH else [])]
    return [Path(p) for p in neural_path]


class AddressParser:
    """Address tagger: tokenise, build features for the batch, score (CRF + BiLSTM emissions when the
    network's weights are there), decode, map tags back to original offsets.

    The shipped model (default paths) loads from its cached run-time arrays (:mod:`._arrays`) unless
    ``cache=False``; any other model is derived from its files."""

    def __init__(
        self,
        weights_path: Path = WEIGHTS_PATH,
        lexicon_path: Path = LEXICON_PATH,
        use_numba: bool = True,
        neural_path: Path | Sequence[Path] | None = NEURAL_PATH,
        cache: bool = True,
    ):
        if not Path(weights_path).exists():
            raise FileNotFoundError(
                f"address parser model not found at {weights_path}; train it with "
                "`python -m address_registry.parsing.train`"
            )
        paths = neural_files(neural_path)
        shipped = (
            Path(weights_path).resolve() == WEIGHTS_PATH
            and Path(lexicon_path).resolve() == LEXICON_PATH
            and paths == neural_files(NEURAL_PATH)
        )
        if shipped and cache:
            self._load_shipped(paths, use_numba)
            return
        self.model = CRFModel(Path(weights_path), use_numba=use_numba)
        self.features = FeatureExtractor(load_lexicon(Path(lexicon_path)))
        self.neural = None
        if paths:
            from .neural import NeuralEnsemble

            self.neural = NeuralEnsemble(paths, self.model.labels, use_numba=use_numba)
            self.model.add_scores(self.neural.trans, self.neural.start)

    def _load_shipped(self, nets: list[Path], use_numba: bool) -> None:
        """The shipped model from its run-time arrays (:mod:`._arrays`): memory-mapped when a cached copy
        matches the weight files, else derived here (as for any other model) and saved for the next process."""
        from . import _arrays

        key = _arrays.cache_key([WEIGHTS_PATH, LEXICON_PATH, *nets])
        got = _arrays.load(key)
        if got is None:
            AddressParser.__init__(self, neural_path=nets or None, use_numba=use_numba, cache=False)
            arrays = {f"crf/{k}": v for k, v in self.model.arrays().items()}
            members = self.neural.members if self.neural is not None else []
            for i, m in enumerate(members):
                arrays.update({f"nn{i}/{k}": v for k, v in m.arrays().items()})
            arrays.update({f"fx/{k}": v for k, v in (self.features.trie_arrays() or {}).items()})
            _arrays.save(key, arrays, {"labels": self.model.labels, "members": [m.meta for m in members]})
            return
        arrays, meta = got
        part: dict[str, dict[str, np.ndarray]] = {}
        for name, a in arrays.items():
            group, _, k = name.partition("/")
            part.setdefault(group, {})[k] = a
        self.model = CRFModel.from_arrays(part["crf"], list(meta["labels"]), use_numba=use_numba)
        self.features = FeatureExtractor(load_lexicon(LEXICON_PATH), trie=part.get("fx"))
        self.neural = None
        members_meta: list[dict[str, Any]] = list(meta["members"])
        if members_meta:
            from .neural import NeuralEmitter, NeuralEnsemble

            self.neural = NeuralEnsemble.from_members([
                NeuralEmitter.from_arrays(part[f"nn{i}"], m, use_numba=use_numba) for i, m in enumerate(members_meta)
            ])  # fmt: skip
            # the cached CRF transitions already include the networks' (added before saving)

    def _decode(self, token_lists, keys, flags, lengths) -> list[np.ndarray]:
        extra = self.neural.emissions(token_lists, flags, lengths) if self.neural is not None else None
        return self.model.decode(keys, flags, lengths, extra)

    def tag_tokens(self, token_lists: list[list[Token]]) -> list[list[str]]:
        """BIO tags of tokenised texts."""
        keys, flags, lengths = self.features.batch(token_lists)
        paths = self._decode(token_lists, keys, flags, lengths)
        labels = self.model.labels
        return [[labels[j] for j in path] for path in paths]

    def spans_many(self, texts: list[str], batch_size: int = 2048) -> list[list[tuple[str, int, int]]]:
        """(label, start, end) spans of many texts, in batches. A span starts at an address's first token, at
        a ``B-`` tag and where the label changes; it ends where the next one starts (found over the whole
        batch with numpy: :meth:`_spans_reference` is the same per token, in plain Python)."""
        out: list[list[tuple[str, int, int]]] = []
        model = self.model
        label_of_tag = np.array([model.label_names.index(lab) for lab in model.tag_label], np.int64)
        begin_tag = np.array(model.tag_begin, np.bool_)
        for a in range(0, len(texts), batch_size):
            token_lists = [tokenize_fast(t) for t in texts[a : a + batch_size]]
            keys, flags, lengths = self.features.batch(token_lists)
            paths = self._decode(token_lists, keys, flags, lengths)
            T = int(lengths.sum())
            if T == 0:
                out.extend([] for _ in token_lists)
                continue
            tags = np.concatenate(paths)
            label = label_of_tag[tags]
            new = begin_tag[tags]
            new[1:] |= label[1:] != label[:-1]
            ends = np.cumsum(lengths)
            new[(ends - lengths)[lengths > 0]] = True  # every address starts a span
            first = np.flatnonzero(new)
            last = np.empty_like(first)
            last[:-1] = first[1:] - 1
            last[-1] = T - 1
            starts = np.fromiter((t[1] for seq in token_lists for t in seq), np.int64, count=T)
            stops = np.fromiter((t[2] for seq in token_lists for t in seq), np.int64, count=T)
            names = model.label_names
            spans = list(zip([names[i] for i in label[first].tolist()], starts[first].tolist(), stops[last].tolist(),
                             strict=True))  # fmt: skip
            bounds = np.concatenate([[0], np.cumsum(new)])[np.concatenate([[0], ends])].tolist()
            out.extend(spans[bounds[i] : bounds[i + 1]] for i in range(len(token_lists)))
        return out

    def _spans_reference(self, texts: list[str]) -> list[list[tuple[str, int, int]]]:
        """:meth:`spans_many` token by token in plain Python (the tests' reference)."""
        out: list[list[tuple[str, int, int]]] = []
        tag_label, tag_begin = self.model.tag_label, self.model.tag_begin
        token_lists = [tokenize_fast(t) for t in texts]
        keys, flags, lengths = self.features.batch(token_lists)
        for tokens, path in zip(token_lists, self._decode(token_lists, keys, flags, lengths), strict=True):
            spans: list[list[Any]] = []
            cur: list[Any] | None = None
            for tok, j in zip(tokens, path.tolist(), strict=True):
                lab = tag_label[j]
                if cur is None or tag_begin[j] or lab != cur[0]:
                    cur = [lab, tok[1], tok[2]]
                    spans.append(cur)
                else:
                    cur[2] = tok[2]
            out.append([(s[0], s[1], s[2]) for s in spans])
        return out

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """(label, start, end) spans of one text."""
        return self.spans_many([text])[0]

    def parse_many(self, texts) -> list[list[Component]]:
        """Labelled components of many texts."""
        texts = list(texts)
        return [
            [Component(lab, text[s:e], s, e) for lab, s, e in spans]
            for text, spans in zip(texts, self.spans_many(texts), strict=True)
        ]

    def parse(self, text: str) -> list[Component]:
        """Labelled components of one text."""
        return self.parse_many([text])[0]


_default: AddressParser | None = None
_default_lock = threading.Lock()


def default_parser() -> AddressParser:
    """The shipped parser, loaded once per process."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = AddressParser()
    return _default
