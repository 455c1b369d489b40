"""Cheap fidelities, measured: how well does a short run rank candidates like the full one?

    DRILL_SEARCH_DATA=../shared/datasets python benchmarks/fidelity.py run epochs3
    python benchmarks/fidelity.py table
    python benchmarks/fidelity.py --sample stages table     # the stages space's sample (below)

`run F` trains every candidate of the unpruned sample (`studies/unpruned.journal`, study
`unpruned`: drawn at random from the space and trained all 15 epochs, pruning off) again
at fidelity F, as a study `fidelity-F` of `studies/fidelity.journal` (one trial per
sample candidate, its number in the user attribute `sample_trial`). It runs through the
search's own workers, so it resumes with the same command and survives dead workers.

`table` reads both files and prints, per fidelity: its nominal cost in full-run
equivalents (training images seen / the full protocol's 15 x 55,000), its measured
seconds per candidate (this machine; see the CPU line), and, for several scores a
promotion rule could read off the cheap run, Spearman's rho (with a bootstrap standard
error over resampled candidates) against the full run's objective (`val_acc_last3`) and
its final-epoch test accuracy, plus how many of the sample's front and top quarter a
promotion of the best third would keep, by score alone and by non-dominated sorting on
(score, parameters). Rows named `trunc-eN` cost nothing: they read epoch N of the full
runs themselves, which is what an early-epoch pruner of the full protocol sees at the
same cost as an N-epoch complete schedule. Test data enters only as the yardstick.

`--sample stages` does the same for the second space: its sample is a random search of
it within 4,000 parameters, every candidate trained the full 15 epochs, made (and
resumed) with

    DRILL_SEARCH_DATA=../shared/datasets drill-search run --trials 16 --goal-params 4000 \
        --strategy full --pruner none --no-baselines --seed 35 --workers 2 \
        --storage studies/stages-sample.journal --study-name sample

and its cheap runs go to `studies/stages-fidelity.journal`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.config import MAX_EPOCHS, DataConfig, Recipe, SearchConfig
from search.config import DATA_ENV
from search.execution.record import cpu_model
from search.execution.storage import open_storage, storage_url

sys.path.insert(0, str(Path(__file__).parent))
from selection import bootstrap_se, spearman  # noqa: E402  (a sibling script)

@dataclass(frozen=True)
class Sample:
    """Candidates trained the full protocol, and where their cheap runs go."""

    journal: str
    study: str
    storage: str  # the cheap runs
    space: str


SAMPLES = {
    "chain": Sample("studies/unpruned.journal", "unpruned", "studies/fidelity.journal", "chain"),
    "stages": Sample("studies/stages-sample.journal", "sample", "studies/stages-fidelity.journal", "stages"),
}
TRAIN_IMAGES = 55_000  # what a search candidate trains on (60,000 minus 5,000 held out)


@dataclass(frozen=True)
class Fidelity:
    epochs: int = MAX_EPOCHS  # a shorter run compresses the whole schedule into it
    train_size: int | None = None  # None: all 55,000

    @property
    def cost(self) -> float:
        """Training images seen, in full runs (15 epochs of 55,000)."""
        return self.epochs * (self.train_size or TRAIN_IMAGES) / (MAX_EPOCHS * TRAIN_IMAGES)


FIDELITIES = {
    "epochs2": Fidelity(epochs=2),
    "epochs3": Fidelity(epochs=3),
    "epochs5": Fidelity(epochs=5),
    "subset5": Fidelity(train_size=TRAIN_IMAGES // 5),  # the whole 15-epoch schedule on a fifth
}

# What a promotion rule could read off a cheap run (higher is better).
SCORES = {
    "val_final": lambda a: a["val_acc"][-1],
    "-val_loss": lambda a: -a["val_loss"][-1],
}


def sample_trials(sample: Sample) -> list[optuna.trial.FrozenTrial]:
    """The sample's candidates trained all 15 epochs (rejected ones never trained)."""
    study = optuna.load_study(study_name=sample.study, storage=open_storage(storage_url(sample.journal)))
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(t.user_attrs.get("val_acc", [])) == MAX_EPOCHS]


def config(sample: Sample, name: str, workers: int | None, root: Path) -> SearchConfig:
    f = FIDELITIES[name]
    return SearchConfig(
        storage=storage_url(sample.storage), recipe=Recipe(epochs=f.epochs),
        data=DataConfig(root=root, train_size=f.train_size), study_name=f"fidelity-{name}",
        trials=len(sample_trials(sample)), pruner="none", sampler="random", with_baselines=False,
        workers=workers or 2, seed=0, space=sample.space,
    )


def run(sample: Sample, name: str, workers: int | None) -> None:
    from search import study as studies
    from search.execution import identity
    from search.results import document

    cfg = config(sample, name, workers, Path(os.environ.get(DATA_ENV) or "data"))
    study = identity.open_search(cfg)
    for t in sample_trials(sample):  # the same candidates, in the sample's order; queued once
        study.enqueue_trial(t.params, user_attrs={"sample_trial": t.number}, skip_if_exists=True)
    print(f"{cfg.study_name}: {cfg.trials} candidates at {FIDELITIES[name]} on {cpu_model()}")
    studies.run_search(cfg, on_event=lambda e: isinstance(e, studies.TrialFinished)
                       and print(document.trial_line(e.trial), flush=True))


def front(points: dict[int, tuple[float, int]]) -> set[int]:
    return {n for n, (s, p) in points.items()
            if not any(s2 >= s and p2 <= p and (s2 > s or p2 < p) for s2, p2 in points.values())}


def promote_by_score(scores: dict[int, float], k: int) -> set[int]:
    return set(sorted(scores, key=lambda n: -scores[n])[:k])


def promote_by_fronts(scores: dict[int, float], params: dict[int, int], k: int) -> set[int]:
    """Non-dominated sorting on (score, params): whole fronts first, the last one cut by score."""
    left, chosen = dict(scores), set()
    while left and len(chosen) < k:
        layer = front({n: (left[n], params[n]) for n in left})
        chosen |= set(sorted(layer, key=lambda n: -left[n])[: k - len(chosen)])
        for n in layer:
            left.pop(n)
    return chosen


def table(chosen: Sample) -> None:
    sample = {t.number: t for t in sample_trials(chosen)}
    objective = {n: t.values[0] for n, t in sample.items()}
    test = {n: t.user_attrs["test_acc"][-1] for n, t in sample.items()}
    params = {n: t.user_attrs["params"] for n, t in sample.items()}
    best_front = front({n: (objective[n], params[n]) for n in sample})
    top_quarter = set(sorted(sample, key=lambda n: -objective[n])[: math.ceil(len(sample) / 4)])
    k = math.ceil(len(sample) / 3)
    full_seconds = statistics.median(t.user_attrs["seconds"] for t in sample.values())

    rows = []  # (name, cost, seconds, score name, {sample number: score})
    for e in (2, 3, 5):
        for score, fn in SCORES.items():
            rows.append((f"trunc-e{e}", e / MAX_EPOCHS, None, score,
                         {n: fn({k2: v[:e] for k2, v in t.user_attrs.items() if k2.startswith("val_")})
                          for n, t in sample.items()}))
    path = Path(chosen.storage)
    storage = open_storage(storage_url(chosen.storage)) if path.exists() else None
    for name, f in FIDELITIES.items():
        try:
            study = optuna.load_study(study_name=f"fidelity-{name}", storage=storage) if storage else None
        except KeyError:
            study = None
        if study is None:
            continue
        done = {t.user_attrs["sample_trial"]: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get("sample_trial") in sample}
        if not done:
            continue
        seconds = statistics.median(t.user_attrs["seconds"] for t in done.values())
        for score, fn in SCORES.items():
            rows.append((name, f.cost, seconds, score, {n: fn(t.user_attrs) for n, t in done.items()}))

    print(f"sample: {len(sample)} candidates trained 15 epochs ({chosen.journal}); front {len(best_front)}, "
          f"top quarter {len(top_quarter)}, promotion keeps the best {k} (a third)")
    print(f"full run: median {full_seconds / 60:.1f} min per candidate on the machine that ran the sample; "
          f"cheap runs below: {cpu_model()}, 2 single-thread workers")
    print(f"{'fidelity':<10} {'n':>3} {'cost':>5} {'min/cand':>8} {'score':<10} {'rho objective':>15} "
          f"{'rho test':>13} {'front kept':>11} {'top-q kept':>11} {'front kept':>11} {'top-q kept':>11}")
    print(f"{'':<10} {'':>3} {'(FRE)':>5} {'':>8} {'':<10} {'':>15} {'':>13} {'by score':>11} {'by score':>11} "
          f"{'by fronts':>11} {'by fronts':>11}")
    for name, cost, seconds, score, values in rows:
        ns = sorted(values)
        x = [values[n] for n in ns]
        rho_o, rho_t = spearman(x, [objective[n] for n in ns]), spearman(x, [test[n] for n in ns])
        se_o, se_t = bootstrap_se(x, [objective[n] for n in ns]), bootstrap_se(x, [test[n] for n in ns])
        kk = math.ceil(len(ns) / 3)
        by_score = promote_by_score(values, kk)
        by_fronts = promote_by_fronts(values, params, kk)
        fr, tq = best_front & set(ns), top_quarter & set(ns)
        mins = "-" if seconds is None else f"{seconds / 60:.1f}"
        print(f"{name:<10} {len(ns):>3} {cost:>5.2f} {mins:>8} {score:<10} {rho_o:>8.2f} ± {se_o:.2f} "
              f"{rho_t:>6.2f} ± {se_t:.2f} {len(by_score & fr):>5}/{len(fr):<5} {len(by_score & tq):>5}/{len(tq):<5} "
              f"{len(by_fronts & fr):>5}/{len(fr):<5} {len(by_fronts & tq):>5}/{len(tq):<5}")
    print("rho: Spearman's rank correlation over the candidates, ± its bootstrap standard error; "
          "FRE: full-run equivalents of training images; trunc-eN reads epoch N of the full runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", choices=SAMPLES, default="chain",
                        help="the chain space's unpruned sample (default) or the stages space's")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the sample's candidates at one fidelity (resumable)")
    r.add_argument("fidelity", choices=FIDELITIES)
    r.add_argument("--workers", type=int, default=None)
    sub.add_parser("table", help="the fidelity table (reads only)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.command == "run":
        run(SAMPLES[args.sample], args.fidelity, args.workers)
    else:
        table(SAMPLES[args.sample])


if __name__ == "__main__":
    main()
