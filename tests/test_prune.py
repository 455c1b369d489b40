"""The pruning rules on hand-made curves, and their offline replay."""

import math

import pytest

from search.config import score
from search.strategy.prune import (AnyOf, Dominated, Gate, Hopeless, Median, NoPruner, Outpaced, Peer, make_pruner,
                                   pareto)
from search.strategy.replay import Recorded, front, replay
from search.strategy.stats import noise
from spaces import Arch, Candidate

ARCH = Arch(8, 16, 8, 12, None, 14, 14, 0.01)


def phases(lr_step: int | None, n: int = 15) -> tuple:
    cand = (Candidate(ARCH, lr=0.1, lr_step=lr_step) if lr_step else
            Candidate(ARCH, lr=0.1, lr_step=None, schedule="onecycle"))
    return tuple(cand.phase(e) for e in range(1, n + 1))


STEP = phases(8)
PEERS = [Peer(params=p, val_acc=(97.0 + i * 0.2, 98.0 + i * 0.2, 98.5 + i * 0.2), phases=STEP) for i, p in
         enumerate([4000, 5000, 6000, 7000, 8000, 9000])]


def me(params: int, *curve: float, ph: tuple = STEP) -> Peer:
    return Peer(params, tuple(curve), ph)


def test_noise_is_the_binomial_standard_error_in_points():
    assert noise(99.0, 5000) == pytest.approx(100 * math.sqrt(0.99 * 0.01 / 5000))
    assert 0.13 < noise(99.0, 5000) < 0.15 and noise(99.0, 20000) < noise(99.0, 5000)
    assert noise(100.0, 5000) > 0  # a perfect score is still a measurement


def test_dominated_prunes_a_curve_beaten_by_smaller_networks_by_more_than_the_noise():
    reason = Dominated().prune(3, me(8500, 96.0, 96.5, 97.0), PEERS)
    assert reason is not None and "beaten by" in reason and "epoch 3" in reason


def test_a_one_epoch_dip_smaller_than_the_noise_does_not_cut_a_candidate():
    # Smaller peers sit at 99.20-99.25; the candidate, level with them, dips 0.2 points at
    # epoch 10 (1.4 standard errors of one figure): the old fixed 0.05-point margin cut it.
    flat = tuple([99.2] * 15)
    peers = [Peer(p, tuple(a + d for a in flat), STEP) for p, d in ((3000, 0.0), (4000, 0.03), (5000, 0.05))]
    dip = me(6000, *([99.2] * 9 + [99.0]))
    assert Dominated(z=0, margin=0.05).prune(10, dip, peers) is not None  # the v1 rule
    assert Dominated(z=2.0).prune(10, dip, peers) is None
    assert Dominated(z=1.0, window=2).prune(10, dip, peers) is None
    assert pareto().prune(10, dip, peers) is None
    finished = [Peer(p.params, p.val_acc, p.phases, final=score(p.val_acc)) for p in peers]
    assert pareto().prune(10, dip, finished) is None  # nor by peers that finished (Outpaced)
    assert Outpaced(z=1.0, window=1, dominators=1).prune(10, dip, finished) is not None  # at z=1 it would
    # a real gap, 1 point behind for two epochs, is still cut
    behind = me(6000, *([98.2] * 10))
    assert pareto().prune(10, behind, peers) is not None


def test_dominated_never_prunes_a_small_network_for_losing_to_larger_ones():
    assert Dominated().prune(3, me(3000, 90.0, 90.0, 90.0), PEERS) is None
    assert Median().prune(3, me(3000, 90.0, 90.0, 90.0), PEERS) is not None  # a median rule would


def test_a_hopeless_curve_is_pruned_whatever_its_size():
    leaders = [Peer(6000, (98.0, 98.5, 98.6), STEP, final=99.1), Peer(8000, (98.1, 98.6, 98.7), STEP, final=99.0)]
    # error 2.5% at epoch 3 vs the leaders' 1.4% and 1.3%: over 1.5x both
    reason = Hopeless().prune(3, me(3000, 96.0, 97.0, 97.5), leaders)
    assert reason is not None and "leading trials" in reason
    assert Hopeless().prune(3, me(3000, 96.0, 97.0, 98.0), leaders) is None  # 2.0% < 1.5 x 1.4%
    weak = [leaders[0], Peer(2000, (96.0, 96.5, 97.0), STEP, final=98.0)]  # far below the best: no leader
    assert Hopeless().prune(3, me(3000, 96.0, 97.0, 97.5), weak) is None


def test_outpaced_cuts_a_candidate_that_cannot_catch_a_smaller_finished_net_on_any_schedule():
    oc = phases(None)
    plateau = (97.0, 97.4, 97.6, 97.7, 97.8, 97.8, 97.8, 97.9, 98.0, 98.0, 98.0, 98.0, 98.0, 98.0, 98.0)
    learners = [Peer(9000, plateau, STEP, final=98.0) for _ in range(3)]  # the gain after epoch 9: 0 points
    small = Peer(4000, tuple([99.2] * 15), oc, final=99.2)  # a smaller one-cycle net, finished
    mine = me(6000, *plateau[:8], 97.5)
    assert Outpaced(z=1.0, dominators=1, window=1).prune(9, mine, [*learners, small]) is not None
    assert Dominated(z=1.0, window=3).prune(9, mine, [*learners, small]) is None  # blind across schedules
    # a curve at the same point that gained 2 points after epoch 9 leaves it hope: kept
    climber = Peer(9000, plateau[:8] + (97.0,) + (99.0,) * 6, STEP, final=99.0)
    assert Outpaced(z=1.0, dominators=1, window=1).prune(9, mine, [*learners, climber, small]) is None
    # fewer than min_curves finished curves at its point of the schedule: no judgement
    assert Outpaced(z=1.0, dominators=1, window=1).prune(9, mine, [*learners[:2], small]) is None
    # the finished net is larger: a small candidate is never cut for losing to it
    big = Peer(7000, small.val_acc, oc, final=99.2)
    assert Outpaced(z=1.0, dominators=1, window=1).prune(9, mine, [*learners, big]) is None


def test_a_late_step_candidate_is_not_pruned_for_trailing_early_steppers_before_its_step():
    early = phases(6)
    curve_e = (97.5, 98.0, 98.2, 98.3, 98.3, 98.4, 99.0, 99.1, 99.1, 99.1, 99.2, 99.2, 99.2, 99.2, 99.2)
    peers = [Peer(p, curve_e, early, final=99.2) for p in (3000, 4000, 5000)]
    late = phases(10)
    curve = (97.5, 98.0, 98.2, 98.3, 98.3, 98.4, 98.3, 98.4, 98.5, 98.4)
    rules = (pareto(), Gate(Median(min_peers=3)))
    for rule in rules:
        for e in range(7, 11):
            assert rule.prune(e, Peer(6000, curve[:e], late), peers) is None, (rule, e)
        blind = [Peer(p.params, p.val_acc, (), p.final) for p in peers]  # compared blind to the schedule
        assert rule.prune(7, Peer(6000, curve[:7], late), blind) is not None
    # once both have dropped once they are comparable again: far behind now is pruned
    assert pareto().prune(11, Peer(6000, curve + (98.2,), late), peers) is not None


def test_the_phase_counts_every_drop_of_the_step_schedule():
    assert phases(4)[:13] == tuple(("step", k) for k in (0,) * 4 + (1,) * 4 + (2,) * 4 + (3,))
    assert phases(8)[7:9] == (("step", 0), ("step", 1))


def test_onecycle_runs_are_judged_only_against_onecycle_runs_and_only_after_the_peak():
    oc = phases(None)
    step_peers = [Peer(p, (98.0, 98.5, 98.8), STEP[:3], final=99.2) for p in (1000, 2000, 3000)]
    assert Dominated().prune(3, Peer(5000, (90.0, 92.0, 95.0), oc), step_peers) is None
    oc_peers = [Peer(p, tuple([98.5] * 15), oc) for p in (1000, 2000, 3000)]
    weak = Peer(5000, tuple([96.0] * 6), oc)
    gate = Gate(Dominated(), warmup=3, epochs=15)
    assert gate.first_epoch(weak) == 6  # the lr peaks at 30% of 15 epochs
    assert [gate.prune(e, weak, oc_peers) is not None for e in (3, 4, 5, 6)] == [False, False, False, True]
    assert Gate(Dominated(), after_peak=False).prune(3, weak, oc_peers) is not None
    assert gate.first_epoch(Peer(5000, (96.0,), STEP)) == 3


def test_warmup_and_minimum_peers_hold_judgement():
    for rule in (pareto(), make_pruner("median")):
        assert rule.prune(2, me(9999, 50.0, 50.0), PEERS) is None  # epoch 2 < warmup 3
    assert Dominated().prune(3, me(9999, 50.0, 50.0, 50.0), PEERS[:2]) is None  # 2 peers < 3
    assert Median().prune(3, me(9999, 50.0, 50.0, 50.0), PEERS[:4]) is None  # 4 peers < 5
    short = [Peer(p.params, p.val_acc[:2], STEP) for p in PEERS]
    assert Dominated().prune(3, me(9999, 50.0, 50.0, 50.0), short) is None  # nobody reached epoch 3


def test_any_of_gives_the_first_reason_and_none_never_prunes():
    class Says:
        def __init__(self, word):
            self.word = word

        def prune(self, epoch, me, peers):
            return self.word

    assert AnyOf((Says(None), Says("b"), Says("c"))).prune(3, me(1, 1.0), []) == "b"
    assert AnyOf((Says(None),)).prune(3, me(1, 1.0), []) is None
    assert NoPruner().prune(10, me(10**6, 0.0), PEERS) is None
    with pytest.raises(ValueError, match="pareto, median, none"):
        make_pruner("hyperband")


def test_score_is_the_mean_of_the_last_three_epochs():
    assert score([90.0, 99.0, 99.2, 99.1]) == pytest.approx(99.1)
    assert score([98.0]) == 98.0


def test_front_keeps_what_nothing_beats_on_both():
    assert front({1: (99.0, 5000), 2: (98.0, 6000), 3: (98.5, 3000), 4: (99.0, 5000)}) == {1, 3, 4}


def test_replay_counts_epochs_and_lets_pruned_trials_drop_out_as_leaders():
    full = lambda a: tuple([a] * 15)  # noqa: E731
    trials = [
        Recorded(0, 6000, full(99.0), STEP, True, started=0, finished=10),
        Recorded(1, 7000, full(98.9), STEP, True, started=0, finished=10),
        Recorded(2, 3000, full(97.0), STEP, True, started=11, finished=20),  # hopeless: cut at 3
        Recorded(3, 2000, (96.0, 96.5, 97.0, 97.1), STEP[:4], False, started=21, finished=25),
    ]
    hopeless = Gate(Hopeless())
    r = replay(trials, hopeless, 15, score)
    assert r.stopped_at == {0: None, 1: None, 2: 3, 3: 3}
    assert r.epochs_recorded == 15 * 3 + 4 and r.epochs_replayed == 15 * 2 + 3 + 3
    assert r.unknown == [] and r.cut([2, 3]) == [2, 3]
    keep_all = replay(trials, NoPruner(), 15, score)
    assert keep_all.unknown == [3] and keep_all.epochs_replayed == keep_all.epochs_recorded
    assert replay(trials, Gate(Dominated(dominators=99)), 15, score).cut([2, 3]) == []
    # as a sequential search in another order: trial 2 first has no peers, so nothing cuts it
    assert replay(trials, hopeless, 15, score, order=[2, 0, 1, 3]).stopped_at[2] is None


def test_the_default_never_cuts_the_smallest_network_however_far_behind():
    # v1's `Hopeless` cut the unpruned sample's two smallest front nets (2,594 and 2,606
    # parameters); the default judges a net only against networks no larger than it.
    oc = phases(None)
    leaders = [Peer(p, tuple([99.2] * 15), oc, final=99.2) for p in (5000, 6000, 7000, 8000)]
    tiny = Peer(2500, tuple([96.5] * 10), oc)
    assert Gate(Hopeless()).prune(10, tiny, leaders) is not None
    assert pareto().prune(10, tiny, leaders) is None
