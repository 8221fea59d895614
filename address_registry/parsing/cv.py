"""Resumable k-fold cross-validation of the address parser's whole recipe over the corpus's train + dev.

    python benchmarks/cv_parser.py [--folds 0,1] [--workers 2] [--threads 1]   # run / resume
    python benchmarks/cv_parser.py --report                                    # figures of the done folds

**Folds.** train.txt and dev.txt are read in that order into one list; the distinct address texts are
shuffled by ``numpy.random.default_rng(seed)`` (seed 18) and dealt round-robin into ``k`` = 5 folds, so an
address that occurs twice (same text) always lands in one fold, and no scored text is ever in a training
set. The folds' sizes differ by at most one text. The corpus's public test split is never read.

**Per fold** (scored fold ``f``, training part = the other ``k − 1`` folds):

1. *Choice inside the training part.* A seeded 20 % of the training part's texts (again grouped by text) is
   an inner holdout. Each candidate recipe (at most two, :data:`CANDIDATES`) is fitted on the other 80 %
   and scored on the inner holdout; the better inner F1 is the fold's recipe (ties → the first, the
   shipped one). The scored fold is not read at this step.
2. *Refit and score.* The chosen recipe is fitted on the whole training part and scored once on fold
   ``f``: entity-level micro P / R / F1 over exact (label, start, end) spans (:func:`.corpus.span_scores`,
   the project's scorer), through :meth:`.model.AddressParser.spans_many`, i.e. the shipped decoder.

Every fit sees only its own training addresses: the CRF's mention-replacement copies and the networks'
fresh copies draw their mentions from them (:func:`.corpus.augment`), the networks' vocabularies are built
from them; the gazetteer is GB/T 2260 (``admin-divisions/gbt2260-codes.csv``) and holds no corpus text.

**One candidate** (``--recipes shipped``): nothing to choose, so no inner stage; each fold is the recipe's
fit on the training part scored on the fold. (A third recipe, ``gaz-tv``, a township / village gazetteer,
was cross-validated this way at commit 33eb7be and not kept: docs/benchmarks.md.)

**Caching.** Each fitted model is written atomically (temporary file, then ``os.replace``) under
``var/parser_cv/fold<f>/<stage>/`` with a small ``.json`` beside it (fit seconds), and a fitted model is
never fitted again; each finished fold's result is written atomically to ``bench-output/parser_cv/
fold<f>.json`` (committed). A run skips folds whose JSON is there (with the same split fingerprint), so an
interrupted run resumes where it stopped, at the level of single fits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .corpus import GoldAddress, read_corpus, span_scores
from .features import build_lexicon
from .train import default_data_dir, load_lexicon_rows, write_lexicon

CV_SEED = 18
K_FOLDS = 5
INNER_FRACTION = 0.2
REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "bench-output" / "parser_cv"
VAR_DIR = REPO / "var" / "parser_cv"


@dataclass(frozen=True)
class Recipe:
    """One candidate recipe: the CRF's fit and the networks' (one network per seed)."""

    name: str
    crf_c1: float = 0.05
    crf_c2: float = 0.01
    crf_max_iter: int = 250
    crf_augment: int = 1
    crf_aug_prob: float = 0.3
    crf_seed: int = 1
    net_seeds: tuple[int, ...] = (1, 2, 3)
    net_epochs: int = 14
    net_hidden: int = 64
    net_augment: int = 1
    net_aug_fresh: bool = True
    net_aug_labels: str = "all"
    net_swa: int = 4

    def net_key(self) -> tuple:
        """What the networks' fit depends on (candidates with the same key share their networks)."""
        return (self.net_epochs, self.net_hidden, self.net_augment, self.net_aug_fresh, self.net_aug_labels,
                self.net_swa)  # fmt: skip


SHIPPED = Recipe("shipped")
"""The shipped recipe (docs/benchmarks.md, "Address parsing"): CRF c1 0.05 / c2 0.01, 250 iterations, one
mention-replaced copy; three BiLSTMs (seeds 1–3), 14 epochs, a fresh all-label copy per epoch, the last 4
epochs averaged."""
REGULARISED = replace(SHIPPED, name="crf-reg", crf_c1=0.1, crf_c2=0.05)
"""The second candidate: the same networks, a CRF with twice the L1 and five times the L2 penalty."""
CANDIDATES: tuple[Recipe, ...] = (SHIPPED, REGULARISED)
RECIPES = {r.name: r for r in CANDIDATES}
LEXICON_NAME = "admin_lexicon.json"  # the gazetteer file in a split's model folder


# -- folds ---------------------------------------------------------------------------------------------


def grouped_split(texts: Sequence[str], k: int, seed: int) -> list[list[int]]:
    """Indices of ``texts`` dealt into ``k`` folds: distinct texts shuffled with ``seed`` and dealt
    round-robin, every index of one text in one fold; each fold's indices sorted."""
    distinct = sorted(set(texts))
    order = np.random.default_rng(seed).permutation(len(distinct))
    fold_of = {distinct[j]: r % k for r, j in enumerate(order)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, t in enumerate(texts):
        folds[fold_of[t]].append(i)
    return folds


@dataclass
class FoldPlan:
    """The index sets of one fold: scored, training part, and the training part's inner split."""

    fold: int
    scored: list[int]
    train: list[int]
    inner_train: list[int]
    inner_holdout: list[int]

    def indices(self, stage: str) -> list[int]:
        """Training indices of a stage: ``inner`` (choice) or ``outer`` (refit)."""
        return self.inner_train if stage == "inner" else self.train


def plan_folds(golds: Sequence[GoldAddress], k: int = K_FOLDS, seed: int = CV_SEED) -> list[FoldPlan]:
    """The ``k`` fold plans of ``golds`` (the inner split of fold ``f`` seeded by ``seed * 1000 + f``)."""
    texts = [g.text for g in golds]
    folds = grouped_split(texts, k, seed)
    plans = []
    for f, scored in enumerate(folds):
        train = sorted(i for j, idx in enumerate(folds) if j != f for i in idx)
        n_inner = max(2, round(1 / INNER_FRACTION))
        parts = grouped_split([texts[i] for i in train], n_inner, seed * 1000 + f)
        inner_holdout = [train[i] for i in parts[0]]
        held = set(inner_holdout)
        plans.append(FoldPlan(f, scored, train, [i for i in train if i not in held], inner_holdout))
    return plans


def fingerprint(golds: Sequence[GoldAddress], idx: Sequence[int]) -> str:
    """sha256 of the sorted texts of ``idx`` (identifies a fold's content across runs)."""
    h = hashlib.sha256()
    for t in sorted(golds[i].text for i in idx):
        h.update(t.encode())
        h.update(b"\n")
    return h.hexdigest()


# -- jobs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One fit: the CRF of a candidate, or one network, on one stage of one fold."""

    fold: int
    stage: str  # "inner" | "outer"
    kind: str  # "crf" | "nn"
    recipe: Recipe
    seed: int = 0  # the network's seed

    def path(self, var_dir: Path) -> Path:
        """Where the fitted run-time weights go."""
        d = var_dir / f"fold{self.fold}" / self.stage
        if self.kind == "crf":
            return d / f"crf_{self.recipe.name}.bin"
        return d / f"nn_{_net_tag(self.recipe)}_s{self.seed}.bin"


def _net_tag(r: Recipe) -> str:
    return hashlib.sha1(repr(r.net_key()).encode()).hexdigest()[:8]


def run_job(
    job: Job, golds: Sequence[GoldAddress], train_idx: Sequence[int], var_dir: Path, threads: int
) -> dict:
    """Fit one model on ``golds[train_idx]`` and write it (atomically) with its ``.json`` record."""
    from .train import fit_crf, tag_set

    train = [golds[i] for i in train_idx]
    r = job.recipe
    lexicon = json.loads((var_dir / LEXICON_NAME).read_text(encoding="utf-8"))
    out = job.path(var_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    if job.kind == "crf":
        fit_crf(train, lexicon, out, c1=r.crf_c1, c2=r.crf_c2, max_iter=r.crf_max_iter,
                augment_copies=r.crf_augment, aug_prob=r.crf_aug_prob, seed=r.crf_seed, progress=False)  # fmt: skip
    else:
        from .features import FeatureExtractor
        from .train_neural import NetOptions, aug_label_list, export_runtime, fit_network

        o = NetOptions(epochs=r.net_epochs, hidden=r.net_hidden, threads=threads, seed=job.seed,
                       augment=r.net_augment, aug_labels=aug_label_list(r.net_aug_labels),
                       aug_fresh=r.net_aug_fresh, swa=r.net_swa)  # fmt: skip
        labels = tag_set(train)
        out.parent.mkdir(parents=True, exist_ok=True)
        log = open(out.with_name(out.name + ".log"), "w", encoding="utf-8")  # noqa: SIM115
        with log:
            trained = fit_network(train, FeatureExtractor(lexicon), labels, o, log=log)
        archive = out.with_suffix(".npz")
        trained.save(archive)
        export_runtime(archive, out, 1.0, labels)
    rec = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
           "n_train": len(train), "finished": _now()}  # fmt: skip
    _write_json(out.with_name(out.name + ".json"), rec)
    return rec


def _job_entry(
    job: Job, data_dir: str, subset: int | None, k: int, seed: int, var_dir: str, threads: int
) -> dict:
    """A job in a worker process: read the corpus, rebuild the same plan, fit."""
    golds = load_golds(Path(data_dir), subset)
    plan = plan_folds(golds, k, seed)[job.fold]
    return run_job(job, golds, plan.indices(job.stage), Path(var_dir), threads)


# -- scoring -------------------------------------------------------------------------------------------


def score(
    golds: Sequence[GoldAddress], idx: Sequence[int], crf: Path, nets: Sequence[Path], lexicon: Path
) -> dict:
    """Entity-level micro P / R / F1 of the parser (CRF + networks) on ``golds[idx]``."""
    from .model import AddressParser

    parser = AddressParser(crf, lexicon, neural_path=list(nets) if nets else None)
    gold = [golds[i] for i in idx]
    pred = parser.spans_many([g.text for g in gold])
    total, per = span_scores([g.spans for g in gold], pred)
    return {"f1": total.f1, "precision": total.precision, "recall": total.recall, "n_gold": total.n_gold,
            "n_addresses": len(gold),
            "per_label": {lab: round(s.f1, 4) for lab, s in sorted(per.items())}}  # fmt: skip


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class CVRun:
    """A cross-validation over ``golds``: where results and models go, which candidates, how many workers."""

    golds: list[GoldAddress]
    out_dir: Path = OUT_DIR
    var_dir: Path = VAR_DIR
    candidates: tuple[Recipe, ...] = CANDIDATES
    k: int = K_FOLDS
    seed: int = CV_SEED
    workers: int = 2  # 0: fit in this process (tests)
    threads: int = 1
    data_dir: Path | None = None
    subset: int | None = None
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr, flush=True))
    jobs_run: list[Job] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Check the candidates, plan the folds, name the split."""
        if not 1 <= len(self.candidates) <= 2:
            raise ValueError("one or two candidate recipes")
        self.plans = plan_folds(self.golds, self.k, self.seed)
        split = hashlib.sha256("".join(fingerprint(self.golds, p.scored) for p in self.plans).encode())
        self.split_id = f"k{self.k}-seed{self.seed}-n{len(self.golds)}-{split.hexdigest()[:10]}"
        self.model_dir = self.var_dir / self.split_id  # models of another split are never reused

    def result_path(self, fold: int) -> Path:
        """The fold's cached result."""
        return self.out_dir / f"fold{fold}.json"

    def cached(self, fold: int) -> dict | None:
        """The fold's result when it is cached for this split (a result of another split is an error)."""
        p = self.result_path(fold)
        if not p.exists():
            return None
        rec = json.loads(p.read_text(encoding="utf-8"))
        fp = fingerprint(self.golds, self.plans[fold].scored)
        if rec.get("scored_sha256") != fp:
            raise RuntimeError(f"{p} was made on another split (fingerprint differs): move it away first")
        return rec

    def jobs(self, fold: int, stage: str, chosen: Recipe | None = None) -> list[Job]:
        """The fits of one stage: inner — every candidate's CRF and each distinct set of networks (none
        with a single candidate: there is nothing to choose); outer — the chosen recipe's CRF and
        networks."""
        if stage == "inner" and len(self.candidates) == 1:
            return []
        recipes = self.candidates if stage == "inner" else (chosen or self.candidates[0],)
        out: list[Job] = []
        seen: set = set()
        for r in recipes:
            if stage == "inner" or chosen is not None:
                out.append(Job(fold, stage, "crf", r))
            for s in r.net_seeds:
                if (r.net_key(), s) not in seen:
                    seen.add((r.net_key(), s))
                    out.append(Job(fold, stage, "nn", r, s))
        return out

    def nets(self, fold: int, stage: str, r: Recipe) -> list[Path]:
        """The fitted network files of a recipe on a stage."""
        return [Job(fold, stage, "nn", r, s).path(self.model_dir) for s in r.net_seeds]

    def choose(self, fold: int) -> tuple[Recipe, dict]:
        """Score every candidate's inner fit on the inner holdout; the best (first on a tie)."""
        plan = self.plans[fold]
        if len(self.candidates) == 1:
            return self.candidates[0], {}
        scores = {}
        lex = self.model_dir / LEXICON_NAME
        for r in self.candidates:
            crf = Job(fold, "inner", "crf", r).path(self.model_dir)
            scores[r.name] = score(self.golds, plan.inner_holdout, crf, self.nets(fold, "inner", r), lex)
            scores[r.name].pop("per_label")
        best = max(self.candidates, key=lambda r: (scores[r.name]["f1"], -self.candidates.index(r)))
        return best, scores

    def _fit_record(self, job: Job) -> dict:
        return json.loads(
            job.path(self.model_dir).with_name(job.path(self.model_dir).name + ".json").read_text()
        )

    def finish(self, fold: int, chosen: Recipe, inner: dict) -> dict:
        """Score the outer fit on the fold and write its result (atomically)."""
        plan = self.plans[fold]
        lex = self.model_dir / LEXICON_NAME
        crf = Job(fold, "outer", "crf", chosen).path(self.model_dir)
        t0 = time.perf_counter()
        res = score(self.golds, plan.scored, crf, self.nets(fold, "outer", chosen), lex)
        crf_alone = score(self.golds, plan.scored, crf, [], lex)
        outer = [self._fit_record(j) for j in self.jobs(fold, "outer", chosen)]
        inner_fits = [self._fit_record(j) for j in self.jobs(fold, "inner")]
        rec = {
            "fold": fold, "k": self.k, "seed": self.seed, "scored_sha256": fingerprint(self.golds, plan.scored),
            "n_scored": len(plan.scored), "n_train": len(plan.train), "n_inner_train": len(plan.inner_train),
            "n_inner_holdout": len(plan.inner_holdout), **{k: res[k] for k in ("f1", "precision", "recall")},
            "n_gold_spans": res["n_gold"], "crf_alone_f1": crf_alone["f1"], "per_label_f1": res["per_label"],
            "recipe": chosen.name, "recipe_params": asdict(chosen),
            "candidates": {r.name: asdict(r) for r in self.candidates}, "inner_scores": inner,
            "fit_seconds": round(sum(r["seconds"] for r in outer), 1),
            "fit_cpu_seconds": round(sum(r["cpu_seconds"] for r in outer), 1),
            "selection_fit_seconds": round(sum(r["seconds"] for r in inner_fits), 1),
            "score_seconds": round(time.perf_counter() - t0, 1),
            "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain", "--", "address_registry")),
            "finished": _now(), "load_average": list(os.getloadavg()), "threads": self.threads,
            "workers": self.workers,
        }  # fmt: skip
        if self.subset:
            rec["subset"] = self.subset
        _write_json(self.result_path(fold), rec)
        self.log(f"fold {fold}: F1 {rec['f1']:.4f} (P {rec['precision']:.4f} R {rec['recall']:.4f}), "
                 f"recipe {chosen.name} → {self.result_path(fold)}")  # fmt: skip
        return rec

    def run(self, folds: Sequence[int] | None = None) -> dict[int, dict]:
        """Run (or resume) the given folds; returns every requested fold's result."""
        folds = list(range(self.k)) if folds is None else list(folds)
        results: dict[int, dict] = {}
        todo = []
        for f in folds:
            rec = self.cached(f)
            if rec is not None:
                self.log(f"fold {f}: cached ({self.result_path(f)}), skipped")
                results[f] = rec
            else:
                todo.append(f)
        if not todo:
            return results
        if not (self.model_dir / LEXICON_NAME).exists():
            write_admin_lexicon(self.model_dir / LEXICON_NAME, self.data_dir)
        pool = None
        if self.workers > 0:
            import multiprocessing

            pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            self._schedule(todo, results, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return results

    def _schedule(self, todo: list[int], results: dict[int, dict], pool: ProcessPoolExecutor | None) -> None:  # noqa: C901  (one dependency-driven loop)
        """Fit what is missing, folds in order, inner fits first; choose, refit, score as fits land."""
        chosen: dict[int, tuple[Recipe, dict]] = {}
        queue: list[Job] = []
        for f in todo:
            queue += self.jobs(f, "inner")
            # the networks of the outer stage do not depend on the choice when the candidates share them
            if len({r.net_key() for r in self.candidates}) == 1:
                queue += self.jobs(f, "outer")
        queued = {j.path(self.model_dir) for j in queue}
        running: dict[Future, Job] = {}

        def done(j: Job) -> bool:
            p = j.path(self.model_dir)
            return p.exists() and p.with_name(p.name + ".json").exists()

        while True:
            for f in todo:
                if f in results:
                    continue
                if f not in chosen and all(done(j) for j in self.jobs(f, "inner")):
                    chosen[f] = self.choose(f)
                    self.log(f"fold {f}: inner holdout {chosen[f][1]} → {chosen[f][0].name}")
                    for j in self.jobs(f, "outer", chosen[f][0]):
                        if j.path(self.model_dir) not in queued:
                            queued.add(j.path(self.model_dir))
                            queue.append(j)
                if f in chosen and all(done(j) for j in self.jobs(f, "outer", chosen[f][0])):
                    results[f] = self.finish(f, *chosen[f])
            if all(f in results for f in todo):
                return
            busy = {j.path(self.model_dir) for j in running.values()}
            pending = [j for j in queue if not done(j) and j.path(self.model_dir) not in busy]
            # the earliest fold first, its inner fits before its outer ones, the long CRF fits first
            pending.sort(key=lambda j: (j.fold, j.stage != "inner", j.kind != "crf"))
            if pool is None:
                if not pending:
                    raise RuntimeError("nothing left to fit but folds unfinished")
                j = pending[0]
                self._run_inline(j)
                continue
            while pending and len(running) < self.workers:
                j = pending.pop(0)
                self.log(f"fit {j.kind} {j.recipe.name if j.kind == 'crf' else 's' + str(j.seed)} "
                         f"fold {j.fold} {j.stage} …")  # fmt: skip
                fut = pool.submit(_job_entry, j, str(self.data_dir or default_data_dir() / "address-parsing"),
                                  self.subset, self.k, self.seed, str(self.model_dir), self.threads)  # fmt: skip
                running[fut] = j
                self.jobs_run.append(j)
            if not running:
                raise RuntimeError("nothing running but folds unfinished")
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                j = running.pop(fut)
                rec = fut.result()  # a failed fit stops the run (its model file was never written)
                self.log(f"fitted {j.kind} fold {j.fold} {j.stage} in {rec['seconds']:.0f} s")

    def _run_inline(self, j: Job) -> None:
        self.jobs_run.append(j)
        run_job(j, self.golds, self.plans[j.fold].indices(j.stage), self.model_dir, self.threads)


# -- report --------------------------------------------------------------------------------------------


def summary(out_dir: Path = OUT_DIR) -> dict:
    """Mean ± sample standard deviation and min / median / max of F1, P, R over the cached folds."""
    recs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out_dir.glob("fold*.json"))]
    out: dict = {"folds_done": [r["fold"] for r in recs], "recipes": [r["recipe"] for r in recs]}
    for key in ("f1", "precision", "recall", "crf_alone_f1", "fit_seconds"):
        v = np.array([r[key] for r in recs], float)
        if len(v):
            out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
                        "min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}  # fmt: skip
    out["per_fold"] = [{k: r[k] for k in ("fold", "f1", "precision", "recall", "crf_alone_f1", "recipe",
                                          "inner_scores", "fit_seconds", "git_commit")} for r in recs]  # fmt: skip
    return out


def report(out_dir: Path = OUT_DIR) -> str:
    """The done folds as a markdown table with the summary line."""
    s = summary(out_dir)
    lines = ["| fold | F1 | P | R | CRF alone F1 | recipe (inner F1 per candidate) | fit s | commit |",
             "|---:|---:|---:|---:|---:|---|---:|---|"]  # fmt: skip
    for r in s["per_fold"]:
        inner = ", ".join(f"{n} {v['f1']:.4f}" for n, v in r["inner_scores"].items())
        lines.append(f"| {r['fold']} | {r['f1']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | "
                     f"{r['crf_alone_f1']:.4f} | {r['recipe']} ({inner}) | {r['fit_seconds']:.0f} | "
                     f"{r['git_commit'][:8]} |")  # fmt: skip
    if "f1" in s:
        f = s["f1"]
        spread = f"± {f['std']:.4f}" if f["std"] is not None else "(one fold: no spread)"
        lines.append("")
        lines.append(f"{len(s['folds_done'])} of {K_FOLDS} folds done: F1 {f['mean']:.4f} {spread} "
                     f"(min {f['min']:.4f} / median {f['median']:.4f} / max {f['max']:.4f})")  # fmt: skip
    return "\n".join(lines)


def progress(var_dir: Path = VAR_DIR) -> str:
    """The fits on disk (done ones with their wall / CPU seconds), per split folder, fold and stage."""
    lines = []
    for rec_path in sorted(var_dir.glob("*/fold*/*/*.bin.json")):
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
        rel = rec_path.relative_to(var_dir).as_posix().removesuffix(".bin.json")
        lines.append(f"{rel}: {rec['seconds']:.0f} s wall, {rec['cpu_seconds']:.0f} s CPU, "
                     f"{rec['n_train']} addresses, {rec['finished']}")  # fmt: skip
    return "\n".join(lines) or "no fit done yet"


# -- helpers -------------------------------------------------------------------------------------------


def write_admin_lexicon(path: Path, data_dir: Path | None = None) -> Path:
    """Write the GB/T 2260 gazetteer, built from the shared data's code list, as the parser loads it."""
    data = data_dir or default_data_dir() / "address-parsing"
    write_lexicon(build_lexicon(load_lexicon_rows(data.parent / "admin-divisions" / "gbt2260-codes.csv")), path)
    return path


def load_golds(data_dir: Path | None = None, subset: int | None = None) -> list[GoldAddress]:
    """train.txt then dev.txt of the corpus (the first ``subset`` addresses of that list when given)."""
    d = data_dir or default_data_dir() / "address-parsing"
    golds = list(read_corpus(d / "train.txt")) + list(read_corpus(d / "dev.txt"))
    return golds[:subset] if subset else golds


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main(argv: list[str] | None = None) -> int:
    """Run / resume the cross-validation, or print the report (command line)."""
    ap = argparse.ArgumentParser(description="地址解析 5 折交叉验证 (parser cross-validation, resumable)")
    ap.add_argument("--folds", default=None, help="comma-separated fold numbers (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="fits at once (processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch / BLAS threads per fit")
    ap.add_argument("--data", type=Path, default=None, help="address-parsing corpus folder")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="fold results (JSON)")
    ap.add_argument("--var", type=Path, default=VAR_DIR, help="fitted models")
    ap.add_argument("--recipes", default=",".join(r.name for r in CANDIDATES),
                    help=f"one or two candidate recipes, comma-separated, of {', '.join(RECIPES)}; one: no "
                         "inner choice (default: %(default)s)")  # fmt: skip
    ap.add_argument("--report", action="store_true", help="print the done folds and stop")
    args = ap.parse_args(argv)
    if args.report:
        print(report(args.out))
        print("\nfits on disk:\n" + progress(args.var))
        return 0
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[v] = str(args.threads)  # inherited by the worker processes
    candidates = tuple(RECIPES[n] for n in args.recipes.split(","))
    run = CVRun(load_golds(args.data), args.out, args.var, candidates=candidates, workers=args.workers,
                threads=args.threads, data_dir=args.data)  # fmt: skip
    folds = [int(x) for x in args.folds.split(",")] if args.folds else None
    run.run(folds)
    print(report(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
