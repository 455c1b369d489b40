"""Speed of drill-search's engine against the original notebook pipeline, in one run.

    python benchmarks/speed.py                      # round3, CPU: images/s, s/epoch, ratio
    python benchmarks/speed.py --accuracy-epochs 1  # also train both 1 epoch, test accuracy
    python benchmarks/speed.py --mode search        # search throughput: workers, batch sizes

The original pipeline is the notebooks' own: torchvision MNIST with per-image PIL
RandomRotation((-7, 7), fill=(1,)) + ToTensor + Normalize, a DataLoader with batch 64,
shuffled, no worker processes (the notebooks' CPU setting), nn.Dropout, and a progress
bar updated every step with loss.item() and the running accuracy. The engine is
`search.engine.train.train` with the recipe's defaults (or the options given).

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
from search.engine.data import MEAN, STD, load_mnist  # noqa: E402
from search.engine.model import build_model  # noqa: E402
from search.engine.train import evaluate, train  # noqa: E402

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


def time_original(loader, arch, lr: float, steps: int, warmup: int = 10, device=torch.device("cpu")) -> float:
    """Seconds per image of the notebook loop (data loading included)."""
    from tqdm import tqdm

    torch.manual_seed(99)
    model = build_model(arch).to(device)
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
        data, target = data.to(device), target.to(device)
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


def time_engine(data, candidate, recipe: Recipe, steps: int, device=torch.device("cpu")) -> float:
    """Seconds per image of search.engine.train (its batched data path included), measured on a
    shortened epoch of `steps` batches after a warm-up epoch of 10 batches."""
    one = dataclasses.replace(recipe, epochs=1)
    batch = recipe.batch_for(candidate)
    train(candidate, one, data.train.take(slice(0, 10 * batch)), {}, device)
    part = data.train.take(slice(0, steps * batch))
    start = time.perf_counter()
    train(candidate, one, part, {}, device)  # ends with .item(): the device is synced
    return (time.perf_counter() - start) / len(part)


def accuracy_original(loader, data, arch, lr, epochs, device=torch.device("cpu")):
    torch.manual_seed(99)
    model = build_model(arch).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()
    return evaluate(model, data.test).acc


def search_throughput(args, original_per_image: float) -> None:
    """Short real searches (journal storage, pruning off, the round itself queued for
    every trial) timed from start to finish, worker start-up and per-epoch evaluation of
    5,000 validation and 10,000 test images included: training images per second,
    all workers together."""
    import tempfile

    import optuna

    import spaces
    from search.config import DataConfig, SearchConfig
    from search.execution.identity import open_search
    from search.study import run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    settings = [(1, 64, False), (2, 64, False), (2, 256, False)]
    if args.bf16:
        settings.append((2, 256, True))
    rows = []
    for workers, batch, bf16 in settings:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SearchConfig(
                storage=f"{tmp}/bench.journal",
                recipe=Recipe(epochs=args.search_epochs, batch_size=batch, bf16=bf16),
                data=DataConfig(root=args.data_dir, download=False, train_size=args.search_images),
                trials=args.search_trials * workers, pruner="none", seed=0, workers=workers,
                max_params=10_000, device=args.device,
            )
            queued = open_search(cfg)
            for _ in range(cfg.trials):  # the same candidate every time: throughput, not luck
                queued.enqueue_trial(spaces.encode(ROUNDS[args.round].candidate))
            start = time.perf_counter()
            study = run_search(cfg, poll_seconds=0.5)
            wall = time.perf_counter() - start
            epochs = sum(len(t.user_attrs.get("val_acc", [])) for t in study.trials)
            images = epochs * args.search_images
            rows.append((workers, batch, bf16, wall, epochs, images / wall))
            print(f"  {workers} worker(s), batch {batch}{', bf16' if bf16 else ''}: {epochs} candidate-epochs "
                  f"of {args.search_images:,} images in {wall:.1f} s", flush=True)
    print()
    print(f"{'search setting':<30} {'wall s':>7} {'cand-epochs/s':>13} {'images/s':>9} {'vs original':>11}")
    for workers, batch, bf16, wall, epochs, ips in rows:
        name = f"{workers} worker(s), batch {batch}{', bf16' if bf16 else ''}"
        print(f"{name:<30} {wall:>7.1f} {epochs / wall:>13.3f} {ips:>9,.0f} {ips * original_per_image:>10.2f}x")
    print(f"original pipeline (one process, batch 64): {1 / original_per_image:,.0f} images/s, measured in this run")
    print(f"each search: {args.search_trials} trials per worker, {args.search_epochs} epoch(s) of "
          f"{args.search_images:,} images, pruning off; wall time includes worker start-up and evaluation")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("pipeline", "search"), default="pipeline")
    ap.add_argument("--search-trials", type=int, default=2, help="search mode: trials per worker")
    ap.add_argument("--search-epochs", type=int, default=2, help="search mode: epochs per trial")
    ap.add_argument("--search-images", type=int, default=55000, help="search mode: training images per epoch")
    ap.add_argument("--bf16", action="store_true", help="also measure bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (CUDA graphs on a GPU)")
    ap.add_argument("--round", default="round3")
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where both pipelines train")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--accuracy-epochs", type=int, default=0, help="also train both this many epochs and compare test accuracy")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DRILL_SEARCH_DATA", "data")))
    args = ap.parse_args()

    base = ROUNDS[args.round]
    cand = base.candidate
    device = torch.device(args.device)
    recipe = Recipe(batch_size=64)  # the notebooks' batch; the device decides the dropout kernel
    data = load_mnist(args.data_dir, download=False).to(device)
    loader = original_loader(args.data_dir, 64, seed=99)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.round} ({base.params:,} params), {where}, torch {torch.__version__}")
    if args.mode == "search":
        original = statistics.median(time_original(loader, cand.arch, cand.lr, args.steps, device=device)
                                     for _ in range(2))
        search_throughput(args, original)
        return 0

    settings = {
        "drill-search engine (default, bs 64)": recipe,
        "  same, with nn.Dropout" if device.type == "cpu" else "  same, with SparseDropout":
            dataclasses.replace(recipe, sparse_dropout=device.type != "cpu"),
        "  same, batch 256 (lr x4)": dataclasses.replace(recipe, batch_size=256),
    }
    if args.bf16:
        settings["  same, batch 256 + bf16"] = dataclasses.replace(recipe, batch_size=256, bf16=True)
    if args.compile:
        settings["  same, compiled"] = dataclasses.replace(recipe, compile=True)
    times: dict[str, list[float]] = {"original (DataLoader + PIL, bs 64)": []}
    times.update({name: [] for name in settings})
    for r in range(args.repeats):
        times["original (DataLoader + PIL, bs 64)"].append(
            time_original(loader, cand.arch, cand.lr, args.steps, device=device))
        for name, rec in settings.items():
            steps = max(20, args.steps * 64 // rec.batch_size)
            times[name].append(time_engine(data, cand, rec, steps, device))
        print(f"  repeat {r + 1}: " + ", ".join(f"{60000 * v[-1]:.1f}" for v in times.values()) + " s/epoch", flush=True)
    rows = {name: statistics.median(v) for name, v in times.items()}
    original = rows["original (DataLoader + PIL, bs 64)"]

    acc = {}
    if args.accuracy_epochs:
        full = original_loader(args.data_dir, 64, seed=99)
        acc["original (DataLoader + PIL, bs 64)"] = accuracy_original(full, data, cand.arch, cand.lr,
                                                                      args.accuracy_epochs, device)
        for name, rec in settings.items():
            longer = dataclasses.replace(rec, epochs=args.accuracy_epochs)
            acc[name] = train(cand, longer, data.train, {"test": data.test}, device).history[-1].evals["test"].acc

    print()
    print(f"{'pipeline':<40} {'images/s':>9} {'s/epoch':>8} {'speed-up':>9}" + (f" {'test acc':>9}" if acc else ""))
    for name, t in rows.items():
        line = f"{name:<40} {1 / t:>9,.0f} {60000 * t:>8.1f} {original / t:>8.2f}x"
        if acc:
            line += f" {acc[name]:>8.2f}%"
        print(line)
    print(f"medians of {args.repeats} alternating measurements (about {args.steps * 64:,} images each); "
          "s/epoch = 60,000 images")
    if acc:
        print(f"test accuracy after {args.accuracy_epochs} epoch(s) on the MNIST test set, seed 99, one run each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
