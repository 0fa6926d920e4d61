"""GAN training speed: milliseconds per adversarial training step on the current backend.

Builds the default :class:`~calozdc.models.gan.ConditionalGAN` of the model registry
(``build_model("gan", ...)``: CNN generator "extended2" and discriminator "simplified",
``hidden_dim=16``, ratio 1:1, one D and one G update per step) for a geometry, trains it with
``model.fit`` on simulated showers (log1p + standardisation), first ``--warmup`` steps (compile
and first calls, not timed), then ``--steps`` timed steps in one ``fit`` call. Prints a
markdown table with the command, date and machine. Compare backends by running it once per
``KERAS_BACKEND`` with the same arguments:

    for b in tensorflow jax torch; do
        KERAS_BACKEND=$b python benchmarks/train_step.py --steps 30 --batch-size 64
    done
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
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before (compile)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs (best is reported)")
    parser.add_argument("--hidden-dim", type=int, default=None,
                        help="GAN width (default: the registry builder's)")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "warmup", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. "
                         f"Received: {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    from calozdc.data import get_geometry, simulate, transforms
    from calozdc.models.registry import build_model

    geometry = get_geometry(args.geometry)
    data = simulate(geometry, 4 * args.batch_size, seed=0)
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
    cond_t = transforms.Standardize(axis="feature")
    x = shower_t.fit_forward(data.showers).astype("float32")
    c = cond_t.fit_forward(data.conditions).astype("float32")
    options = {"shower_transform": shower_t, "condition_transform": cond_t, "seed": 0}
    if args.hidden_dim:
        options["hidden_dim"] = args.hidden_dim
    model = build_model("gan", geometry, c.shape[1], **options)

    def batches(n_steps):
        idx = np.arange(n_steps * args.batch_size) % len(x)
        return x[idx], c[idx]

    start = time.perf_counter()
    wx, wc = batches(args.warmup)
    model.fit(wx, wc, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)
    warmup_s = time.perf_counter() - start
    tx, tc = batches(args.steps)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.fit(tx, tc, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)
        times.append(time.perf_counter() - start)
    ms = 1e3 * min(times) / args.steps

    n_params = model.generator.count_params() + model.discriminator.count_params()
    print("## GAN training step time\n")
    print(f"- command: `KERAS_BACKEND={keras.backend.backend()} "
          f"{shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}`")
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; Python {platform.python_version()}, "
          f"keras {keras.__version__}")
    print(f"- model: registry 'gan' on {args.geometry}, generator "
          f"{model.generator.count_params():,} + discriminator "
          f"{model.discriminator.count_params():,} = {n_params:,} parameters; batch "
          f"{args.batch_size}; {args.warmup} warm-up steps excluded; {args.steps} timed steps, "
          f"best of {args.repeats}\n")
    print("| backend | ms / step | showers / s (training) | warm-up incl. compile (s) |")
    print("|---|---:|---:|---:|")
    print(f"| {keras.backend.backend()} | {ms:.1f} | {1e3 * args.batch_size / ms:.0f} "
          f"| {warmup_s:.1f} |")


if __name__ == "__main__":
    main()
