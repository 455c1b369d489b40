"""Pilot runs: train a few variants of one candidate under the search protocol, side by side.

    DRILL_SEARCH_DATA=../shared/datasets python benchmarks/pilot.py --base trial13 \\
        --vary rotation=0 rotation=14 rotation=20 batch_size=128 batch_size=256
    python benchmarks/pilot.py --base round3 --vary bf16=0 bf16=1 --seeds 1,2,3

Each variant is the base candidate with one or more fields replaced (`rotation=14`,
`batch_size=256,lr=0.05`; `bf16=1` switches the recipe's bf16 autocast), trained for the
full 15 epochs on the search's 55,000 training images, judged on its 5,000 validation
images (the search's objective `val_acc_last3`, and the final validation loss) and
reported on the test set (final epoch). Runs go to `--workers` single-threaded
processes. This is for settling the space and engine options before a long study; a
single seed moves a final figure by about 0.1, so read only differences larger than that.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from baselines import ROUNDS
from search.config import Recipe, score
from search.engine.data import load_mnist, split_validation
from search.engine.train import train
from spaces import Arch, Candidate

# Trial 13 of the reference study (v1): its best net under round3's size.
NAMED = {
    "trial13": Candidate(Arch(6, 18, 10, 6, None, 14, 20, 0.01, pool="gap"), lr=0.0266, lr_step=None,
                         schedule="onecycle"),
    **{name: b.candidate for name, b in ROUNDS.items()},
}


def variant(base: Candidate, spec: str) -> tuple[Candidate, bool]:
    """The candidate `spec` ('field=value,field=value') describes, and whether bf16 is on."""
    fields, bf16 = {}, False
    for part in filter(None, spec.split(",")):
        key, value = part.split("=")
        if key == "bf16":
            bf16 = value not in ("0", "false", "no")
        elif key in {f.name for f in dataclasses.fields(Arch)}:
            fields.setdefault("arch", {})[key] = type(getattr(base.arch, key) or 0)(value)
        else:
            fields[key] = type(getattr(base, key))(value)
    arch = dataclasses.replace(base.arch, **fields.pop("arch", {}))
    return dataclasses.replace(base, arch=arch, **fields), bf16


def one_run(args: tuple) -> dict:
    root, candidate, bf16, seed = args
    torch.set_num_threads(1)
    data = load_mnist(root, download=False)
    train_split, val = split_validation(data.train, 5000, seed=0)
    r = train(candidate, Recipe(seed=seed, bf16=bf16), train_split, {"val": val, "test": data.test},
              torch.device("cpu"))
    val_acc = [e.evals["val"].acc for e in r.history]
    return {"score": score(val_acc), "val_loss": r.history[-1].evals["val"].loss,
            "test": r.history[-1].evals["test"].acc, "s_per_epoch": r.seconds / len(r.history)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="trial13", choices=sorted(NAMED))
    ap.add_argument("--vary", nargs="*", default=[""], help="variants, each 'field=value[,field=value]'; '' is the base")
    ap.add_argument("--seeds", default="99", help="training seeds, comma-separated (default 99, the search's)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DRILL_SEARCH_DATA", "data")))
    args = ap.parse_args()
    base = NAMED[args.base]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [(spec or "base", *variant(base, spec)) for spec in args.vary]
    jobs = [(str(args.data_dir), cand, bf16, seed) for _, cand, bf16, seed in
            [(n, c, b, s) for n, c, b in variants for s in seeds]]
    print(f"{args.base}: {base.describe()}; {platform.processor() or platform.machine()}, "
          f"{args.workers} single-threaded workers, 15 epochs, seeds {seeds}")
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one_run, jobs))
    print(f"{'variant':<28} {'val_acc_last3':>13} {'val loss':>9} {'test (final)':>12} {'s/epoch':>8}")
    for i, (name, cand, bf16) in enumerate(variants):
        rs = results[i * len(seeds):(i + 1) * len(seeds)]
        mean = lambda k: statistics.fmean(r[k] for r in rs)  # noqa: E731
        per_seed = " / ".join(f"{r['test']:.2f}" for r in rs) if len(rs) > 1 else ""
        print(f"{name:<28} {mean('score'):>13.2f} {mean('val_loss'):>9.4f} {mean('test'):>12.2f} "
              f"{mean('s_per_epoch'):>8.1f}  {per_seed}")


if __name__ == "__main__":
    main()
