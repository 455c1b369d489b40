"""The strategy benchmark on a synthetic world: its yardsticks and its sanity checks (a
strategy given the answer beats random sampling; random against random is a tie)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

import spaces

ROOT = Path(__file__).parents[1]


sys.path.insert(0, str(ROOT / "benchmarks"))
import strategies  # noqa: E402  (benchmark scripts, not a package)
import surrogate  # noqa: E402


def _value(c: spaces.Candidate) -> float:
    """A known objective: best near 4,500 parameters and lr 0.1, worse away from both."""
    p = surrogate.params_of(c)
    return 99.2 - 0.4 * math.log(p / 4500) ** 2 - 0.3 * abs(math.log(c.lr / 0.1)) - 2 * c.arch.dropout


WORLD = strategies.World(value=lambda cs: np.array([_value(c) for c in cs]),
                         rung=lambda cs: np.array([_value(c) - 0.6 for c in cs]), sd=0.086, rung_sd=0.15)


def _best_known() -> spaces.Candidate:
    pool = [c for c in surrogate.random_candidates(400, seed=3) if surrogate.params_of(c) <= strategies.GOAL]
    return max(pool, key=_value)


def _values(sampler_of, reps: int, budget: float = 6.0, rung=None, offset: int = 0) -> list[float]:
    out = []
    for rep in range(reps):
        run = strategies.search(WORLD, sampler_of(rep), rung, budget, seed=rep + offset)
        out.append(strategies.outcome(run, "none", budget, WORLD, seed=rep)[0])
    return out


def test_a_strategy_given_the_answer_beats_random_sampling():
    answer = spaces.encode(_best_known())
    oracle = _values(lambda rep: optuna.samplers.PartialFixedSampler(answer, optuna.samplers.RandomSampler(seed=rep)), 10)
    random = _values(lambda rep: "random", 10)
    assert strategies.beats(oracle, random) >= 0.9


def test_random_against_random_is_a_tie():
    a = _values(lambda rep: "random", 20)
    b = _values(lambda rep: "random", 20, offset=100)
    lo, hi = strategies.wilson(strategies.beats(a, b) * 20, 20)
    assert lo < 0.5 < hi


def test_the_search_spends_its_budget_and_rejects_over_the_goal_for_free():
    run = strategies.search(WORLD, "random", strategies.RUNGS["strict rung"], 4.0, seed=1)
    assert 4.0 <= run.spent < 4.0 + 1.0 + strategies.RUNG_COST
    assert all(t.params <= strategies.GOAL for t in run.trained)
    spent = [s for s, _ in run.checkpoints]
    assert spent == sorted(spent) and spent[-1] == pytest.approx(run.spent)


def test_a_selection_that_costs_runs_leaves_a_shorter_search():
    # at one total budget, what the re-evaluation of the leaders (v3) spends is taken off
    # the search: it stops at an earlier checkpoint than a free selection (none)
    run = strategies.search(WORLD, "random", None, 10.0, seed=2)
    free = strategies.stop(run, "none", 10.0, WORLD, seed=0)
    costly = strategies.stop(run, "v3", 10.0, WORLD, seed=0)
    _, at_the_end = strategies.select(run.trained[:free.trained], "v3", WORLD, np.random.default_rng([0, free.trained]))
    assert free.cost == 0 and free.searched + at_the_end > 10.0  # v3's leaders after the whole search: too dear
    assert costly.searched < free.searched and costly.trained < free.trained
    assert free.searched <= 10.0 and costly.searched + costly.cost <= 10.0
    assert (costly.searched, costly.trained) in [(s, n) for s, n in run.checkpoints]  # where the search stood
    assert strategies.outcome(run, "v3", 10.0, WORLD, seed=0)[2] == costly.searched + costly.cost


def test_the_race_drops_a_leader_that_trails_by_far_more_than_the_noise():
    c = _best_known()
    good = strategies.Trained(c, 4000, true=99.2, seen=99.20, spent=1)
    bad = strategies.Trained(c, 4000, true=98.0, seen=99.15, spent=2)  # one lucky run
    chosen, cost = strategies.select([good, bad], "race", WORLD, np.random.default_rng(0))
    assert chosen is good and cost == 2.0  # one more seed each, then the bad one is out


def test_hypervolume_counts_only_nets_within_the_goal_above_the_floor():
    c = _best_known()
    t = lambda p, s: strategies.Trained(c, p, true=s, seen=s, spent=0)  # noqa: E731
    assert strategies.hypervolume([t(4000, 99.5)], 5000) == pytest.approx(1.0)
    assert strategies.hypervolume([t(4000, 99.5), t(4500, 99.0)], 5000) == pytest.approx(1.0)
    assert strategies.hypervolume([t(3000, 99.0), t(4000, 99.5)], 5000) == pytest.approx(0.5 + 1.0)
    assert strategies.hypervolume([t(3000, 98.0)], 5000) == 0.0


def test_the_noise_ceiling_of_a_perfect_model():
    rng = np.random.default_rng(0)
    truth = rng.normal(99.0, 0.2, 4000)
    seen = truth + rng.normal(0, 0.1, 4000)
    assert surrogate.ceiling(list(seen), 0.1) == pytest.approx(np.corrcoef(truth, seen)[0, 1], abs=0.02)
    assert surrogate.seed_sd([[1.0, 3.0], [5.0, 5.0]]) == (pytest.approx(math.sqrt(2 / 2)), 2)


@pytest.mark.parametrize("family", sorted(surrogate.FAMILIES))
def test_both_surrogate_families_rank_unseen_candidates_of_a_known_objective(family):
    seen = surrogate.random_candidates(120, seed=5)
    unseen = surrogate.random_candidates(60, seed=6)
    runs = [surrogate.Run("synthetic", i, c, _value(c)) for i, c in enumerate(seen)]
    model = surrogate.FAMILIES[family]().fit(runs)
    assert surrogate.spearman(list(model.predict(unseen)), [_value(c) for c in unseen]) > 0.8
