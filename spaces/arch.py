"""The value a search point stands for: a network's widths plus the training knobs.

Every network here is the same chain (see `search.model` for the layers):

    block(1->c1) block(c1->c2) transition 1x1(c2->t) maxpool
    block(t->c4) [block(c4->c5)] block(->c6) block(c6->c7, pad 1) pool 1x1-conv(c7->10)

Only the widths, the optional block, dropout, the pooling and the learning-rate schedule
differ between candidates, so a candidate is a small frozen value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

POOLS = ("avg6", "gap")  # avg6: AvgPool2d(6) as in the notebooks; gap: true global average


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

    def describe(self) -> str:
        """Widths in chain order, e.g. '8-16-t8-12-14-14 d0.01'."""
        widths = [self.c1, self.c2, f"t{self.t}", self.c4]
        widths += [self.c5] if self.c5 is not None else []
        widths += [self.c6, self.c7]
        pool = "" if self.pool == "avg6" else f" {self.pool}"
        return "-".join(str(w) for w in widths) + f" d{self.dropout:g}{pool}"


@dataclass(frozen=True)
class Candidate:
    """A point of the search space: a network and the schedule that trains it."""

    arch: Arch
    lr: float  # SGD learning rate at batch size 64 (scaled linearly for larger batches)
    lr_step: int = 8  # StepLR step size in epochs; the lr drops 100x after that many epochs

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.lr_step < 1:
            raise ValueError(f"lr_step must be at least 1, got {self.lr_step}")

    def to_dict(self) -> dict:
        return {"arch": self.arch.to_dict(), "lr": self.lr, "lr_step": self.lr_step}

    @classmethod
    def from_dict(cls, d: dict) -> Candidate:
        return cls(arch=Arch(**d["arch"]), lr=d["lr"], lr_step=d.get("lr_step", 8))
