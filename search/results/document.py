"""The report as a document, what a person reads about a study: trial lines, the Pareto
front, counts, figures and the HTML file (`search.reporting` is the use case that writes it).

Everything here reads from the storage (FrozenTrial values and attributes), never from a
worker's memory, so it works the same for a study that ran on another machine.
"""

from __future__ import annotations

import hashlib
import json
import statistics

import optuna
from optuna.trial import FrozenTrial, TrialState

import spaces

from ..config import MAX_EPOCHS, MAX_RETRY, MNIST_TRAIN, TARGET_ACC, VAL_SIZE, study_flags
from ..execution.choices import study_budget
from .selection import front

TIMES = {1: "once", 2: "twice"}  # a count in words (MAX_RETRY)


def outcome(t: FrozenTrial) -> str:
    """complete, rejected, pruned, interrupted, failed, running or waiting."""
    reason = t.user_attrs.get("state_reason", "")
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "rejected" if reason.startswith("rejected") else "pruned"
    if t.state == TrialState.FAIL and reason == "interrupted":
        return "interrupted"  # a stop the user asked for: the trial runs again on resume
    return {TrialState.FAIL: "failed", TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}[t.state]


def trial_line(t: FrozenTrial) -> str:
    """One line per finished trial: number, size, validation curve, outcome, time."""
    a = t.user_attrs
    name = f" [{a['baseline']}]" if "baseline" in a else ""
    if "retry_of" in a:
        name += f" (retry of {a['retry_of']})"
    size = f"{a['params']:>6,} params" if "params" in a else " " * 13
    curve = " ".join(f"{v:.2f}" for v in a.get("val_acc", []))
    curve = f"  val% {curve}" if curve else ""
    what = outcome(t)
    reason = a.get("state_reason", "")
    if what == "complete":
        test = a.get("test_acc", [None])[-1]
        tail = f"complete: val {t.values[0]:.2f}%" + (f", test {test:.2f}%" if test is not None else "")
    elif what == "pruned" and "pruned_at_epoch" in a:
        tail = f"pruned at epoch {a['pruned_at_epoch']}: {reason.removeprefix('pruned: ')}"
    elif what in ("rejected", "pruned"):
        tail = reason
    elif what == "interrupted":
        tail = "interrupted, will resume (the same command trains it again)"
    else:
        tail = f"{what}: {reason}" if reason else what
    secs = f"  {a['seconds']:.0f} s" if "seconds" in a else ""
    return f"trial {t.number:>3}{name}  {size}{curve}  {tail}{secs}"


def learning_rate(t: FrozenTrial) -> float:
    """SGD's learning rate at batch 64 of a trial, in whichever space it was drawn."""
    return spaces.decode(t.params).lr


def objective_name(study: optuna.Study) -> str:
    """What objective 0 is called in the study (val_acc_last3 for a search)."""
    return (study.metric_names or ["objective 0"])[0]


def front_table(study: optuna.Study) -> str:
    rows = front(study)
    if not rows:
        return "No complete trial within the budget yet."
    lines = [
        f"Pareto front (complete trials within budget; {objective_name(study)} selects, final-epoch test "
        "accuracy is reported):",
        f"{'trial':>5}  {'params':>6}  {'objective':>9}  {'test acc':>8}  {'epochs':>6}  architecture",
    ]
    for t in rows:
        a = t.user_attrs
        test = a.get("test_acc", [float("nan")])[-1]
        name = f"  <- {a['baseline']}" if "baseline" in a else ""
        lines.append(
            f"{t.number:>5}  {int(t.values[1]):>6,}  {t.values[0]:>8.2f}%  {test:>7.2f}%  "
            f"{len(a.get('val_acc', [])):>6}  {a.get('arch', '')}  lr {learning_rate(t):.3g}"
            f"{name}"
        )
    return "\n".join(lines)


def quick_look(study: optuna.Study) -> str | None:
    """A sentence when the study trains less than the exercise's protocol, else None."""
    epochs = (study.user_attrs.get("recipe") or {}).get("epochs", MAX_EPOCHS)
    images = study.user_attrs.get("train_size")
    if epochs >= MAX_EPOCHS and images is None:
        return None
    what = f"{epochs} epochs" + (f" on {images:,} training images" if images is not None else "")
    return (f"Quick look: this study trains {what}, not the exercise's protocol ({MAX_EPOCHS} epochs on the "
            f"{MNIST_TRAIN - VAL_SIZE:,} training images); its figures do not compare with full-protocol studies.")


def counts_line(study: optuna.Study) -> str:
    """The study's trials per outcome in words ("none" when it holds none)."""
    c: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING and t.user_attrs.get("beyond_total"):
            continue  # an empty trial a worker handed back at the total, not work left
        key = outcome(t)
        c[key] = c.get(key, 0) + 1
    order = ("complete", "pruned", "rejected", "interrupted", "failed", "running", "waiting")
    return ", ".join(f"{c[k]} {k}" for k in order if c.get(k)) or "none"


def cost_line(study: optuna.Study) -> str:
    """What the study cost: candidate-epochs trained (rungs, failed and running runs
    included) in full-run equivalents against an unpruned search of the same finished
    trials; worker-hours as the sum of trial durations (everything a worker spent on the
    trial); wall time."""
    from ..execution.record import epochs_trained

    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    per_trial = epochs_trained(trials)
    trained = sum(r + f for r, f in per_trial.values())
    on_rungs = sum(r for r, _ in per_trial.values())
    epochs = (study.user_attrs.get("recipe") or {}).get("epochs", MAX_EPOCHS)
    spans = sorted(s for s in map(span, trials) if s is not None)
    worker_s = sum(b - a for a, b in spans)
    wall, end = 0.0, float("-inf")  # the union of trial spans: time between sessions is left out
    for a, b in spans:
        wall += max(0.0, b - max(a, end))
        end = max(end, b)
    trainable = [t for t in finished if outcome(t) != "rejected"]
    rungs = f", {on_rungs} of them on rungs" if on_rungs else ""
    return (f"{trained} candidate-epochs trained for {len(finished)} finished trials{rungs}, failed and running ones "
            f"included: {trained / MAX_EPOCHS:.1f} full-run equivalents, candidate-epochs / {MAX_EPOCHS} (without "
            f"pruning the {len(trainable)} that were "
            f"not rejected would train {len(trainable)} x {epochs} = {len(trainable) * epochs}); "
            f"{worker_s / 3600:.1f} worker-hours (the sum of trial durations), {wall / 3600:.1f} h wall time"
            + _epoch_seconds(trials))


def span(t: FrozenTrial) -> tuple[float, float] | None:
    """(start, end) of the time a worker spent on `t`, in seconds since the epoch. A trial
    whose worker died ends at its last sign of life (`updated_at`), not when a later command
    found it dead and failed it: the time between is nobody's work."""
    if not t.datetime_start or not t.datetime_complete:
        return None
    start, end = t.datetime_start.timestamp(), t.datetime_complete.timestamp()
    if t.state == TrialState.FAIL and t.user_attrs.get("updated_at"):
        end = max(start, min(end, t.user_attrs["updated_at"]))
    return start, end


def _epoch_seconds(trials) -> str:
    """'; a candidate-epoch took A to B s per worker (10th to 90th percentile, median M s)'."""
    seconds = [s for t in trials for key in ("rung_epoch_seconds", "epoch_seconds") for s in t.user_attrs.get(key) or []]
    if len(seconds) < 2:
        return ""
    q = statistics.quantiles(seconds, n=10, method="inclusive")
    return (f"; a candidate-epoch took {q[0]:.0f} to {q[8]:.0f} s per worker (10th to 90th percentile, "
            f"median {statistics.median(seconds):.0f} s)")


def failures(study: optuna.Study) -> list[tuple[int, str]]:
    """(trial number, reason) of every failed trial: worker died, error (an interruption
    the user asked for is not a failure)."""
    return [(t.number, t.user_attrs.get("state_reason", "no reason recorded"))
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if outcome(t) == "failed"]


def failures_text(study: optuna.Study) -> str:
    """One line per failed trial, or nothing; failed trials never count as finished."""
    return "\n".join(f"  trial {n} failed: {reason}" for n, reason in failures(study))


def running_text(trials: list[FrozenTrial], storage: str, study_name: str) -> str:
    """What a command that has done its own work says of the trials still RUNNING (other
    commands', sharing the study): where each runs (host:pid), and in one line those that
    no one will finish (their worker on this machine is gone) with the command that
    re-queues them. Empty when nothing is running."""
    from ..execution.liveness import gone, where

    running = [t for t in trials if t.state == TrialState.RUNNING]
    lost = {t.number: why for t in running if (why := gone(t)) is not None}
    alive = [t for t in running if t.number not in lost]
    lines = []
    if alive:
        lines.append("still running in other commands (this one's work is done): " + ", ".join(
            f"trial {t.number} on {where(t.user_attrs['worker'])}" if t.user_attrs.get("worker")
            else f"trial {t.number} (its worker is starting)" for t in alive))
    if lost:
        lines.append(f"left RUNNING by workers that are gone: {', '.join(f'trial {n} ({why})' for n, why in lost.items())}; "
                     f"drill-search fail-stale{study_flags(storage, study_name)} re-queues them.")
    return "\n".join(lines)


# --- figures and the HTML report ---------------------------------------------------------

ZOOM_FLOOR = 97.0  # the front chart zooms in above this; lower points sit on the floor, counted


def _test(t: FrozenTrial) -> float | None:
    return (t.user_attrs.get("test_acc") or [None])[-1]


def _baseline_name(t: FrozenTrial) -> str | None:
    return t.user_attrs.get("baseline")


def front_figure(study: optuna.Study, spread: dict[int, tuple[float, float, int]] | None = None):
    """Validation accuracy against parameters: every complete trial, the front joined,
    baselines labelled, the budget and the 99.4% line drawn. `spread`: trial number ->
    (mean, standard error, runs) of its score over seeds (the re-evaluation), drawn as
    error bars beside the single run."""
    import plotly.graph_objects as go

    budget = study_budget(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = front(study)
    best_ids = {t.number for t in best}
    fig = go.Figure()

    def hover(t: FrozenTrial) -> str:
        test = t.user_attrs.get("test_acc", [float("nan")])[-1]
        name = f" ({_baseline_name(t)})" if _baseline_name(t) else ""
        return (f"trial {t.number}{name}<br>{t.user_attrs.get('arch', '')}<br>"
                f"{int(t.values[1]):,} params<br>val {t.values[0]:.2f}%  test {test:.2f}%")

    accs = [t.values[0] for t in done] + [_test(t) for t in best if _test(t) is not None]
    floor = max(min(accs, default=TARGET_ACC), ZOOM_FLOOR) - 0.2
    below = set()

    def scatter(trials: list[FrozenTrial], values: list, symbol: str, **kw) -> None:
        """A trace on the zoomed axis: points below it become triangles on its floor."""
        clipped = [v is not None and v < floor for v in values]
        below.update(t.number for t, c in zip(trials, clipped) if c)
        kw["marker"] = {**kw["marker"], "symbol": ["triangle-down" if c else symbol for c in clipped]}
        fig.add_trace(go.Scatter(x=[t.values[1] for t in trials], y=[floor if c else v for v, c in zip(values, clipped)],
                                 hovertext=[hover(t) for t in trials], hoverinfo="text", **kw))

    others = [t for t in done if t.number not in best_ids]
    scatter(others, [t.values[0] for t in others], "circle", mode="markers", name="complete trials",
            marker=dict(color="#9aa5b1", size=8))
    scatter(best, [t.values[0] for t in best], "circle", mode="lines+markers", name="Pareto front (validation)",
            line=dict(color="#1f77b4", shape="hv"), marker=dict(size=11))
    scatter(best, [_test(t) for t in best], "diamond-open", mode="markers",
            name="front, test accuracy (reported, not selected on)", marker=dict(size=10, color="#d62728"))
    named = [t for t in done if _baseline_name(t)]
    if named:
        # labels below the stars: the front, which they are compared with, runs above them
        scatter(named, [t.values[0] for t in named], "star", mode="markers+text", name="hand-designed rounds",
                text=[_baseline_name(t) for t in named], textposition="bottom center",
                marker=dict(size=14, color="#ff7f0e"))
    again = [t for t in done if spread and t.number in spread]
    if again:
        fig.add_trace(go.Scatter(
            x=[t.values[1] for t in again], y=[spread[t.number][0] for t in again], mode="markers",
            error_y=dict(type="data", array=[spread[t.number][1] for t in again], visible=True),
            marker=dict(symbol="line-ew-open", size=16, color="#2ca02c", line=dict(width=2)),
            name="re-evaluated: validation mean over seeds ± SE",
            hovertext=[f"trial {t.number}: mean {spread[t.number][0]:.2f}% ± {spread[t.number][1]:.2f} over "
                       f"{spread[t.number][2]} runs" for t in again], hoverinfo="text"))
    fig.add_vline(x=budget, line_dash="dash", line_color="#444",
                  annotation_text=f"budget {budget:,}", annotation_position="top left")
    fig.add_hline(y=TARGET_ACC, line_dash="dot", line_color="#d62728",
                  annotation_text=f"{TARGET_ACC:g}% target: for test accuracy (the diamonds)",
                  annotation_position="top left")  # small networks sit far below it: free space
    if below:
        # bottom right: large networks score high, so the front never passes there
        fig.add_annotation(x=1, xref="paper", y=floor, yanchor="bottom", xanchor="right", showarrow=False,
                           text=f"▼ {len(below)} trial(s) below {floor:.1f}%, drawn on the axis floor")
    metric = objective_name(study)
    quick = " [quick look, not the protocol]" if quick_look(study) else ""
    fig.update_layout(
        title=f"{study.study_name}: accuracy vs parameters ({counts_line(study)}){quick}",
        xaxis_title="parameters", yaxis_title=f"accuracy (%): {metric} on validation (circles), test (diamonds)",
        yaxis_range=[floor, 100.0], template="plotly_white", legend=dict(orientation="h", y=-0.2))
    return fig


def curves_figure(study: optuna.Study):
    """Validation accuracy per epoch of every trial; pruned ones stop early, in grey."""
    import plotly.graph_objects as go

    fig = go.Figure()
    trials = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("val_acc")]
    for kind, color, dash in (("pruned", "#c0c4c8", "dot"), ("complete", None, "solid")):
        first = True
        for t in trials:
            if outcome(t) != kind:
                continue
            curve = t.user_attrs["val_acc"]
            name = _baseline_name(t) or f"trial {t.number}"
            fig.add_trace(go.Scatter(
                x=list(range(1, len(curve) + 1)), y=curve, mode="lines+markers",
                name=f"{name} ({t.user_attrs.get('params', 0):,})",
                line=dict(color=color, dash=dash, width=3 if _baseline_name(t) else 1.5),
                marker=dict(size=4, symbol=["circle"] * (len(curve) - 1) + ["x" if kind == "pruned" else "circle"]),
                legendgroup=kind, showlegend=kind == "complete" or first,
                hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.2f}}%<extra>{kind}</extra>"))
            first = False
    late = [v for t in trials for v in t.user_attrs["val_acc"][1:]] or [96.0]
    floor = max(90.0, min(late)) - 0.2
    dips = sum(1 for t in trials if min(t.user_attrs["val_acc"]) < floor)
    if dips:
        fig.add_annotation(x=1, xref="paper", y=floor, yanchor="bottom", xanchor="right", showarrow=False,
                           text=f"{dips} curve(s) start or dip below {floor:.1f}% (off the zoomed axis)")
    fig.update_layout(
        title="validation accuracy per epoch (pruned trials dotted grey, cut short at the x)",
        xaxis_title="epoch", yaxis_title="validation accuracy (%)",
        yaxis_range=[floor, 100.0],
        template="plotly_white", showlegend=len(trials) <= 40)
    return fig


def importance_figure(study: optuna.Study):
    """Which parameters matter for reaching high validation accuracy, or None when there
    are too few complete trials to say. Optuna's default evaluator (PED-ANOVA) scores
    what leads to low target values, hence the minus sign."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 4:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
        warnings.filterwarnings("ignore", message="Some regimes for parameter")  # an early study: rough, as all importances are then
        fig = optuna.visualization.plot_param_importances(
            study, target=lambda t: -t.values[0], target_name="validation accuracy")
    fig.update_layout(title="parameter importance for high final validation accuracy (Optuna's PED-ANOVA)",
                      template="plotly_white")
    return fig


def figures(study: optuna.Study, spread: dict[int, tuple[float, float, int]] | None = None) -> dict:
    out = {"pareto-front": front_figure(study, spread), "curves": curves_figure(study)}
    imp = importance_figure(study)
    if imp is not None:
        out["importance"] = imp
    return out


def attach(study: optuna.Study, figs: dict) -> bool:
    """Store the figures in the study so optuna-dashboard shows them too.

    Writes only when they differ from the ones last stored (a digest in the user attribute
    `report_figures` tells), so reading a finished study, such as the shipped one, leaves
    its storage as it is. Returns whether anything was written.
    """
    from optuna_dashboard import save_note, save_plotly_graph_object

    note = dashboard_note(study)
    digest = hashlib.sha256(json.dumps({"note": note, **{name: fig.to_json() for name, fig in figs.items()}},
                                       sort_keys=True).encode()).hexdigest()
    if study.user_attrs.get("report_figures") == digest:
        return False
    for name, fig in figs.items():
        save_plotly_graph_object(study, fig, graph_object_id=name)
    save_note(study, note)
    study.set_user_attr("report_figures", digest)
    return True


def dashboard_note(study: optuna.Study) -> str:
    """The study's note in optuna-dashboard (markdown): how to read it, where the rounds are."""
    rounds = [f"trial {t.number} is {t.user_attrs['baseline']}"
              for t in study.get_trials(deepcopy=False) if "baseline" in t.user_attrs]
    return "\n".join([
        f"**drill-search study `{study.study_name}`**: {counts_line(study)}.",
        "",
        "Objective 0 is the validation score (higher is better), objective 1 the parameter count. "
        "The figure *pareto-front* below draws parameters on x and the score on y, the hand-designed "
        "rounds starred, with test accuracy beside the front (reported only, never used to select).",
        "",
        "Hand-designed rounds: " + ("; ".join(rounds) if rounds else "none in this study") + " "
        "(user attribute `baseline`).",
    ])


def front_html(study: optuna.Study) -> str:
    import html

    rows = []
    for t in front(study):
        a = t.user_attrs
        test = a.get("test_acc", [float("nan")])[-1]
        name = html.escape(_baseline_name(t) or "")
        rows.append(
            f"<tr><td>{t.number}</td><td>{name}</td><td>{int(t.values[1]):,}</td>"
            f"<td>{t.values[0]:.2f}</td><td>{test:.2f}</td><td>{len(a.get('val_acc', []))}</td>"
            f"<td><code>{html.escape(a.get('arch', ''))}</code></td><td>{learning_rate(t):.3g}</td></tr>"
        )
    return (
        f"<table><thead><tr><th>trial</th><th>round</th><th>params</th><th>{html.escape(objective_name(study))} %</th>"
        "<th>test acc %</th><th>epochs</th><th>architecture</th><th>lr</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )


def table_html(header: list[str], rows: list[list[str]]) -> str:
    import html

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(study: optuna.Study, path, figs: dict | None = None, answer: list[str] | None = None,
               tables: list[tuple[str, str, list[str], list[list[str]]]] = ()) -> None:
    """One self-contained HTML file: plotly.js is embedded, nothing is fetched.
    `answer`: the sentences it opens with (the network to use); `tables`: (title, words,
    header, rows) of the confirmation and the re-evaluation."""
    import html
    from pathlib import Path

    import plotly.io as pio

    figs = figs if figs is not None else figures(study)
    parts = []
    for i, fig in enumerate(figs.values()):
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), default_height="560px"))
    # the stored sentence says "objective 0"; people read "the score"
    protocol = html.escape(str(study.user_attrs.get("protocol", "")).replace("objective 0", "the score"))
    metric = objective_name(study)
    failed = failures(study)
    failed_html = "" if not failed else (
        f"<h2>Failed trials</h2><p>Retried at most {TIMES.get(MAX_RETRY, f'{MAX_RETRY} times')}; never counted as "
        "finished.</p><table>"
        "<thead><tr><th>trial</th><th>reason</th></tr></thead><tbody>"
        + "".join(f"<tr><td>{n}</td><td style='text-align:left'>{html.escape(r)}</td></tr>" for n, r in failed)
        + "</tbody></table>")
    confirmed_html = "".join(f"<h2>{html.escape(title)}</h2><p>{html.escape(words)}</p>{table_html(header, rows)}"
                              for title, words, header, rows in tables)
    answer_html = "" if not answer else (
        "<div class='answer'><h2>The answer</h2>" + "".join(f"<p>{html.escape(line)}</p>" for line in answer)
        + "</div>")
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>drill-search report: {html.escape(study.study_name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
code{{font-size:90%}}.answer{{background:#f3f7fb;border-left:4px solid #1f77b4;padding:.2em 1em}}</style></head><body>
<h1>drill-search: study <code>{html.escape(study.study_name)}</code></h1>
{answer_html}
{f"<p><strong>{html.escape(quick_look(study))}</strong></p>" if quick_look(study) else ""}
<p>{html.escape(counts_line(study))}. Protocol: {protocol}.</p>
<p>Cost: {html.escape(cost_line(study))}.</p>
<p>The search ranks networks by their score on validation images held out of training
({html.escape(metric)}: for a search, the mean validation accuracy of the last 3 epochs)
and never looks at the test set; test accuracy (the final epoch's) is reported only.
Best-of-epoch figures are not used anywhere.</p>
{parts[0] if parts else ""}
<h2>Pareto front</h2>
{front_html(study)}
{confirmed_html}
{failed_html}
{"".join(parts[1:])}
</body></html>"""
    Path(path).write_text(body)


def baseline_comparison(baseline, test_acc: list[float]) -> str:
    """Test accuracy per epoch, this run next to the original write-up's."""
    rep = baseline.reported_test_acc
    lines = [
        f"Test accuracy per epoch (MNIST test set, 10,000 images), this run vs {baseline.source}:",
        f"{'epoch':>5}  {'this run':>8}  {'original':>8}  {'diff':>6}",
    ]
    for i, acc in enumerate(test_acc):
        orig = rep[i] if i < len(rep) else None
        diff = f"{acc - orig:+6.2f}" if orig is not None else ""
        shown = "" if orig is None else f"{orig:.2f}"
        lines.append(f"{i + 1:>5}  {acc:>8.2f}  {shown:>8}  {diff:>6}")
    n = len(test_acc)
    best = max(test_acc)
    reported = rep[n - 1] if n <= len(rep) else None
    lines.append(
        f"final (epoch {n}): {test_acc[-1]:.2f} vs "
        f"{'nothing' if reported is None else f'{reported:.2f}'} reported at epoch {n}; "
        f"best of epochs {best:.2f} (epoch {test_acc.index(best) + 1}) vs "
        f"{baseline.reported_best[0]:.2f} (epoch {baseline.reported_best[1]}) "
        "[best-of-epochs picks an epoch by test accuracy]"
    )
    return "\n".join(lines)
