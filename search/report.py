"""What a person reads about a study: trial lines, the Pareto front, counts.

Everything here reads from the storage (FrozenTrial values and attributes), never from a
worker's memory, so it works the same for a study that ran on another machine.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def feasible(t: FrozenTrial) -> bool:
    """Within the parameter budget (every constraint value <= 0, as Optuna reads them)."""
    return all(v <= 0 for v in t.constraints.values())


def outcome(t: FrozenTrial) -> str:
    """complete, rejected, pruned, failed, running or waiting."""
    reason = t.user_attrs.get("state_reason", "")
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "rejected" if reason.startswith("rejected") else "pruned"
    return {TrialState.FAIL: "failed", TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}[t.state]


def trial_line(t: FrozenTrial) -> str:
    """One line per finished trial: number, size, validation curve, outcome, time."""
    a = t.user_attrs
    name = f" [{a['baseline']}]" if "baseline" in a else ""
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
    else:
        tail = f"{what}: {reason}" if reason else what
    secs = f"  {a['seconds']:.0f} s" if "seconds" in a else ""
    return f"trial {t.number:>3}{name}  {size}{curve}  {tail}{secs}"


def front(study: optuna.Study) -> list[FrozenTrial]:
    """Complete, within-budget trials that no other such trial beats on both objectives
    (validation accuracy, parameters), fewest parameters first."""
    return sorted(study.best_trials, key=lambda t: (t.values[1], -t.values[0]))


def front_table(study: optuna.Study) -> str:
    rows = front(study)
    if not rows:
        return "No complete trial within the budget yet."
    lines = [
        "Pareto front (complete trials within budget; validation selects, test is reported):",
        f"{'trial':>5}  {'params':>6}  {'val acc':>7}  {'test acc':>8}  {'epochs':>6}  architecture",
    ]
    for t in rows:
        a = t.user_attrs
        test = a.get("test_acc", [float("nan")])[-1]
        name = f"  <- {a['baseline']}" if "baseline" in a else ""
        lines.append(
            f"{t.number:>5}  {int(t.values[1]):>6,}  {t.values[0]:>6.2f}%  {test:>7.2f}%  "
            f"{len(a.get('val_acc', [])):>6}  {a.get('arch', '')}  lr {t.params.get('lr', 0):.3g}"
            f"{name}"
        )
    return "\n".join(lines)


def counts_line(study: optuna.Study) -> str:
    c: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = outcome(t)
        c[key] = c.get(key, 0) + 1
    order = ("complete", "pruned", "rejected", "failed", "running", "waiting")
    return ", ".join(f"{c[k]} {k}" for k in order if c.get(k))
