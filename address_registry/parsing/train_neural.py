"""Train the character BiLSTM-CRF of the address parser; at run time its emissions are added to
the CRF's (:mod:`.neural`). Training needs the optional ``train`` extra (PyTorch, CPU); nothing at run time
imports this module or torch.

    python -m address_registry.parsing.train_neural --threads 1 --seed 1 --epochs 14 \
        --augment 1 --aug-fresh --aug-labels all --swa 4 --install --member 1 --with-dev

(the shipped ensemble: seeds 1, 2, 3 installed as members 1, 2, 3 — ``nn_weights.bin``,
``nn_weights_2.bin``, ``nn_weights_3.bin``; ≈ 3 min each on one core). ``--augment``: each epoch also sees
a mention-replaced copy of train.txt (:func:`.corpus.augment`; ``--aug-fresh`` draws a new copy every
epoch); ``--swa N``: the installed weights are the average of the last N epochs'.

Inputs per token (same tokens as the CRF, :func:`.normalize.tokenize`): token embedding (vocabulary from
train.txt, count ≥ 2), left and right token-bigram embeddings (count ≥ 2), the CRF's 34 gazetteer /
repetition flags (:mod:`.features`). A one-layer BiLSTM, a linear layer to the CRF tag set (same tag order
as the shipped CRF) and a linear-chain CRF loss. Fitted on train.txt (``--with-dev``: train + dev, the
shipped networks), fixed number of epochs (no early stopping on dev). At the end the dev split is scored
for the network alone and for ``E = E_crf + λ·E_nn`` (transitions likewise) decoded by the BIO-constrained
Viterbi of :mod:`.model`, for a handful of λ. The weights are written as a numpy archive so that inference can be done without torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import REPLACEABLE, augment, read_corpus, span_scores
from .features import ALL_LABELS
from .model import AddressParser
from .normalize import tokenize_fast
from .train import default_data_dir

UNK, PAD = 1, 0


def tok_key(t: str) -> str:
    """A token's vocabulary key: the character itself, or its digit / Latin length class."""
    if len(t) == 1:
        return t
    if t[0].isdigit():
        return f"<D{min(len(t), 5)}>"
    return f"<L{min(len(t), 3)}>"


def build_vocab(seqs: list[list[str]], min_count: int = 2) -> tuple[dict[str, int], dict[str, int]]:
    """Token and token-bigram vocabularies (ids from 2; 0 pad, 1 unknown)."""
    uni: Counter[str] = Counter()
    bi: Counter[str] = Counter()
    for s in seqs:
        uni.update(s)
        p = ["<S>", *s, "</S>"]
        bi.update(a + "\x01" + b for a, b in zip(p, p[1:], strict=False))
    v1 = {k: i + 2 for i, k in enumerate(sorted(k for k, c in uni.items() if c >= min_count))}
    v2 = {k: i + 2 for i, k in enumerate(sorted(k for k, c in bi.items() if c >= min_count))}
    return v1, v2


def encode(keys: list[str], v1: dict[str, int], v2: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Token and bigram ids of one sequence."""
    ids = np.array([v1.get(k, UNK) for k in keys], np.int64)
    p = ["<S>", *keys, "</S>"]
    bis = np.array([v2.get(a + "\x01" + b, UNK) for a, b in zip(p, p[1:], strict=False)], np.int64)
    return ids, bis  # bis has n + 1 entries: left bigram of token i is bis[i], right is bis[i + 1]


def prepare(golds, features, labels, crf=None, v1=None, v2=None):
    """Tokens, inputs, gold tag indices and (when ``crf`` is given) CRF emissions of every address;
    ``features`` is the CRF's :class:`.features.FeatureExtractor`, ``labels`` its tag order."""
    li = {lab: i for i, lab in enumerate(labels)}
    toks = [tokenize_fast(g.text) for g in golds]
    keys = [[tok_key(t[0]) for t in ts] for ts in toks]
    if v1 is None:
        v1, v2 = build_vocab(keys)
    fk, flags, lengths = features.batch(toks)
    E = crf.emissions(fk, flags) if crf is not None else None
    starts = np.zeros(len(toks) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    items = []
    for i, (g, ts, ks) in enumerate(zip(golds, toks, keys, strict=True)):
        ids, bis = encode(ks, v1, v2)
        tags = np.array([li[g.char_tags[t[1]]] for t in ts], np.int64)
        a, b = starts[i], starts[i + 1]
        items.append((ids, bis, flags[a:b].astype(np.float32), tags, None if E is None else E[a:b]))
    return toks, items, v1, v2


def spans_of(tokens, path, labels):
    """(label, start, end) spans of a tag path over tokens."""
    spans, cur = [], None
    for tok, j in zip(tokens, path, strict=True):
        lab = labels[j]
        name = lab[2:]
        if cur is None or lab.startswith("B-") or name != cur[0]:
            cur = [name, tok[1], tok[2]]
            spans.append(cur)
        else:
            cur[2] = tok[2]
    return [tuple(s) for s in spans]


def score(golds, toks, E_list, trans, start, labels, viterbi_model):
    """Entity F1 of BIO-constrained Viterbi over per-address emissions ``E_list`` and transitions ``trans``."""
    E = np.concatenate(E_list) if E_list else np.zeros((0, len(labels)))
    lengths = np.array([len(e) for e in E_list], np.int64)
    saved = viterbi_model.trans
    viterbi_model.trans = trans
    try:
        paths = viterbi_model.viterbi(E, lengths)
    finally:
        viterbi_model.trans = saved
    pred = [spans_of(t, p.tolist(), labels) for t, p in zip(toks, paths, strict=True)]
    total, per = span_scores([g.spans for g in golds], pred)
    return total, per


@dataclass
class NetOptions:
    """The recipe of one network (the defaults are the command line's)."""

    epochs: int = 12
    hidden: int = 64
    emb: int = 64
    bi_emb: int = 32
    batch: int = 128
    lr: float = 5e-3
    dropout: float = 0.3
    threads: int = 2
    seed: int = 1
    augment: int = 0
    aug_prob: float = 0.3
    aug_labels: tuple[str, ...] = REPLACEABLE
    aug_fresh: bool = False
    swa: int = 0


def aug_label_list(spec: str) -> tuple[str, ...]:
    """Replaceable labels from the command line: comma-separated, or 'all' (every label but redundant,
    country)."""
    if spec == "all":
        return tuple(lab for lab in ALL_LABELS if lab not in ("redundant", "country"))
    return tuple(spec.split(","))


def _net_class(nn, torch):
    class Net(nn.Module):
        def __init__(self, n_vocab, n_bigrams, NF, L, o: NetOptions):
            super().__init__()
            self.emb = nn.Embedding(n_vocab + 2, o.emb, padding_idx=PAD)
            self.bemb = nn.Embedding(n_bigrams + 2, o.bi_emb, padding_idx=PAD)
            self.lstm = nn.LSTM(o.emb + 2 * o.bi_emb + NF, o.hidden, batch_first=True, bidirectional=True)
            self.drop = nn.Dropout(o.dropout)
            self.out = nn.Linear(2 * o.hidden, L)
            self.trans = nn.Parameter(torch.zeros(L, L))
            self.start = nn.Parameter(torch.zeros(L))

        def emissions(self, ids, bl, br, fl, lengths):
            x = torch.cat([self.emb(ids), self.bemb(bl), self.bemb(br), fl], dim=-1)
            x = self.drop(x)
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            h, _ = self.lstm(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=ids.shape[1])
            return self.out(self.drop(h))

        def nll(self, E, tags, mask):
            B, T, _ = E.shape
            em = E.gather(2, tags[:, :, None])[:, :, 0]
            gold = self.start[tags[:, 0]] + (em * mask).sum(1)
            gold = gold + (self.trans[tags[:, :-1], tags[:, 1:]] * mask[:, 1:]).sum(1)
            alpha = self.start[None] + E[:, 0]
            for t in range(1, T):
                nxt = torch.logsumexp(alpha[:, :, None] + self.trans[None], dim=1) + E[:, t]
                m = mask[:, t][:, None]
                alpha = torch.where(m > 0, nxt, alpha)
            return (torch.logsumexp(alpha, dim=1) - gold).sum()

    return Net


def batchify(items, NF: int):
    """Padded torch tensors of a batch of prepared items."""
    import torch

    n = max(len(it[0]) for it in items)
    B = len(items)
    ids = np.zeros((B, n), np.int64)
    bl = np.zeros((B, n), np.int64)
    br = np.zeros((B, n), np.int64)
    fl = np.zeros((B, n, NF), np.float32)
    tags = np.zeros((B, n), np.int64)
    mask = np.zeros((B, n), np.float32)
    for b, (i, bis, f, tg, _) in enumerate(items):
        k = len(i)
        ids[b, :k], bl[b, :k], br[b, :k], fl[b, :k], tags[b, :k], mask[b, :k] = i, bis[:-1], bis[1:], f, tg, 1
    lengths = torch.tensor([len(it[0]) for it in items])
    return (torch.from_numpy(ids), torch.from_numpy(bl), torch.from_numpy(br), torch.from_numpy(fl),
            lengths, torch.from_numpy(tags), torch.from_numpy(mask))  # fmt: skip


@dataclass
class TrainedNet:
    """A fitted network with its vocabularies."""

    net: Any
    v1: dict[str, int]
    v2: dict[str, int]
    n_flags: int

    def emissions(self, items) -> list[np.ndarray]:
        """Per-address tag scores (float64) of prepared items."""
        import torch

        self.net.eval()
        L = self.net.out.out_features
        E_nn: list[np.ndarray] = []
        with torch.no_grad():
            for a in range(0, len(items), 256):
                its = items[a : a + 256]
                nonempty = [it for it in its if len(it[0])]
                outs: Iterator[Any] = iter([])
                if nonempty:
                    ids, bl, br, fl, lengths, _, _ = batchify(nonempty, self.n_flags)
                    outs = iter(self.net.emissions(ids, bl, br, fl, lengths).numpy())
                for it in its:
                    E_nn.append(next(outs)[: len(it[0])].astype(np.float64) if len(it[0]) else np.zeros((0, L)))
        return E_nn

    def save(self, out: Path) -> None:
        """The training archive (weights and vocabularies), written atomically."""
        out.parent.mkdir(parents=True, exist_ok=True)
        sd = {k: v.detach().numpy() for k, v in self.net.state_dict().items()}
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, **{k.replace(".", "__"): v for k, v in sd.items()},
                vocab=np.array(sorted(self.v1, key=self.v1.__getitem__)),
                bigrams=np.array(sorted(self.v2, key=self.v2.__getitem__)),
            )  # fmt: skip
        os.replace(tmp, out)


def fit_network(train, features, labels: list[str], o: NetOptions, log=sys.stderr) -> TrainedNet:
    """Fit one BiLSTM-CRF on ``train`` (and, per ``o``, mention-replaced copies drawn from ``train`` alone);
    vocabularies come from ``train`` only. ``features``/``labels``: the CRF's extractor and tag order."""
    import torch
    from torch import nn

    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    rng = np.random.default_rng(o.seed)
    _, base_items, v1, v2 = prepare(train, features, labels)

    def augmented() -> list:
        _, aug_items, _, _ = prepare(augment(train, o.augment, o.aug_prob, rng, o.aug_labels), features, labels,
                                     None, v1, v2)  # fmt: skip
        return base_items + aug_items

    tr_items = augmented() if o.augment else base_items
    NF = tr_items[0][2].shape[1]
    print(f"train {len(train)} vocab {len(v1)} bigrams {len(v2)} tags {len(labels)}", file=log)
    net = _net_class(nn, torch)(len(v1), len(v2), NF, len(labels), o)
    opt = torch.optim.Adam(net.parameters(), lr=o.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (1 + 0.15 * e))
    items = [it for it in tr_items if len(it[0])]
    # length-bucketed batches (less padding)
    order = np.argsort([len(it[0]) for it in items], kind="stable")
    t0 = time.perf_counter()
    swa: dict | None = None
    n_swa = 0
    for ep in range(o.epochs):
        net.train()
        if o.augment and o.aug_fresh and ep > 0:
            items = [it for it in augmented() if len(it[0])]
            order = np.argsort([len(it[0]) for it in items], kind="stable")
        chunks = [order[a : a + o.batch] for a in range(0, len(order), o.batch)]
        rng.shuffle(chunks)
        tot = 0.0
        for ch in chunks:
            ids, bl, br, fl, lengths, tags, mask = batchify([items[i] for i in ch], NF)
            E = net.emissions(ids, bl, br, fl, lengths)
            loss = net.nll(E, tags, mask)
            opt.zero_grad()
            (loss / len(ch)).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            tot += float(loss.detach())
        sched.step()
        print(f"epoch {ep + 1}: loss/addr {tot / len(items):.3f}  {time.perf_counter() - t0:.0f} s", file=log)
        if o.swa and ep >= o.epochs - o.swa:  # running mean of the last epochs' weights
            n_swa += 1
            sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
            swa = sd if swa is None else {k: swa[k] + (sd[k] - swa[k]) / n_swa for k in swa}
    if swa is not None:
        net.load_state_dict(swa)
    net.eval()
    return TrainedNet(net, v1, v2, NF)


def main(argv: list[str] | None = None) -> int:
    """Train one network, score it on dev, export its weights (command line)."""
    ap = argparse.ArgumentParser(description="训练 BiLSTM-CRF 地址解析实验 (BiLSTM-CRF experiment)")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--emb", type=int, default=64)
    ap.add_argument("--bi-emb", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--augment", type=int, default=0, help="mention-replacement copies of train.txt")
    ap.add_argument("--aug-prob", type=float, default=0.3)
    ap.add_argument(
        "--aug-labels", default=",".join(REPLACEABLE),
        help="labels whose mentions are replaced (comma-separated, or 'all': every label but redundant, country)",
    )  # fmt: skip
    ap.add_argument("--aug-fresh", action="store_true", help="new augmented copies every epoch")
    ap.add_argument("--swa", type=int, default=0, help="average the weights of the last N epochs")
    ap.add_argument("--out", type=Path, default=Path("bench-output/nn_parser.npz"), help="training archive")
    ap.add_argument(
        "--lam", type=float, default=1.0, help="interpolation weight of the network when installed"
    )
    ap.add_argument("--install", action="store_true", help="write the run-time weights into the package")
    ap.add_argument(
        "--member", type=int, default=1,
        help="ensemble member number when installed: 1 → nn_weights.bin, n > 1 → nn_weights_<n>.bin",
    )  # fmt: skip
    ap.add_argument("--with-dev", action="store_true", help="fit on train.txt + dev.txt (the shipped model)")
    args = ap.parse_args(argv)
    o = NetOptions(
        epochs=args.epochs, hidden=args.hidden, emb=args.emb, bi_emb=args.bi_emb, batch=args.batch, lr=args.lr,
        dropout=args.dropout, threads=args.threads, seed=args.seed, augment=args.augment, aug_prob=args.aug_prob,
        aug_labels=aug_label_list(args.aug_labels), aug_fresh=args.aug_fresh, swa=args.swa,
    )  # fmt: skip

    data = args.data or default_data_dir() / "address-parsing"
    parser = AddressParser(neural_path=None)  # the CRF alone: its features, and its scores for the dev report
    labels = parser.model.labels
    train = list(read_corpus(data / "train.txt"))
    dev = list(read_corpus(data / "dev.txt"))
    if args.with_dev:
        train += dev
    trained = fit_network(train, parser.features, labels, o)
    dev_toks, dev_items, _, _ = prepare(dev, parser.features, labels, parser.model, trained.v1, trained.v2)
    print(f"dev {len(dev)}", file=sys.stderr)
    E_nn = trained.emissions(dev_items)
    T_nn = trained.net.trans.detach().numpy().astype(np.float64)
    S_nn = trained.net.start.detach().numpy().astype(np.float64)
    crf = parser.model
    E_crf = [it[4] for it in dev_items]
    start_saved = crf.start.copy()
    for lam in (0.0, None, 0.5, 1.0, 2.0):
        if lam is None:  # the network alone
            E_l = E_nn
            T = np.where(crf.trans < -1e29, crf.trans, T_nn)
            crf.start = start_saved + S_nn
        else:
            E_l = [e + lam * f for e, f in zip(E_crf, E_nn, strict=True)]
            T = crf.trans + lam * T_nn
            crf.start = start_saved + lam * S_nn
        total, per = score(dev, dev_toks, E_l, T, crf.start, labels, crf)
        crf.start = start_saved
        name = "nn alone" if lam is None else f"crf + {lam}*nn"
        print(f"dev {name}: P={total.precision:.4f} R={total.recall:.4f} F1={total.f1:.4f}")
    trained.save(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    if args.install:
        from .model import NEURAL_PATH

        target = NEURAL_PATH
        if args.member > 1:
            target = NEURAL_PATH.with_name(f"{NEURAL_PATH.stem}_{args.member}{NEURAL_PATH.suffix}")
        export_runtime(args.out, target, args.lam, labels)
        print(f"installed {target} (λ = {args.lam})", file=sys.stderr)
    return 0



def export_runtime(trained: Path, out: Path, lam: float, labels: list[str]) -> None:
    """Training archive → the shipped ``nn_weights.bin``: output layer, transitions and start scores
    scaled by the interpolation weight ``lam``, the CRF's tag order stored for a check at load time."""
    with np.load(trained, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    for k in ("out__weight", "out__bias", "trans", "start"):
        d[k] = d[k] * lam
    d = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in d.items()}
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, labels=np.array(labels), **d)
    os.replace(tmp, out)


if __name__ == "__main__":
    raise SystemExit(main())
