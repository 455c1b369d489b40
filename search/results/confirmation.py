"""The confirmation and the re-evaluation in words: their tables for the terminal and the
HTML report, and the answer a report opens with (the network to use)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import optuna

from ..config import MNIST_TRAIN, TARGET_ACC, Recipe
from ..execution.choices import study_budget, study_goal
from ..execution.runs import TEST, VALIDATION, Check, Choice
from .verdicts import PROTOCOL_SEEDS, Verdict, standard_error, stored_verdicts


def table(verdicts_: list[Verdict], epochs: int, check: Check = TEST) -> str:
    if not check.is_test:
        return reeval_table(verdicts_, check)
    lines = [
        f"Final-epoch test accuracy (epoch {epochs}, MNIST test set) over seeds:",
        f"{'candidate':<12} {'params':>6}  {'seeds':>5}  {'mean':>6}  {'std':>5}  {'min':>6}  "
        f"{'>= 99.4 on every seed':<21}  best-of-epochs mean (selects on test)",
    ]
    for v in sorted(verdicts_, key=lambda v: v.params):
        lines.append(
            f"{v.choice.label:<12} {v.params:>6,}  {len(v.final):>5}  {v.mean:>6.2f}  {v.std:>5.2f}  "
            f"{min(v.final):>6.2f}  {'yes' if v.reaches_target else 'no':<21}  {statistics.fmean(v.best):.2f}"
        )
    winners = [v.choice.label for v in verdicts_ if v.reaches_target]
    lines.append(
        "reach 99.4% on every seed: " + (", ".join(winners) if winners else "none")
    )
    return "\n".join(lines)


def table_rows(verdicts_: list[Verdict], check: Check = TEST) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a check's verdicts, for the HTML report."""
    if not check.is_test:
        header = ["network", "params", "search run (selected on)", "score per new seed", "mean", "SE",
                  "test mean (reported)"]
        return header, [[v.choice.label, f"{v.params:,}", _search_run(v), " / ".join(f"{x:.2f}" for x in v.final),
                         f"{v.mean:.2f}", f"{standard_error(v):.2f}",
                         f"{statistics.fmean(v.test):.2f}" if v.test else "-"]
                        for v in sorted(verdicts_, key=lambda v: -v.mean)]
    header = ["network", "params", "final test per seed", "mean", "std", "min", f">= {TARGET_ACC:g} on every seed"]
    return header, [[v.choice.label, f"{v.params:,}", " / ".join(f"{x:.2f}" for x in v.final), f"{v.mean:.2f}",
                     f"{v.std:.2f}", f"{min(v.final):.2f}", "yes" if v.reaches_target else "no"]
                    for v in sorted(verdicts_, key=lambda v: v.params)]


def _search_run(v: Verdict) -> str:
    return "-" if v.choice.search_score is None else f"{v.choice.search_score:.2f}"


def reeval_table(verdicts_: list[Verdict], check: Check) -> str:
    """The leaders by their mean score over seeds, the leader named, and who it cannot
    be told from (within one standard error of the difference of the means)."""
    ranked = sorted(verdicts_, key=lambda v: -v.mean)
    header, rows = table_rows(ranked, check)  # the report's rows, in columns
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    lines = [f"Re-evaluation on validation ({check.metric} on the search's {check.val_size:,} held-out images):"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    if ranked:
        top = ranked[0]
        ties = [v.choice.label for v in ranked[1:]
                if top.mean - v.mean <= math.hypot(standard_error(top), standard_error(v))]
        lines.append(f"leader: {top.choice.label} ({top.mean:.2f}%)"
                     + (f"; within one standard error of it: {', '.join(ties)}" if ties else ""))
    return "\n".join(lines)


def stored_table(search: optuna.Study, storage, recipe: Recipe, check: Check = TEST) -> str | None:
    """The table of `stored_verdicts`; None when there is no such run."""
    found, choices = stored_verdicts(search, storage, recipe, check)
    if not found:
        return None
    unconfirmed = [c.label for c in choices if c.label not in {v.choice.label for v in found}]
    note = f"\nnot confirmed yet: {', '.join(unconfirmed)}" if unconfirmed else ""
    seconds = [s for v in found for s in v.seconds]
    low, high = round(min(seconds) / 60), round(max(seconds) / 60)
    cost = (f"\n{len(seconds)} runs took {sum(seconds) / 3600:.1f} process-hours, "
            + (f"about {low} min each" if low == high else f"{low} to {high} min each"))
    return table(found, recipe.epochs, check) + cost + note


def answer(confirmed: list[Verdict], reevaluated: list[Verdict], max_params: int, flags: str = "") -> list[str]:
    """The report's first lines: the network to use within `max_params` (the leader of the
    re-evaluation on validation, a searched trial or a round, when it is confirmed, else the
    best searched network confirmed by test mean, which says so), the smallest that holds
    the target on every seed, and round3 and round1 under the same protocol. The commands
    it suggests name the study with `flags` (config.study_flags)."""
    full = [v for v in confirmed if len(v.final) >= len(PROTOCOL_SEEDS)]
    searched = [v for v in full if v.choice.baseline is None and v.params <= max_params]
    rounds = {v.choice.baseline: v for v in full if v.choice.baseline}
    seeds = ", ".join(map(str, PROTOCOL_SEEDS))
    within = sorted((v for v in reevaluated if v.params <= max_params), key=lambda v: -v.mean)
    leader = within[0] if within else None
    held = None if leader is None else next((v for v in full if _same(v.choice, leader.choice)), None)
    lines = []
    if leader is not None and held is None:
        lines.append(
            f"Leader of the re-evaluation on validation, at most {max_params:,} parameters: {leader.choice.label}, "
            f"{leader.params:,} parameters ({leader.mean:.2f}% over {len(leader.final)} new seeds); not confirmed on "
            f"test yet: drill-search confirm --trials {leader.choice.source_trial} --no-baselines{flags}")
    elif leader is not None or searched:
        if leader is not None:
            best, chosen = held, leader.choice
            how = f"the leader of the re-evaluation on validation ({leader.mean:.2f}% over {len(leader.final)} new seeds)"
        else:
            best = max(searched, key=lambda v: v.mean)
            chosen = best.choice
            how = ("the only one confirmed (chosen before its test runs)" if len(searched) == 1 else
                   f"the best test mean of the {len(searched)} confirmed (a choice made on test)")
        lines.append(
            f"Network to use, at most {max_params:,} parameters: {chosen.label}, {best.params:,} parameters "
            f"({chosen.candidate.describe()}), {how}: {best.mean:.2f}% mean final-epoch test accuracy over "
            f"seeds {seeds} (min {min(best.final):.2f}), retrained on all {MNIST_TRAIN:,} training images. Its search run's "
            f"weights: drill-search export {chosen.source_trial}{flags}")
    else:
        lines.append(f"No searched network of at most {max_params:,} parameters is confirmed on seeds {seeds} yet "
                     "(drill-search confirm).")
    holding = [v for v in full if v.reaches_target]
    if holding:
        small = min(holding, key=lambda v: v.params)
        lines.append(f"Smallest confirmed network at {TARGET_ACC:g}% or more on every seed: {small.choice.label}, "
                     f"{small.params:,} parameters (min {min(small.final):.2f}).")
    else:
        lines.append(f"No confirmed network holds {TARGET_ACC:g}% on every seed.")
    named = [f"{n} ({rounds[n].params:,} parameters) {rounds[n].mean:.2f}%" for n in ("round3", "round1") if n in rounds]
    if named:
        lines.append("The hand-designed rounds, same protocol: " + "; ".join(named) + ".")
    return lines


def _same(confirmed: Choice, leader: Choice) -> bool:
    """Whether a confirmation is of the re-evaluation's leader: the same trial, or for a
    round the same round (`confirm` confirms the rounds by default, by name, with no trial
    of the search when the round is off the front)."""
    return (confirmed.source_trial is not None and confirmed.source_trial == leader.source_trial) or \
        (leader.baseline is not None and confirmed.baseline == leader.baseline)


@dataclass(frozen=True)
class Summary:
    """What a search's companion studies add to its report (nothing is trained)."""

    answer: list[str]  # the sentences the report opens with
    tables: list[tuple[str, str, list[str], list[list[str]]]]  # (title, words, header, rows)
    spread: dict[int, tuple[float, float, int]]  # trial -> (mean, SE, runs) of its re-evaluated score
    text: str  # the same tables for the terminal


def summary(search: optuna.Study, storage, recipe: Recipe, flags: str = "") -> Summary:
    confirmed, _ = stored_verdicts(search, storage, recipe)
    reevaluated, _ = stored_verdicts(search, storage, recipe, VALIDATION)
    within = study_goal(search).max_params or study_budget(search)
    tables, text = [], []
    if reevaluated:
        check = VALIDATION.of(search)
        tables.append(("Re-evaluation on validation",
                       "The leaders trained again under the search's own protocol with more seeds "
                       "(drill-search reevaluate); the mean over the new seeds selects (the search run is shown, not averaged); "
                       "test is recorded, never used to choose.", *table_rows(reevaluated, check)))
        text.append(table(reevaluated, recipe.epochs, check))
    if confirmed:
        tables.append(("Confirmation on test",
                       f"Retrained on all {MNIST_TRAIN:,} training images, seeds "
                       f"{', '.join(map(str, PROTOCOL_SEEDS))} (drill-search confirm); "
                       "final-epoch test accuracy.", *table_rows(confirmed)))
        text.append(stored_table(search, storage, recipe) or "")
    spread = {v.choice.source_trial: (v.mean, standard_error(v), len(v.final))
              for v in reevaluated if v.choice.source_trial is not None and len(v.final) > 1}
    lines = answer(confirmed, reevaluated, within, flags) if confirmed or reevaluated else []
    return Summary(lines, tables, spread, "\n\n".join(text))
