"""Promotion from the rung (search.strategy.promote) on synthetic rung results."""

from __future__ import annotations

import random

import pytest

from search.config import Goal
from search.strategy.promote import Promotion, RungResult, peers_for

RULE = Promotion(eta=3, z=1.0, val_size=5_000)


def test_the_first_candidate_of_a_rung_is_promoted():
    assert RULE.decide(RungResult(4_000, 90.0), []) is None


def test_a_clearly_better_candidate_is_promoted_and_a_clearly_worse_one_is_not():
    peers = [RungResult(4_000, s) for s in (97.0, 97.2, 97.4, 97.6, 97.8, 98.0)]
    assert RULE.decide(RungResult(4_000, 98.8), peers) is None
    reason = RULE.decide(RungResult(4_000, 96.0), peers)
    assert reason is not None and "6 of 6" in reason


def test_a_noise_level_difference_is_not_decisive():
    # Six peers each 0.1 ahead, within one standard error of the difference (about 0.28
    # at 98% on 5,000 images): nobody counts as ahead, so the candidate moves on.
    peers = [RungResult(4_000, 98.1) for _ in range(6)]
    assert RULE.decide(RungResult(4_000, 98.0), peers) is None
    # the same gap on a much larger validation set is decisive
    assert Promotion(val_size=1_000_000).decide(RungResult(4_000, 98.0), peers) is not None


def test_about_one_in_eta_of_a_spread_rung_moves_on():
    rng = random.Random(0)
    results = [RungResult(4_000, rng.uniform(90.0, 99.0)) for _ in range(300)]
    promoted = sum(RULE.decide(r, [p for p in results if p is not r]) is None for r in results)
    assert 300 / 3 <= promoted <= 300 / 3 + 30  # the best third, plus those within noise of its edge


def test_without_a_goal_a_network_is_ranked_only_among_networks_no_larger():
    small, big = RungResult(2_000, 95.0), RungResult(8_000, 99.0)
    others = [big, RungResult(1_500, 94.0)]
    assert peers_for(small, others, Goal()) == [RungResult(1_500, 94.0)]
    assert RULE.decide(small, peers_for(small, others, Goal())) is None  # the larger nets do not hold it back


def test_with_a_parameter_goal_every_network_within_it_is_a_peer_and_none_beyond():
    me = RungResult(4_500, 97.0)
    others = [RungResult(1_000, 99.0), RungResult(4_900, 98.0), RungResult(7_000, 99.5)]
    assert peers_for(me, others, Goal(max_params=5_000)) == others[:2]


def test_a_promoting_search_trains_the_rung_first_and_only_the_promoted_in_full(tmp_path):
    # End to end on synthetic digits, one worker: every trained candidate records its rung,
    # the decision and its reason; only promoted ones train the full protocol.
    from optuna.trial import TrialState

    from search.config import Recipe
    from search.execution import workers
    from search.strategy.promote import Promotion, RungResult
    from tests.test_search import config, load, synthetic_data

    goal = Goal(max_params=6_000)  # every network within it is a peer
    cfg = config(tmp_path, trials=8, recipe=Recipe(epochs=3, batch_size=64), strategy="promote", rung_epochs=1,
                 eta=3, goal=goal)
    assert cfg.promotes
    workers.run_worker(cfg, data=synthetic_data())
    trained = [t for t in load(cfg).trials if "rung_val_acc" in t.user_attrs]
    assert trained and trained[0].user_attrs["promoted"] is True  # nothing to rank the first against
    rule = Promotion(eta=3, val_size=cfg.data.val_size)
    for i, t in enumerate(trained):
        a = t.user_attrs
        assert len(a["rung_val_acc"]) == 1 and "Promotion(eta=3" in a["promotion"]
        me = RungResult(a["params"], a["rung_val_acc"][-1])
        earlier = [RungResult(p.user_attrs["params"], p.user_attrs["rung_val_acc"][-1]) for p in trained[:i]]
        assert a["promoted"] == (rule.decide(me, peers_for(me, earlier, goal)) is None)  # the rule, replayed in order
        if a["promoted"]:
            assert t.state == TrialState.COMPLETE and len(a["val_acc"]) == 3
        else:
            assert t.state == TrialState.PRUNED and "val_acc" not in a
            assert a["state_reason"].startswith("not promoted: rung score")
    assert {t.user_attrs["promoted"] for t in trained} == {True, False}  # both paths ran


def test_a_trial_on_its_rung_shows_the_rung_in_the_progress_line():
    from optuna.trial import TrialState

    from search.progress import search_status

    class T:
        def __init__(self, number, state, attrs):
            self.number, self.state, self.user_attrs = number, state, attrs

    on_rung = T(0, TrialState.RUNNING, {"params": 4_000, "rung_val_acc": [97.1], "rung_epoch_seconds": [20.0]})
    promoted = T(1, TrialState.RUNNING, {"params": 4_000, "rung_val_acc": [97.0, 98.0, 98.5], "promoted": True,
                                         "val_acc": [96.0], "epoch_seconds": [20.0]})
    stopped = T(2, TrialState.PRUNED, {"params": 3_000, "rung_val_acc": [95.0, 96.0, 96.5], "promoted": False,
                                       "rung_epoch_seconds": [20.0] * 3})
    running, done, left = search_status([on_rung, promoted, stopped], total=4, epochs=15, workers=1, rung_epochs=3)
    assert running[0].text() == "trial 0 (4,000 params): rung epoch 1/3  val 97.10%  20 s/epoch"
    assert running[1].text().startswith("trial 1 (4,000 params): epoch 1/15  val 96.00%")
    # left: 2 + 14 epochs of the running ones, and one trial to start at the 3 epochs the finished one trained
    assert done == 1 and left == pytest.approx((2 + 14 + 3) * 20.0)
