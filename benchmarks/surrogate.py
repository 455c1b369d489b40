"""The drill as a surrogate: models of the search's objective fitted to every recorded run.

    python benchmarks/surrogate.py                  # the validity table (a minute on 2 cores)

A surrogate benchmark (Eggensperger et al., AAAI 2015; HPOBench, YAHPO Gym, NAS-Bench-301)
replaces the 15-epoch training by a model fitted to recorded training runs, so that search
strategies can be run against it many times at almost no cost (`strategies.py`). Such a
model can be trusted only as far as it predicts runs it has not seen, so this script
measures that before anything uses it:

- the data: every candidate of v1 (`reference`), the unpruned random sample, v2 and v3
  that trained all 15 epochs under the search protocol (objective: mean validation
  accuracy of the last 3 epochs, 5,000 held-out images); for the 3-epoch rung, the
  fidelity study's `epochs3` runs and v3's rungs (final-epoch validation accuracy of the
  compressed schedule, what `search.strategy.promote` reads);
- the seed noise: the same candidate trained again under the same protocol (the rounds in
  v1, v2 and v3, and v3's re-evaluation), pooled within-candidate standard deviation;
- validity, leaving one study out: fit on the others, predict the held-out study;
  Spearman's rho and mean absolute error, beside two references measured on the same
  held-out trials: the parameter count alone (rho of parameters against the score), and
  the noise ceiling (how well one seed's scores rank the same networks as another seed's,
  from the confirmations: the best any model of a noisy objective can hope for);
- where it extrapolates: how far random points of the space lie from the nearest recorded
  run, against how far recorded runs lie from each other.

Two model families, so that a conclusion that flips between them is visibly not one: a
random forest (sklearn, as Eggensperger et al. and HPOBench use) and a Gaussian process
(Matern 5/2 with one length scale per feature and a learned noise level).
Pruned trials are left out: their final score is unknown (the pruner stopped them because
they trailed), so the data over-represent the better half of the space.
"""

from __future__ import annotations

import math
import statistics
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import spaces  # noqa: E402
from search.engine.model import count_params  # noqa: E402
from search.execution.storage import open_storage  # noqa: E402
from selection import spearman  # noqa: E402  (a sibling script)

optuna.logging.set_verbosity(optuna.logging.WARNING)

# name -> (journal under studies/, search study, confirmation study or None)
STUDIES = {
    "v1": ("reference", "search", "search-confirm"),
    "sample": ("unpruned", "unpruned", None),
    "v2": ("v2", "search", "search-confirm"),
    "v3": ("v3", "search", "search-confirm"),
}
REEVALUATIONS = {"v3": ("v3", "search-reeval")}
RUNG_EPOCHS = 3


@dataclass(frozen=True)
class Run:
    """One recorded training of a candidate: where it comes from and its score."""

    study: str
    number: int
    candidate: spaces.Candidate
    score: float  # percent; the search's objective, or the rung's final-epoch val accuracy

    @property
    def params(self) -> int:
        return params_of(self.candidate)


@lru_cache(maxsize=None)
def _params_of_arch(arch: spaces.Arch) -> int:
    return count_params(arch)


def params_of(candidate: spaces.Candidate) -> int:
    return _params_of_arch(candidate.arch)


def _study(journal: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(str(ROOT / "studies" / f"{journal}.journal")))


def full_runs() -> list[Run]:
    """Every candidate of the four searches that trained all 15 epochs."""
    runs = []
    for name, (journal, study, _) in STUDIES.items():
        for t in _study(journal, study).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if len(t.user_attrs.get("val_acc", [])) == 15:
                runs.append(Run(name, t.number, spaces.decode(t.params), t.values[0]))
    return runs


def rung_runs() -> list[Run]:
    """Every complete 3-epoch short schedule: the fidelity study's and v3's rungs."""
    runs = [Run("fidelity", t.number, spaces.decode(t.params), t.user_attrs["val_acc"][-1])
            for t in _study("fidelity", "fidelity-epochs3").get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    for t in _study("v3", "search").get_trials(deepcopy=False):
        rung = t.user_attrs.get("rung_val_acc") or []
        if len(rung) == RUNG_EPOCHS and t.params:
            runs.append(Run("v3-rung", t.number, spaces.decode(t.params), rung[-1]))
    return runs


def replicates() -> dict[spaces.Candidate, list[float]]:
    """Candidate -> every score the search protocol gave it on different seeds: the rounds
    (trained in v1, v2 and v3 alike) and v3's re-evaluation (search run plus two seeds)."""
    out: dict[spaces.Candidate, list[float]] = {}
    for r in full_runs():
        out.setdefault(r.candidate, []).append(r.score)
    for journal, study in REEVALUATIONS.values():
        for t in _study(journal, study).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            out.setdefault(spaces.decode(t.params), []).append(t.values[0])
    return {c: s for c, s in out.items() if len(s) >= 2}


def seed_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Pooled within-group standard deviation and its degrees of freedom."""
    ss = sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in groups)
    df = sum(len(g) - 1 for g in groups)
    return math.sqrt(ss / df), df


def noise_ceiling() -> list[float]:
    """Spearman's rho between two seeds' final test accuracies over the same confirmed
    networks, for every pair of seeds in every study's confirmation (seeds 1-3)."""
    out = []
    for journal, _, confirm in STUDIES.values():
        if confirm is None:
            continue
        by: dict[tuple, dict[int, float]] = {}
        for t in _study(journal, confirm).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            seed = t.user_attrs.get("confirm_seed")
            if seed in (1, 2, 3):
                by.setdefault(tuple(sorted(t.params.items(), key=str)), {}).setdefault(seed, t.values[0])
        full = [s for s in by.values() if len(s) == 3]
        if len(full) >= 5:
            for a, b in ((1, 2), (1, 3), (2, 3)):
                out.append(spearman([s[a] for s in full], [s[b] for s in full]))
    return out



def search_to_test(goal: int = 5000) -> list[float]:
    """For every searched network of at most `goal` parameters confirmed on seeds 1-3: its
    mean final-epoch test accuracy minus the search score it was chosen on (one seed,
    validation). Turns a search score into the test mean a confirmation would report."""
    out = []
    for journal, study, confirm in STUDIES.values():
        if confirm is None:
            continue
        searched = {t.number: t for t in _study(journal, study).get_trials(deepcopy=False)}
        tests: dict[int, dict[int, float]] = {}
        for t in _study(journal, confirm).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            source, seed = t.user_attrs.get("source_trial"), t.user_attrs.get("confirm_seed")
            if source is not None and seed in (1, 2, 3):
                tests.setdefault(source, {})[seed] = t.values[0]
        for number, by_seed in tests.items():
            t = searched.get(number)
            if len(by_seed) == 3 and t is not None and t.values and params_of(spaces.decode(t.params)) <= goal:
                out.append(statistics.fmean(by_seed.values()) - t.values[0])
    return out

# -- features ------------------------------------------------------------------------------

FEATURES = ("c1", "c2", "t", "c4", "c5", "block5", "c6", "c7", "dropout", "gap", "log lr", "onecycle",
            "lr_step", "log2 batch", "rotation", "log params")


def features(c: spaces.Candidate) -> list[float]:
    """A candidate as numbers; absent conditional values as 0 (block5 and onecycle say so)."""
    a = c.arch
    return [a.c1, a.c2, a.t, a.c4, a.c5 or 0, float(a.c5 is not None), a.c6, a.c7, a.dropout,
            float(a.pool == "gap"), math.log(c.lr), float(c.schedule == "onecycle"), c.lr_step or 0,
            math.log2(c.batch_size), c.rotation, math.log(params_of(c))]


def matrix(candidates: Sequence[spaces.Candidate]) -> np.ndarray:
    return np.array([features(c) for c in candidates], dtype=float)


def _bounds() -> tuple[np.ndarray, np.ndarray]:
    """Each feature's range over the space (the log-params range from its extreme corners)."""
    lo = [4, 8, 4, 4, 0, 0, 4, 4, 0.0, 0, math.log(0.01), 0, 0, math.log2(64), 0.0, math.log(500)]
    hi = [16, 32, 16, 20, 20, 1, 20, 20, 0.15, 1, math.log(0.3), 1, 12, math.log2(256), 20.0, math.log(60000)]
    return np.array(lo, dtype=float), np.array(hi, dtype=float)


def scaled(x: np.ndarray) -> np.ndarray:
    """Features mapped to [0, 1] over the space, so that distances weigh them alike."""
    lo, hi = _bounds()
    return (x - lo) / (hi - lo)


# -- models --------------------------------------------------------------------------------


class Surrogate:
    """A fitted model of a score: `predict(candidates)` gives the noise-free value."""

    name = "?"

    def fit(self, runs: Sequence[Run]) -> Surrogate:
        raise NotImplementedError

    def predict(self, candidates: Sequence[spaces.Candidate]) -> np.ndarray:
        raise NotImplementedError


class Forest(Surrogate):
    name = "random forest"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, runs: Sequence[Run]) -> Forest:
        from sklearn.ensemble import RandomForestRegressor

        self.model = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, max_features=0.5,
                                           random_state=self.seed, n_jobs=1)
        self.model.fit(scaled(matrix([r.candidate for r in runs])), [r.score for r in runs])
        return self

    def predict(self, candidates: Sequence[spaces.Candidate]) -> np.ndarray:
        return self.model.predict(scaled(matrix(candidates)))


class Process(Surrogate):
    name = "Gaussian process"

    def fit(self, runs: Sequence[Run]) -> Process:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        d = len(FEATURES)
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.ones(d), (5e-2, 1e2), nu=2.5)
                  + WhiteKernel(0.1, (1e-4, 1.0)))
        self.model = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bound warnings of the kernel's optimiser
            self.model.fit(scaled(matrix([r.candidate for r in runs])), [r.score for r in runs])
        return self

    def predict(self, candidates: Sequence[spaces.Candidate]) -> np.ndarray:
        return self.model.predict(scaled(matrix(candidates)))


FAMILIES: dict[str, Callable[[], Surrogate]] = {"forest": Forest, "gp": Process}


# -- validity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heldout:
    family: str
    study: str
    n: int
    rho: float
    mae: float
    rho_params: float  # the parameter count alone, on the same trials
    rho_within_goal: float  # the model's rho among held-out trials of at most 5,000 params
    n_within_goal: int
    ceiling_within_goal: float  # what a perfect model could reach there (see `ceiling`)
    bias: float  # mean of predicted minus recorded


def ceiling(scores: Sequence[float], sd: float) -> float:
    """The correlation a perfect model (the noise-free value) would reach with scores that
    carry seed noise of `sd`: sqrt(1 - sd^2 / var(scores)), the classical attenuation."""
    var = statistics.variance(scores)
    return math.sqrt(max(0.0, 1.0 - sd * sd / var))


def leave_one_study_out(runs: Sequence[Run], family: str, sd: float, goal: int = 5000) -> list[Heldout]:
    out = []
    for study in STUDIES:
        train = [r for r in runs if r.study != study]
        test = [r for r in runs if r.study == study]
        pred = FAMILIES[family]().fit(train).predict([r.candidate for r in test])
        y = [r.score for r in test]
        inside = [i for i, r in enumerate(test) if r.params <= goal]
        out.append(Heldout(family, study, len(test), spearman(list(pred), y),
                           float(np.mean(np.abs(pred - np.array(y)))),
                           spearman([r.params for r in test], y),
                           spearman([pred[i] for i in inside], [y[i] for i in inside]), len(inside),
                           ceiling([y[i] for i in inside], sd), float(np.mean(pred - np.array(y)))))
    return out


def random_candidates(n: int, seed: int = 0) -> list[spaces.Candidate]:
    """`n` points drawn uniformly from the space by Optuna's RandomSampler."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(spaces.sample(trial))
        study.tell(trial, 0.0)
    return out


def nearest(a: np.ndarray, b: np.ndarray, same: bool = False) -> np.ndarray:
    """Distance of each row of `a` to the nearest row of `b` (not itself when `same`)."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    if same:
        np.fill_diagonal(d, np.inf)
    return d.min(1)


def main() -> None:
    runs = full_runs()
    rungs = rung_runs()
    reps = replicates()
    sd, df = seed_sd(list(reps.values()))
    print(f"data: {len(runs)} full-protocol runs ("
          + ", ".join(f"{s} {sum(r.study == s for r in runs)}" for s in STUDIES)
          + f"), {len(rungs)} 3-epoch rungs, {len(reps)} candidates trained on several seeds")
    print(f"seed noise of the search score (15 epochs, val, last-3 mean): SD {sd:.3f} points "
          f"({df} degrees of freedom, pooled within candidates)")
    ceiling = noise_ceiling()
    print(f"noise ceiling (seed vs seed over confirmed nets, test, final epoch): rho {min(ceiling):.2f}-"
          f"{max(ceiling):.2f}, median {statistics.median(ceiling):.2f} ({len(ceiling)} seed pairs)")
    print()
    print("| surrogate | held out | n | rho model | rho params alone | within 5,000: n, rho model, "
          "perfect model's | MAE | bias |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |")
    for family in FAMILIES:
        for h in leave_one_study_out(runs, family, sd):
            print(f"| {family} | {h.study} | {h.n} | {h.rho:.2f} | {h.rho_params:.2f} | "
                  f"{h.n_within_goal}, {h.rho_within_goal:.2f}, {h.ceiling_within_goal:.2f} | {h.mae:.3f} | "
                  f"{h.bias:+.3f} |")
    print()
    for family in FAMILIES:
        model = FAMILIES[family]().fit(runs)
        resid = np.array([r.score for r in runs]) - model.predict([r.candidate for r in runs])
        print(f"{family}: in-sample residual SD {resid.std():.3f} (seed noise {sd:.3f})")
    print()
    x = scaled(matrix([r.candidate for r in runs]))
    within = nearest(x, x, same=True)
    far = nearest(scaled(matrix(random_candidates(500))), x)
    q = np.quantile(within, 0.95)
    print(f"extrapolation: recorded runs lie a median {np.median(within):.2f} from their nearest neighbour "
          f"(95th percentile {q:.2f}); random points of the space a median {np.median(far):.2f}, "
          f"{np.mean(far > q):.0%} of them beyond the 95th percentile")


if __name__ == "__main__":
    main()
