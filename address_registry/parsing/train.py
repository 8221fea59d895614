"""Train the address CRF on the corpus train split and write the model bundle into this package.

    python -m address_registry.parsing.train [--data DIR] [--c1 0.05] [--c2 0.01] [--max-iter 250] [--with-dev]

``--data`` is the ``address-parsing`` folder (default ``$SHEQU_SHARED_DATA_DIR/address-parsing`` or
``../shared/data/address-parsing`` beside the repo). The gazetteer comes from
``admin-divisions/gbt2260-codes.csv`` next to it. The train split is used for fitting, with ``--with-dev``
(the shipped model) the dev split too; the dev split is scored at the end (entity-level F1 over exact spans;
in-sample with ``--with-dev``: the cross-validation, :mod:`.cv`, measures the recipe). CRFsuite L-BFGS with
L1 + L2 penalties; its model is exported to numpy weights (``model.export_weights``) and the CRFsuite file
is dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from .corpus import GoldAddress, augment, read_corpus, span_scores
from .features import FeatureExtractor, attribute_strings, build_lexicon
from .model import LEXICON_PATH, WEIGHTS_PATH, AddressParser, export_weights
from .normalize import tokenize


def default_data_dir() -> Path:
    """The shared data folder (SHEQU_SHARED_DATA_DIR or ../shared/data)."""
    env = os.environ.get("SHEQU_SHARED_DATA_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base


def token_tags(gold: GoldAddress) -> tuple[list, list[str]]:
    """Tokens of the gold text (same tokenizer as at run time) and each token's BIO tag."""
    tokens = tokenize(gold.text)
    tags = []
    for tok in tokens:
        first = gold.char_tags[tok.start]
        tags.append(first)
    return tokens, tags


def load_lexicon_rows(csv_path: Path) -> list[tuple[str, str]]:
    """(code, name) rows of the admin-division CSV."""
    with open(csv_path, encoding="utf-8") as f:
        return [(r["code"], r["name"]) for r in csv.DictReader(f)]


def tag_set(golds: list[GoldAddress]) -> list[str]:
    """The token tags of ``golds`` in the exported CRF's order (by label, then B before I): the tag set of a
    CRF or network fitted on them."""
    tags = {tag for g in golds for tag in token_tags(g)[1]}
    return sorted(tags, key=lambda lab: (lab[2:], lab))


def write_lexicon(lexicon: dict[str, list[str]], path: Path) -> None:
    """Write the gazetteer as the parser loads it (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(lexicon, f, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    os.replace(tmp, path)


def fit_crf(
    train: list[GoldAddress],
    lexicon: dict[str, list[str]],
    out: Path,
    *,
    c1: float = 0.05,
    c2: float = 0.01,
    max_iter: int = 250,
    augment_copies: int = 0,
    aug_prob: float = 0.3,
    seed: int = 1,
    progress: bool = True,
) -> list[str]:
    """Fit the CRF on ``train`` (plus ``augment_copies`` mention-replaced copies drawn from ``train`` alone)
    with CRFsuite L-BFGS and write its run-time weights to ``out`` (atomically); returns its tag set."""
    import numpy as np
    import pycrfsuite
    from tqdm import tqdm

    fx = FeatureExtractor(lexicon)
    fit = list(train)
    if augment_copies:
        fit += augment(train, augment_copies, aug_prob, np.random.default_rng(seed))
    trainer = pycrfsuite.Trainer(verbose=False)
    for g in tqdm(fit, desc="特征 features", unit="条", mininterval=2, disable=not progress):
        tokens, tags = token_tags(g)
        if not tokens:
            continue
        keys, flags, _ = fx.batch([tokens])
        trainer.append(attribute_strings(keys, flags), tags)
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iter, "feature.possible_transitions": True})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_model = out.with_name(out.name + ".crfsuite.tmp")
    tmp_out = out.with_name(out.name + ".tmp")
    trainer.train(str(tmp_model))
    export_weights(tmp_model, tmp_out)
    tmp_model.unlink()
    os.replace(tmp_out, out)
    with np.load(out, allow_pickle=False) as z:
        return [str(x) for x in z["labels"]]


def main(argv: list[str] | None = None) -> int:
    """Train the CRF and export its weights (command line)."""
    ap = argparse.ArgumentParser(description="训练地址解析 CRF 模型 (train the address-parsing CRF)")
    ap.add_argument("--data", type=Path, default=None, help="address-parsing corpus folder")
    ap.add_argument("--c1", type=float, default=0.05, help="L1 penalty")
    ap.add_argument("--c2", type=float, default=0.01, help="L2 penalty")
    ap.add_argument("--max-iter", type=int, default=250)
    ap.add_argument("--model", type=Path, default=WEIGHTS_PATH, help="output weights file")
    ap.add_argument("--lexicon", type=Path, default=LEXICON_PATH, help="output gazetteer file")
    ap.add_argument("--augment", type=int, default=0, help="mention-replacement copies of train.txt")
    ap.add_argument("--aug-prob", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1, help="seed of the augmentation")
    ap.add_argument(
        "--holdout", type=int, default=0, help="hold out the last N train addresses and score on them"
    )
    ap.add_argument("--with-dev", action="store_true", help="fit on train.txt + dev.txt (the shipped model)")
    args = ap.parse_args(argv)

    data = args.data or default_data_dir() / "address-parsing"
    lexicon = build_lexicon(load_lexicon_rows(data.parent / "admin-divisions" / "gbt2260-codes.csv"))
    write_lexicon(lexicon, args.lexicon)

    train = list(read_corpus(data / "train.txt"))
    if args.with_dev:
        train += list(read_corpus(data / "dev.txt"))
    held: list[GoldAddress] = []
    if args.holdout:
        train, held = train[: -args.holdout], train[-args.holdout :]
    print(f"training on {len(train)} addresses …", file=sys.stderr)
    t0 = time.perf_counter()
    fit_crf(
        train, lexicon, args.model, c1=args.c1, c2=args.c2, max_iter=args.max_iter, augment_copies=args.augment,
        aug_prob=args.aug_prob, seed=args.seed,
    )  # fmt: skip
    print(f"trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return evaluate(data, AddressParser(args.model, args.lexicon), held)


def evaluate(data: Path, parser: AddressParser, held: list) -> int:
    """Print entity scores on the held-out and dev splits."""
    for name, gold in (("holdout", held), ("dev", list(read_corpus(data / "dev.txt")))):
        if not gold:
            continue
        pred = parser.spans_many([g.text for g in gold])
        total, per = span_scores([g.spans for g in gold], pred)
        print(f"{name}: P={total.precision:.4f} R={total.recall:.4f} F1={total.f1:.4f}")
        for lab, s in sorted(per.items(), key=lambda kv: -kv[1].n_gold):
            print(f"  {lab:<10} P={s.precision:.3f} R={s.recall:.3f} F1={s.f1:.3f} n={s.n_gold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
