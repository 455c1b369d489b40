from search.prune import MedianPruner, NoPruner, ParetoPruner, Peer, make_pruner

PEERS = [Peer(params=p, val_acc=(97.0 + i * 0.2, 98.0 + i * 0.2, 98.5 + i * 0.2)) for i, p in
         enumerate([4000, 5000, 6000, 7000, 8000, 9000])]


def test_pareto_prunes_a_curve_beaten_by_smaller_networks():
    reason = ParetoPruner().prune(3, 98.0, 8500, PEERS)
    assert reason is not None and "beaten by" in reason and "epoch 3" in reason


def test_pareto_keeps_a_better_curve():
    assert ParetoPruner().prune(3, 99.9, 8500, PEERS) is None


def test_pareto_never_prunes_a_small_network_for_losing_to_larger_ones():
    # the smallest network of all: nothing with fewer parameters can dominate it
    assert ParetoPruner().prune(3, 90.0, 3000, PEERS) is None
    assert MedianPruner().prune(3, 90.0, 3000, PEERS) is not None  # a median rule would


def test_warmup_and_minimum_peers_hold_judgement():
    for pruner in (ParetoPruner(), MedianPruner()):
        assert pruner.prune(2, 50.0, 9999, PEERS) is None  # epoch 2 < warmup 3
        assert pruner.prune(3, 50.0, 9999, PEERS[:4]) is None  # 4 peers < 5
    short = [Peer(p.params, p.val_acc[:2]) for p in PEERS]
    assert ParetoPruner().prune(3, 50.0, 9999, short) is None  # nobody reached epoch 3


def test_pareto_margin_absorbs_validation_noise():
    peers = [Peer(1000, (98.02, 98.02, 98.02))] * 5
    assert ParetoPruner(margin=0.05).prune(3, 98.0, 5000, peers) is None
    assert ParetoPruner(margin=0.0).prune(3, 98.0, 5000, peers) is not None


def test_median_prunes_below_and_keeps_above():
    assert MedianPruner().prune(3, 98.0, 5000, PEERS) is not None
    assert MedianPruner().prune(3, 99.5, 5000, PEERS) is None


def test_none_never_prunes_and_names_are_checked():
    assert NoPruner().prune(10, 0.0, 10**6, PEERS) is None
    assert isinstance(make_pruner("pareto"), ParetoPruner)
    try:
        make_pruner("hyperband")
    except ValueError as e:
        assert "pareto, median, none" in str(e)
    else:
        raise AssertionError("unknown pruner accepted")
