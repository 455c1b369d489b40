"""Replay pruning rules offline on a study's recorded curves.

    python benchmarks/prune_replay.py --storage studies/unpruned.journal --study-name unpruned
    python benchmarks/prune_replay.py --storage studies/reference.journal --study-name search --orders 0

Judge rules on the unpruned sample (`studies/unpruned.journal`): every candidate there
trained all 15 epochs, so the replay knows what each stopped candidate would have become
and "front cut" can fail. On a pruned study the tails of pruned trials are unknown
(counted with the epochs they trained, column "unknown").

For each rule: the candidate-epochs it would have trained against the recorded ones
(saved), and how many of the sample's own front (complete trials, `val_acc_last3` vs
parameters) and of its top quarter by `val_acc_last3` it stops. First in the order the
trials started (peers: the trials finished before), then, with `--orders N`, as N
sequential searches in random orders (peers: the trials before), which says how much the
figures depend on the order the sample happened to run in.

With `--rounds-from STORAGE`, the complete rounds of that study (trained under the same
protocol) come first in every replay, as finished peers: a search with the rounds in
(the default) has them from the start, the sample does not. The figures stay the
sample's own (saved and cut among its trials).

With `--scale N` (default 100), also as searches of N candidates drawn with replacement
from the sample (a copy never sees copies of itself, and each original counts once
among a trial's peers): what a rule saves in a search as long as v2, whose later
candidates have more peers than any of the sample's had. "Front copies cut" is the
share of the front trials' copies it stops.

Only rules that hold one-cycle runs until their learning rate has peaked ("after
peak") can be chosen: before it, early figures barely predict the end. Every rule is
also put to the dip check (`cuts_a_dip`): a candidate level with three
smaller peers, finished or running, dips for one epoch by one standard error of the
difference; a rule that cuts it prunes on noise.

The rule to make the default (issue 15): it passes the dip check, saves at least 30% of
candidate-epochs and cuts none of the sample's front, in the recorded order, in every
random order and in every resampled search; among those, the one that saves most, then
the one that cuts fewest of the top quarter. The "choice" line names it, or says that
no rule qualifies; then the "fallback" line names the rule that cuts no front trial
anywhere and passes the dip check, saving most in the recorded order (then in the
resampled searches).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics

import optuna

from baselines import ROUNDS
from search.config import score
from search.execution.storage import open_storage, storage_url
from search.strategy.prune import AnyOf, Dominated, Gate, Hopeless, Median, NoPruner, Outpaced, Peer, pareto
from search.strategy.replay import front, recorded, replay
from search.strategy.stats import difference_se


def rules(epochs: int, n_val: int) -> dict:
    gate = lambda rule, peak=True: Gate(rule, 3, epochs, after_peak=peak)  # noqa: E731
    out = {
        "none": NoPruner(),
        "pareto (the default: outpaced z=2 window=1 dominators=1 + dominated z=1 w=3, after peak)":
            pareto(3, epochs, n_val),
        "v1 pareto (fixed 0.05 margin, 1 epoch, no peak gate)":
            gate(AnyOf((Hopeless(), Dominated(z=0, margin=0.05, n_val=n_val))), peak=False),
        "median": gate(Median()),
        "hopeless only": gate(Hopeless()),
    }
    for z in (0.5, 1.0, 2.0):
        for window in (1, 3):
            out[f"dominated only z={z:g} window={window}"] = gate(Dominated(z=z, n_val=n_val, window=window), peak=False)
    for z in (1.0, 2.0, 3.0):
        for window in (1, 2, 3):
            for peak in (False, True):
                name = f"hopeless + dominated z={z:g} window={window}{' after peak' if peak else ''}"
                out[name] = gate(AnyOf((Hopeless(), Dominated(z=z, n_val=n_val, window=window))), peak)
    for z in (1.0, 2.0):
        for window in (1, 2):
            for dominators in (1, 2):
                for peak in (True, False):
                    rule = Outpaced(z=z, n_val=n_val, window=window, dominators=dominators)
                    name = f"outpaced z={z:g} window={window} dominators={dominators}{' after peak' if peak else ''}"
                    out[name] = gate(rule, peak)
                    out[name.replace("outpaced", "outpaced + dominated z=1 w=3")] = gate(AnyOf((
                        rule, Dominated(z=1.0, n_val=n_val, window=3))), peak)
    return out


def resample(trials: list, size: int, rng: random.Random) -> tuple[list, dict[int, int]]:
    """A sequential search of `size` candidates drawn with replacement from the sample
    (copies renumbered), and each copy's original number: what a rule saves in a search as
    long as v2, where later candidates have more peers than any of the sample's had."""
    picks = [rng.choice(trials) for _ in range(size)]
    return [dataclasses.replace(t, number=i) for i, t in enumerate(picks)], {i: t.number for i, t in enumerate(picks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study-name", default="unpruned")
    ap.add_argument("--orders", type=int, default=20, help="random sequential orders to replay (default 20)")
    ap.add_argument("--scale", type=int, default=100,
                    help="also replay --orders searches of this many candidates drawn with replacement (default 100; 0: off)")
    ap.add_argument("--rounds-from", metavar="STORAGE",
                    help="put the complete rounds of this study's `search` (trained under the same protocol) "
                         "before every replay as finished peers, as a search with the rounds in has them; "
                         "saved and cut figures stay the sample's own")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=args.study_name, storage=open_storage(storage_url(args.storage)))
    epochs = study.user_attrs.get("recipe", {}).get("epochs", 15)
    n_val = study.user_attrs.get("val_size", 5000)
    trials = recorded(study)
    rounds = rounds_of(args.rounds_from) if args.rounds_from else []
    done = [t for t in trials if t.complete]
    scores = {t.number: score(t.val_acc) for t in done}
    on_front = front({t.number: (scores[t.number], t.params) for t in done})
    top = set(sorted(scores, key=scores.get, reverse=True)[: max(1, len(done) // 4)])
    print(f"{args.storage} [{args.study_name}]: {len(trials)} trained trials ({len(done)} complete), {epochs} "
          f"epochs; front {sorted(on_front)}; top quarter by val_acc_last3 {sorted(top)}"
          + (f"; with {len(rounds)} rounds from {args.rounds_from} as earlier peers" if rounds else ""))
    print(f"{'rule':<72} {'epochs':>9} {'saved':>6} {'front cut':>9} {'top-q cut':>9} | "
          f"{'random orders: saved':>20} {'front cut':>10} {'top-q cut':>10}  unknown"
          + (f" | {f'x{args.scale} resampled: saved':>22} {'front copies cut':>16}" if args.scale else ""))
    qualified, fallback = [], []
    rng = random.Random(0)
    first = [t.number for t in rounds]
    orders = [first + rng.sample([t.number for t in trials], len(trials)) for _ in range(args.orders)]
    searches = [resample(trials, args.scale, rng) for _ in range(args.orders if args.scale else 0)]
    searches = [([*rounds, *copies], {**{n: n for n in first}, **origin}) for copies, origin in searches]
    own = [t.number for t in trials]
    for name, rule in rules(epochs, n_val).items():
        r = replay([*rounds, *trials], rule, epochs, score)
        shuffled = [replay([*rounds, *trials], rule, epochs, score, order=o) for o in orders]
        if shuffled:
            saved = statistics.fmean(s.saved_among(own) for s in shuffled)
            fc = [len(s.cut(on_front)) for s in shuffled]
            tc = [len(s.cut(top)) for s in shuffled]
            again = f"{saved:>20.0%} {statistics.fmean(fc):>5.1f} (≤{max(fc)}) {statistics.fmean(tc):>5.1f} (≤{max(tc)})"
        else:
            again = f"{'-':>20} {'-':>10} {'-':>10}"
        scaled, big_cut, big_saved = "", 0.0, 0.0
        if searches:
            big = [(replay(copies, rule, epochs, score, order=list(origin), origin=origin), origin)
                   for copies, origin in searches]
            cut = [sum(origin[n] in on_front for n in x.cut(origin)) / max(1, sum(o in on_front for o in origin.values()))
                   for x, origin in big]
            big_cut = max(cut)
            big_saved = statistics.fmean(x.saved_among([n for n in o if n not in first]) for x, o in big)
            scaled = f" | {big_saved:>22.0%} {statistics.fmean(cut):>15.1%}"
        dip = cuts_a_dip(rule, n_val)
        rec, rep = (sum(r.trained[n][i] for n in own) for i in (0, 1))
        print(f"{name:<72} {rep:>4}/{rec:<4} {r.saved_among(own):>6.0%} "
              f"{len(r.cut(on_front)):>9} {len(r.cut(top)):>9} | {again}  {r.unknown or '-'}{scaled}"
              f"{'  cuts a dip inside the noise' if dip else ''}")
        runs = [r, *shuffled]
        # issue 15: no judgement where the schedule makes early figures uninformative
        gated = isinstance(rule, Gate) and rule.after_peak
        if dip or not gated or any(x.cut(on_front) for x in runs) or big_cut:
            continue
        top_cut = max(len(x.cut(top)) for x in runs)
        if all(x.saved_among(own) >= 0.30 for x in runs):
            qualified.append((-min(x.saved_among(own) for x in runs), top_cut, name))
        fallback.append((-r.saved_among(own), -big_saved, top_cut, name))
    if qualified:
        saved, top_cut, name = min(qualified)
        print(f"\nchoice: {name} (saves at least {-saved:.0%} in every order, cuts no front trial, "
              f"at most {top_cut} of the top quarter)")
    else:
        print("\nchoice: no rule saves 30% without cutting a front trial in every order")
        if fallback:
            saved, big_saved, top_cut, name = min(fallback)
            print(f"fallback: {name} (after peak, cuts no front trial in any replay and no dip inside the noise; saves "
                  f"{-saved:.0%} in the recorded order, {-big_saved:.0%} in {args.scale}-candidate searches)")


def rounds_of(path: str) -> list:
    """The complete rounds of the study `search` in `path`, renumbered out of the way and
    placed before everything (started and finished before any sample trial)."""
    study = optuna.load_study(study_name="search", storage=open_storage(storage_url(path)))
    numbers = {t.number for t in study.get_trials(deepcopy=False) if "baseline" in t.user_attrs}
    return [dataclasses.replace(t, number=10**6 + t.number, started=-2.0, finished=-1.0)
            for t in recorded(study) if t.number in numbers and t.complete]


def cuts_a_dip(rule, n_val: int) -> bool:
    """Would the rule cut a candidate level with three smaller peers (finished, or still
    running) for a one-epoch dip of one standard error of the difference of two figures?
    Issue 15: a dip inside the noise must not get a candidate cut."""
    phases = tuple(ROUNDS["round3"].candidate.phase(e) for e in range(1, 16))
    level = 99.2
    dip = difference_se(level, level, n_val)
    curves = [tuple([level + d] * 15) for d in (0.0, 0.03, 0.05)]
    me = Peer(6000, tuple([level] * 9 + [level - dip]), phases)
    for finished in (True, False):
        peers = [Peer(p, c, phases, score(c) if finished else None) for p, c in zip((3000, 4000, 5000), curves)]
        if rule.prune(10, me, peers) is not None:
            return True
    return False


if __name__ == "__main__":
    main()
