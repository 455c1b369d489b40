"""Compare the fronts of several searches at the same budget: does a search beat random sampling?

    python benchmarks/compare_fronts.py studies/unpruned.journal:unpruned studies/v2.journal:search
    python benchmarks/compare_fronts.py studies/reference.journal:search studies/v2.journal:search \\
        --json /tmp/fronts.json     # then render_front.py --from-json ... --png ... (see there)

Each study is `storage:study`. For each: its Pareto front on the search objective
(`val_acc_last3` on the validation images, maximize; parameters, minimize), the
hypervolume that front encloses above 98.0% and below 10,000 parameters (in
percentage-point x thousand-parameter units), and the same at a common budget of
candidate-epochs: the trials in the order they started, until the smallest study's
total candidate-epochs are spent (a pruned trial costs the epochs it trained, a
rejected one nothing). It also says which front points of one study no point of another
beats. Test accuracy is never read. Hypervolume by hand: Optuna's is private API
(`optuna._hypervolume`), and the 2-D case is a sum of rectangles.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from search.replay import front
from search.storage import open_storage, storage_url

REF_ACC, REF_PARAMS = 98.0, 10_000  # the hypervolume's reference point


def points(study: optuna.Study, budget: int | None = None) -> tuple[dict[int, tuple[float, int]], int]:
    """(trial -> (score, params)) of the complete trials within `budget` candidate-epochs
    (None: all), and the candidate-epochs they spent."""
    spent, out = 0, {}
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    for t in sorted(trials, key=lambda t: t.datetime_start or t.datetime_complete):
        cost = len(t.user_attrs.get("val_acc") or [])
        if budget is not None and spent + cost > budget:
            break
        spent += cost
        if t.state == TrialState.COMPLETE:
            out[t.number] = (t.values[0], int(t.values[1]))
    return out, spent


def hypervolume(pts) -> float:
    """Area dominated by `pts` ((acc, params), maximize acc, minimize params) above the
    reference point, in points x thousand parameters."""
    area, best = 0.0, REF_ACC
    for acc, params in sorted(pts, key=lambda p: p[1]):  # by size, smallest first
        if params >= REF_PARAMS or acc <= best:
            continue
        area += (acc - best) * (REF_PARAMS - params) / 1000
        best = acc
    return area


def beaten_by(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> int:
    """How many points of `a` some point of `b` dominates."""
    return sum(any(sb >= sa and pb <= pa and (sb > sa or pb < pa) for sb, pb in b) for sa, pa in a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("studies", nargs="+", metavar="STORAGE:STUDY")
    ap.add_argument("--json", help="also write a plotly figure of the fronts (render with render_front.py)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    studies = {}
    for spec in args.studies:
        path, _, name = spec.rpartition(":")
        studies[spec] = optuna.load_study(study_name=name, storage=open_storage(storage_url(path)))
    totals = {spec: points(s)[1] for spec, s in studies.items()}
    budget = min(totals.values())
    fronts = {}
    print(f"hypervolume above {REF_ACC}% and under {REF_PARAMS:,} parameters; common budget {budget} candidate-epochs")
    print(f"{'study':<44} {'trials':>6} {'epochs':>6} {'HV all':>7} {'HV @budget':>10}  front (params: val_acc_last3)")
    for spec, study in studies.items():
        every, spent = points(study)
        at_budget, _ = points(study, budget)
        fr = sorted((every[n] for n in front(every)), key=lambda p: p[1])
        fronts[spec] = fr
        print(f"{spec:<44} {len(every):>6} {spent:>6} {hypervolume(every.values()):>7.2f} "
              f"{hypervolume(at_budget.values()):>10.2f}  "
              + ", ".join(f"{p:,}: {s:.2f}" for s, p in fr))
    specs = list(fronts)
    for a in specs:
        for b in specs:
            if a != b:
                print(f"{beaten_by(fronts[a], fronts[b])} of the {len(fronts[a])} front points of {a} are beaten by {b}")
    if args.json:
        import plotly.graph_objects as go

        fig = go.Figure()
        for spec, fr in fronts.items():
            fig.add_trace(go.Scatter(x=[p for _, p in fr], y=[s for s, _ in fr], mode="lines+markers",
                                     line=dict(shape="hv"), name=spec))
        fig.add_hline(y=99.4, line_dash="dot", annotation_text="99.4%")
        fig.update_layout(title="Pareto fronts: validation accuracy (mean of the last 3 epochs) vs parameters",
                          xaxis_title="parameters", yaxis_title="val_acc_last3 (%)", template="plotly_white")
        with open(args.json, "w") as f:
            f.write(fig.to_json())
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
