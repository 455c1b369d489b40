"""`drill-search run --baseline NAME`: a hand-designed round trained with its own recipe
on all the training images, tested every epoch, and stored as a run of the study of the
rounds (`runs.open_baselines`). It reports what happens as events (`Starting`, each
epoch's `EpochResult`, `Trained`); the CLI prints them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .config import BaselineConfig
from .engine.data import load_mnist
from .engine.model import build_model
from .engine.train import EpochResult, TrainResult
from .execution.runs import open_baselines, record_run
from .execution.storage import artifact_store, open_storage


@dataclass(frozen=True)
class Starting:
    """The data is on the device and the study open: the round trains as `model` next."""

    model: torch.nn.Module


@dataclass(frozen=True)
class Trained:
    """The round has trained every epoch and is stored."""

    result: TrainResult


BaselineEvent = Starting | EpochResult | Trained


def reproduce(cfg: BaselineConfig, on_event: Callable[[BaselineEvent], None] = lambda e: None,
              progress: bool = False) -> TrainResult:
    """Train `cfg.baseline` as a new trial of `cfg.study_name`; `progress` shows a bar
    over each epoch's batches."""
    device = torch.device(cfg.device)
    data = load_mnist(cfg.data.root, download=cfg.data.download).to(device)
    study = open_baselines(open_storage(cfg.storage), cfg.study_name)
    c = cfg.baseline.candidate
    on_event(Starting(build_model(c.arch, sparse_dropout=cfg.recipe.sparse_dropout_on(device.type))))
    result = record_run(study, c, cfg.recipe, data.train, {"test": data.test}, device,
                        {"baseline": cfg.baseline.name}, on_epoch=on_event, progress=progress,
                        artifacts=artifact_store(cfg.storage))
    on_event(Trained(result))
    return result
