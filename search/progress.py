"""Live progress of a search or a confirmation: never minutes of silence.

One status line per run in progress (trial, epoch e/E, latest accuracy, seconds per
epoch) and one overall line (runs finished / total, elapsed time, an estimate of the time
left). On a terminal these are tqdm lines redrawn in place, with permanent lines (a
finished trial) printed above them; elsewhere (a log file, CI) each new epoch and each
overall update is a plain line.

The estimate is simple arithmetic on what was measured so far, and says so with "~":
epochs still to train (the rest of the running runs, plus the runs not started times the
mean number of epochs a finished run trained) x the mean seconds per epoch / workers.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm


@dataclass(frozen=True)
class Running:
    """One run in progress, as the status line shows it."""

    key: int  # trial number
    label: str  # "trial 12", "round3 seed 2"
    epoch: int  # epochs done
    epochs: int  # of this many
    metric: str = "val"  # which accuracy `acc` is
    acc: float | None = None
    seconds_per_epoch: float | None = None
    stage: str = "epoch"  # "rung epoch" while a candidate trains the cheap rung (search.strategy.promote)
    within: dict | None = None  # how far the epoch under way has gone (record.StepRecorder)

    def text(self) -> str:
        w = self.within
        if w and w["epoch"] == self.epoch + 1 and w["step"]:
            left = w["seconds"] * (w["steps"] - w["step"]) / w["step"]
            last = f"  last {self.metric} {self.acc:.2f}%" if self.acc is not None else ""
            return (f"{self.label}: {self.stage} {w['epoch']}/{self.epochs}, step {w['step']}/{w['steps']}  "
                    f"{w['images_per_s']:,} img/s  ~{left:.0f} s to the epoch's end{last}")
        if self.epoch == 0:
            return f"{self.label}: starting {self.stage} 1/{self.epochs}"
        acc = f"  {self.metric} {self.acc:.2f}%" if self.acc is not None else ""
        speed = f"  {self.seconds_per_epoch:.0f} s/epoch" if self.seconds_per_epoch else ""
        return f"{self.label}: {self.stage} {self.epoch}/{self.epochs}{acc}{speed}"


def estimate_left(running: list[Running], not_started: int, epochs_per_run: float,
                  seconds_per_epoch: float | None, workers: int) -> float | None:
    """Seconds left, or None before any epoch has been timed."""
    if seconds_per_epoch is None:
        return None
    epochs_left = sum(r.epochs - r.epoch for r in running) + not_started * epochs_per_run
    return epochs_left * seconds_per_epoch / max(1, workers)


def mean_or(values: list[float], default: float | None) -> float | None:
    return statistics.fmean(values) if values else default


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Status lines for runs in progress and one overall line; see the module docstring."""

    def __init__(self, total: int, done: int = 0, what: str = "trials", enabled: bool = True,
                 stream: TextIO | None = None, tty: bool | None = None, every: float = 60.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.enabled = enabled
        self.total, self.done, self.what = total, done, what
        self.start = time.time()
        self.every = every  # plain mode: seconds between overall lines when nothing else happens
        self.left: float | None = None
        self._seen: dict[int, int] = {}  # key -> last epoch printed (plain mode)
        self._last_overall = 0.0
        self._bars: list[tqdm] = []
        self._overall = None
        if self.enabled and self.tty:
            self._overall = tqdm(total=total, initial=min(done, total), file=self.stream,
                                 dynamic_ncols=True, bar_format="|{bar:20}| {desc}")
            self._refresh_overall()

    def overall_text(self) -> str:
        left = f", ~{clock(self.left)} left" if self.left is not None else ", time left: after the first epoch"
        return f"{self.done}/{self.total} {self.what} finished, {clock(time.time() - self.start)} elapsed{left}"

    def update(self, running: list[Running], done: int, left: float | None) -> None:
        """Show the runs in progress and the overall line (called on every poll)."""
        if not self.enabled:
            return
        self.left = left
        changed_total = done != self.done
        if self._overall is not None:
            self._overall.update(max(0, min(done, self.total) - self._overall.n))
        self.done = done
        if self.tty:
            self._draw(running)
            self._refresh_overall()
            return
        new = False
        for r in running:
            if self._seen.get(r.key) != r.epoch:
                self._seen[r.key] = r.epoch
                print(f"  {r.text()}", file=self.stream, flush=True)
                new = True
        now = time.time()
        if changed_total or (new and now - self._last_overall >= self.every) or now - self._last_overall >= 5 * self.every:
            self._last_overall = now
            print(f"  [{self.overall_text()}]", file=self.stream, flush=True)

    def write(self, line: str) -> None:
        """A permanent line (a finished trial), above the status lines."""
        if not self.enabled:
            return
        if self._overall is not None:
            self._overall.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        for bar in self._bars:
            bar.close()
        self._bars = []
        if self._overall is not None:
            self._overall.close()
            self._overall = None

    def _refresh_overall(self) -> None:
        self._overall.set_description_str(self.overall_text(), refresh=True)

    def _draw(self, running: list[Running]) -> None:
        while len(self._bars) < len(running):
            self._bars.append(tqdm(total=0, file=self.stream, bar_format="  {desc}", position=len(self._bars) + 1,
                                   leave=False, dynamic_ncols=True))
        for i, bar in enumerate(self._bars):
            bar.set_description_str(running[i].text() if i < len(running) else "", refresh=True)


# --- a search's progress, read from its trials in storage ----------------------------------


def search_status(trials, total: int, epochs: int, workers: int, rung_epochs: int | None = None
                  ) -> tuple[list[Running], int, float | None]:
    """Runs in progress, trials finished (complete, pruned, rejected), and seconds left.
    Under promotion (`rung_epochs`), a trial still on its rung shows the rung's epochs, and
    rung epochs count in the estimate like any other epoch."""
    from optuna.trial import TrialState

    running, done, trained, timed = [], 0, [], []
    for t in trials:
        a = t.user_attrs
        secs = (a.get("rung_epoch_seconds") or []) + (a.get("epoch_seconds") or [])
        timed += secs
        if t.state == TrialState.RUNNING:
            name = f"trial {t.number}" + (f" [{a['baseline']}]" if "baseline" in a else "")
            size = f" ({a['params']:,} params)" if "params" in a else ""
            val = a.get("val_acc") or []
            on_rung = rung_epochs is not None and not val and "promoted" not in a
            curve, stage, of = (a.get("rung_val_acc") or [], "rung epoch", rung_epochs) if on_rung else \
                (val, "epoch", epochs)
            within = a.get("in_epoch")
            if within and within.get("stage") != ("rung" if on_rung else "run"):
                within = None
            running.append(Running(t.number, name + size, len(curve), of, "val", curve[-1] if curve else None,
                                   mean_or(secs, None), stage, within))
        elif t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            done += 1
            trained.append(len(a.get("rung_val_acc") or []) + len(a.get("val_acc") or []))
    not_started = max(0, total - done - len(running))
    left = estimate_left(running, not_started, mean_or(trained, epochs), mean_or(timed[-60:], None), workers)
    return running, done, left


def confirm_status(runs, total: int, epochs: int, ids: set[str], split: str = "test"
                   ) -> tuple[list[Running], int, float | None]:
    """A confirmation's runs in progress (those of the workers `ids`), distinct planned runs
    stored of the `total`, and seconds left; `runs` are the confirm study's trials of the plan.
    Running runs show their accuracy on `split`."""
    from optuna.trial import TrialState

    running, stored, timed = [], set(), []
    for t in runs:
        a = t.user_attrs
        secs = a.get("epoch_seconds") or []
        if t.state == TrialState.COMPLETE:
            stored.add((tuple(sorted(t.params.items())), a.get("confirm_seed")))  # a run stored twice counts once
            timed += secs
        elif t.state == TrialState.RUNNING and a.get("worker") in ids:
            timed += secs
            acc = a.get(f"{split}_acc") or []
            running.append(Running(t.number, f"{a['label']} seed {a['confirm_seed']}", len(acc), epochs, split,
                                   acc[-1] if acc else None, mean_or(secs, None), within=a.get("in_epoch")))
    done = len(stored)
    not_started = max(0, total - done - len(running))
    # the runs in progress are the workers now: `ids` also holds every worker that ended
    return running, done, estimate_left(running, not_started, epochs, mean_or(timed[-60:], None), len(running))


def run_line(t, score: str = "final test") -> str:
    """The permanent line of a finished run: its `score` (or why it failed) and its time."""
    from optuna.trial import TrialState

    a = t.user_attrs
    what = f"{score} {t.values[0]:.2f}%" if t.state == TrialState.COMPLETE else a.get("state_reason", "failed")
    return f"  {a['label']:<10} seed {a['confirm_seed']}: {what}  ({sum(a.get('epoch_seconds') or []):.0f} s)"
