"""How fast the CLI answers: `drill-search --help`, and `--version`, median of 5 runs each,
beside a bare `python -c pass` measured in the same run (the interpreter's own start).

    python benchmarks/startup.py

The CLI imports only light modules before parsing (search/cli.py): torch, torchvision and
optuna load in the command that needs them, never for --help.
"""

from __future__ import annotations

import platform
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(argv: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> int:
    cli = shutil.which("drill-search") or str(__import__("pathlib").Path(sys.executable).parent / "drill-search")
    bare = median_seconds([sys.executable, "-c", "pass"])
    print(f"CPU: {cpu_model()}; python {platform.python_version()}")
    print(f"python -c pass            {bare:.2f} s")
    for args in (["--help"], ["--version"], ["run", "--help"]):
        t = median_seconds([cli, *args])
        print(f"drill-search {' '.join(args):<12} {t:.2f} s  ({t / bare:.1f}x a bare interpreter)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
