"""Chinese address parsing: free text → labelled components (prov, city, district, town, road, roadno,
poi, houseno, cellno, floorno, roomno, …; the label set of ``labels.txt`` in the address corpus).

>>> from address_registry.parsing import parse
>>> [(c.label, c.text) for c in parse("浙江省杭州市西湖区文三路32号")]  # doctest: +SKIP
[('prov', '浙江省'), ('city', '杭州市'), ('district', '西湖区'), ('road', '文三路'), ('roadno', '32号')]

Method: a linear-chain CRF over tokens of the normalised text (see :mod:`.normalize`), with window
n-gram, character-class, GB/T 2260 gazetteer, repetition and number-suffix features (:mod:`.features`),
trained with CRFsuite on the corpus train + dev splits (plus a mention-replaced copy) by
``python -m address_registry.parsing.train --augment 1 --with-dev``, plus three character BiLSTMs (token + token-bigram
embeddings + the gazetteer flags; different seeds; trained with PyTorch by
``python -m address_registry.parsing.train_neural``) whose tag scores are added to the CRF's before one
BIO-constrained exact Viterbi. The weights ship in this package (``crf_weights.bin``, ``nn_weights.bin``,
``nn_weights_2.bin``, ``nn_weights_3.bin``, ``admin_lexicon.json``) and run in numpy + numba
(:mod:`.model`, :mod:`.neural`); no torch at run time. The arrays derived from those weights are saved
once and memory-mapped by later processes (:mod:`._arrays`), so a fresh process starts without recomputing
them; numba loads its kernels from its own ``cache=True`` files. Entity F1 on addresses no fit saw: 0.8987 ± 0.0039,
the recipe cross-validated over train + dev (:mod:`.cv`, docs/benchmarks.md).
CPU only, offline. Offsets always refer to the original text.
"""

from __future__ import annotations

from .features import ALL_LABELS
from .model import AddressParser, Component, default_parser
from .normalize import normalize, normalize_with_offsets, tokenize

LABELS = ALL_LABELS


def parse(text: str) -> list[Component]:
    """Labelled components of one address, in text order, with offsets into ``text`` (end exclusive)."""
    return default_parser().parse(text)


def parse_many(texts) -> list[list[Component]]:
    """:func:`parse` over many addresses (one tagger, no per-call overhead)."""
    return default_parser().parse_many(texts)


__all__ = [
    "LABELS", "AddressParser", "Component", "default_parser", "normalize", "normalize_with_offsets", "parse",
    "parse_many", "tokenize",
]  # fmt: skip
