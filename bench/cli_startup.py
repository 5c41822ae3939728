"""How long `erpops --help` takes next to a bare `python -c pass`.

Run: .venv/bin/python bench/cli_startup.py [--runs 20]
Prints the median and best wall time of each, in milliseconds. Not a test:
timings depend on the machine; the suite only checks that no heavy client
(boto3, kubernetes, docker, paramiko) is imported by --help.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ERPOPS = Path(sys.executable).parent / "erpops"


def wall_times(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rows = [("python -c pass", [sys.executable, "-c", "pass"]),
            ("erpops --help", [str(ERPOPS), "--help"]),
            ("erpops runbook --help", [str(ERPOPS), "runbook", "--help"])]
    print(f"{'command':<24} {'median ms':>10} {'best ms':>8}")
    for label, argv in rows:
        wall_times(argv, 2)  # warm the page cache
        t = wall_times(argv, args.runs)
        print(f"{label:<24} {statistics.median(t):>10.1f} {min(t):>8.1f}")


if __name__ == "__main__":
    main()
