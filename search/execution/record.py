"""What a trial records, written here and nowhere else: architecture, size, provenance,
per-epoch curves, outcome and weights. The search objective and the runs
(`search.execution.runs.record_run`: rounds, confirmations, re-evaluations) both write through
these functions.

Everything here is readable with plain `optuna.load_study(...)`: per-epoch figures are
lists under user attributes named `<split>_<metric>` (`val_acc`, `test_loss`, ...),
epoch 1 first; `state_reason` says how the trial ended (complete, pruned: ..., rejected:
..., diverged: ..., out of memory, interrupted, error: ..., withdrawn: ...).
"""

from __future__ import annotations

import functools
import io
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import download_artifact, get_all_artifact_meta, upload_artifact
from torch import nn

import spaces

from ..config import Recipe
from ..engine.train import EpochResult
from .liveness import worker_id

WEIGHTS = "weights.pt"  # the artifact holding a trained model's state dict
# What a trial's numbers depend on: the space and its learning-rate scaling and schedule
# live in spaces/, the rounds in baselines/, the dependency floors in pyproject.toml. Not
# studies/ (results; the shipped journal grows while a search runs) nor tests/.
RUN_CODE = ("search", "spaces", "baselines", "pyproject.toml")


def start(trial: optuna.Trial, candidate: spaces.Candidate, n_params: int, recipe: Recipe, device: str) -> None:
    """What is known before training: architecture, size, seed, worker and provenance."""
    info = {"arch": candidate.arch.describe(), "params": n_params, "seed": recipe.seed,
            "worker": worker_id(), **provenance({**recipe.to_dict(), "batch_size": recipe.batch_for(candidate),
                                                  "momentum": candidate.momentum}, device)}
    for key, value in info.items():
        trial.set_user_attr(key, value)


def epoch(trial: optuna.Trial, history: list[EpochResult]) -> None:
    """The curves so far, and when they were written (progress, for fail-stale)."""
    for key, value in curves(history).items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("updated_at", round(time.time(), 1))


class StepRecorder:
    """Writes how far the current epoch has gone as the user attribute `in_epoch`, at most
    every `every` seconds (a storage write per step would cost more than the step), so
    progress lines show a figure within seconds of a run's start, not after its first
    epoch."""

    def __init__(self, trial: optuna.Trial, stage: str, batch_size: int, every: float = 10.0) -> None:
        self.trial, self.stage, self.batch_size, self.every = trial, stage, batch_size, every
        self.last = time.monotonic()

    def __call__(self, epoch: int, step: int, steps: int, seconds: float) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        self.trial.set_user_attr("updated_at", round(time.time(), 1))  # alive, for fail-stale
        self.trial.set_user_attr("in_epoch", {"stage": self.stage, "epoch": epoch, "step": step, "steps": steps,
                                              "seconds": round(seconds, 1),
                                              "images_per_s": round(step * self.batch_size / max(seconds, 1e-9))})


def rung(trial: optuna.Trial, history: list[EpochResult]) -> None:
    """The cheap rung's curves (search.strategy.promote), as `rung_<name>` beside the full run's, and
    when they were written (fail-stale reads it)."""
    for key, value in curves(history).items():
        trial.set_user_attr(f"rung_{key}", value)
    trial.set_user_attr("updated_at", round(time.time(), 1))


def epochs_trained(trials: list) -> dict[int, tuple[int, int]]:
    """Trial number -> (rung epochs, run epochs) it trained itself. A retry of a trial that
    had decided its promotion carries that rung's curves without training them
    (`liveness.requeue` marks them `rung_inherited`; older retries are told by the rung's
    timings, which a second training would not repeat): they count once, on the original."""
    by_number = {t.number: t for t in trials}
    out = {}
    for t in trials:
        a = t.user_attrs
        rung = len(a.get("rung_val_acc") or [])
        original = by_number.get(a.get("retry_of"))
        if a.get("rung_inherited") or (original is not None and rung and a.get("rung_epoch_seconds")
                                       == original.user_attrs.get("rung_epoch_seconds")):
            rung = 0
        out[t.number] = (rung, len(a.get("val_acc") or a.get("test_acc") or []))
    return out


def finish(trial: optuna.Trial, reason: str, started: float) -> None:
    """How the trial ended and how long it took."""
    trial.set_user_attr("state_reason", reason)
    trial.set_user_attr("seconds", round(time.time() - started, 3))



def curves(history: list[EpochResult]) -> dict[str, list[float]]:
    """Per-epoch lists: lr, train_loss, train_acc, <split>_loss, <split>_acc, epoch_seconds."""
    out: dict[str, list[float]] = {
        "lr": [e.lr for e in history],
        "train_loss": [round(e.train.loss, 6) for e in history],
        "train_acc": [e.train.acc for e in history],
    }
    for e in history:
        for split, m in e.evals.items():
            out.setdefault(f"{split}_loss", []).append(round(m.loss, 6))
            out.setdefault(f"{split}_acc", []).append(m.acc)
    out["epoch_seconds"] = [round(e.seconds, 3) for e in history]
    return out


@functools.cache
def versions() -> dict[str, str]:
    import optuna
    import torch
    import torchvision

    from .. import __version__

    return {
        "drill_search": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "optuna": optuna.__version__,
        "code_revision": _git_revision(),
    }


def _git_revision() -> str:
    """The checkout's commit (with '+dirty' when the code that shapes a run has local
    changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *RUN_CODE],
            cwd=root, capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(recipe_dict: dict[str, Any], device: str) -> dict[str, Any]:
    """Recipe, device, CPU and library versions: what a trial needs to be reproduced, and
    what its timings mean (the machine this project runs on changes CPU between sessions)."""
    return {"recipe": recipe_dict, "device": device, "cpu": cpu_model(), "versions": versions()}


@functools.cache
def cpu_model() -> str:
    """'AMD EPYC (family 25, model 1; avx2)': the name, the generation and the vector
    extensions that set training speed (AVX512-BF16 makes --bf16 pay)."""
    try:
        info = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"{fields.get('model name', platform.machine())} (family {fields.get('cpu family', '?')}, model "
            f"{fields.get('model', '?')}; {' '.join(vector) or 'no avx2'})")


def save_weights(trial: optuna.Trial, model: nn.Module, store) -> str:
    """Upload the model's state dict as the running trial's `weights.pt` artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / WEIGHTS
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)


def load_weights(trial: optuna.trial.FrozenTrial, storage, store) -> dict[str, torch.Tensor] | None:
    """The state dict a finished trial saved, or None if it saved none."""
    metas = [m for m in get_all_artifact_meta(trial, storage=storage) if m.filename == WEIGHTS]
    if not metas:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / WEIGHTS
        download_artifact(artifact_store=store, file_path=str(path), artifact_id=metas[-1].artifact_id)
        return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
