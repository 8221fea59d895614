"""5-fold cross-validation of the address parser's whole recipe over train + dev (issue 18), resumable.

    nice -n 19 .venv/bin/python benchmarks/cv_parser.py --workers 2 --threads 1   # run / resume (hours)
    .venv/bin/python benchmarks/cv_parser.py --report                            # the done folds

Needs the optional extra `train` (CPU torch) for the networks. Fold results: bench-output/parser_cv/
fold<f>.json (committed); fitted models: var/parser_cv/ (not committed). Not part of `make bench` (one
fold is about an hour of CPU). The method: address_registry/parsing/cv.py; figures in docs/benchmarks.md,
section "Parser cross-validation (issue 18)".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from address_registry.parsing.cv import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
