"""Speed of drill-search's engine against the original notebook pipeline, in one run.

    python benchmarks/speed.py                  # round3, CPU: images/s, s/epoch, ratio
    python benchmarks/speed.py --accuracy-epochs 1   # also train both 1 epoch, test accuracy

The original pipeline is the notebooks' own: torchvision MNIST with per-image PIL
RandomRotation((-7, 7), fill=(1,)) + ToTensor + Normalize, a DataLoader with batch 64,
shuffled, no worker processes (the notebooks' CPU setting), nn.Dropout, and a progress
bar updated every step with loss.item() and the running accuracy. The engine is
`search.train.train` with the recipe's defaults (or the options given).

Both are timed over the same number of steps, alternately, several times; the table
shows medians. Timings on a shared machine vary by +-15%: compare only within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines import ROUNDS  # noqa: E402
from search.config import Recipe  # noqa: E402
from search.data import MEAN, STD, load_mnist  # noqa: E402
from search.model import build_model  # noqa: E402
from search.train import evaluate, train  # noqa: E402

STEPS_PER_EPOCH = 938  # 60,000 images at batch 64


def original_loader(root: Path, batch_size: int, seed: int):
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.RandomRotation((-7.0, 7.0), fill=(1,)),
        transforms.ToTensor(),
        transforms.Normalize((MEAN,), (STD,)),
    ])
    ds = datasets.MNIST(str(root), train=True, download=False, transform=tf)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))


def time_original(loader, arch, lr: float, steps: int, warmup: int = 10) -> float:
    """Seconds per image of the notebook loop (data loading included)."""
    from tqdm import tqdm

    torch.manual_seed(99)
    model = build_model(arch)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    correct = processed = 0
    pbar = tqdm(total=steps + warmup, file=open(os.devnull, "w"))
    it = iter(loader)
    start = None
    for i in range(steps + warmup):
        if i == warmup:
            start = time.perf_counter()
        data, target = next(it)
        opt.zero_grad()
        y = model(data)
        loss = F.nll_loss(y, target)
        loss.backward()
        opt.step()
        pred = y.argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()
        processed += len(data)
        pbar.set_description(f"Loss={loss.item()} Batch_id={i} Accuracy={100 * correct / processed:0.2f}")
        pbar.update(1)
    return (time.perf_counter() - start) / (steps * loader.batch_size)


def time_engine(data, candidate, recipe: Recipe, steps: int) -> float:
    """Seconds per image of search.train (its batched data path included), measured on a
    shortened epoch of `steps` batches after a warm-up epoch of 10 batches."""
    one = dataclasses.replace(recipe, epochs=1)
    train(candidate, one, data.train.take(slice(0, 10 * recipe.batch_size)), {}, torch.device("cpu"))
    part = data.train.take(slice(0, steps * recipe.batch_size))
    start = time.perf_counter()
    train(candidate, one, part, {}, torch.device("cpu"))
    return (time.perf_counter() - start) / len(part)


def accuracy_original(loader, data, arch, lr, epochs):
    torch.manual_seed(99)
    model = build_model(arch)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()
    return evaluate(model, data.test).acc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--round", default="round3")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--accuracy-epochs", type=int, default=0, help="also train both this many epochs and compare test accuracy")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DRILL_SEARCH_DATA", "data")))
    ap.add_argument("--dense-dropout", action="store_true", help="engine with nn.Dropout instead of SparseDropout")
    args = ap.parse_args()

    base = ROUNDS[args.round]
    cand = base.candidate
    recipe = Recipe(sparse_dropout=not args.dense_dropout)
    data = load_mnist(args.data_dir, download=False)
    loader = original_loader(args.data_dir, 64, seed=99)
    print(f"{args.round} ({base.params:,} params), CPU threads {torch.get_num_threads()}, torch {torch.__version__}")

    orig, eng = [], []
    for r in range(args.repeats):
        orig.append(time_original(loader, cand.arch, cand.lr, args.steps))
        eng.append(time_engine(data, cand, recipe, args.steps))
        print(f"  repeat {r + 1}: original {60000 * orig[-1]:.1f} s/epoch, engine {60000 * eng[-1]:.1f} s/epoch", flush=True)
    rows = {"original": statistics.median(orig), "engine": statistics.median(eng)}

    acc = {}
    if args.accuracy_epochs:
        full = original_loader(args.data_dir, 64, seed=99)
        acc["original"] = accuracy_original(full, data, cand.arch, cand.lr, args.accuracy_epochs)
        longer = dataclasses.replace(recipe, epochs=args.accuracy_epochs)
        r = train(cand, longer, data.train, {"test": data.test}, torch.device("cpu"))
        acc["engine"] = r.history[-1].evals["test"].acc

    names = {"original": "original (DataLoader + PIL, bs 64)",
             "engine": f"drill-search engine (bs {recipe.batch_size}{', nn.Dropout' if args.dense_dropout else ''})"}
    print()
    print(f"{'pipeline':<40} {'images/s':>9} {'s/epoch':>8} {'speed-up':>9}" + (f" {'test acc':>9}" if acc else ""))
    for key, t in rows.items():
        line = f"{names[key]:<40} {1 / t:>9,.0f} {60000 * t:>8.1f} {rows['original'] / t:>8.2f}x"
        if acc:
            line += f" {acc[key]:>8.2f}%"
        print(line)
    print(f"medians of {args.repeats} alternating measurements of {args.steps} steps each")
    if acc:
        print(f"test accuracy after {args.accuracy_epochs} epoch(s) on the MNIST test set, seed 99, one run each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
