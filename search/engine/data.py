"""MNIST as uint8 tensors on the training device, split, and augmented in whole batches.

The images are read once through torchvision's dataset class (its download is the
default for users with internet) and kept as uint8: 47 MB for all 70,000. Every epoch
the training images are shuffled and rotated in large chunks with `affine_grid` +
`grid_sample` on the device, which reproduces `RandomRotation((-7, 7), fill=(1,))` as
the notebooks applied it (a uniform angle per image, nearest-neighbour sampling, fill 1
of 255) without per-image PIL work or DataLoader worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.datasets.utils import check_integrity

from spaces.arch import JITTER_P

from ..config import DATA_ENV

MEAN, STD = 0.1307, 0.3081  # training-set pixel statistics on the 0..1 scale
ROTATION_FILL = 1.0  # on the 0..255 scale, as RandomRotation(fill=(1,)) on uint8 images

# The uncompressed originals torchvision reads from <root>/MNIST/raw: size, published MD5.
FILES = {
    "train-images-idx3-ubyte": (47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10_008, "27ae3e4e09519cfbb04c329615203637"),
}


class DataError(Exception):
    """The data cannot be had; the message is one sentence for the user."""


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def take(self, index: torch.Tensor | slice) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Mnist:
    train: Split  # the 60,000 training images
    test: Split  # the 10,000 test images

    def to(self, device: torch.device | str) -> Mnist:
        return Mnist(self.train.to(device), self.test.to(device))


def load_mnist(root: str | Path, download: bool = True) -> Mnist:
    """Read MNIST from `root`/MNIST/raw, downloading it first if it is missing."""
    root = ensure_mnist(root, download)
    from torchvision.datasets import MNIST

    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    return Mnist(Split(train.data, train.targets), Split(test.data, test.targets))


def ensure_mnist(root: str | Path, download: bool = True) -> Path:
    """Make sure `root`/MNIST/raw holds the four original files (sizes and MD5 checked),
    downloading them when missing; returns the root. DataError says what is wrong."""
    root = Path(root).expanduser()
    raw = root / "MNIST" / "raw"
    tried = download and _missing(raw)
    if tried:
        _download(root)
    problems = _check(raw)
    if problems:
        names = ", ".join(FILES)
        fetched = " and could not be downloaded" if tried else ""
        raise DataError(
            f"MNIST is not usable in {raw} ({problems[0]}){fetched}: put the four uncompressed files "
            f"{names} there (torchvision's layout), or point --data-dir or ${DATA_ENV} at a "
            "folder that holds MNIST/raw/ with them."
        )
    return root


def _missing(raw: Path) -> bool:
    return any(not (raw / name).is_file() for name in FILES)


def _download(root: Path) -> None:
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception:  # noqa: BLE001 - any failure leads to the same instruction below
        pass  # _check reports exactly which file is missing


def _check(raw: Path) -> list[str]:
    """What is wrong with the files in `raw`, first problem first (empty: all good)."""
    problems = []
    for name, (size, md5) in FILES.items():
        path = raw / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != size:
            problems.append(f"{name} has {path.stat().st_size} bytes, not {size}")
        elif not check_integrity(str(path), md5):
            problems.append(f"{name} does not match its published MD5 checksum")
    return problems


def split_validation(train: Split, val_size: int, seed: int = 0) -> tuple[Split, Split]:
    """A fixed, seeded held-out part of the training images: (train, validation)."""
    if not 0 < val_size < len(train):
        raise ValueError(f"val_size must be between 1 and {len(train) - 1}, got {val_size}")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    perm = perm.to(train.labels.device)
    return train.take(perm[val_size:]), train.take(perm[:val_size])


def normalize(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, 28, 28) or float on the 0..255 scale -> normalized (N, 1, 28, 28)."""
    x = images.to(dtype)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return (x / 255.0 - MEAN) / STD


def rotate(images: torch.Tensor, degrees: torch.Tensor, fill: float = ROTATION_FILL,
           scale: torch.Tensor | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate each image counter-clockwise by its own angle, as torchvision's `rotate` does,
    and, when given, scale it by its own factor and move it by its own shift.

    images: (N, 28, 28) uint8; degrees, scale: (N,); shift: (N, 2), (right, down) as a
    fraction of the side. Returns float32 (N, 1, 28, 28) on the 0..255 scale.
    Nearest-neighbour sampling about the image centre; pixels that come from outside the
    image take `fill`. The order is albumentations' ShiftScaleRotate's: turn and scale
    about the centre, then move.
    """
    n, h, w = images.shape
    rad = degrees.to(torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(rad).view(n, 1, 1), torch.sin(rad).view(n, 1, 1)
    # grid_sample reads each output pixel from the input point the grid names, in a
    # frame where x runs right and y down over [-1, 1] (pixel centres, align_corners=False).
    # A counter-clockwise turn on screen therefore reads from the point turned by -angle,
    # a move by f of the side from 2f back, a scale by s from 1/s of the way to the centre.
    # Built elementwise: affine_grid's batched 3x2 matmul is 10x slower on CPU.
    xs = ((torch.arange(w, device=images.device) * 2 + 1) / w - 1).view(1, 1, w)
    ys = ((torch.arange(h, device=images.device) * 2 + 1) / h - 1).view(1, h, 1)
    if shift is not None:
        xs, ys = xs - 2 * shift[:, 0].view(n, 1, 1), ys - 2 * shift[:, 1].view(n, 1, 1)
    if scale is not None:
        xs, ys = xs / scale.view(n, 1, 1), ys / scale.view(n, 1, 1)
    grid = torch.stack((cos * xs - sin * (h / w) * ys, sin * (w / h) * xs + cos * ys), dim=-1)
    # Sampling (image - fill) with zero padding and adding fill back gives `fill` exactly
    # where the source point falls outside the image.
    x = images.unsqueeze(1).to(torch.float32) - fill
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False) + fill


def augmented_epoch(
    split: Split, generator: torch.Generator, degrees: float, chunk: int = 8192, *,
    shift: float = 0.0, scale: float = 0.0, p: float = 1.0, jitter: float = 0.0, jitter_p: float = JITTER_P,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's training inputs: shuffled, each image rotated by its own uniform angle
    in [-degrees, degrees] (none when `degrees` is 0), normalized. Returns (inputs,
    labels) on the split's device; batches are then plain slices of them.

    With `shift` or `scale`, each image also moves by a uniform fraction of the side in
    [-shift, shift] per axis and scales by a uniform factor in [1 - scale, 1 + scale];
    with `p` below 1 an image is turned, moved and scaled with that chance, else left as
    it is (albumentations' ShiftScaleRotate). With `jitter`, an image's brightness and
    contrast change with chance `jitter_p`: x * (1 + U(-jitter, jitter)) + 255 *
    U(-jitter, jitter), clipped to 0..255 (RandomBrightnessContrast). Random numbers for
    these are drawn only when they are on, so a run without them draws what it always did.
    """
    device = split.labels.device
    n = len(split)
    order = torch.randperm(n, generator=generator, device=device)
    labels = split.labels[order]
    inputs = torch.empty((n, 1, 28, 28), dtype=torch.float32, device=device)
    augment = degrees > 0 or shift > 0 or scale > 0
    affine = shift > 0 or scale > 0 or p < 1.0
    if augment:
        angles = (torch.rand(n, generator=generator, device=device) * 2 - 1) * degrees
    if augment and affine:
        u = torch.rand(n, 4, generator=generator, device=device) * 2 - 1
        skip = u[:, 3] >= 2 * p - 1  # an image is transformed with chance p
        angles = angles.masked_fill(skip, 0.0)
        scales = (1 + u[:, 0] * scale).masked_fill(skip, 1.0)
        shifts = (u[:, 1:3] * shift).masked_fill(skip.unsqueeze(1), 0.0)
    if jitter > 0:
        v = torch.rand(n, 3, generator=generator, device=device)
        on = v[:, 0] < jitter_p
        alphas = torch.where(on, 1 + (v[:, 1] * 2 - 1) * jitter, 1.0).view(n, 1, 1, 1)
        betas = torch.where(on, (v[:, 2] * 2 - 1) * jitter * 255.0, 0.0).view(n, 1, 1, 1)
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        images = split.images[order[part]]
        if augment:
            extra = dict(scale=scales[part], shift=shifts[part]) if affine else {}
            images = rotate(images, angles[part], **extra)
        if jitter > 0:
            images = images.to(torch.float32).view(-1, 1, 28, 28)  # 0..255
            images = (images * alphas[part] + betas[part]).clamp(0.0, 255.0)
        inputs[part] = normalize(images)
    return inputs, labels


def batches(
    inputs: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive slices; the last batch may be smaller (as DataLoader's drop_last=False)."""
    for start in range(0, len(labels), batch_size):
        yield inputs[start : start + batch_size], labels[start : start + batch_size]
