"""The shipped CRF tagger: loading the model bundle and turning tag sequences into components."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from .features import FeatureExtractor
from .normalize import Token, tokenize

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_PATH = PACKAGE_DIR / "crf_model.bin"
LEXICON_PATH = PACKAGE_DIR / "admin_lexicon.json"


@dataclass(frozen=True, slots=True)
class Component:
    """One labelled part of an address: ``text == original[start:end]`` (character offsets, end exclusive)."""

    label: str
    text: str
    start: int
    end: int


def load_lexicon(path: Path = LEXICON_PATH) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def tags_to_spans(tokens: list[Token], tags: list[str]) -> list[tuple[str, int, int]]:
    """BIO tags over tokens → (label, start, end) spans in original offsets. An ``I-x`` after a different
    label starts a new span (the tagger is trained on well-formed sequences, so this is rare)."""
    spans: list[tuple[str, int, int]] = []
    cur_label: str | None = None
    cur_start = cur_end = 0
    for tok, tag in zip(tokens, tags, strict=True):
        bio, _, label = tag.partition("-")
        if bio == "B" or label != cur_label:
            if cur_label is not None:
                spans.append((cur_label, cur_start, cur_end))
            cur_label, cur_start = label, tok.start
        cur_end = tok.end
    if cur_label is not None:
        spans.append((cur_label, cur_start, cur_end))
    return spans


class AddressParser:
    """CRF address tagger. Thread-safe: each thread gets its own crfsuite tagger."""

    def __init__(self, model_path: Path = MODEL_PATH, lexicon_path: Path = LEXICON_PATH):
        if not Path(model_path).exists():
            raise FileNotFoundError(
                f"address parser model not found at {model_path}; train it with "
                "`python -m address_registry.parsing.train`"
            )
        self.model_path = str(model_path)
        self.features = FeatureExtractor(load_lexicon(Path(lexicon_path)))
        self._local = threading.local()

    def _tagger(self):
        tagger = getattr(self._local, "tagger", None)
        if tagger is None:
            import pycrfsuite

            tagger = pycrfsuite.Tagger()
            tagger.open(self.model_path)
            self._local.tagger = tagger
        return tagger

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        tokens = tokenize(text)
        if not tokens:
            return []
        tags = self._tagger().tag(self.features.sequence(tokens))
        return tags_to_spans(tokens, tags)

    def parse(self, text: str) -> list[Component]:
        return [Component(lab, text[s:e], s, e) for lab, s, e in self.spans(text)]

    def parse_many(self, texts) -> list[list[Component]]:
        tagger = self._tagger()
        seq = self.features.sequence
        out: list[list[Component]] = []
        for text in texts:
            tokens = tokenize(text)
            if not tokens:
                out.append([])
                continue
            spans = tags_to_spans(tokens, tagger.tag(seq(tokens)))
            out.append([Component(lab, text[s:e], s, e) for lab, s, e in spans])
        return out


_default: AddressParser | None = None
_default_lock = threading.Lock()


def default_parser() -> AddressParser:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = AddressParser()
    return _default
