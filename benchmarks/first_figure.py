"""How soon README's main command shows its first figure: `drill-search run --trials 50` in a
fresh folder, on a terminal (a pseudo-terminal here), timed from its start to the first
line with a training figure (a step count within the first epoch, or an epoch's accuracy).
The command is stopped there, and its folder deleted.

    DRILL_SEARCH_DATA=../shared/datasets python benchmarks/first_figure.py
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

FIGURE = re.compile(r"step \d+/\d+|epoch \d+/\d+  val")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def main() -> int:
    cli = str(Path(sys.executable).parent / "drill-search")
    folder = tempfile.mkdtemp(prefix="first-figure-")
    leader, follower = pty.openpty()
    # a terminal's size: a new pseudo-terminal has 0 columns, and tqdm fits its lines to that
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen([cli, "run", "--trials", "50"], cwd=folder, stdin=follower, stdout=follower,
                            stderr=follower, start_new_session=True)
    os.close(follower)
    seen, first = "", None
    try:
        while first is None and time.perf_counter() - start < 600:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    seen += os.read(leader, 65536).decode(errors="replace")
                except OSError:
                    break
                match = FIGURE.search(seen)
                if match:
                    first = time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(leader)
        shutil.rmtree(folder, ignore_errors=True)
    if first is None:
        print("no figure within 600 s")
        return 1
    line = next(part for part in re.split(r"[\r\n]", seen) if FIGURE.search(part))
    print(f"first figure after {first:.1f} s: {ANSI.sub('', line).strip()[:140]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
