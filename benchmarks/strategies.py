"""Search strategies compared with repetitions, on the surrogate of the drill.

    python benchmarks/strategies.py                      # 20 repetitions, both families (~30 min on 2 cores)
    python benchmarks/strategies.py --reps 5 --families forest   # a quick look
    python benchmarks/strategies.py --json out.json      # also the raw outcomes, for plots

One run of a search is one draw of a strategy: v2 and v3 were one draw each, and the gaps
between them sit inside the seed noise. Here every strategy runs many times against a
surrogate of the objective (`surrogate.py`, which also says how far it can be trusted):
a candidate's search score is the surrogate's value plus seed noise of the measured size,
its 3-epoch rung score the rung surrogate's value plus rung noise, and each costs what it
costs in the tool, in full-run equivalents (FRE: 15 epochs on 55,000 images = 1; a
3-epoch rung = 0.2). Candidates over the goal are rejected untrained, at no cost, as the
tool does. The sampler code is the tool's own (`search.strategy.sampler.make_sampler`, the same
`spaces.sample`), and the promotion rule is `search.strategy.promote.Promotion`.

A strategy is a sampler, a rung and a selection policy:
- samplers: random sampling (the baseline to beat); Optuna's default multi-objective TPE
  (`TPESampler()`, score and parameters); the tool's goal-aimed TPE (v3's, `tpe` with the
  goal's view); NSGA-II (the tool's, population 20). GPSampler is left out: with this
  space's conditional parameters it asks 20 s per trial by its 70th trial on 2 cores
  (measured 2026-12-07, AMD EPYC Zen 3), longer than a 3-epoch rung, and samples c5 and
  lr_step at random.
- rungs: none (every candidate trains the full protocol); v3's noise-aware rung (the best
  third move on, a difference within 1 SE of the best never holds one back: Promotion(z=1));
  strict successive halving (the best third by rung score: Promotion(z=0)).
- selection: none (hand over the best search score within the goal); v3's (up to 4
  leaders within 2 SE of the best, two more seeds each, the best mean of 3); a race (up to
  6 leaders; one more seed per round for each survivor; a leader whose mean trails the best
  mean by more than 2 SE of the difference is dropped; at most 3 more seeds each).

At a total budget T (search plus selection, in FRE) the search stops where its spend plus
its selection's cost fits in T. What a user gets is scored by the surrogate's noise-free
value of the net handed over (its median and quartiles over repetitions), the hypervolume
within the goal of the nets the search trained (noise-free values, reference 98.5% and
the goal's parameters), and the chance that the strategy hands over a better net than
random sampling (no rung, no selection) at the same budget and repetition index, with a
95% Wilson interval.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

import spaces  # noqa: E402
from search.config import Goal  # noqa: E402
from search.strategy.promote import Promotion, RungResult  # noqa: E402
from search.strategy.sampler import RUNG_SCORE, make_sampler  # noqa: E402
from surrogate import FAMILIES, full_runs, params_of, replicates, rung_runs, search_to_test, seed_sd  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

GOAL = 5000
RUNG_COST = 3 / 15  # a 3-epoch rung on the same images, in full runs
HV_FLOOR = 98.5  # the hypervolume's reference score (percent)
SAMPLERS = ("random", "tpe-default", "tpe-goal", "nsga2")
RUNGS = {"none": None, "v3 rung": Promotion(eta=3, z=1.0), "strict rung": Promotion(eta=3, z=0.0)}
SELECTIONS = ("none", "v3", "race")


@dataclass(frozen=True)
class World:
    """The objective the strategies search: noise-free values and noise levels.

    `value(c)` is the search score a candidate would average over seeds, `rung(c)` its
    3-epoch rung score; a run observes either plus Gaussian noise of `sd` / `rung_sd`."""

    value: Callable[[Sequence[spaces.Candidate]], np.ndarray]
    rung: Callable[[Sequence[spaces.Candidate]], np.ndarray]
    sd: float
    rung_sd: float
    goal: int = GOAL


@dataclass
class Trained:
    candidate: spaces.Candidate
    params: int
    true: float  # noise-free value
    seen: float  # the search run's score
    spent: float  # FRE spent by the search when this finished


@dataclass
class Search:
    """What one search run trained, in order, and what it spent."""

    trained: list[Trained] = field(default_factory=list)
    spent: float = 0.0
    checkpoints: list[tuple[float, int]] = field(default_factory=list)  # (spent, len(trained))
    asked: list[float] = field(default_factory=list)  # the spend when each trial finished

    def asked_within(self, total: float) -> int:
        """Trials finished (rejected, stopped at the rung or trained) within `total` FRE."""
        return sum(spent <= total for spent in self.asked)


def make(sampler: str | optuna.samplers.BaseSampler, seed: int) -> optuna.samplers.BaseSampler:
    """A sampler by name (or one given as it is, e.g. an oracle in the tests)."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler == "tpe-default":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "tpe-goal":
        return make_sampler("tpe", seed, goal=Goal(max_params=GOAL))
    return make_sampler(sampler, seed)


def search(world: World, sampler: str | optuna.samplers.BaseSampler, rung: Promotion | None, budget: float, seed: int) -> Search:
    """One search run until it has spent `budget` FRE (the last candidate may overrun)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make(sampler, seed))
    out, rungs = Search(), []
    asked = 0
    while out.spent < budget and asked < 20 * budget + 50:
        asked += 1
        trial = study.ask()
        cand = spaces.sample(trial)
        params = params_of(cand)
        trial.set_user_attr("params", params)
        if params > world.goal:
            study.tell(trial, state=TrialState.PRUNED)  # rejected untrained, as the tool does
            out.asked.append(out.spent)
            continue
        if rung is not None:
            score = float(world.rung([cand])[0] + rng.normal(0, world.rung_sd))
            out.spent += RUNG_COST
            me = RungResult(params, score)
            verdict = rung.decide(me, rungs)
            rungs.append(me)
            trial.set_user_attr(RUNG_SCORE, [score])
            if verdict is not None:
                study.tell(trial, state=TrialState.PRUNED)
                out.checkpoints.append((out.spent, len(out.trained)))
                out.asked.append(out.spent)
                continue
        true = float(world.value([cand])[0])
        seen = true + float(rng.normal(0, world.sd))
        out.spent += 1.0
        out.trained.append(Trained(cand, params, true, seen, out.spent))
        out.checkpoints.append((out.spent, len(out.trained)))
        out.asked.append(out.spent)
        study.tell(trial, [seen, params])
    return out


def leaders(trained: Sequence[Trained], sd: float, most: int, z: float = 2.0) -> list[Trained]:
    """The trials one run cannot tell from the best: within z SE of the difference."""
    pool = sorted(trained, key=lambda t: -t.seen)
    if not pool:
        return []
    return [t for t in pool if pool[0].seen - t.seen <= z * math.sqrt(2) * sd][:most]


def select(trained: Sequence[Trained], policy: str, world: World, rng: np.random.Generator) -> tuple[Trained | None, float]:
    """The net a selection policy hands over and the FRE it spends."""
    if not trained:
        return None, 0.0
    if policy == "none":
        return max(trained, key=lambda t: t.seen), 0.0
    if policy == "v3":
        group = leaders(trained, world.sd, most=4)
        if len(group) == 1:
            return group[0], 0.0
        means = [statistics.fmean([t.seen, *(t.true + rng.normal(0, world.sd, 2))]) for t in group]
        return group[int(np.argmax(means))], 2.0 * len(group)
    if policy == "race":
        group = leaders(trained, world.sd, most=6)
        alive = {i: [t.seen] for i, t in enumerate(group)}
        spent = 0.0
        for _ in range(3):
            if len(alive) == 1:
                break
            for i in alive:
                alive[i].append(group[i].true + rng.normal(0, world.sd))
                spent += 1.0
            best = max(statistics.fmean(s) for s in alive.values())
            alive = {i: s for i, s in alive.items()
                     if best - statistics.fmean(s) <= 2.0 * world.sd * math.sqrt(2.0 / len(s))}
        winner = max(alive, key=lambda i: statistics.fmean(alive[i]))
        return group[winner], spent
    raise ValueError(policy)


def hypervolume(trained: Sequence[Trained], goal: int) -> float:
    """Area (score points x thousands of parameters) dominated by the trained nets' noise-free
    values within the goal, against (HV_FLOOR, goal)."""
    pts = sorted((t.params, t.true) for t in trained if t.true > HV_FLOOR)
    area, best = 0.0, HV_FLOOR
    for i, (p, s) in enumerate(pts):
        best = max(best, s)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else goal
        area += (nxt - p) / 1000 * (best - HV_FLOOR)
    return area


@dataclass(frozen=True)
class Stop:
    """Where a search stops so that its selection fits a total budget: the checkpoint it
    stood at (`trained` candidates, `searched` FRE), the net handed over and what choosing
    it cost (FRE)."""

    trained: int = 0
    searched: float = 0.0
    chosen: Trained | None = None
    cost: float = 0.0


def stop(run: Search, policy: str, total: float, world: World, seed: int) -> Stop:
    """The search's longest prefix whose spend plus its selection's cost fits in `total`."""
    best = Stop()
    for spent, n in run.checkpoints:
        if spent > total:
            break
        chosen, cost = select(run.trained[:n], policy, world, np.random.default_rng([seed, n]))
        if spent + cost <= total:
            best = Stop(n, spent, chosen, cost)
    return best


def outcome(run: Search, policy: str, total: float, world: World, seed: int) -> tuple[float, float, float]:
    """(noise-free value handed over, hypervolume, FRE spent) at a total budget (`stop`)."""
    at = stop(run, policy, total, world, seed)
    return (at.chosen.true if at.chosen else math.nan, hypervolume(run.trained[:at.trained], world.goal),
            at.searched + at.cost)


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def beats(a: Sequence[float], b: Sequence[float]) -> float:
    """Share of repetitions i where a[i] > b[i] (ties count half; no net handed over loses)."""
    wins = 0.0
    for x, y in zip(a, b):
        x = -math.inf if math.isnan(x) else x
        y = -math.inf if math.isnan(y) else y
        wins += 1.0 if x > y else 0.5 if x == y else 0.0
    return wins / len(a)


def world_for(family: str, seed: int = 0) -> World:
    runs = full_runs()
    sd, _ = seed_sd(list(replicates().values()))
    value = FAMILIES[family]().fit(runs)
    rung = FAMILIES[family]().fit(rung_runs())
    # The rung's seed noise is not measured (no candidate trained its rung twice): one
    # final-epoch accuracy, against the search score's mean of three epochs, taken as
    # sqrt(3) times the search score's noise.
    return World(value=cached(value.predict), rung=cached(rung.predict), sd=sd, rung_sd=sd * math.sqrt(3))


def cached(predict: Callable) -> Callable:
    memo: dict = {}

    def f(candidates):
        missing = [c for c in candidates if c not in memo]
        if missing:
            memo.update(zip(missing, predict(missing)))
        return np.array([memo[c] for c in candidates])

    return f


@dataclass(frozen=True)
class Row:
    family: str
    sampler: str
    rung: str
    selection: str
    total: float
    values: tuple[float, ...]
    hvs: tuple[float, ...]
    spent: tuple[float, ...]


def compare(world: World, family: str, reps: int, totals: Sequence[float], samplers=SAMPLERS,
            rungs=tuple(RUNGS), selections=SELECTIONS, log=print) -> list[Row]:
    rows = []
    for sampler in samplers:
        for rung in rungs:
            t0 = time.time()
            runs = [search(world, sampler, RUNGS[rung], max(totals), seed=1000 * rep + 7) for rep in range(reps)]
            for selection in selections:
                for total in totals:
                    outs = [outcome(r, selection, total, world, seed=rep) for rep, r in enumerate(runs)]
                    rows.append(Row(family, sampler, rung, selection, total, tuple(o[0] for o in outs),
                                    tuple(o[1] for o in outs), tuple(o[2] for o in outs)))
            log(f"  {family} {sampler} {rung}: {reps} searches in {time.time() - t0:.0f} s")
    return rows


def baseline_of(rows: Sequence[Row], row: Row) -> Row:
    return next(r for r in rows if (r.family, r.sampler, r.rung, r.selection, r.total)
                == (row.family, "random", "none", "none", row.total))


def table(rows: Sequence[Row]) -> str:
    lines = ["| surrogate | sampler | rung | selection | budget (FRE) | value handed over: median [q1, q3] | "
             "HV within goal: median | beats random (95% CI) |",
             "| --- | --- | --- | --- | ---: | --- | ---: | --- |"]
    for r in rows:
        v = [x for x in r.values if not math.isnan(x)]
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75]) if v else (math.nan,) * 3
        p = beats(r.values, baseline_of(rows, r).values)
        lo, hi = wilson(p * len(r.values), len(r.values))
        lines.append(f"| {r.family} | {r.sampler} | {r.rung} | {r.selection} | {r.total:g} | "
                     f"{med:.3f} [{q1:.3f}, {q3:.3f}] | {statistics.median(r.hvs):.2f} | "
                     f"{p:.0%} ({lo:.0%}-{hi:.0%}) |")
    return "\n".join(lines)


def predict(world: World, sampler: str, rung: str, total: float, reps: int) -> dict:
    """What one search of a strategy (no selection) hands over at `total` FRE, over `reps`
    searches: the noise-free value and the search score it was chosen on, and how many
    trials it finished (rejected ones included: what `run --trials` counts)."""
    true, seen, trials = [], [], []
    for rep in range(reps):
        run = search(world, sampler, RUNGS[rung], total, seed=50_000 + rep)
        n = max((n for spent, n in run.checkpoints if spent <= total), default=0)
        done = [t for t in run.trained[:n]]
        if done:
            best = max(done, key=lambda t: t.seen)
            true.append(best.true)
            seen.append(best.seen)
        trials.append(run.asked_within(total))
    return {"true": true, "seen": seen, "trials": trials}


def quartiles(x: Sequence[float]) -> str:
    q = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    return f"median {q[2]:.3f}, quartiles {q[1]:.3f}-{q[3]:.3f}, 90% range {q[0]:.3f}-{q[4]:.3f}"


def figure(rows: Sequence[Row], total: float):
    """Box plots of the value handed over at one budget, one panel per surrogate family:
    every sampler x rung, without selection (selection policies are in the table)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    families = sorted({r.family for r in rows})
    fig = make_subplots(rows=1, cols=len(families), shared_yaxes=True,
                        subplot_titles=[f"{f} surrogate" for f in families])
    colours = {"none": "#636efa", "v3 rung": "#ef553b", "strict rung": "#00cc96"}
    for col, family in enumerate(families, start=1):
        for rung, colour in colours.items():
            chosen = [r for r in rows if (r.family, r.total, r.selection, r.rung) == (family, total, "none", rung)]
            fig.add_trace(go.Box(y=[v for r in chosen for v in r.values],
                                 x=[r.sampler for r in chosen for _ in r.values], name=rung, marker_color=colour,
                                 boxpoints="all", jitter=0.5, pointpos=0, marker_size=3,
                                 showlegend=col == 1, legendgroup=rung), row=1, col=col)
    fig.update_layout(boxmode="group", title=f"Noise-free value of the net handed over at {total:g} FRE "
                      f"({len(rows[0].values)} searches per box; goal 5,000 params)",
                      yaxis_title="surrogate validation score (%)", legend_title="rung")
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--families", default="forest,gp")
    ap.add_argument("--totals", default="15,25,42", help="total budgets in FRE (42: v3's search and re-evaluation)")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--json", help="write every outcome here")
    ap.add_argument("--predict", metavar="SAMPLER/RUNG/FRE",
                    help="only the distribution one search of this strategy hands over, e.g. random/v3 rung/22")
    ap.add_argument("--from-json", help="read the outcomes a previous run wrote instead of running")
    ap.add_argument("--figure", help="write the figure at the middle budget as plotly JSON here "
                                     "(benchmarks/render_front.py --from-json turns it into a PNG)")
    args = ap.parse_args()
    totals = [float(x) for x in args.totals.split(",")]
    if args.predict:
        sampler, rung, total = args.predict.split("/")
        offsets = np.array(search_to_test())
        print(f"confirmed test mean minus search score, {len(offsets)} searched nets within 5,000 params: "
              f"{offsets.mean():+.3f} (SD {offsets.std(ddof=1):.3f})")
        for family in args.families.split(","):
            p = predict(world_for(family), sampler, rung, float(total), args.reps)
            test = np.add.outer(p["seen"], offsets).ravel()  # every search x every confirmed net's offset
            print(f"{family}: {args.predict}, {args.reps} searches: value handed over {quartiles(p['true'])}; "
                  f"its search score {quartiles(p['seen'])}; trials finished {quartiles(p['trials'])}; "
                  f"test mean over seeds 1-3 it would confirm at {quartiles(test)}, "
                  f"P(>= 99.40) {np.mean(test >= 99.395):.1%}")
        return
    rows = []
    if args.from_json:
        rows = [Row(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
                for d in json.loads(Path(args.from_json).read_text())]
        totals = sorted({r.total for r in rows})
    for family in [] if args.from_json else args.families.split(","):
        world = world_for(family)
        print(f"{family}: seed noise {world.sd:.3f}, rung noise {world.rung_sd:.3f} (assumed)", flush=True)
        rows += compare(world, family, args.reps, totals, samplers=args.samplers.split(","))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows]))
    if args.figure:
        figure(rows, totals[len(totals) // 2]).write_json(args.figure)


if __name__ == "__main__":
    main()
