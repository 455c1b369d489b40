"""What a trial carries in storage: its curves and its provenance, as plain JSON values.

Everything here is readable with plain `optuna.load_study(...)`: per-epoch figures are
lists under user attributes named `<split>_<metric>` (`val_acc`, `test_loss`, ...),
epoch 1 first.
"""

from __future__ import annotations

import functools
import io
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import download_artifact, get_all_artifact_meta, upload_artifact
from torch import nn

from .train import EpochResult

WEIGHTS = "weights.pt"  # the artifact holding a trained model's state dict



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

    from . import __version__

    return {
        "drill_search": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "optuna": optuna.__version__,
        "code_revision": _git_revision(),
    }


def _git_revision() -> str:
    """The checkout's commit (with '+dirty' when it has local changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(recipe_dict: dict[str, Any], device: str) -> dict[str, Any]:
    """Recipe, device and library versions: what a trial needs to be reproduced."""
    return {"recipe": recipe_dict, "device": device, "versions": versions()}


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
