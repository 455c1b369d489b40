"""What a trial carries in storage: its curves and its provenance, as plain JSON values.

Everything here is readable with plain `optuna.load_study(...)`: per-epoch figures are
lists under user attributes named `<split>_<metric>` (`val_acc`, `test_loss`, ...),
epoch 1 first.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

from .train import EpochResult



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
