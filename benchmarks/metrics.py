"""Metric speed: FPD + KPD on 50,000 x 20 features, and a full ``evaluate`` on zn44 showers.

Usage:
    python benchmarks/metrics.py [--n 50000] [--features 20] [--showers 10000] [--repeats 2]

Prints a markdown table (and the command, date and machine) for benchmarks/RESULTS.md.
Target (metrics issue): FPD + KPD (jetnet 0.2.5 defaults: FPD 10 batch sizes 20k-50k x 20
batches, KPD 10 batches of 5,000) on 50,000 x 20 features in < 10 s on 2 cores.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

from calozdc import metrics


def best_time(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="rows per sample")
    parser.add_argument("--features", type=int, default=20, help="features per row")
    parser.add_argument("--showers", type=int, default=10_000, help="zn44 showers for evaluate")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    real = rng.gamma(2.0, 1.0, (args.n, args.features))
    gen = rng.gamma(2.0, 1.05, (args.n, args.features))
    print(f"Command: `python benchmarks/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}`")
    print(f"date: {datetime.date.today()}  machine: {platform.platform()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print("| task | BLAS threads | seconds | value ± error |")
    print("|---|---|---|---|")
    for threads in (1, None):
        label = "1" if threads == 1 else f"default ({os.cpu_count()} cores)"
        t_fpd, (f, fe) = best_time(lambda t=threads: metrics.fpd(real, gen, num_threads=t),
                                   args.repeats)
        t_kpd, (k, ke) = best_time(lambda t=threads: metrics.kpd(real, gen, num_threads=t),
                                   args.repeats)
        print(f"| FPD {args.n:,} x {args.features} | {label} | {t_fpd:.2f} | {f:.3g} ± {fe:.2g} |")
        print(f"| KPD {args.n:,} x {args.features} | {label} | {t_kpd:.2f} | {k:.3g} ± {ke:.2g} |")
        print(f"| FPD + KPD | {label} | **{t_fpd + t_kpd:.2f}** | |")
    if args.showers:
        from calozdc.data import simulate

        data = simulate("zn44", args.showers, seed=1)
        other = simulate("zn44", args.showers, seed=2)
        t_eval, res = best_time(lambda: metrics.evaluate(data, other, paired=False), 1)
        ratio = res["metrics"]["w1_channels_mean"]["ratio"]
        print(f"| evaluate zn44 {args.showers:,} vs {args.showers:,} showers (50 layers, "
              f"{len(res['info']['features'])} features), floor incl. | 1 | {t_eval:.2f} | "
              f"W1 ratio {ratio:.2f} |")


if __name__ == "__main__":
    main()
