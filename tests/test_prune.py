"""The pruning rules on hand-made curves, and their offline replay."""

import math

import pytest

from search.objective import score
from search.prune import MedianPruner, NoPruner, ParetoPruner, Peer, Recorded, make_pruner, replay
from spaces import Arch, Candidate

STEP = ("step", 0)  # before the first learning-rate drop
PEERS = [Peer(params=p, val_acc=(97.0 + i * 0.2, 98.0 + i * 0.2, 98.5 + i * 0.2)) for i, p in
         enumerate([4000, 5000, 6000, 7000, 8000, 9000])]


def phases(lr_step: int, n: int = 15) -> tuple:
    cand = Candidate(Arch(8, 16, 8, 12, None, 14, 14, 0.01), lr=0.1, lr_step=lr_step)
    return tuple(cand.phase(e) for e in range(1, n + 1))


def test_pareto_prunes_a_curve_beaten_by_smaller_networks():
    reason = ParetoPruner().prune(3, 98.0, 8500, STEP, PEERS)
    assert reason is not None and "beaten by" in reason and "epoch 3" in reason


def test_pareto_keeps_a_better_curve():
    assert ParetoPruner().prune(3, 99.9, 8500, STEP, PEERS) is None


def test_pareto_never_prunes_a_small_network_for_losing_to_larger_ones():
    # the smallest network of all, and no complete leader: nothing can dominate it
    assert ParetoPruner().prune(3, 97.0, 3000, STEP, PEERS) is None
    assert MedianPruner().prune(3, 97.0, 3000, STEP, PEERS) is not None  # a median rule would


def test_a_hopeless_curve_is_pruned_whatever_its_size():
    leaders = [Peer(6000, (98.0, 98.5, 98.6), final=99.1), Peer(8000, (98.1, 98.6, 98.7), final=99.0)]
    # 3,000 params, error 2.5% at epoch 3 vs the leaders' 1.4% and 1.3%: over 1.5x both
    reason = ParetoPruner().prune(3, 97.5, 3000, STEP, leaders)
    assert reason is not None and "leading trials" in reason
    assert ParetoPruner().prune(3, 98.0, 3000, STEP, leaders) is None  # 2.0% < 1.5 x 1.4%
    # a complete trial far below the best is no leader: with it the rule needs two leaders
    weak = [leaders[0], Peer(2000, (96.0, 96.5, 97.0), final=98.0)]
    assert ParetoPruner().prune(3, 97.5, 3000, STEP, weak) is None


def test_a_late_step_candidate_is_not_pruned_for_trailing_early_steppers_before_its_step():
    # Peers dropped their lr after epoch 6 and jumped; the candidate (lr_step 10) trails them
    # at epochs 7-10 only because it has not dropped yet. Judged like with like, it stays.
    early = phases(6)
    peers = [Peer(p, (97.5, 98.0, 98.2, 98.3, 98.3, 98.4, 99.0, 99.1, 99.1, 99.1, 99.2, 99.2, 99.2, 99.2, 99.2),
                  early, final=99.2) for p in (3000, 4000, 5000)]
    late = phases(10)
    curve = (97.5, 98.0, 98.2, 98.3, 98.3, 98.4, 98.3, 98.4, 98.5, 98.4)
    for rule in (ParetoPruner(), MedianPruner(min_peers=3)):
        for e in range(7, 11):
            assert rule.prune(e, curve[e - 1], 6000, late[e - 1], peers) is None, (rule, e)
        # the same curve compared blind to the schedule would have been cut at epoch 7
        blind = [Peer(p.params, p.val_acc, (), p.final) for p in peers]
        assert rule.prune(7, curve[6], 6000, late[6], blind) is not None
    # once both have dropped once they are comparable again: far behind now is pruned
    assert ParetoPruner().prune(11, 98.2, 6000, late[10], peers) is not None


def test_the_phase_counts_every_drop_of_the_step_schedule():
    assert phases(4)[:13] == tuple(("step", k) for k in (0,) * 4 + (1,) * 4 + (2,) * 4 + (3,))
    assert phases(8)[7:9] == (("step", 0), ("step", 1))  # the lr drops after epoch 8


def test_onecycle_runs_are_judged_only_against_onecycle_runs():
    cand = Candidate(Arch(8, 16, 8, 12, None, 14, 14, 0.01), lr=0.1, lr_step=None, schedule="onecycle")
    assert cand.phase(3) == ("onecycle", 3) and cand.phase(3) != phases(8)[2]
    step_peers = [Peer(p, (98.0, 98.5, 98.8), phases(8)[:3], final=99.2) for p in (1000, 2000, 3000)]
    assert ParetoPruner().prune(3, 95.0, 5000, cand.phase(3), step_peers) is None


def test_warmup_and_minimum_peers_hold_judgement():
    for pruner in (ParetoPruner(), MedianPruner()):
        assert pruner.prune(2, 50.0, 9999, STEP, PEERS) is None  # epoch 2 < warmup 3
    assert ParetoPruner().prune(3, 50.0, 9999, STEP, PEERS[:2]) is None  # 2 peers < 3
    assert MedianPruner().prune(3, 50.0, 9999, STEP, PEERS[:4]) is None  # 4 peers < 5
    short = [Peer(p.params, p.val_acc[:2]) for p in PEERS]
    assert ParetoPruner().prune(3, 50.0, 9999, STEP, short) is None  # nobody reached epoch 3


def test_pareto_margin_absorbs_validation_noise():
    peers = [Peer(1000, (98.02, 98.02, 98.02))] * 5
    assert ParetoPruner(margin=0.05).prune(3, 98.0, 5000, STEP, peers) is None
    assert ParetoPruner(margin=0.0).prune(3, 98.0, 5000, STEP, peers) is not None


def test_median_prunes_below_and_keeps_above():
    assert MedianPruner().prune(3, 98.0, 5000, STEP, PEERS) is not None
    assert MedianPruner().prune(3, 99.5, 5000, STEP, PEERS) is None


def test_none_never_prunes_and_names_are_checked():
    assert NoPruner().prune(10, 0.0, 10**6, STEP, PEERS) is None
    assert isinstance(make_pruner("pareto"), ParetoPruner)
    with pytest.raises(ValueError, match="pareto, median, none"):
        make_pruner("hyperband")


def test_score_is_the_mean_of_the_last_three_epochs():
    assert score([90.0, 99.0, 99.2, 99.1]) == pytest.approx(99.1)
    assert score([98.0]) == 98.0


def test_replay_counts_epochs_and_lets_pruned_trials_drop_out_as_leaders():
    full = lambda a: tuple([a] * 15)  # noqa: E731
    trials = [
        Recorded(0, 6000, full(99.0), phases(8), True, started=0, finished=10),
        Recorded(1, 7000, full(98.9), phases(8), True, started=0, finished=10),
        Recorded(2, 3000, full(97.0), phases(8), True, started=11, finished=20),  # hopeless: cut at 3
        Recorded(3, 2000, (96.0, 96.5, 97.0, 97.1), phases(8)[:4], False, started=21, finished=25),
    ]
    r = replay(trials, ParetoPruner(), 15, score)
    assert r.stopped_at == {0: None, 1: None, 2: 3, 3: 3}
    assert r.epochs_recorded == 15 * 3 + 4 and r.epochs_replayed == 15 * 2 + 3 + 3
    assert r.unknown == [] and r.cut([2, 3]) == [2, 3]
    keep_all = replay(trials, NoPruner(), 15, score)
    assert keep_all.unknown == [3] and keep_all.epochs_replayed == keep_all.epochs_recorded
    assert replay(trials, ParetoPruner(ratio=math.inf, dominators=99), 15, score).cut([2, 3]) == []
