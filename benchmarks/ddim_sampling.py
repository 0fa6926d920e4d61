"""DDIM sampling speed: time per shower against the number of denoising steps.

Builds the default DDIM for a geometry (``calozdc.models.ddim.presets.build_ddim``; untrained
weights: the cost of sampling does not depend on their values), then for each number of steps
runs ``generate`` once to compile and ``--repeats`` times timed, and prints a markdown table
with the command, date and machine. Run on the current ``KERAS_BACKEND``:

    KERAS_BACKEND=jax python benchmarks/ddim_sampling.py --steps 1 10 50 --batch-size 256
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="zn44", help="zn44 or ecal20 (default zn44)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=1, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting")
    parser.add_argument("--widths", type=int, nargs="+", default=None,
                        help="U-Net widths (default: the preset's)")
    parser.add_argument("--blocks-per-level", type=int, default=None)
    parser.add_argument("--no-attention", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from calozdc.data import get_geometry
    from calozdc.models.ddim.presets import build_ddim

    geometry = get_geometry(args.geometry)
    options = {"seed": 0}
    if args.widths:
        options["widths"] = tuple(args.widths)
    if args.blocks_per_level:
        options["blocks_per_level"] = args.blocks_per_level
    if args.no_attention:
        options["attention"] = False
    model = build_ddim(geometry, geometry.n_conditions, **options)
    n = args.batch_size * args.batches
    conditions = np.random.default_rng(0).normal(size=(n, geometry.n_conditions))

    rows = []
    for steps in args.steps:
        start = time.perf_counter()
        model.generate(conditions, steps=steps, seed=0, batch_size=args.batch_size)
        first = time.perf_counter() - start
        times = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            model.generate(conditions, steps=steps, seed=repeat + 1, batch_size=args.batch_size)
            times.append(time.perf_counter() - start)
        best = min(times)
        rows.append((steps, 1e3 * best / n, n / best, first))

    unet = model.denoiser
    print("## DDIM sampling time per shower\n")
    print(f"- command: `KERAS_BACKEND={keras.backend.backend()} "
          f"{shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}`")
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; Python {platform.python_version()}, keras {keras.__version__}, "
          f"backend {keras.backend.backend()}")
    print(f"- model: {args.geometry} ConditionalUNet widths={unet.widths}, "
          f"blocks_per_level={unet.blocks_per_level}, attention={unet.attention}, "
          f"{unet.count_params():,} parameters; batch {args.batch_size} x {args.batches}, "
          f"best of {args.repeats}\n")
    print("| steps | ms / shower | showers / s | first call incl. compile (s) |")
    print("|---:|---:|---:|---:|")
    for steps, ms, rate, first in rows:
        print(f"| {steps} | {ms:.3f} | {rate:.1f} | {first:.1f} |")


if __name__ == "__main__":
    main()
