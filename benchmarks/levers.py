"""The lever pilot: does each lever help small networks, paired against the same network and seed?

    DRILL_SEARCH_DATA=../shared/datasets python benchmarks/levers.py --seeds 1,2   # run (resumes)
    python benchmarks/levers.py --table                                           # the table, from the file

Three networks (v3's trial 50, v4's trial 28, the published 3,762-parameter design), each
trained at its own recipe (the base) and with one lever changed, on the search's 55,000
training images for 15 epochs, judged on the 5,000 held-out validation images (the
search's score: mean validation accuracy over the last 3 epochs; the test set is never
read). A lever is "on" in one arm of a pair and "off" in the other: added to a network
that lacks it, removed from one that has it; the paired difference is always on minus
off, so a lever's pairs read the same way on every network.

Each finished run is one JSON line in `--out` (default studies/levers.jsonl), written as
it finishes; a run already there is not run again, so the same command resumes. (A JSON
line per run rather than an Optuna study: the runs are a fixed list, not a search, and
the file is read by this script alone.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

from baselines.published import DESIGN_3762
from spaces import Arch, Candidate, Net

ROOT = Path(__file__).resolve().parents[1]


def _chain(c1, c2, t, c4, c6, c7, dropout, lr, batch, rotation) -> Candidate:
    return Candidate(Arch(c1, c2, t, c4, None, c6, c7, dropout).to_net(), lr=lr, lr_step=None,
                     schedule="onecycle", batch_size=batch, rotation=rotation)


# The three networks at their own recipes.
NETS = {
    "v3-t50": _chain(4, 12, 16, 16, 6, 16, 0.0, 0.10343165724431835, 128, 7.0),  # 4,960 params
    "v4-t28": _chain(12, 8, 16, 6, 6, 20, 0.02, 0.1839184022650476, 256, 9.0),  # 3,672 params
    "design3762": DESIGN_3762,
}


def _net(c: Candidate, **fields) -> Candidate:
    return replace(c, arch=replace(c.arch, **fields))


def _ends_gap(c: Candidate, stages) -> Candidate:
    """The network with these stages and a head that fits them (avg6 reads one window only
    on a map of 6 to 11)."""
    head = c.arch.head if 6 <= Net(stages, head="gap").sizes()[-1] < 12 else "gap"
    return _net(c, stages=stages, head=head)


def _toggle(c: Candidate, on: bool, add, remove) -> tuple[Candidate, bool, str] | None:
    """(the other arm, whether it is the arm with the lever on, the run it pairs with), or
    None when a network cannot take the lever. A lever that must also change the head
    (padding or a second pool on the chain, whose avg6 head would then read a corner or
    nothing) pairs with the network that has that head already: the `gap` lever's arm,
    so the pair measures the lever alone."""
    other = remove(c) if on else add(c)
    if other is None or other == c:
        return None
    return other, not on, "gap" if other.arch.head != c.arch.head else "base"


# Each lever: name -> (what it is, c -> (the other arm, lever on in it?, the run it pairs with) or None).
def _padded(c):
    stages = tuple(replace(s, pad=True) for s in c.arch.stages)
    return _net(c, stages=stages, head="gap")  # a padded map is larger than 6: avg6 would see one corner


def _pools(c, wanted: int):
    """The network with a second max-pool (at the end of the stage after the first, when
    that stage is not the last), or with its second one removed; None when it cannot."""
    stages = c.arch.stages
    pools = [k for k, s in enumerate(stages) if s.pool]
    k = pools[0] + 1 if wanted == 2 and len(pools) == 1 else pools[1] if wanted == 1 and len(pools) == 2 else None
    if k is None or k >= len(stages) - 1:
        return None
    return _ends_gap(c, stages[:k] + (replace(stages[k], pool=wanted == 2),) + stages[k + 1:])


def _momentum(c, m):
    # the same step size lr / (1 - momentum): plain SGD at lr x 10 matches momentum 0.9 at lr
    return replace(c, momentum=m, lr=c.lr * (1 - m) / (1 - c.momentum))


def _head(c, head):
    try:
        return _net(c, head=head)
    except ValueError:  # avg6 on a map under 6x6
        return None


def _gap(arm):
    """The head lever pairs with the base, though it changes the head."""
    return None if arm is None else (arm[0], arm[1], "base")


def _same_map(c, other):
    """None when the two heads compute the same thing (avg6 on a 6x6 map is the global average)."""
    return None if other is None or c.arch.sizes()[-1] == 6 else other


LEVERS = {
    "batch32": ("batch 32 (lr scaled linearly from the net's own batch)",
                lambda c: _toggle(c, c.batch_size == 32, lambda x: replace(x, batch_size=32), lambda x: None)),
    "batch64": ("batch 64 (lr scaled linearly)",
                lambda c: _toggle(c, c.batch_size == 64, lambda x: replace(x, batch_size=64), lambda x: None)),
    "momentum": ("SGD momentum 0.9 vs plain SGD, at the same lr / (1 - momentum)",
                 lambda c: _toggle(c, c.momentum > 0, lambda x: _momentum(x, 0.9), lambda x: _momentum(x, 0.0))),
    "warmlinear": ("the design's warm-up-then-linear-decay schedule vs one-cycle, same peak lr",
                   lambda c: _toggle(c, c.schedule == "warmlinear", lambda x: replace(x, schedule="warmlinear"),
                                     lambda x: replace(x, schedule="onecycle"))),
    "shiftscale": ("shift and scale by up to 9% beside the rotation",
                   lambda c: _toggle(c, c.shift > 0, lambda x: replace(x, shift=0.09, scale=0.09),
                                     lambda x: replace(x, shift=0.0, scale=0.0))),
    "jitter": ("brightness and contrast by up to 20%, p 0.5",
               lambda c: _toggle(c, c.jitter > 0, lambda x: replace(x, jitter=0.2), lambda x: replace(x, jitter=0.0))),
    "smoothing": ("label smoothing 0.1",
                  lambda c: _toggle(c, c.smoothing > 0, lambda x: replace(x, smoothing=0.1),
                                    lambda x: replace(x, smoothing=0.0))),
    "ema": ("evaluate a moving average of the weights over about 1 epoch",
            lambda c: _toggle(c, c.ema > 0, lambda x: replace(x, ema=1.0), lambda x: replace(x, ema=0.0))),
    "padded": ("every 3x3 conv padded (keeps the map), global average head",
               lambda c: _toggle(c, all(s.pad for s in c.arch.stages), _padded, lambda x: None)),
    "pool2": ("a second max-pool (global average head where the map ends under 6x6)",
              lambda c: _toggle(c, sum(s.pool for s in c.arch.stages) >= 2, lambda x: _pools(x, 2),
                                lambda x: _pools(x, 1))),
    "bnrelu": ("BatchNorm before ReLU",
               lambda c: _toggle(c, c.arch.order == "bn-relu", lambda x: _net(x, order="bn-relu"),
                                 lambda x: _net(x, order="relu-bn"))),
    "gap": ("global average pool vs AvgPool2d(6), then the 1x1 head",
            lambda c: _gap(_toggle(c, c.arch.head == "gap", lambda x: _same_map(x, _head(x, "gap")),
                                   lambda x: _same_map(x, _head(x, "avg6"))))),
    "xavier": ("Xavier-uniform convolutions with zero biases vs PyTorch's default initialisation",
               lambda c: _toggle(c, c.arch.init == "xavier", lambda x: _net(x, init="xavier"),
                                 lambda x: _net(x, init="default"))),
}


def plan(seeds: list[int]) -> list[tuple[str, str, int, Candidate, bool, str]]:
    """(net, lever or 'base', seed, candidate, lever on?, the run it pairs with) for every run: seed by seed, the
    bases first, then lever by lever on every network, so that an unfinished pilot holds
    whole pairs, each lever on all three networks, of the first seeds and levers."""
    runs = []
    for seed in seeds:
        runs += [(net, "base", seed, base, False, "") for net, base in NETS.items()]
        for lever, (_, arm) in LEVERS.items():
            for net, base in NETS.items():
                other = arm(base)
                if other is not None:
                    runs.append((net, lever, seed, *other))
    return runs


def one_run(job: tuple) -> dict:
    """One run's row; a run that fails (a diverged loss, say) is a row with its error,
    so one arm's failure neither stops the pilot nor hides in it."""
    root, net, lever, seed, candidate = job
    import torch

    from search.config import VAL_SIZE, Recipe, score
    from search.engine.data import load_mnist, split_validation
    from search.engine.train import train

    torch.set_num_threads(1)
    row = {"net": net, "lever": lever, "seed": seed, "candidate": candidate.describe(), "params": candidate.arch.params,
           "cpu": _cpu(), "torch": torch.__version__}
    data = load_mnist(root, download=False)
    train_split, val = split_validation(data.train, VAL_SIZE, seed=0)  # the search's split
    try:
        r = train(candidate, Recipe(seed=seed), train_split, {"val": val}, torch.device("cpu"))
    except Exception as e:  # noqa: BLE001 - recorded as the arm's outcome
        return row | {"error": f"{type(e).__name__}: {e}"}
    val_acc = [e.evals["val"].acc for e in r.history]
    return row | {"score": score(val_acc), "val_final": val_acc[-1], "val_acc": val_acc,
                  "val_loss": r.history[-1].evals["val"].loss, "seconds": round(r.seconds, 1)}


def _cpu() -> str:
    from search.execution.record import cpu_model  # the name and the generation (family, model)

    return cpu_model()


def _key(row: dict) -> tuple:
    return row["net"], row["lever"], row["seed"], row["candidate"]


def read(path: Path, seeds: list[int] | None = None) -> list[dict]:
    """The rows of runs the plan still holds: a row whose candidate the plan no longer
    names (a lever or a network redefined since) is left out, and its run made again."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    planned = {(n, lv, s, c.describe()) for n, lv, s, c, _, _ in plan(seeds or sorted({r["seed"] for r in rows}))}
    return [r for r in rows if _key(r) in planned]


def run(path: Path, seeds: list[int], workers: int, root: str) -> None:
    done = {_key(r) for r in read(path, seeds)}
    todo = [(root, net, lever, seed, cand) for net, lever, seed, cand, _, _ in plan(seeds)
            if (net, lever, seed, cand.describe()) not in done]
    print(f"{len(done)} runs in {path}, {len(todo)} to go, {workers} single-threaded workers, {_cpu()}", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        queue, running = list(todo), {}
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                running[pool.submit(one_run, job)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                job = running.pop(f)
                row = f.result()
                with path.open("a") as out:
                    out.write(json.dumps(row) + "\n")
                outcome = row.get("error") or f"score {row['score']:.2f}, {row['seconds'] / 60:.1f} min"
                print(f"{time.strftime('%H:%M:%S')} {row['net']:<11} {row['lever']:<10} seed {row['seed']}: "
                      f"{outcome}", flush=True)


def table(rows: list[dict]) -> str:
    """Per lever: the paired differences (on minus off, in the search's score), their mean,
    standard error and count, each network's mean, and the verdict `verdict` gives."""
    by = {(r["net"], r["lever"], r["seed"]): r for r in rows}
    arms = {(net, lever, seed): (on, ref) for net, lever, seed, _, on, ref in plan(sorted({r["seed"] for r in rows}))}
    lines = ["| lever | what | pairs | mean diff (on - off) | SE | per network: mean (pairs) | verdict |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    failed = []
    for lever, (what, _) in LEVERS.items():
        diffs: dict[str, list[float]] = {}
        for (net, lv, seed), row in sorted(by.items()):
            if lv != lever or (net, lv, seed) not in arms:
                continue
            on, ref = arms[(net, lv, seed)]
            other = by.get((net, ref, seed))
            if "error" in row or (other is not None and "error" in other):
                failed.append(f"{lever} on {net}, seed {seed}: {row.get('error') or other.get('error')}")
                continue
            if other is None:
                continue
            d = row["score"] - other["score"]
            diffs.setdefault(net, []).append(d if on else -d)
        flat = [d for ds in diffs.values() for d in ds]
        if not flat:
            continue
        mean = statistics.fmean(flat)
        se = statistics.stdev(flat) / math.sqrt(len(flat)) if len(flat) > 1 else float("nan")
        per = ", ".join(f"{n} {statistics.fmean(ds):+.2f} ({len(ds)})" for n, ds in diffs.items())
        se_txt = "-" if math.isnan(se) else f"{se:.3f}"
        lines.append(f"| {lever} | {what} | {len(flat)} | {mean:+.3f} | {se_txt} | {per} | {verdict(diffs)} |")
    if failed:
        lines += ["", "Arms that failed (no pair): " + "; ".join(failed)]
    return "\n".join(lines)


def verdict(diffs: dict[str, list[float]]) -> str:
    """The issue's rule, with each network's sign read against the seed noise: a network
    gains (loses) when its mean difference is above (below) one standard error of that
    mean, the standard deviation pooled over every network's seeds. A lever with a
    network that gains and one that loses is a dimension; one whose mean over all pairs
    gains by at least one standard error, and that no network loses by, is a default;
    anything else is left out."""
    flat = [d for ds in diffs.values() for d in ds]
    dof = sum(len(ds) - 1 for ds in diffs.values())
    if len(diffs) < 2 or dof < 1:
        return "too few pairs"
    pooled = math.sqrt(sum((d - statistics.fmean(ds)) ** 2 for ds in diffs.values() for d in ds) / dof)
    signs = set()
    for ds in diffs.values():
        m, se = statistics.fmean(ds), pooled / math.sqrt(len(ds))
        signs |= {"gain"} if m > se else {"loss"} if m < -se else set()
    if signs == {"gain", "loss"}:
        return "dimension (the sign depends on the network)"
    overall = statistics.stdev(flat) / math.sqrt(len(flat))
    if statistics.fmean(flat) >= overall and "loss" not in signs:
        return "default (on)"
    return "left out"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2", help="training seeds, comma-separated (default 1,2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "studies" / "levers.jsonl")
    ap.add_argument("--data-dir", default=os.environ.get("DRILL_SEARCH_DATA", "data"))
    ap.add_argument("--table", action="store_true", help="print the table from --out and run nothing")
    ap.add_argument("--plan", action="store_true", help="list the runs and run nothing")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.plan:
        for net, lever, seed, cand, on, ref in plan(seeds):
            pair = f"vs {ref}" if ref else ""
            print(f"{net:<11} {lever:<10} seed {seed} {'on ' if on else 'off'} {pair:<8} {cand.arch.params:>6,} "
                  f"{cand.describe()}")
        return
    if args.table:
        print(table(read(args.out)))
        return
    run(args.out, seeds, args.workers, args.data_dir)
    print(table(read(args.out)))


if __name__ == "__main__":
    main()
