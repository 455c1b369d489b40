"""The value a search point stands for: a network's widths plus the training knobs.

Every network here is the same chain (see `search.engine.model` for the layers):

    block(1->c1) block(c1->c2) transition 1x1(c2->t) maxpool
    block(t->c4) [block(c4->c5)] block(->c6) block(c6->c7, pad 1) pool 1x1-conv(c7->10)

Only the widths, the optional block, dropout, the pooling, the learning-rate schedule,
the batch size and the rotation range of the augmentation differ between candidates, so
a candidate is a small frozen value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .net import HEADS, Net, Stage

POOLS = HEADS  # avg6: AvgPool2d(6) as in the notebooks; gap: true global average
# step: the notebooks' StepLR (the lr drops 100x every lr_step epochs: once at lr_step 8
# over 15 epochs, twice or more at 7 and below);
# onecycle: OneCycleLR per batch, warm-up to lr over 30% of the run, then cosine down;
# warmlinear: the published 3,762-parameter design's, one lr per epoch, interpolated
# linearly between WARMLINEAR's knots (epoch of a 15-epoch run, fraction of the peak lr).
SCHEDULES = ("step", "onecycle", "warmlinear")
WARMLINEAR = ((0, 0.5), (2, 1.0), (8, 0.1), (12, 0.05), (15, 0.0))
ONECYCLE_WARMUP = 0.3  # onecycle: the lr climbs over this part of the run (OneCycleLR pct_start)
NOTEBOOK_BATCH = 64  # the notebooks' batch; learning rates are given for it
NOTEBOOK_ROTATION = 7.0  # degrees: RandomRotation((-7, 7)) in every round
JITTER_P = 0.5  # the chance of brightness and contrast jitter, albumentations' RandomBrightnessContrast default
SCHEDULE_EPOCHS = 15  # lr_step counts epochs of a run this long (the exercise's limit)


@dataclass(frozen=True)
class Arch:
    """Channel widths, dropout and pooling of one network."""

    c1: int  # block 1, 28x28 -> 26x26
    c2: int  # block 2, -> 24x24
    t: int  # 1x1 transition before the 2x2 max-pool
    c4: int  # block 4, 12x12 -> 10x10
    c5: int | None  # optional block 5, 10x10 -> 8x8; None when absent
    c6: int  # block 6
    c7: int  # block 7, padding 1 (keeps the size)
    dropout: float  # after every block; 0 removes the Dropout layers
    pool: str = "avg6"

    def __post_init__(self) -> None:
        for name in ("c1", "c2", "t", "c4", "c6", "c7"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive width, got {getattr(self, name)}")
        if self.c5 is not None and self.c5 < 1:
            raise ValueError(f"c5 must be a positive width or None, got {self.c5}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def params(self) -> int:
        """Trainable parameters, in closed form."""
        return self.to_net().params

    def to_net(self) -> Net:
        """The same network as stages: (c1, c2, transition, max-pool), (c4, [c5], c6),
        (c7 padded), then the pool and the 1x1 head; built, it has the same layers in the
        same order, so the same seed gives it the same weights (tested)."""
        middle = (self.c4,) + ((self.c5,) if self.c5 is not None else ()) + (self.c6,)
        return Net((Stage((self.c1, self.c2), transition=self.t, pool=True), Stage(middle),
                    Stage((self.c7,), pad=True)), dropout=self.dropout, head=self.pool)

    def describe(self) -> str:
        """Widths in chain order, e.g. '8-16-t8-12-14-14 d0.01'."""
        widths = [self.c1, self.c2, f"t{self.t}", self.c4]
        widths += [self.c5] if self.c5 is not None else []
        widths += [self.c6, self.c7]
        pool = "" if self.pool == "avg6" else f" {self.pool}"
        return "-".join(str(w) for w in widths) + f" d{self.dropout:g}{pool}"


@dataclass(frozen=True)
class Candidate:
    """A point of the search space: a network and how it is trained (schedule, batch,
    augmentation)."""

    arch: Arch
    lr: float  # SGD learning rate (peak lr for onecycle) at batch size 64; scaled with the batch
    lr_step: int | None = 8  # step: the lr drops 100x every lr_step epochs; None for onecycle
    schedule: str = "step"
    batch_size: int = NOTEBOOK_BATCH
    rotation: float = NOTEBOOK_ROTATION  # training images turn by a uniform angle in [-rotation, rotation]
    # Knobs the first space does not search; each default is what its studies trained with.
    momentum: float = 0.9  # SGD's
    shift: float = 0.0  # and move by a uniform fraction of the side in [-shift, shift], each axis
    scale: float = 0.0  # and scale by a uniform factor in [1 - scale, 1 + scale]
    affine_p: float = 1.0  # the chance that an image is turned, moved and scaled at all
    jitter: float = 0.0  # brightness and contrast: p = JITTER_P, x * (1 + U(-j, j)) + 255 U(-j, j)
    smoothing: float = 0.0  # label smoothing of the loss
    ema: float = 0.0  # epochs: evaluate an exponential moving average of the weights over about this many; 0: off

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "step" and (self.lr_step is None or self.lr_step < 1):
            raise ValueError(f"lr_step must be at least 1 for the step schedule, got {self.lr_step}")
        if self.schedule != "step" and self.lr_step is not None:
            raise ValueError(f"lr_step belongs to the step schedule only, not {self.schedule}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if not 0.0 <= self.rotation <= 180.0:
            raise ValueError(f"rotation must be between 0 and 180 degrees, got {self.rotation}")
        for name, high in (("momentum", 0.99), ("shift", 0.5), ("scale", 0.5), ("affine_p", 1.0), ("jitter", 1.0), ("smoothing", 0.5)):
            if not 0.0 <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be between 0 and {high}, got {getattr(self, name)}")
        if self.ema < 0:
            raise ValueError(f"ema must be a number of epochs, 0 or more, got {self.ema}")

    def to_dict(self) -> dict:
        """{"arch": the network's fields, then each training knob}."""
        return asdict(self)

    def lr_at(self, batch_size: int) -> float:
        """The learning rate to use at `batch_size`: linear scaling from batch 64."""
        return self.lr * batch_size / NOTEBOOK_BATCH

    def over(self, epochs: int) -> Candidate:
        """The same schedule compressed into a run of `epochs` (a complete short schedule):
        StepLR's step scales by epochs / SCHEDULE_EPOCHS, rounded, at least 1 (step 8 of a
        15-epoch run is step 2 of a 3-epoch one); one-cycle already spans the whole run.
        Budgeted training (Li, Yumer, Ramanan, ICLR 2020) found a schedule that decays over
        the whole budget ranks far better than a truncated long run."""
        if self.schedule != "step" or epochs >= SCHEDULE_EPOCHS:
            return self
        return replace(self, lr_step=max(1, round(self.lr_step * epochs / SCHEDULE_EPOCHS)))

    def phase(self, epoch: int) -> tuple:
        """Where `epoch` (from 1) lies in the learning-rate schedule.

        Two runs are at a comparable point of training at an epoch only when their phases
        there are equal: for step, the number of drops before that epoch; for onecycle,
        the epoch itself (every onecycle run of the same length has the same shape).
        """
        if self.schedule == "step":
            return ("step", (epoch - 1) // self.lr_step)
        return (self.schedule, epoch)

    def describe(self) -> str:
        sched = f"step {self.lr_step}" if self.schedule == "step" else self.schedule
        extra = "" if self.batch_size == NOTEBOOK_BATCH else f" bs{self.batch_size}"
        extra += "" if self.rotation == NOTEBOOK_ROTATION else f" rot{self.rotation:g}"
        extra += f" m{self.momentum:g}" if self.momentum != 0.9 else ""
        extra += f" shift{self.shift:g}" if self.shift else ""
        extra += f" scale{self.scale:g}" if self.scale else ""
        extra += f" p{self.affine_p:g}" if self.affine_p != 1.0 else ""
        extra += f" jitter{self.jitter:g}" if self.jitter else ""
        extra += f" ls{self.smoothing:g}" if self.smoothing else ""
        extra += f" ema{self.ema:g}" if self.ema else ""
        return f"{self.arch.describe()} lr {self.lr:.3g} {sched}{extra}"
