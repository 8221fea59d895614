"""Reading the labelled address corpus (BIO, one token per line) and scoring spans against it.

Corpus format (see ``../shared/data/address-parsing/README.md``): ``TOKEN TAG`` per line, a blank line
ends an address, ``_`` stands for a space. Labels are lower-cased on reading (the files spell a few as
``subRoad``/``devZone``/``subRoadno``; ``labels.txt`` spells them in lower case).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class GoldAddress:
    """One labelled address of the corpus: text and gold spans."""

    text: str
    spans: tuple[tuple[str, int, int], ...]  # (label, start, end), end exclusive
    char_tags: tuple[str, ...]  # per character "B-label" / "I-label"


def read_corpus(path: str | Path) -> Iterator[GoldAddress]:
    """Yield the addresses of a BIO file with their gold spans (character offsets, end exclusive)."""
    tokens: list[tuple[str, str]] = []

    def build() -> GoldAddress:
        text_parts: list[str] = []
        tags: list[str] = []
        spans: list[tuple[str, int, int]] = []
        pos = 0
        cur: list | None = None
        for tok, tag in tokens:
            tok = tok.replace("_", " ")
            bio, _, label = tag.partition("-")
            label = label.lower()
            if bio == "B" or cur is None or cur[0] != label:
                if cur is not None:
                    spans.append((cur[0], cur[1], pos))
                cur = [label, pos]
            text_parts.append(tok)
            tags.extend([f"{'B' if bio == 'B' else 'I'}-{label}"] + [f"I-{label}"] * (len(tok) - 1))
            pos += len(tok)
        if cur is not None:
            spans.append((cur[0], cur[1], pos))
        return GoldAddress("".join(text_parts), tuple(spans), tuple(tags))

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if tokens:
                    yield build()
                    tokens = []
                continue
            tok, _, tag = line.rpartition(" ")
            tokens.append((tok, tag))
    if tokens:
        yield build()


@dataclass
class LabelScore:
    """Entity counts of one label (or all): correct (tp), predicted, gold."""

    label: str
    tp: int
    n_pred: int
    n_gold: int

    @property
    def precision(self) -> float:
        """Correct / predicted."""
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        """Correct / gold."""
        return self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def span_scores(
    gold: Iterable[Iterable[tuple[str, int, int]]], pred: Iterable[Iterable[tuple[str, int, int]]]
) -> tuple[LabelScore, dict[str, LabelScore]]:
    """Entity-level scores over exact (label, start, end) spans: the micro total and one per label."""
    tp: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(g), set(p)
        for lab, *_ in gs:
            n_gold[lab] += 1
        for lab, *_ in ps:
            n_pred[lab] += 1
        for lab, *_ in gs & ps:
            tp[lab] += 1
    labels = sorted(set(n_gold) | set(n_pred))
    per = {lab: LabelScore(lab, tp[lab], n_pred[lab], n_gold[lab]) for lab in labels}
    total = LabelScore("ALL", sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    return total, per


REPLACEABLE = ("poi", "subpoi", "community", "road", "subroad", "town", "devzone", "person", "assist")


def augment(golds, copies: int, prob: float, rng, labels=REPLACEABLE) -> list:
    """Mention replacement (Dai & Adel, 2020): ``copies`` rewritten copies of every training address, each
    mention of a replaceable label swapped with probability ``prob`` for a random train mention of the same
    label. Only train.txt feeds it."""
    pool: dict[str, list[str]] = {}
    for g in golds:
        for lab, s, e in g.spans:
            if lab in labels:
                pool.setdefault(lab, []).append(g.text[s:e])
    out = []
    for _ in range(copies):
        for g in golds:
            text, spans, tags = [], [], []
            pos = 0
            for lab, s, e in g.spans:
                m = g.text[s:e]
                if lab in pool and rng.random() < prob:
                    m = pool[lab][rng.integers(len(pool[lab]))]
                text.append(m)
                spans.append((lab, pos, pos + len(m)))
                tags.extend([f"B-{lab}"] + [f"I-{lab}"] * (len(m) - 1))
                pos += len(m)
            out.append(GoldAddress("".join(text), tuple(spans), tuple(tags)))
    return out
