"""What share of each space's random draws fits a parameter budget.

    python benchmarks/space_share.py                 # budgets 3,000 / 4,000 / 5,000 / 10,000
    python benchmarks/space_share.py --draws 20000

The chain space: exact, by enumerating every width the grid holds, weighted as Optuna's
RandomSampler draws them (block 5 present half the time, each width uniform); dropout,
pooling and the recipe do not change the count. The stages space: the share of
RandomSampler draws (of `spaces.stages.sample`, the FittingSampler's own draws) that
build and fit, with its binomial standard error; it also says how many draws a trial
within the budget costs the FittingSampler on average (1 / share).
"""

from __future__ import annotations

import argparse
import itertools
import math

import optuna

from spaces import Arch, stages
from spaces import space as chain


def chain_shares(budgets: list[int]) -> dict[int, float]:
    grid = {name: list(range(d.low, d.high + 1, d.step)) for name, d in chain.SPACE.items()
            if name in ("c1", "c2", "t", "c4", "c5", "c6", "c7")}
    within = {b: 0.0 for b in budgets}
    base = [grid[k] for k in ("c1", "c2", "t", "c4", "c6", "c7")]
    for c1, c2, t, c4, c6, c7 in itertools.product(*base):
        weight = 1.0 / math.prod(len(v) for v in base)
        sizes = [(0.5, Arch(c1, c2, t, c4, None, c6, c7, 0.0).params)]
        sizes += [(0.5 / len(grid["c5"]), Arch(c1, c2, t, c4, c5, c6, c7, 0.0).params) for c5 in grid["c5"]]
        for b in budgets:
            within[b] += weight * sum(w for w, p in sizes if p <= b)
    return within


def stages_shares(budgets: list[int], draws: int, seed: int) -> dict[int, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    counts = {b: 0 for b in budgets}
    for _ in range(draws):
        trial = study.ask()
        try:
            params = stages.sample(trial).arch.params
        except ValueError:  # no network
            params = None
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        for b in budgets:
            counts[b] += params is not None and params <= b
    return {b: n / draws for b, n in counts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="3000,4000,5000,10000")
    ap.add_argument("--draws", type=int, default=10_000, help="stages space: random draws (default 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    exact = chain_shares(budgets)
    sampled = stages_shares(budgets, args.draws, args.seed)
    print(f"{'budget':>8}  {'chain (exact)':>13}  {'stages (sampled)':>22}  {'stages draws per fit':>20}")
    for b in budgets:
        p = sampled[b]
        se = math.sqrt(p * (1 - p) / args.draws)
        per = f"{1 / p:,.0f}" if p else "-"
        print(f"{b:>8,}  {100 * exact[b]:>12.1f}%  {100 * p:>10.1f}% ± {100 * se:.1f}%  {per:>20}")
    print(f"stages: {args.draws:,} draws of Optuna's RandomSampler (seed {args.seed}); a draw that makes no network "
          "counts as not fitting")


if __name__ == "__main__":
    main()
