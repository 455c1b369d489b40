"""How well does the search's objective predict confirmed test accuracy?

    python benchmarks/selection.py --storage studies/reference.journal

Reads a search study and its confirmation study (`<name>-confirm`). For every confirmed
architecture that the search also trained (front trials and the rounds), it compares
candidate selection metrics, all computed from the search run's validation curve, with
the mean final-epoch test accuracy over the confirmation seeds:

    val_final     final-epoch validation accuracy (the objective before schema 2)
    val_last3     mean validation accuracy of the last 3 epochs (the objective now)
    val_last5     mean validation accuracy of the last 5 epochs
    -val_loss3    minus the mean validation loss of the last 3 epochs

For each metric: Spearman's rank correlation with the confirmed mean, the architecture it
ranks first, that winner's drop from search to confirmation (its search-run test
accuracy, one seed, minus its confirmed mean over seeds), and its lead over val_last3 with
a paired bootstrap standard error (the same resampled architectures for both metrics). Test data never enters a
metric; it is only what the metrics are held against.

Before a confirmation exists, `--single-seed` holds the metrics against each complete
trial's own final-epoch test accuracy (one seed, 10,000 images): a noisier yardstick,
labelled as such.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import optuna
from optuna.trial import TrialState

import spaces
from search.config import Recipe
from search.execution.runs import is_run, run_protocol
from search.execution.storage import open_storage, storage_url
from search.results.selection import one_per_seed
from search.results.verdicts import PROTOCOL_SEEDS

METRICS = {
    "val_final": lambda a: a["val_acc"][-1],
    "val_last3": lambda a: statistics.fmean(a["val_acc"][-3:]),
    "val_last5": lambda a: statistics.fmean(a["val_acc"][-5:]),
    "-val_loss3": lambda a: -statistics.fmean(a["val_loss"][-3:]),
}


def bootstrap_se(x: list[float], y: list[float], n: int = 2000) -> float:
    """Standard error of Spearman's rho over resampled architectures: how much the
    figure would move with another set of architectures of the same kind."""
    rng = np.random.default_rng(0)
    x, y = np.asarray(x), np.asarray(y)
    rhos = [spearman(list(x[i]), list(y[i])) for i in (rng.integers(0, len(x), len(x)) for _ in range(n))]
    rhos = [r for r in rhos if r == r]  # drop resamples with no spread
    return float(np.std(rhos)) if rhos else float("nan")


def paired_difference(xa: list[float], xb: list[float], y: list[float], n: int = 2000) -> tuple[float, float]:
    """Spearman(xa, y) - Spearman(xb, y), and its standard error over resampled
    architectures, both metrics on the same resample: the figure that says whether one
    metric ranks better than the other, which two separate standard errors overstate."""
    rng = np.random.default_rng(0)
    xa, xb, y = np.asarray(xa), np.asarray(xb), np.asarray(y)
    diffs = []
    for i in (rng.integers(0, len(y), len(y)) for _ in range(n)):
        d = spearman(list(xa[i]), list(y[i])) - spearman(list(xb[i]), list(y[i]))
        if d == d:
            diffs.append(d)
    return spearman(list(xa), list(y)) - spearman(list(xb), list(y)), float(np.std(diffs)) if diffs else float("nan")


def epoch_noise(rows: list[dict], search: optuna.Study) -> str:
    """The objective's noise: the epoch-to-epoch spread of validation accuracy over the
    last 3 epochs (what averaging them removes), against the binomial standard error of
    one figure on the validation images (what no averaging removes)."""
    spreads, accs = [], []
    for t in search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        tail = t.user_attrs.get("val_acc", [])[-3:]
        if len(tail) == 3:
            spreads.append(statistics.stdev(tail))
            accs.append(statistics.fmean(tail))
    if not spreads:
        return "no complete curves"
    n = search.user_attrs.get("val_size", 5000)
    p = statistics.fmean(accs) / 100
    se = 100 * (p * (1 - p) / n) ** 0.5
    return (f"noise of the objective over {len(spreads)} complete trials: epoch-to-epoch sd over the last 3 epochs "
            f"{statistics.fmean(spreads):.3f} points (median {statistics.median(spreads):.3f}); binomial standard "
            f"error of one figure on {n:,} images at {100 * p:.2f}%: {se:.3f} points")


def ranks(x: list[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: list[float], y: list[float]) -> float:
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


FULL_RECIPE = run_protocol(Recipe(), None)  # the notebooks' recipe on all 60,000 images


def pairs(search: optuna.Study, confirm: optuna.Study) -> list[dict]:
    """One row per confirmed architecture that the search trained to the end; only
    confirmation runs of the full recipe (the default one, all 60,000 images) with the
    default seeds count, so every architecture is judged on the same seeds."""
    by_candidate: dict[spaces.Candidate, list] = {}
    for t in confirm.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cand = spaces.decode(t.params)
        if is_run(t, cand, FULL_RECIPE) and t.user_attrs.get("confirm_seed") in PROTOCOL_SEEDS:
            by_candidate.setdefault(cand, []).append(t)
    runs = {c: [t.values[0] for t in one_per_seed(ts)] for c, ts in by_candidate.items()}
    rows = []
    for t in search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cand = spaces.decode(t.params)
        if cand in runs and len(t.user_attrs.get("val_acc", [])) >= 3:
            a = t.user_attrs
            rows.append({"trial": t.number, "label": a.get("baseline") or f"trial {t.number}",
                         "params": a["params"], "search_test": a["test_acc"][-1],
                         "confirmed": statistics.fmean(runs[cand]), "seeds": len(runs[cand]),
                         **{m: f(a) for m, f in METRICS.items()}})
    return rows


def single_seed(search: optuna.Study) -> list[dict]:
    """One row per complete trial, held against its own final test accuracy."""
    rows = []
    for t in search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        if len(a.get("val_acc", [])) >= 3:
            rows.append({"trial": t.number, "label": a.get("baseline") or f"trial {t.number}",
                         "params": a["params"], "search_test": a["test_acc"][-1], "confirmed": a["test_acc"][-1],
                         "seeds": 1, **{m: f(a) for m, f in METRICS.items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study-name", default="search")
    ap.add_argument("--single-seed", action="store_true",
                    help="hold the metrics against each trial's own final test accuracy (no confirmation needed)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(storage_url(args.storage))
    search = optuna.load_study(study_name=args.study_name, storage=storage)
    if args.single_seed:
        rows = sorted(single_seed(search), key=lambda r: r["params"])
        print("yardstick: each trial's own final-epoch test accuracy, one seed (not a confirmation)")
    else:
        confirm = optuna.load_study(study_name=f"{args.study_name}-confirm", storage=storage)
        rows = sorted(pairs(search, confirm), key=lambda r: r["params"])
    yard = "test, one seed" if args.single_seed else "confirmed test (mean)"
    print(f"{len(rows)} architectures " + ("complete in the search:" if args.single_seed
                                            else "confirmed and trained by the search:"))
    print(f"{'architecture':<14} {'params':>6}  {'val_final':>9} {'val_last3':>9} {'val_loss3':>9}  "
          f"{'search test':>11}  {yard:>21}")
    for r in rows:
        print(f"{r['label']:<14} {r['params']:>6,}  {r['val_final']:>9.2f} {r['val_last3']:>9.2f} "
              f"{-r['-val_loss3']:>9.4f}  {r['search_test']:>11.2f}  {r['confirmed']:>15.2f} ({r['seeds']} seeds)")
    if len(rows) < 3:
        print("too few architectures for a rank correlation")
        return
    print(f"\n{'metric':<11} {'spearman vs ' + ('test' if args.single_seed else 'confirmed'):>21} {'(bootstrap se)':>14}  "
          f"{'its winner':<14} {'winner search test':>18}" + ("" if args.single_seed else f" {'confirmed':>9} {'drop':>6}")
          + f"  {'vs val_last3 (paired se)':>24}")
    ys = [r["confirmed"] for r in rows]
    for m in METRICS:
        xs = [r[m] for r in rows]
        w = max(rows, key=lambda r: r[m])
        diff, se = paired_difference(xs, [r["val_last3"] for r in rows], ys)
        print(f"{m:<11} {spearman(xs, ys):>21.2f} {bootstrap_se(xs, ys):>14.2f}  {w['label']:<14} {w['search_test']:>18.2f}"
              + ("" if args.single_seed else f" {w['confirmed']:>9.2f} {w['search_test'] - w['confirmed']:>+6.2f}")
              + (f"  {'-':>15}" if m == "val_last3" else f"  {diff:>+15.2f} ({se:.2f})"))
    print("\n" + epoch_noise(rows, search))


if __name__ == "__main__":
    main()
