"""Compare the fronts of several searches at the same budget: does a search beat random sampling?

    python benchmarks/compare_fronts.py studies/unpruned.journal:unpruned studies/v2.journal:search
    python benchmarks/compare_fronts.py ... studies/v3.journal:search --goal-params 5000   # a goal's view too
    python benchmarks/compare_fronts.py studies/reference.journal:search studies/v2.journal:search \\
        --json /tmp/fronts.json     # then render_front.py --from-json ... --png ... (see there)

With `--json`, the figure has a second panel: for every study with a confirmation
(`<study>-confirm`, made by `drill-search confirm` with the default recipe), the
architectures confirmed on all of seeds 1-3: mean final-epoch test accuracy against
parameters, the seeds' range as bars, beside the goal lines (99.4%, 5,000 parameters). That panel is reporting, read after the
search; nothing selects on it.

Each study is `storage:study`. For each: its Pareto front on the search objective
(`val_acc_last3` on the validation images, maximize; parameters, minimize), the
hypervolume that front encloses above 98.0% and below 10,000 parameters (in
percentage-point x thousand-parameter units), and the same at a common budget of
candidate-epochs: the trials in the order they started, until the smallest study's
total candidate-epochs are spent (a pruned trial costs the epochs it trained, a
rejected one nothing). It also says which front points of one study no point of another
beats. The hypervolumes and dominance counts never read test accuracy. Hypervolume by
hand: Optuna's is private API (`optuna._hypervolume`), and the 2-D case is a sum of
rectangles.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from search.config import Recipe
from search.execution.record import epochs_trained
from search.execution.storage import open_storage, storage_url
from search.results.verdicts import PROTOCOL_SEEDS, Verdict, stored_verdicts
from search.strategy.replay import front
from search.strategy.stats import noise

REF_ACC, REF_PARAMS = 98.0, 10_000  # the hypervolume's reference point
VAL_IMAGES = 5_000  # the shipped studies' validation images (their val_size)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#7f7f7f")  # one colour per study, in both panels


def points(study: optuna.Study, budget: int | None = None) -> tuple[dict[int, tuple[float, int]], int]:
    """(trial -> (score, params)) of the complete trials within `budget` candidate-epochs
    (None: all), and the candidate-epochs they spent."""
    spent, out = 0, {}
    # failed trials cost what they trained too (an interrupted run, a dead worker's)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    per_trial = epochs_trained(trials)
    for t in sorted(trials, key=lambda t: t.datetime_start or t.datetime_complete):
        cost = sum(per_trial[t.number])  # a promoted trial's rung counts too
        if budget is not None and spent + cost > budget:
            break
        spent += cost
        if t.state == TrialState.COMPLETE:
            out[t.number] = (t.values[0], int(t.values[1]))
    return out, spent


def best_within(pts: dict[int, tuple[float, int]], max_params: int) -> str:
    """'99.04 (trial 16, 4,110 params)': the best score of a network within `max_params`."""
    inside = [(score, n, params) for n, (score, params) in pts.items() if params <= max_params]
    if not inside:
        return "none"
    score, n, params = max(inside)
    return f"{score:.2f} (trial {n}, {params:,} params)"


def hypervolume(pts, ref_params: int = REF_PARAMS) -> float:
    """Area dominated by `pts` ((acc, params), maximize acc, minimize params) above the
    reference point (REF_ACC, `ref_params`), in points x thousand parameters."""
    area, best = 0.0, REF_ACC
    for acc, params in sorted(pts, key=lambda p: p[1]):  # by size, smallest first
        if params >= ref_params or acc <= best:
            continue
        area += (acc - best) * (ref_params - params) / 1000
        best = acc
    return area


def beaten_by(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> int:
    """How many points of `a` some point of `b` dominates."""
    return sum(any(sb >= sa and pb <= pa and (sb > sa or pb < pa) for sb, pb in b) for sa, pa in a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("studies", nargs="+", metavar="STORAGE:STUDY")
    ap.add_argument("--goal-params", type=int, default=None, metavar="N",
                    help="also print each study's best score within N parameters, at the common budget and in all")
    ap.add_argument("--json", help="also write a plotly figure of the fronts and confirmations "
                    "(render with render_front.py)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    studies, storages = {}, {}
    for spec in args.studies:
        path, _, name = spec.rpartition(":")
        storages[spec] = open_storage(storage_url(path))
        studies[spec] = optuna.load_study(study_name=name, storage=storages[spec])
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
    if args.goal_params is not None:
        goal = args.goal_params + 1  # "at most N": a network of exactly N parameters still encloses area
        print(f"within the goal, at most {args.goal_params:,} parameters: best val_acc_last3 (one seed each; one "
              f"score on {VAL_IMAGES:,} images has a standard error of about {noise(99.0, VAL_IMAGES):.2f}) and the "
              f"hypervolume above {REF_ACC}% and under {goal:,} parameters:")
        for spec, study in studies.items():
            at, every = points(study, budget)[0], points(study)[0]
            print(f"  {spec:<44} at the common budget {best_within(at, args.goal_params)}, HV "
                  f"{hypervolume(at.values(), goal):.2f}; in all {best_within(every, args.goal_params)}, HV "
                  f"{hypervolume(every.values(), goal):.2f}")
    specs = list(fronts)
    for a in specs:
        for b in specs:
            if a != b:
                print(f"{beaten_by(fronts[a], fronts[b])} of the {len(fronts[a])} front points of {a} are beaten by {b}")
    if args.json:
        with open(args.json, "w") as f:
            f.write(figure(studies, storages, fronts).to_json())
        print(f"wrote {args.json}")


def confirmed_trace(verdicts, name: str, colour: str, symbol: str):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[v.params for v in verdicts], y=[v.mean for v in verdicts], mode="markers", name=name,
        marker={"color": colour, "symbol": symbol, "size": 9}, text=[v.choice.label for v in verdicts],
        hovertemplate="%{text}: %{x:,} params, %{y:.2f}%<extra></extra>",
        error_y={"type": "data", "symmetric": False, "array": [max(v.final) - v.mean for v in verdicts],
                 "arrayminus": [v.mean - min(v.final) for v in verdicts]})


def figure(studies: dict[str, optuna.Study], storages: dict, fronts: dict[str, list[tuple[float, int]]]):
    """Left: each study's validation front. Right: confirmed test accuracy of the studies
    that have a confirmation."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "searches: val_acc_last3, one run each", "confirmed: test, mean of seeds 1-3 (bars: min-max)"))
    rounds: dict[str, Verdict] = {}  # the rounds retrain identically in every confirmation: drawn once
    for i, (spec, fr) in enumerate(fronts.items()):
        colour, name = PALETTE[i % len(PALETTE)], spec.rpartition("/")[2]
        fig.add_trace(go.Scatter(x=[p for _, p in fr], y=[s for s, _ in fr], mode="lines+markers", name=name,
                                 line={"shape": "hv", "color": colour}), row=1, col=1)
        found, _ = stored_verdicts(studies[spec], storages[spec], Recipe())
        found = [v for v in found if len(v.final) == len(PROTOCOL_SEEDS)]  # a confirmation under way: its done ones
        searched = sorted((v for v in found if not v.choice.baseline), key=lambda v: v.params)
        rounds.update({v.choice.baseline: v for v in found if v.choice.baseline and v.choice.baseline not in rounds})
        if searched:
            fig.add_trace(confirmed_trace(searched, f"{name} confirmed", colour, "diamond"), row=1, col=2)
    if rounds:
        fig.add_trace(confirmed_trace(sorted(rounds.values(), key=lambda v: v.params), "rounds confirmed",
                                      "black", "x"), row=1, col=2)
    fig.add_hline(y=99.4, line_dash="dot", annotation_text="goal 99.4%", row=1, col=2)
    fig.add_vline(x=5000, line_dash="dot", annotation_text="5,000 params", annotation_position="bottom right",
                  row=1, col=2)
    fig.update_xaxes(title_text="parameters", range=[0, 10_000])
    fig.update_yaxes(title_text="val_acc_last3 (%), validation", range=[96.0, 99.6], row=1, col=1)
    fig.update_yaxes(title_text="final-epoch test accuracy (%)", range=[98.4, 99.6], row=1, col=2)
    fig.update_annotations(font_size=13)
    fig.update_layout(template="plotly_white", legend={"orientation": "h", "y": -0.15})
    return fig


if __name__ == "__main__":
    main()
