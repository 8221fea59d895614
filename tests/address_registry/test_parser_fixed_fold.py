"""The parser's quality on a fixed fold nobody trained on (issue 18): fold 0 of the seeded 5-fold split of the
corpus's train + dev, scored with the models the cross-validation fitted on folds 1–4 only
(`tests/data/parser_cv_fold0/`, see its manifest). It pins the runtime (features, kernels, decoding, span
scoring) to the cross-validated figure: a change that costs F1 on unseen addresses fails here. The shipped
model is fitted on all of train + dev, so the dev split no longer measures it; this fold does. Under
`make fuzz` the fold's CRF is also refitted from scratch, which checks the training code reproduces it.
No timing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from address_registry.parsing import cv

FOLD_DIR = Path(__file__).resolve().parents[1] / "data" / "parser_cv_fold0"
LEXICON = Path(cv.__file__).resolve().parent / "admin_lexicon.json"
# The cross-validated estimate over 5 folds is 0.8987 ± 0.0039 (docs/benchmarks.md); the target is 0.90.
# The floor below is what this fold's models reached, less rounding; it is not the target.
F1_FLOOR = 0.899


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((FOLD_DIR / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fold0(shared_data, manifest):
    golds = cv.load_golds(shared_data / "address-parsing")
    plans = cv.plan_folds(golds, manifest["k"], manifest["seed"])
    return golds, plans[manifest["fold"]]


def test_the_models_are_the_recorded_ones_and_never_saw_the_fold(manifest, fold0):
    golds, plan = fold0
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((FOLD_DIR / name).read_bytes()).hexdigest() == digest, name
    # the scored fold is the one the models were evaluated on, and it shares no text with their training part
    assert cv.fingerprint(golds, plan.scored) == manifest["scored_sha256"]
    assert len(plan.scored) == manifest["n_scored"] and len(plan.train) == manifest["n_train"]
    assert not {golds[i].text for i in plan.scored} & {golds[i].text for i in plan.train}


def test_fixed_fold_f1(manifest, fold0):
    golds, plan = fold0
    nets = [FOLD_DIR / n for n in manifest["nets"]]
    res = cv.score(golds, plan.scored, FOLD_DIR / manifest["crf"], nets, LEXICON)
    assert res["n_addresses"] == manifest["n_scored"]
    assert res["f1"] == pytest.approx(manifest["f1"], abs=1e-6)
    assert res["f1"] >= F1_FLOOR
    # the levels the geocoder relies on are parsed much better than the average, on unseen addresses too
    for lab in ("prov", "city", "district", "road", "roadno"):
        assert res["per_label"][lab] >= 0.93, (lab, res["per_label"])
    crf_alone = cv.score(golds, plan.scored, FOLD_DIR / manifest["crf"], [], LEXICON)
    assert crf_alone["f1"] == pytest.approx(manifest["crf_alone_f1"], abs=1e-6)
    # the networks earn their place: the ensemble beats the CRF alone on unseen addresses
    assert res["f1"] > crf_alone["f1"] + 0.01


@pytest.mark.fuzz
@pytest.mark.timeout(5400)  # a CRF fit of ~10 CPU-minutes, longer on a shared machine
def test_refit_crf_on_the_training_folds_reproduces_the_fold(manifest, fold0, tmp_path, fuzz_cases):
    """About 10 CPU-minutes: refit the fold's CRF on folds 1–4 with the recorded recipe and score fold 0."""
    if not fuzz_cases(0, 1):
        pytest.skip("the refit takes ~10 CPU-minutes: it runs under make fuzz (SHEQU_FUZZ=1)")
    golds, plan = fold0
    recipe = next(r for r in cv.CANDIDATES if r.name == manifest["recipe"])
    var = tmp_path / "var"
    var.mkdir()
    (var / "admin_lexicon.json").write_bytes(LEXICON.read_bytes())
    job = cv.Job(manifest["fold"], "outer", "crf", recipe)
    cv.run_job(job, golds, plan.train, var, threads=1)
    res = cv.score(golds, plan.scored, job.path(var), [], LEXICON)
    assert res["f1"] == pytest.approx(manifest["crf_alone_f1"], abs=0.003)
