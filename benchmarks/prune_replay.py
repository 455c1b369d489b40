"""Replay pruning rules offline on a study's recorded curves.

    python benchmarks/prune_replay.py --storage ../shared/data/probe-search.journal
    python benchmarks/prune_replay.py --storage studies/reference.journal --study-name search

For each rule: the candidate-epochs the recorded trials trained and how many the rule
would have trained (the saving), which trials it stops and at which epoch, and how many
of those ended on the recorded front (complete trials, validation score vs parameters)
or among the leaders (score within 0.3 points of the best). Complete trials carry full
curves; a trial pruned when recorded that the rule keeps has an unknown tail and counts
with the epochs it trained (listed as "unknown").
"""

from __future__ import annotations

import argparse
import math

import optuna
from optuna.trial import TrialState

import spaces
from search.objective import score
from search.prune import NoPruner, ParetoPruner, MedianPruner, Recorded, replay
from search.storage import open_storage, storage_url

RULES = {
    "none": NoPruner(),
    "pareto (default: schedule-aware, hopeless or dominated)": ParetoPruner(),
    "pareto, dominated only": ParetoPruner(ratio=math.inf),
    "pareto, hopeless only": ParetoPruner(dominators=10**9),
    "median (schedule-aware)": MedianPruner(),
}


def recorded(study: optuna.Study) -> list[Recorded]:
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        curve = t.user_attrs.get("val_acc")
        if not curve or t.datetime_start is None or t.datetime_complete is None:
            continue  # rejected over budget: never trained
        cand = spaces.decode(t.params)
        out.append(Recorded(
            number=t.number, params=t.user_attrs["params"], val_acc=tuple(curve),
            phases=tuple(cand.phase(e) for e in range(1, len(curve) + 1)),
            complete=t.state == TrialState.COMPLETE,
            started=t.datetime_start.timestamp(), finished=t.datetime_complete.timestamp(),
        ))
    return out


def front(trials: list[Recorded]) -> set[int]:
    done = [(score(t.val_acc), t.params, t.number) for t in trials if t.complete]
    return {n for s, p, n in done
            if not any((s2 >= s and p2 <= p) and (s2 > s or p2 < p) for s2, p2, _ in done)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study-name", default="search")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=args.study_name, storage=open_storage(storage_url(args.storage)))
    epochs = study.user_attrs.get("recipe", {}).get("epochs", 15)
    trials = recorded(study)
    on_front = front(trials)
    done = [t for t in trials if t.complete]
    best = max((score(t.val_acc) for t in done), default=0.0)
    leaders = {t.number for t in done if score(t.val_acc) >= best - 0.3}
    print(f"{args.storage} [{args.study_name}]: {len(trials)} trained trials ({len(done)} complete with full "
          f"curves), {epochs} epochs; front {sorted(on_front)}; leaders (score >= {best - 0.3:.2f}) {sorted(leaders)}")
    print(f"an unpruned search would train {len(trials)} x {epochs} = {len(trials) * epochs} candidate-epochs")
    print(f"{'rule':<56} {'epochs':>7} {'saved':>6}  {'stopped (trial@epoch)':<34} {'front cut':>9} "
          f"{'leaders cut':>11}  unknown")
    for name, rule in RULES.items():
        r = replay(trials, rule, epochs, score)
        stopped = [f"{n}@{e}" for n, e in sorted(r.stopped_at.items()) if e is not None]
        saved = 1 - r.epochs_replayed / r.epochs_recorded if r.epochs_recorded else 0.0
        print(f"{name:<56} {r.epochs_replayed:>4}/{r.epochs_recorded:<3} {saved:>5.0%}  "
              f"{' '.join(stopped) or '-':<34} {len(r.cut(on_front)):>9} {len(r.cut(leaders)):>11}  "
              f"{r.unknown or '-'}")


if __name__ == "__main__":
    main()
