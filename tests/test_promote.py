"""Promotion from the rung (search.promote) on synthetic rung results."""

from __future__ import annotations

import random

from search.config import Goal
from search.promote import Promotion, RungResult, peers_for

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
