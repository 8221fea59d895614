"""Train the character BiLSTM-CRF of the address parser; at run time its emissions are added to
the CRF's (:mod:`.neural`). Training needs the optional ``train`` extra (PyTorch, CPU); nothing at run time
imports this module or torch.

    python -m address_registry.parsing.train_neural --threads 1 --seed 1 --epochs 14 \
        --augment 1 --aug-fresh --aug-labels all --swa 4 --install --member 1

(the shipped ensemble: seeds 1, 2, 3 installed as members 1, 2, 3 — ``nn_weights.bin``,
``nn_weights_2.bin``, ``nn_weights_3.bin``; ≈ 3 min each on one core). ``--augment``: each epoch also sees
a mention-replaced copy of train.txt (:func:`.corpus.augment`; ``--aug-fresh`` draws a new copy every
epoch); ``--swa N``: the installed weights are the average of the last N epochs'.

Inputs per token (same tokens as the CRF, :func:`.normalize.tokenize`): token embedding (vocabulary from
train.txt, count ≥ 2), left and right token-bigram embeddings (count ≥ 2), the CRF's 34 gazetteer /
repetition flags (:mod:`.features`). A one-layer BiLSTM, a linear layer to the CRF tag set (same tag order
as the shipped CRF) and a linear-chain CRF loss. Fitted on train.txt only, fixed number of epochs (no
early stopping on dev). At the end the dev split is scored for the network alone and for
``E = E_crf + λ·E_nn`` (transitions likewise) decoded by the BIO-constrained Viterbi of :mod:`.model`,
for a handful of λ. The weights are written as a numpy archive so that inference can be done without torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
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


def prepare(golds, parser, v1=None, v2=None):
    """Tokens, inputs, gold tag indices and CRF emissions of every address."""
    li = {lab: i for i, lab in enumerate(parser.model.labels)}
    toks = [tokenize_fast(g.text) for g in golds]
    keys = [[tok_key(t[0]) for t in ts] for ts in toks]
    if v1 is None:
        v1, v2 = build_vocab(keys)
    fk, flags, lengths = parser.features.batch(toks)
    E = parser.model.emissions(fk, flags)
    starts = np.zeros(len(toks) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    items = []
    for i, (g, ts, ks) in enumerate(zip(golds, toks, keys, strict=True)):
        ids, bis = encode(ks, v1, v2)
        tags = np.array([li[g.char_tags[t[1]]] for t in ts], np.int64)
        a, b = starts[i], starts[i + 1]
        items.append((ids, bis, flags[a:b].astype(np.float32), tags, E[a:b]))
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


def main(argv: list[str] | None = None) -> int:  # noqa: C901  (the training script's steps in order; needs torch, not run by tests)
    """Train the networks and export their weights (command line)."""
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
    args = ap.parse_args(argv)

    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data = args.data or default_data_dir() / "address-parsing"
    parser = AddressParser(neural_path=None)  # the CRF alone: its features, and its scores for the dev report
    labels = parser.model.labels
    L = len(labels)
    train = list(read_corpus(data / "train.txt"))
    dev = list(read_corpus(data / "dev.txt"))
    _, tr_items, v1, v2 = prepare(train, parser)
    base_items = tr_items

    aug_labels = args.aug_labels.split(",")
    if args.aug_labels == "all":
        aug_labels = [lab for lab in ALL_LABELS if lab not in ("redundant", "country")]

    def augmented() -> list:
        _, aug_items, _, _ = prepare(
            augment(train, args.augment, args.aug_prob, rng, aug_labels), parser, v1, v2
        )
        return base_items + aug_items

    if args.augment:
        tr_items = augmented()
    dev_toks, dev_items, _, _ = prepare(dev, parser, v1, v2)
    NF = tr_items[0][2].shape[1]
    print(f"train {len(train)} dev {len(dev)} vocab {len(v1)} bigrams {len(v2)} tags {L}", file=sys.stderr)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(v1) + 2, args.emb, padding_idx=PAD)
            self.bemb = nn.Embedding(len(v2) + 2, args.bi_emb, padding_idx=PAD)
            self.lstm = nn.LSTM(args.emb + 2 * args.bi_emb + NF, args.hidden, batch_first=True,
                                bidirectional=True)  # fmt: skip
            self.drop = nn.Dropout(args.dropout)
            self.out = nn.Linear(2 * args.hidden, L)
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

    def batchify(items):
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
            ids[b, :k], bl[b, :k], br[b, :k], fl[b, :k], tags[b, :k], mask[b, :k] = (
                i,
                bis[:-1],
                bis[1:],
                f,
                tg,
                1,
            )
        lengths = torch.tensor([len(it[0]) for it in items])
        return (torch.from_numpy(ids), torch.from_numpy(bl), torch.from_numpy(br), torch.from_numpy(fl),
                lengths, torch.from_numpy(tags), torch.from_numpy(mask))  # fmt: skip

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (1 + 0.15 * e))
    items = [it for it in tr_items if len(it[0])]
    # length-bucketed batches (less padding)
    order = np.argsort([len(it[0]) for it in items], kind="stable")
    t0 = time.perf_counter()
    swa: dict | None = None
    n_swa = 0
    for ep in range(args.epochs):
        net.train()
        if args.augment and args.aug_fresh and ep > 0:
            items = [it for it in augmented() if len(it[0])]
            order = np.argsort([len(it[0]) for it in items], kind="stable")
        chunks = [order[a : a + args.batch] for a in range(0, len(order), args.batch)]
        rng.shuffle(chunks)
        tot = 0.0
        for ch in chunks:
            ids, bl, br, fl, lengths, tags, mask = batchify([items[i] for i in ch])
            E = net.emissions(ids, bl, br, fl, lengths)
            loss = net.nll(E, tags, mask)
            opt.zero_grad()
            (loss / len(ch)).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            tot += float(loss.detach())
        sched.step()
        print(
            f"epoch {ep + 1}: loss/addr {tot / len(items):.3f}  {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
        if args.swa and ep >= args.epochs - args.swa:  # running mean of the last epochs' weights
            n_swa += 1
            sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
            swa = sd if swa is None else {k: swa[k] + (sd[k] - swa[k]) / n_swa for k in swa}
    if swa is not None:
        net.load_state_dict(swa)

    # dev emissions of the network
    net.eval()
    E_nn = []
    with torch.no_grad():
        for a in range(0, len(dev_items), 256):
            its = dev_items[a : a + 256]
            nonempty = [it for it in its if len(it[0])]
            outs: Iterator[Any] = iter([])
            if nonempty:
                ids, bl, br, fl, lengths, _, _ = batchify(nonempty)
                outs = iter(net.emissions(ids, bl, br, fl, lengths).numpy())
            for it in its:
                E_nn.append(next(outs)[: len(it[0])].astype(np.float64) if len(it[0]) else np.zeros((0, L)))
    T_nn = net.trans.detach().numpy().astype(np.float64)
    S_nn = net.start.detach().numpy().astype(np.float64)
    crf = parser.model
    E_crf = [it[4] for it in dev_items]
    results = {}
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
        results[name] = total.f1
        print(f"dev {name}: P={total.precision:.4f} R={total.recall:.4f} F1={total.f1:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    np.savez_compressed(
        args.out, **{k.replace(".", "__"): v for k, v in sd.items()},
        vocab=np.array(sorted(v1, key=v1.get)), bigrams=np.array(sorted(v2, key=v2.get)),
    )  # fmt: skip
    print(f"wrote {args.out}", file=sys.stderr)
    if args.install:
        from .model import NEURAL_PATH

        target = NEURAL_PATH
        if args.member > 1:
            target = NEURAL_PATH.with_name(f"{NEURAL_PATH.stem}_{args.member}{NEURAL_PATH.suffix}")
        export_runtime(args.out, target, args.lam, labels)
        print(f"installed {target} (λ = {args.lam})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def export_runtime(trained: Path, out: Path, lam: float, labels: list[str]) -> None:
    """Training archive → the shipped ``nn_weights.bin``: output layer, transitions and start scores
    scaled by the interpolation weight ``lam``, the CRF's tag order stored for a check at load time."""
    with np.load(trained, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    for k in ("out__weight", "out__bias", "trans", "start"):
        d[k] = d[k] * lam
    d = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in d.items()}
    with open(out, "wb") as f:
        np.savez_compressed(f, labels=np.array(labels), **d)
