"""The lever pilot's bookkeeping (benchmarks/levers.py): which runs pair, and the rule's verdicts."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import levers  # noqa: E402


def test_every_lever_arm_differs_from_what_it_pairs_with_in_that_lever_alone():
    runs = {(net, lever): (cand, on, ref) for net, lever, _, cand, on, ref in levers.plan([1])}
    for (net, lever), (cand, on, ref) in runs.items():
        if lever == "base":
            continue
        other = runs[(net, ref)][0]
        assert cand != other, (net, lever)
        assert cand.arch.head == other.arch.head or lever == "gap", (net, lever)  # the head moves with its lever only
    # padding and a second pool on the chain pair with the gap-headed chain, not the avg6 base
    assert runs[("v3-t50", "padded")][2] == runs[("v3-t50", "pool2")][2] == "gap"
    assert runs[("design3762", "pool2")][2] == "base" and ("design3762", "padded") not in runs


def test_the_published_design_at_its_own_recipe_is_the_pilots_third_network():
    from baselines import PUBLISHED

    assert levers.NETS["design3762"] == PUBLISHED["design3762"].candidate
    assert [levers.NETS[n].arch.params for n in ("v3-t50", "v4-t28", "design3762")] == [4_960, 3_672, 3_762]


def test_the_verdict_reads_each_networks_sign_against_the_seed_noise():
    # opposite signs well beyond the seeds' spread: the sign depends on the network
    assert levers.verdict({"a": [0.30, 0.32], "b": [-0.30, -0.28], "c": [0.0, 0.02]}).startswith("dimension")
    # opposite signs inside the noise: nothing to say per network, and no gain overall
    assert levers.verdict({"a": [0.30, -0.20], "b": [-0.25, 0.15], "c": [0.1, -0.1]}) == "left out"
    # a gain on every network, beyond one standard error
    assert levers.verdict({"a": [0.10, 0.12], "b": [0.08, 0.11], "c": [0.09, 0.13]}) == "default (on)"
    assert levers.verdict({"a": [0.1]}) == "too few pairs"


def test_a_failed_arm_is_named_and_leaves_no_pair(tmp_path):
    rows = []
    for net, lever, seed, cand, on, ref in levers.plan([1]):
        row = {"net": net, "lever": lever, "seed": seed, "candidate": cand.describe(), "score": 99.0 + 0.1 * on}
        if (net, lever) == ("v4-t28", "momentum"):
            row = {k: v for k, v in row.items() if k != "score"} | {"error": "Diverged: the training loss became nan"}
        rows.append(row)
    text = levers.table(rows)
    assert "momentum on v4-t28, seed 1: Diverged" in text
    momentum = next(line for line in text.splitlines() if line.startswith("| momentum"))
    assert "v4-t28" not in momentum and "| 2 |" in momentum  # two pairs: v3-t50's and the design's
