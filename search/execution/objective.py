"""The only trial-aware glue: sample -> budget -> build -> train -> record -> return.

Objectives: the validation score (maximize) and the parameter count (minimize). The
score is the mean validation accuracy over the last `SCORE_EPOCHS` epochs (`config.score`;
why: studies/method.md, "Validation selects, test reports"). Validation is a fixed
held-out part of the training images; test accuracy is recorded for reporting and never
read by anything that selects or prunes.

Under the `promote` strategy (`search.strategy.promote`) a trial first trains the cheap rung, a
complete schedule of `rung_epochs` epochs, recorded as `rung_*` user attributes; only a
promoted candidate goes on to the full protocol, from scratch, whose curves are the
trial's `val_acc` etc. and whose score is its objective. A trial is one candidate either
way, and its duration is its whole cost.

Outcomes: COMPLETE; PRUNED for rejected (over budget or outside a parameter goal), not
promoted (after the rung), pruned (by the rule), diverged
(nan/inf loss) and out of memory (after MAX_RETRY retries), each with its reason; FAIL
for an interruption, an unexpected error or one of the first MAX_RETRY out-of-memory
errors (`TrialError`), which the worker retries and never counts as finished, and for a
second queued copy of a round, withdrawn untrained (`first_copy`).
"""

from __future__ import annotations

from typing import Any

import dataclasses
import gc
import time
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import TrialState

import spaces

from ..config import MAX_EPOCHS, MAX_RETRY, Goal, Recipe, score
from ..engine.data import Split
from ..engine.model import count_params
from ..engine.train import Diverged, EpochResult, TrainResult, train
from ..strategy.promote import Promotion, RungResult, peers_for
from ..strategy.prune import Peer, Pruner
from ..strategy.sampler import RUNG_SCORE
from . import record
from .liveness import worker_id

_PEER_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


OOM_RETRY = "error: out of memory (retried before it counts as the candidate's)"


def free_memory(device: torch.device) -> None:
    """Give cached device memory back (after an out-of-memory error)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class TrialError(Exception):
    """An unexpected error ended a trial; it is stored FAIL with the reason and retried."""


class Withdrawn(TrialError):
    """A queued copy of a round that another trial runs: stored FAIL untrained with the
    reason ("withdrawn: ..."), never retried, never counted as finished."""


@dataclass(frozen=True)
class SearchData:
    train: Split  # what candidates learn from
    val: Split  # what the search selects and prunes on
    test: Split  # recorded per epoch for reporting only


class Objective:
    """Callable for `study.optimize`; one instance per worker process."""

    def __init__(
        self,
        data: SearchData,
        recipe: Recipe,
        max_params: int,
        pruner: Pruner,
        device: torch.device,
        progress: bool = False,
        artifacts=None,
        promotion: Promotion | None = None,
        rung_epochs: int = 3,
        goal: Goal = Goal(),
        *,
        space: Any,
    ) -> None:
        self.data = data
        self.space = space  # the study's space module (spaces.registry): what sample() asks the trial for
        self.promotion = promotion  # None: every candidate trains the full protocol
        self.rung_recipe = dataclasses.replace(recipe, epochs=rung_epochs)
        self.goal = goal
        self.recipe = recipe
        self.max_params = max_params
        self.pruner = pruner
        self.device = device
        self.progress = progress
        self.artifacts = artifacts  # an Optuna artifact store for the trained weights

    def __call__(self, trial: optuna.Trial) -> tuple[float, int]:
        start = time.time()
        trial.set_user_attr("worker", worker_id())  # first: liveness checks need it
        try:
            return self._run(trial, start)
        except (optuna.TrialPruned, TrialError):
            raise
        except KeyboardInterrupt:
            record.finish(trial, "interrupted", start)
            raise
        except Exception as e:  # noqa: BLE001 - FAIL, retried by the worker; never "finished"
            if _during_interrupt(e):
                # An error raised while an interrupt unwound (a journal lock's cleanup hit
                # by the signal mid-write): the interrupt is what happened.
                record.finish(trial, "interrupted", start)
                raise KeyboardInterrupt from e
            record.finish(trial, f"error: {type(e).__name__}: {e}", start)
            raise TrialError(f"{type(e).__name__}: {e}") from e

    def _run(self, trial: optuna.Trial, start: float) -> tuple[float, int]:
        try:
            candidate = self.space.sample(trial)
        except ValueError as e:  # parameters that make no network (a sampler other than the fitting one drew them)
            trial.set_constraint("params", 1.0)
            self._stop(trial, start, f"rejected: {e}")
        first = first_copy(trial)
        if first is not None:
            reason = (f"withdrawn: a duplicate of trial {first} ({trial.user_attrs['baseline']} queued twice by "
                      "commands started together); not trained")
            record.finish(trial, reason, start)
            raise Withdrawn(reason)
        scheduled = candidate.over(self.recipe.epochs)  # the schedule train() runs
        phases = tuple(scheduled.phase(e) for e in range(1, self.recipe.epochs + 1))
        n_params = count_params(candidate.arch)
        record.start(trial, candidate, n_params, self.recipe, str(self.device))
        # Budget before compute: over-budget candidates are infeasible and never trained.
        trial.set_constraint("params", float(n_params - self.max_params))
        if n_params > self.max_params:
            self._stop(trial, start, f"rejected: {n_params:,} parameters > budget {self.max_params:,}")
        reference = "baseline" in trial.user_attrs  # a hand-designed round: trained whatever the goal
        goal_params = self.goal.max_params
        if goal_params is not None and n_params > goal_params and not reference:
            self._stop(trial, start, f"rejected: {n_params:,} parameters > goal {goal_params:,}")
        trial.set_user_attr("pruner", repr(self.pruner))  # the rule with its settings, which changed between studies
        if self.promotion is not None:
            self._rung(trial, start, candidate, n_params, always=reference)

        def on_epoch(e: EpochResult) -> None:
            history.append(e)
            record.epoch(trial, history)
            if e.epoch < self.recipe.epochs:
                me = Peer(n_params, tuple(h.evals["val"].acc for h in history), phases)
                reason = self.pruner.prune(e.epoch, me, self._peers(trial))
                if reason is not None:
                    trial.set_user_attr("pruned_at_epoch", e.epoch)
                    self._stop(trial, start, f"pruned: {reason}")

        history: list[EpochResult] = []
        evals = {"val": self.data.val, "test": self.data.test}
        try:
            result = self._train(trial, start, candidate, self.recipe, self.data.train, evals, self.device,
                                 on_epoch=on_epoch, progress=self.progress,
                                 on_step=record.StepRecorder(trial, "run", self.recipe.batch_for(candidate)))
        except Diverged as e:
            self._stop(trial, start, f"diverged: {e}")

        if self.artifacts is not None:
            record.save_weights(trial, result.model, self.artifacts)
        record.finish(trial, "complete", start)
        return score(e.evals["val"].acc for e in history), n_params

    def _rung(self, trial: optuna.Trial, start: float, candidate, n_params: int, always: bool) -> None:
        """Train the cheap rung and decide the promotion, unless this trial is the retry of
        one that decided already (it inherits the decision and the rung's figures)."""
        promoted = trial.user_attrs.get("promoted")
        if promoted is None:
            trial.set_user_attr("promotion", repr(self.promotion))
            history: list[EpochResult] = []

            def on_epoch(e: EpochResult) -> None:
                history.append(e)
                record.rung(trial, history)  # every epoch: progress lines read it

            try:
                self._train(trial, start, candidate, self.rung_recipe, self.data.train, {"val": self.data.val},
                            self.device, on_epoch=on_epoch, progress=self.progress,
                            on_step=record.StepRecorder(trial, "rung", self.recipe.batch_for(candidate)))
            except Diverged as e:
                self._stop(trial, start, f"diverged at the rung: {e}")
            me = RungResult(n_params, history[-1].evals["val"].acc)
            reason = None if always else self.promotion.decide(me, peers_for(me, self._rung_peers(trial), self.goal))
            promoted = reason is None
            trial.set_user_attr("promoted", promoted)
            if reason is not None:
                trial.set_user_attr("state_reason", f"not promoted: {reason}")
        if not promoted:
            self._stop(trial, start, trial.user_attrs.get("state_reason") or "not promoted")

    def _train(self, trial: optuna.Trial, start: float, *args, **kw) -> TrainResult:
        """`train(*args, **kw)` (the rung or the full run), its out-of-memory error handled
        here for both: memory freed, the trial retried MAX_RETRY times (with several workers
        on one GPU the peak may have been another worker's), then the candidate's named
        outcome."""
        try:
            return train(*args, **kw)
        # torch.cuda.OutOfMemoryError: the name exists in every torch this supports (since
        # 2.5 torch.OutOfMemoryError is the same class).
        except torch.cuda.OutOfMemoryError:
            pass
        free_memory(self.device)  # here the traceback, and the tensors its frames held, are gone
        if trial.user_attrs.get("retries", 0) < MAX_RETRY:
            record.finish(trial, OOM_RETRY, start)
            raise TrialError("out of memory")
        self._stop(trial, start, "out of memory")

    def _rung_peers(self, trial: optuna.Trial) -> list[RungResult]:
        """Other trials' rung results of this study: those decided (a rung still training
        has part of its curve stored; a failed trial's do not count: its retry carries them)."""
        return [RungResult(t.user_attrs["params"], t.user_attrs[RUNG_SCORE][-1])
                for t in trial.study.get_trials(deepcopy=False, states=_PEER_STATES)
                if t.number != trial.number and "promoted" in t.user_attrs and t.user_attrs.get(RUNG_SCORE)]

    def _stop(self, trial: optuna.Trial, start: float, reason: str):
        record.finish(trial, reason, start)
        raise optuna.TrialPruned(reason)

    def _peers(self, trial: optuna.Trial) -> list[Peer]:
        """Other trials' validation curves, read from storage (works across workers)."""
        return [peer(t, self.recipe.epochs) for t in trial.study.get_trials(deepcopy=False, states=_PEER_STATES)
                if t.number != trial.number and t.user_attrs.get("val_acc")]


def first_copy(trial: optuna.Trial) -> int | None:
    """The number of the round's first queued copy when `trial` is a later one, else None.

    Queueing a round reads the study, then writes (`enqueue_trial(skip_if_exists=True)`,
    whose docs say so), so two commands that open a study at once may both queue it. No
    storage has a transaction across that read and write (PostgreSQL is shared between
    machines, a lock file is not), so a copy is recognised before it trains: of a round's
    queued copies (its retries aside), the lowest-numbered one runs.
    """
    name = trial.user_attrs.get("baseline")
    if name is None or "retry_of" in trial.user_attrs:
        return None
    return next((t.number for t in trial.study.get_trials(deepcopy=False)
                 if t.number < trial.number and t.user_attrs.get("baseline") == name
                 and "retry_of" not in t.user_attrs), None)


def _during_interrupt(e: BaseException) -> bool:
    """Whether `e` was raised while a KeyboardInterrupt was being handled."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__context__
    return False


def peer(t: optuna.trial.FrozenTrial, epochs: int = MAX_EPOCHS) -> Peer:
    """A stored trial of a study whose runs last `epochs`, as the pruning rule sees it."""
    curve = tuple(t.user_attrs["val_acc"])
    candidate = spaces.decode(t.params).over(epochs)
    phases = tuple(candidate.phase(e) for e in range(1, len(curve) + 1))
    final = t.values[0] if t.state == TrialState.COMPLETE else None
    return Peer(params=t.user_attrs["params"], val_acc=curve, phases=phases, final=final)
