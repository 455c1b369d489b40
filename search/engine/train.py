"""The one training loop: optimizer, schedule, loss and backward live here and nowhere else.

It knows nothing of Optuna. Whoever calls it may pass `on_epoch`, called after every
epoch with that epoch's figures; raising from it stops training (that is how the search
prunes), and the exception reaches the caller unchanged.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from spaces import Candidate
from spaces.arch import ONECYCLE_WARMUP, SCHEDULE_EPOCHS, WARMLINEAR

from ..config import Recipe
from .data import Split, augmented_epoch, batches, normalize
from .model import build_model


class Diverged(RuntimeError):
    """The training loss stopped being a finite number."""


@dataclass(frozen=True)
class Metrics:
    loss: float  # mean negative log-likelihood
    acc: float  # percent correct


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # counted from 1
    lr: float  # learning rate at the epoch's first step (StepLR holds it all epoch; one-cycle moves it every step)
    train: Metrics  # running figures over the epoch, in training mode, augmented inputs
    evals: Mapping[str, Metrics]  # per evaluation split, after the epoch
    seconds: float  # training and evaluation wall time of this epoch


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochResult] = field(default_factory=list)
    steps: int = 0  # optimizer steps taken
    seconds: float = 0.0


EpochCallback = Callable[[EpochResult], None]
# (epoch, steps done in it, steps in it, seconds since it began), every STEP_REPORT steps
StepCallback = Callable[[int, int, int, float], None]
STEP_REPORT = 20


def train(
    candidate: Candidate,
    recipe: Recipe,
    train_split: Split,
    evals: Mapping[str, Split],
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train `candidate` on `train_split` with `recipe`, evaluating `evals` after each epoch;
    `on_step` hears how far the epoch has gone (live progress within an epoch).

    Same seed, same device, same data: same numbers, on the CPU always, on CUDA with
    `recipe.deterministic` (cuDNN's fastest kernels, picked otherwise, are not
    deterministic). The data splits must already be on `device`.
    """
    with cuda_determinism(device, recipe.deterministic):
        return _train(candidate, recipe, train_split, evals, device, on_epoch, progress, on_step)


@contextlib.contextmanager
def cuda_determinism(device: torch.device, deterministic: bool):
    """cuDNN set for speed (benchmark: fixed shapes, fastest kernels) or, when asked, for
    determinism, inside the block only; the CPU needs neither."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    if deterministic:
        # cuBLAS reads this when it starts; set before the first CUDA matmul of the process
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn.benchmark, cudnn.deterministic = not deterministic, deterministic
    # warn_only: a few CUDA backward kernels have no deterministic version (adaptive
    # average pooling, the `gap` head, among them); they warn instead of failing the trial.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = before[0], before[1]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])


def _train(candidate, recipe, train_split, evals, device, on_epoch, progress, on_step) -> TrainResult:
    candidate = candidate.over(recipe.epochs)  # a short run gets a complete schedule
    torch.manual_seed(recipe.seed)  # weights and dropout masks
    generator = torch.Generator(device=device).manual_seed(recipe.seed)  # order and angles
    model = build_model(candidate.arch, sparse_dropout=recipe.sparse_dropout_on(device.type)).to(device)
    forward = model
    if recipe.compile:
        # A long-lived worker compiles a new architecture every trial: without a reset
        # Dynamo counts them all against its recompile limit and silently falls back to
        # eager once it is reached.
        torch._dynamo.reset()
        # On CUDA "reduce-overhead" replays the step's kernels as CUDA graphs: a network
        # this small is bound by kernel launches, not arithmetic.
        forward = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else None)
    batch_size = recipe.batch_for(candidate)
    # fused: one kernel for the whole SGD step on CUDA (the CPU step is cheap already)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr_for(candidate), momentum=candidate.momentum,
                                fused=device.type == "cuda")
    steps_per_epoch = math.ceil(len(train_split) / batch_size)
    scheduler, per_batch = make_scheduler(optimizer, candidate, recipe, steps_per_epoch)
    ema = moving_average(model, candidate.ema, steps_per_epoch)
    judged = model if ema is None else ema.module  # the weights evaluated and returned
    result = TrainResult(model=judged)
    start = time.perf_counter()

    for epoch in range(1, recipe.epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        inputs, labels = augmented_epoch(train_split, generator, **augmentation(candidate, recipe))
        n_steps = steps_per_epoch
        bar = tqdm(total=n_steps, desc=f"epoch {epoch}/{recipe.epochs}", leave=False,
                   disable=None if progress else True, unit="step")
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step, (x, y) in enumerate(batches(inputs, labels, batch_size)):
            # forward / backward / step
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.bf16):
                out = forward(x)
            loss = loss_of(out.float(), y, candidate.smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            result.steps += 1
            if per_batch:
                scheduler.step()
            # running figures stay on the device: no host sync per step
            loss_sum += loss.detach() * len(y)
            correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
            if on_step is not None and (step + 1) % STEP_REPORT == 0:
                on_step(epoch, step + 1, n_steps, time.perf_counter() - t0)
            if not bar.disable and (step % 50 == 0 or step == n_steps - 1):
                bar.set_postfix_str(f"loss={loss.item():.4f} acc={100 * correct.item() / seen:.2f}")
                bar.update(step + 1 - bar.n)
        bar.close()
        if not per_batch:
            scheduler.step()

        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            raise Diverged(f"the training loss became {train_loss} in epoch {epoch}")
        figures = EpochResult(
            epoch=epoch,
            lr=lr,
            train=Metrics(train_loss, 100.0 * correct.item() / seen),
            evals={name: evaluate(judged, split) for name, split in evals.items()},
            seconds=time.perf_counter() - t0,
        )
        result.history.append(figures)
        result.seconds = time.perf_counter() - start
        if on_epoch is not None:
            on_epoch(figures)
    return result


def augmentation(candidate: Candidate, recipe: Recipe) -> dict:
    """`augmented_epoch`'s arguments for the candidate: its augmentation, or none at all
    when the recipe turns augmentation off."""
    if not recipe.augment:
        return {"degrees": 0.0}
    return {"degrees": candidate.rotation, "shift": candidate.shift, "scale": candidate.scale,
            "p": candidate.affine_p, "jitter": candidate.jitter}


def loss_of(log_probs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mean negative log-likelihood, with label smoothing when asked. cross_entropy applies
    log_softmax to its input, which leaves log-probabilities as they are."""
    if smoothing:
        return F.cross_entropy(log_probs, labels, label_smoothing=smoothing)
    return F.nll_loss(log_probs, labels)


def moving_average(model: nn.Module, epochs: float, steps_per_epoch: int) -> AveragedModel | None:
    """An exponential moving average of the weights and BatchNorm statistics over about
    `epochs` epochs (decay 1 - 1 / its steps), from the first step's weights on
    (AveragedModel's), or None when `epochs` is 0."""
    if not epochs:
        return None
    decay = 1.0 - 1.0 / max(1.0, epochs * steps_per_epoch)
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def make_scheduler(optimizer: torch.optim.Optimizer, candidate: Candidate, recipe: Recipe,
                   steps_per_epoch: int) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
    """The candidate's learning-rate schedule, and whether it steps every batch."""
    if candidate.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=candidate.lr_step, gamma=recipe.lr_gamma), False
    if candidate.schedule == "warmlinear":
        # one lr per epoch, the knots' epochs stretched over a run of recipe.epochs
        stretch = SCHEDULE_EPOCHS / recipe.epochs
        knots, factors = zip(*WARMLINEAR)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: float(np.interp(epoch * stretch, knots, factors))), False
    # onecycle: momentum stays at the candidate's value, so only the lr differs from step runs
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr_for(candidate), epochs=recipe.epochs,
        steps_per_epoch=steps_per_epoch, pct_start=ONECYCLE_WARMUP, cycle_momentum=False,
    ), True


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int = 2000) -> Metrics:
    """Mean NLL and percent correct on `split`, in eval mode (BatchNorm running stats)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=split.labels.device)
    correct = torch.zeros((), device=split.labels.device, dtype=torch.long)
    for start in range(0, len(split), batch_size):
        x = normalize(split.images[start : start + batch_size])
        y = split.labels[start : start + batch_size]
        out = model(x)
        loss_sum += F.nll_loss(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    return Metrics(loss_sum.item() / len(split), 100.0 * correct.item() / len(split))
