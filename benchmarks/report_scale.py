"""How long the report takes for a large study.

    python benchmarks/report_scale.py --trials 500

Builds a study of N synthetic trials in a temporary SQLite file, with curves, outcomes
and parameter counts shaped like a real search's (complete, pruned at epoch 3,
rejected), then times what `drill-search report` does: load the study from storage,
build the figures, write the HTML and attach the figures to the study.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

import spaces  # noqa: E402
from search.results import document  # noqa: E402
from search.engine.model import count_params  # noqa: E402
from search.execution.identity import open_study  # noqa: E402


def fill(study: optuna.Study, n: int, rng: random.Random) -> None:
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        t = scratch.ask()
        cand = spaces.sample(t)
        scratch.tell(t, 0.0)
        params = spaces.encode(cand)
        n_params = count_params(cand.arch)
        dists = {k: spaces.SPACE[k] for k in params}
        base = 99.5 - 6000 / max(n_params, 1500) + rng.gauss(0, 0.15)
        curve = [round(base - 2.5 / (e + 1) + rng.gauss(0, 0.05), 2) for e in range(15)]
        attrs = {"params": n_params, "arch": cand.arch.describe(), "seconds": 60.0}
        if n_params > 10_000:
            state, values, attrs["state_reason"] = TrialState.PRUNED, None, "rejected: over budget"
        elif rng.random() < 0.5:
            state, values = TrialState.PRUNED, None
            attrs.update(val_acc=curve[:3], test_acc=curve[:3], pruned_at_epoch=3, state_reason="pruned: test")
        else:
            state, values = TrialState.COMPLETE, [curve[-1], n_params]
            attrs.update(val_acc=curve, test_acc=curve, state_reason="complete")
        study.add_trial(optuna.trial.create_trial(
            state=state, values=values, params=params, distributions=dists, user_attrs=attrs,
            system_attrs={"constraints:params": float(n_params - 10_000)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=500)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/big.db"
        study = open_study(optuna.storages.RDBStorage(url), "big", ["maximize", "minimize"],
                           ["val_acc", "params"], {"kind": "search", "max_params": 10_000})
        t0 = time.perf_counter()
        fill(study, args.trials, random.Random(0))
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        study = optuna.load_study(study_name="big", storage=url)
        study.get_trials()
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        figs = document.figures(study)
        figured = time.perf_counter() - t0
        t0 = time.perf_counter()
        document.write_html(study, Path(tmp) / "r.html", figs)
        written = time.perf_counter() - t0
        size = (Path(tmp) / "r.html").stat().st_size
        t0 = time.perf_counter()
        document.attach(study, figs)
        attached = time.perf_counter() - t0
    print(f"{args.trials} trials ({document.counts_line(study)}), built in {built:.1f} s")
    print(f"  load from storage   {loaded:6.2f} s")
    print(f"  figures             {figured:6.2f} s")
    print(f"  write HTML          {written:6.2f} s  ({size / 1e6:.1f} MB, plotly.js embedded)")
    print(f"  attach to study     {attached:6.2f} s")
    print(f"  report total        {loaded + figured + written + attached:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
