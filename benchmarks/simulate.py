"""Simulator throughput: showers per second for zn44 and ecal20.

Usage:
    python benchmarks/simulate.py [--n 32768] [--workers 2]

Prints a markdown table (and the command, date and machine) for benchmarks/RESULTS.md.
Target (foundation issue): >= 5,000 zn44 showers/s on 2 CPU cores.
"""

import argparse
import datetime
import os
import platform
import sys
import time

from calozdc.data import iter_simulate


def measure(geometry, n, workers, repeats, **kwargs):
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(len(c["pdg"]) for c in iter_simulate(geometry, n, seed=1, workers=workers,
                                                          **kwargs))
        best = max(best, count / (time.perf_counter() - start))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32768)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cases = [
        ("zn44", "ALICE mix, photons", {}),
        ("zn44", "e- 10-200 GeV, energy", {"particles": "e-", "energy_range": (10, 200),
                                           "impact_halfwidth_mm": 5, "response": "energy"}),
        ("ecal20", "e+- gamma 1-1000 GeV", {}),
    ]
    print(f"command: python benchmarks/simulate.py --n {args.n} --workers {args.workers}")
    print(f"date: {datetime.date.today()}  machine: {platform.platform()}, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print()
    print("| geometry | sample | workers | showers/s |")
    print("|---|---|---|---|")
    for geometry, label, kwargs in cases:
        for workers in sorted({1, args.workers}):
            rate = measure(geometry, args.n, workers, args.repeats, **kwargs)
            print(f"| {geometry} | {label} | {workers} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
