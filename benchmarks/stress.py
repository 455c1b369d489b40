"""Stress: N worker processes on one storage, killed at random with SIGKILL; with
--kill-command, the command itself killed and started again.

    python benchmarks/stress.py --storage journal --workers 4 --trials 40
    python benchmarks/stress.py --storage sqlite --trials 20          # one worker: SQLite's limit
    python benchmarks/stress.py --storage postgresql --workers 4 --trials 40
    python benchmarks/stress.py --storage journal --workers 2 --trials 16 --kill-command --kill-every 90

A worker killed while it holds the journal file's lock leaves the lock behind; the other
workers wait for Optuna's stale-lock grace period (30 s) before they take it over, which
shows in the run time, not in the figures.

The search is real (`search.study.run_search`: worker processes, the objective, the
supervisor that fails and re-queues a dead worker's trial and replaces the worker), on
real MNIST with tiny training (a few hundred images, 2 epochs) so that trials are short
and kills land mid-trial. A killer thread SIGKILLs the worker of a random running trial
every few seconds. At the end the study is read back and the script prints trials
requested, finished, failed, retried, lost (must be 0) and duplicated (must be 0).

With --kill-command the search runs as the real command (`python -m search run`, in a
process of its own), and the killer SIGKILLs that command, not its workers, as kill -9 or
the kernel's OOM killer would, then starts the same command again, until one run ends
with the study's N trials finished. Each command's workers must end with it, the trials
they held re-queued by the next command: "orphaned" counts the command's processes
(its workers, and theirs) still alive ORPHAN_SECONDS after a kill (must be 0); they are
then killed so that they do not disturb the next round. The interval between kills must
leave a command time to start (a few seconds: imports, workers loading MNIST) and to
finish trials, or nothing ever finishes: the script gives up after
MAX_COMMANDS_PER_TRIAL commands per trial requested.

Under the default strategy, `promote` (a 1-epoch rung before a 3-epoch full run here),
it also checks the promotion: a candidate is decided once (every retry of a trial that
had decided carries that decision and its rung figures, not a second rung: "decided
twice" must be 0), and every finished candidate that trained has its whole rung
recorded ("rung missing" must be 0). `--strategy full` stresses the full protocol.

PostgreSQL: the script installs the server from Debian's packages if it is missing
(`apt-get install postgresql`), starts a private cluster on 127.0.0.1 in a temporary
folder, installs psycopg2-binary, runs the same stress, and stops the cluster.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.trial import TrialState  # noqa: E402

from search.config import STRATEGIES, DataConfig, Recipe, SearchConfig  # noqa: E402
from search.execution.liveness import lives_here, worker_id  # noqa: E402
from search.execution.storage import open_storage  # noqa: E402
from search.study import run_search  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ORPHAN_SECONDS = 5.0  # after a command's kill, its processes still alive this much later are orphans
MAX_COMMANDS_PER_TRIAL = 10  # --kill-command gives up after this many commands per requested trial


def killer(cfg: SearchConfig, every: float, stop: threading.Event, kills: list, rng: random.Random) -> None:
    """SIGKILL the worker of a random running trial every `every` seconds (+-50%)."""
    host = socket.gethostname()
    stop.wait(2.0)  # let the supervisor create the storage first
    storage = open_storage(cfg.storage)
    while not stop.wait(every * rng.uniform(0.5, 1.5)):
        try:
            study = optuna.load_study(study_name=cfg.study_name, storage=storage)
        except KeyError:
            continue
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.user_attrs.get("worker", "").startswith(host + ":")]
        if not running:
            continue
        victim = rng.choice(running)
        pid = int(victim.user_attrs["worker"].split(":")[1])  # host:pid:start
        try:
            os.kill(pid, signal.SIGKILL)
            kills.append((victim.number, pid))
        except ProcessLookupError:
            pass


def descendants(pid: int) -> list[str]:
    """The processes under `pid` (Linux /proc), named as liveness names workers
    (host:pid:start), so that a pid reused later is not taken for one of them."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue  # /proc/self and the kernel's files
        try:
            ppid = int((d / "stat").read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # not a process, or gone meanwhile
        children.setdefault(ppid, []).append(int(d.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [worker_id(p) for p in found]


def command(cfg: SearchConfig, seed: int) -> list[str]:
    """`drill-search run` with the flags that give `cfg`'s study (the training seed, which
    the CLI's --seed sets too, is not part of a study's identity)."""
    return [sys.executable, "-m", "search", "run", "--trials", str(cfg.trials), "--storage", cfg.storage,
            "--workers", str(cfg.workers), "--device", cfg.device, "--quiet", "--seed", str(seed),
            "--epochs", str(cfg.recipe.epochs), "--batch-size", str(cfg.recipe.batch_size),
            "--val-size", str(cfg.data.val_size), "--train-size", str(cfg.data.train_size),
            "--data-dir", str(cfg.data.root), "--pruner", cfg.pruner, "--prune-warmup", str(cfg.prune_warmup),
            "--strategy", cfg.strategy, "--rung-epochs", str(cfg.rung_epochs),
            *([] if cfg.with_baselines else ["--no-baselines"])]


def kill_commands(argv: list[str], trials: int, every: float, rng: random.Random,
                  log: Path) -> tuple[int, int, str | None]:
    """Run `argv`, SIGKILL it after `every` seconds (+-50%) and run it again, until a run
    ends by itself; returns the kills, the orphans (the killed commands' processes alive
    ORPHAN_SECONDS after each kill) and the error of a run that ended badly."""
    kills = orphans = 0
    for _ in range(MAX_COMMANDS_PER_TRIAL * trials):
        with log.open("a") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=every * rng.uniform(0.5, 1.5))
        except subprocess.TimeoutExpired:
            under = descendants(proc.pid)
            proc.kill()  # the command alone, not its process group
            proc.wait()
            kills += 1
            time.sleep(ORPHAN_SECONDS)
            left = [w for w in under if lives_here(w)]
            orphans += len(left)
            for w in left:
                os.kill(int(w.split(":")[1]), signal.SIGKILL)
            continue
        if code != 0:
            tail = log.read_text().strip().splitlines()[-3:]
            return kills, orphans, f"the command exited {code}: " + " / ".join(tail)
        return kills, orphans, None
    return kills, orphans, "the study never filled: give the commands more time between kills (--kill-every)"


def audit(study: optuna.Study, requested: int, kills: int, rung_epochs: int | None) -> dict:
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}

    def root(t) -> int:
        while "retry_of" in t.user_attrs:
            t = by_number[t.user_attrs["retry_of"]]
        return t.number

    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    per_root: dict[int, int] = {}
    for t in finished:
        per_root[root(t)] = per_root.get(root(t), 0) + 1
    # A rung's epoch timings differ from run to run: a decision copied to a retry has the
    # same ones, a rung trained again has others.
    decisions: dict[int, set] = {}
    for t in trials:
        if "promoted" in t.user_attrs:
            decisions.setdefault(root(t), set()).add(tuple(t.user_attrs["rung_epoch_seconds"]))
    promotion = {} if rung_epochs is None else {
        "promoted": sum(t.user_attrs.get("promoted") is True for t in finished),
        "not promoted": sum(t.user_attrs.get("promoted") is False for t in finished),
        "decided twice": sum(len(d) - 1 for d in decisions.values()),
        "rung missing": sum(len(t.user_attrs.get("rung_val_acc", [])) != rung_epochs for t in finished
                            if not t.user_attrs.get("state_reason", "").startswith(("rejected", "diverged"))),
    }
    return {
        "requested": requested,
        "finished": len(finished),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "retried": sum("retry_of" in t.user_attrs for t in trials),
        "kills": kills,
        "lost": max(0, requested - len(finished)),
        "duplicated": sum(n - 1 for n in per_root.values() if n > 1),
        "left running": sum(t.state == TrialState.RUNNING for t in trials),
        "left waiting": sum(t.state == TrialState.WAITING for t in trials),
        **promotion,
    }


def start_postgres(tmp: Path) -> tuple[str, callable]:
    """A private PostgreSQL cluster on 127.0.0.1; returns its URL and a stop function."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "psycopg2-binary"], check=True)
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    data = tmp / "pg"
    data.mkdir()
    user = "postgres"
    shutil.chown(tmp, user=user)
    shutil.chown(data, user=user)
    as_pg = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "drill"],
                   check=True, stdout=subprocess.DEVNULL)
    port = 55432
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "pg.log"), "-w", "-o",
                    f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*as_pg, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "drill", "stress"],
                   check=True)

    def stop() -> None:
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL)

    return f"postgresql+psycopg2://drill@127.0.0.1:{port}/stress", stop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", choices=("journal", "sqlite", "postgresql"), default="journal")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--kill-every", type=float, default=8.0, help="mean seconds between kills")
    ap.add_argument("--kill-command", action="store_true",
                    help="kill the command itself (run as a process of its own) and start it again, not its workers")
    ap.add_argument("--train-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", choices=STRATEGIES, default=SearchConfig.strategy)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DRILL_SEARCH_DATA", "data")))
    args = ap.parse_args()
    workers = 1 if args.storage == "sqlite" else args.workers  # drill-search refuses more on SQLite

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stop_db = None
        if args.storage == "journal":
            url = str(tmp / "stress.journal")
        elif args.storage == "sqlite":
            url = f"sqlite:///{tmp}/stress.db"
        else:
            url, stop_db = start_postgres(tmp)
        cfg = SearchConfig(
            storage=url,
            recipe=Recipe(epochs=3, batch_size=64),
            data=DataConfig(root=args.data_dir, download=False, val_size=500, train_size=args.train_size),
            trials=args.trials, workers=workers, pruner="pareto", prune_warmup=1, seed=args.seed,
            with_baselines=True, device="cpu", strategy=args.strategy, rung_epochs=1,
        )
        print(f"stress: {args.storage}, {workers} worker(s), {args.trials} trials, a SIGKILL of "
              f"{'the command' if args.kill_command else 'a worker'} every ~{args.kill_every:g} s", flush=True)
        start = time.time()
        error = None
        if args.kill_command:
            killed, orphans, error = kill_commands(command(cfg, args.seed), cfg.trials, args.kill_every,
                                                   random.Random(args.seed), tmp / "commands.log")
        else:
            kills: list = []
            stop = threading.Event()
            thread = threading.Thread(target=killer, args=(cfg, args.kill_every, stop, kills, random.Random(args.seed)))
            thread.start()
            try:
                run_search(cfg, poll_seconds=0.5, max_deaths=10 * args.trials)
            except Exception as e:  # noqa: BLE001 - report it with the figures
                error = e
            finally:
                stop.set()
                thread.join()
            killed = len(kills)
        study = optuna.load_study(study_name=cfg.study_name, storage=open_storage(url))
        figures = audit(study, args.trials, killed, cfg.rung_epochs if cfg.promotes else None)
        if args.kill_command:
            figures["orphaned"] = orphans
        if stop_db is not None:
            stop_db()
    print(f"done in {time.time() - start:.0f} s" + (f"; the search raised: {error}" if error else ""))
    for key, value in figures.items():
        print(f"  {key:<13} {value}")
    ok = (figures["lost"] == 0 and figures["duplicated"] == 0 and error is None
          and figures.get("decided twice", 0) == 0 and figures.get("rung missing", 0) == 0
          and figures.get("orphaned", 0) == 0)
    print("OK: nothing lost, nothing duplicated" + (", each candidate decided once" if cfg.promotes else "")
          + (", no worker outlived its command" if args.kill_command else "") if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
