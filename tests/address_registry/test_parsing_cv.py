"""The parser's cross-validation runner (address_registry/parsing/cv.py): the split, no leakage of the
scored fold into any fit, the choice made inside the training folds, the cache and the resume — on the real
corpus (the split) and on a small subset of it with a short recipe (the run). No timing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from address_registry.parsing import cv
from address_registry.parsing.corpus import read_corpus

SUBSET = 150
TINY = cv.Recipe("tiny", crf_max_iter=15, net_seeds=())
TINY_REG = replace(TINY, name="tiny-reg", crf_c1=0.5, crf_c2=1.0)


@pytest.fixture(scope="module")
def golds():
    """The whole of train + dev."""
    return cv.load_golds()


def _texts(golds, idx):
    return {golds[i].text for i in idx}


def test_split_is_disjoint_covering_and_grouped_by_text(golds):
    plans = cv.plan_folds(golds)
    assert len(plans) == cv.K_FOLDS
    scored = [i for p in plans for i in p.scored]
    assert sorted(scored) == list(range(len(golds)))  # every address scored exactly once
    texts = [_texts(golds, p.scored) for p in plans]
    for a in range(len(texts)):
        for b in range(a + 1, len(texts)):
            assert not texts[a] & texts[b]  # a repeated address lives in one fold
    sizes = [len(t) for t in texts]
    assert max(sizes) - min(sizes) <= 1  # distinct texts dealt evenly
    for p in plans:
        assert sorted(p.train + p.scored) == list(range(len(golds)))
        assert not _texts(golds, p.train) & _texts(golds, p.scored)
        assert sorted(p.inner_train + p.inner_holdout) == p.train
        assert not _texts(golds, p.inner_train) & _texts(golds, p.inner_holdout)
        assert 0.15 < len(p.inner_holdout) / len(p.train) < 0.25
    # fixed by the seed: the same plan again, another with another seed
    assert [p.scored for p in cv.plan_folds(golds)] == [p.scored for p in plans]
    assert [p.scored for p in cv.plan_folds(golds, seed=cv.CV_SEED + 1)] != [p.scored for p in plans]


def test_split_groups_real_duplicates(golds):
    """The corpus has repeated addresses; each one's copies share a fold."""
    counts: dict[str, int] = {}
    for g in golds:
        counts[g.text] = counts.get(g.text, 0) + 1
    dups = {t for t, c in counts.items() if c > 1}
    assert dups, "the corpus repeats some addresses"
    fold_of = {}
    for p in cv.plan_folds(golds):
        for i in p.scored:
            assert fold_of.setdefault(golds[i].text, p.fold) == p.fold


def _run(tmp_path: Path, golds, **kw) -> cv.CVRun:
    logs: list[str] = []
    run = cv.CVRun(golds[:SUBSET], tmp_path / "out", tmp_path / "var", candidates=(TINY, TINY_REG), workers=0,
                   subset=SUBSET, log=logs.append, **kw)  # fmt: skip
    return run


def test_tiny_run_fits_only_training_folds_and_resumes(tmp_path, golds):
    run = _run(tmp_path, golds)
    res = run.run([0])[0]
    plan = run.plans[0]
    small = golds[:SUBSET]
    scored = _texts(small, plan.scored)
    # every fit that ran saw the training part only (inner fits: not the inner holdout either)
    assert {(j.stage, j.kind, j.recipe.name) for j in run.jobs_run} == {
        ("inner", "crf", "tiny"), ("inner", "crf", "tiny-reg"), ("outer", "crf", res["recipe"])
    }  # fmt: skip
    for j in run.jobs_run:
        fed = _texts(small, plan.indices(j.stage))
        assert not fed & scored
        if j.stage == "inner":
            assert not fed & _texts(small, plan.inner_holdout)
        rec = json.loads(j.path(run.model_dir).with_name(j.path(run.model_dir).name + ".json").read_text())
        assert rec["n_train"] == len(plan.indices(j.stage))
    # the choice is the better inner-holdout F1; the fold is scored once, by the project's scorer
    inner = res["inner_scores"]
    assert res["recipe"] == max(("tiny", "tiny-reg"), key=lambda n: (inner[n]["f1"], n == "tiny"))
    assert all(v["n_addresses"] == len(plan.inner_holdout) for v in inner.values())
    assert res["n_scored"] == len(plan.scored) and res["n_train"] == len(plan.train)
    assert 0.3 < res["f1"] < 1.0  # a CRF fitted on 120 addresses parses most spans right
    assert res["git_commit"] and res["scored_sha256"] == cv.fingerprint(small, plan.scored)

    # resume: a cached fold is skipped, nothing is fitted, the file is untouched
    path = run.result_path(0)
    before = path.read_bytes()
    again = _run(tmp_path, golds)
    assert again.run([0])[0]["f1"] == res["f1"]
    assert again.jobs_run == []
    assert path.read_bytes() == before

    # the result lost but the fitted models kept: rescored without a fit, same figures
    path.unlink()
    third = _run(tmp_path, golds)
    rec = third.run([0])[0]
    assert third.jobs_run == []
    assert (rec["f1"], rec["recipe"]) == (res["f1"], res["recipe"])

    # one fitted model lost: only that fit runs again
    lost = next(j for j in run.jobs_run if j.stage == "outer")
    lost.path(run.model_dir).unlink()
    path.unlink()
    fourth = _run(tmp_path, golds)
    assert fourth.run([0])[0]["f1"] == pytest.approx(res["f1"])
    assert fourth.jobs_run == [lost]

    # a result of another split is refused, not mixed in
    with pytest.raises(RuntimeError, match="another split"):
        _run(tmp_path, golds, seed=cv.CV_SEED + 1).run([0])

    summary = cv.summary(run.out_dir)
    assert summary["folds_done"] == [0] and summary["f1"]["std"] is None
    assert "1 of 5 folds done" in cv.report(run.out_dir)
    fits = cv.progress(run.var_dir).splitlines()
    assert len(fits) == 3 and all(run.split_id in line and "addresses" in line for line in fits)


def test_one_candidate_has_no_inner_stage(tmp_path, golds):
    """With a single recipe there is nothing to choose: only the outer fit runs, on the training part."""
    run = cv.CVRun(golds[:SUBSET], tmp_path / "out", tmp_path / "var", candidates=(TINY,), workers=0,
                   subset=SUBSET, log=lambda m: None)  # fmt: skip
    res = run.run([2])[2]
    assert [(j.stage, j.kind, j.recipe.name) for j in run.jobs_run] == [("outer", "crf", "tiny")]
    assert res["recipe"] == "tiny" and res["inner_scores"] == {} and res["selection_fit_seconds"] == 0
    assert 0.3 < res["f1"] < 1.0
    with pytest.raises(ValueError, match="one or two"):
        cv.CVRun(golds[:SUBSET], tmp_path / "o3", tmp_path / "v3", candidates=(TINY, TINY_REG, TINY), workers=0)


def test_network_fit_reads_only_its_training_text(tmp_path, golds):
    """A network fitted by the runner: its vocabulary comes from the training part (and replacement copies
    of it), and its run-time weights load beside the fold's CRF."""
    pytest.importorskip("torch")
    import numpy as np

    rec = replace(TINY, name="tiny-nn", net_seeds=(1,), net_epochs=1, net_hidden=8, net_swa=0)
    run = cv.CVRun(golds[:SUBSET], tmp_path / "out", tmp_path / "var", candidates=(rec,), workers=0,
                   subset=SUBSET, log=lambda m: None)  # fmt: skip
    res = run.run([1])[1]
    plan = run.plans[1]
    small = golds[:SUBSET]
    train_chars = {c for t in _texts(small, plan.train) for c in t}
    nn = cv.Job(1, "outer", "nn", rec, 1).path(run.model_dir)
    with np.load(nn.with_suffix(".npz")) as z:
        vocab = [str(v) for v in z["vocab"]]
    singles = [v for v in vocab if len(v) == 1]
    assert singles and set(singles) <= train_chars
    assert 0.3 < res["f1"] < 1.0


def test_corpus_files_read_are_train_and_dev_only(golds):
    d = cv.default_data_dir() / "address-parsing"
    n = sum(1 for _ in read_corpus(d / "train.txt")) + sum(1 for _ in read_corpus(d / "dev.txt"))
    assert len(golds) == n == 11942
