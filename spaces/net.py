"""A network as a few stages: the second kind of network, beside the notebooks' chain.

A stage is a run of 3x3 convolutions at given widths, each padded (the map keeps its
size) or not (it shrinks by 2), then an optional 1x1 transition, then an optional 2x2
max-pool. After the last stage the head pools to 1x1 and a 1x1 convolution gives the
ten classes:

    stage 1: conv3x3 ... [1x1 transition] [max-pool]
    stage 2: ...
    head:    AvgPool2d(6) ("avg6", the notebooks') or a global average ("gap"), 1x1 conv -> 10

Every 3x3 convolution is followed by ReLU and BatchNorm in the order `order` names.
Dropout follows every 3x3 block ("conv", the notebooks' placement) or the end of every
stage but the last ("stage", the published 3,762-parameter design's).

The notebooks' chain is one such network (`Arch.to_net`), and so is the published
design (baselines), so one value type spans both, and the parameter count is a closed
form of the fields (`Net.params`), which lets a sampler keep every draw inside a budget
without building a model.
"""

from __future__ import annotations

from dataclasses import dataclass

ORDERS = ("relu-bn", "bn-relu")  # the notebooks': ReLU then BatchNorm; most published nets: BN then ReLU
HEADS = ("avg6", "gap")
DROPS = ("conv", "stage")
INITS = ("default", "xavier")  # PyTorch's own; Xavier-uniform convolutions with zero biases (the published design's)
IMAGE = 28  # MNIST's side, in pixels


@dataclass(frozen=True)
class Stage:
    """Widths of the 3x3 convolutions of one stage and what follows them."""

    widths: tuple[int, ...]
    pad: bool = False  # padding 1 keeps the map's size; without it each conv takes 2 off
    transition: int | None = None  # a 1x1 conv to this width after the 3x3 convs (no act/BN/drop)
    pool: bool = False  # a 2x2 max-pool at the end of the stage

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"a stage needs at least one positive width, got {self.widths}")
        if self.transition is not None and self.transition < 1:
            raise ValueError(f"transition must be a positive width or None, got {self.transition}")

    def size_after(self, size: int) -> int:
        """The map's side after this stage, from `size` before it."""
        size -= 0 if self.pad else 2 * len(self.widths)
        return size // 2 if self.pool else size

    def describe(self) -> str:
        """'p8-8-8-M': 'p' padded, 't16' a transition, 'M' a max-pool."""
        parts = [str(w) for w in self.widths]
        parts += [f"t{self.transition}"] if self.transition else []
        parts += ["M"] if self.pool else []
        return ("p" if self.pad else "") + "-".join(parts)


@dataclass(frozen=True)
class Net:
    """Stages, the order of ReLU and BatchNorm, dropout, the head and whether convs have a bias."""

    stages: tuple[Stage, ...]
    dropout: float = 0.0  # 0 leaves the Dropout layers out
    order: str = "relu-bn"
    head: str = "gap"
    drop: str = "conv"  # where dropout goes: after every 3x3 block, or after every stage but the last
    bias: bool = False  # a bias on every convolution (the published design has them; BN makes most redundant)
    init: str = "default"  # how the convolutions' weights start (INITS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise ValueError("a network needs at least one stage")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name, value, allowed in (("order", self.order, ORDERS), ("head", self.head, HEADS),
                                     ("drop", self.drop, DROPS), ("init", self.init, INITS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        sizes = self.sizes()
        if min(sizes) < 1:
            raise ValueError(f"the map shrinks to nothing in stage {sizes.index(min(sizes)) + 1} of {self.describe()}")
        if self.head == "avg6" and not 6 <= sizes[-1] < 12:
            # AvgPool2d(6) pools 6x6 windows with stride 6: one window only on a map of 6 to 11
            raise ValueError(f"the avg6 head needs a map of 6x6 to 11x11, {self.describe()} ends at "
                             f"{sizes[-1]}x{sizes[-1]}")

    def sizes(self) -> tuple[int, ...]:
        """The map's side after each stage."""
        out, size = [], IMAGE
        for stage in self.stages:
            size = stage.size_after(size)
            out.append(size)
        return tuple(out)

    @property
    def params(self) -> int:
        """Trainable parameters, in closed form (equal to counting the built model's; tested)."""
        total, cin, b = 0, 1, int(self.bias)
        for stage in self.stages:
            for w in stage.widths:
                total += 9 * cin * w + b * w + 2 * w  # conv 3x3, its bias, BatchNorm's weight and bias
                cin = w
            if stage.transition:
                total += cin * stage.transition + b * stage.transition
                cin = stage.transition
        return total + cin * 10 + b * 10

    def describe(self) -> str:
        """Stages in order, then the rest, e.g. 'p4-4-4-M p8-8-8-M p8-8-8 bn-relu d0.01/stage gap +bias xavier'."""
        drop = f"d{self.dropout:g}" + ("/stage" if self.drop == "stage" else "")
        bias = " +bias" if self.bias else ""
        init = "" if self.init == "default" else f" {self.init}"
        return " ".join(s.describe() for s in self.stages) + f" {self.order} {drop} {self.head}{bias}{init}"
