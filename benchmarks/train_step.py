"""GAN training speed: milliseconds per adversarial training step on the current backend.

Builds the default :class:`~calozdc.models.gan.ConditionalGAN` of the model registry
(``build_model("gan", ...)``: CNN generator "extended2" and discriminator "simplified",
``hidden_dim=16``, ratio 1:1, one D and one G update per step) for a geometry, trains it with
``model.fit`` on simulated showers (log1p + standardisation), one ``fit`` call of ``--warmup`` steps
(compile and first calls, not timed) followed by ``--steps`` timed steps; a callback reads
each step's logs back (so the step has finished) and the median step time is reported. Prints a
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

import numpy as np
from _gan_timing import gan_training_data, timed_fit


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="zn44", help="zn44 or ecal20 (default zn44)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before (compile)")
    parser.add_argument("--hidden-dim", type=int, default=None,
                        help="GAN width (default: the registry builder's)")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. "
                         f"Received: {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    from calozdc.data import get_geometry
    from calozdc.models.registry import build_model

    geometry = get_geometry(args.geometry)
    x, c, shower_t, cond_t = gan_training_data(geometry, args.batch_size)
    options = {"shower_transform": shower_t, "condition_transform": cond_t, "seed": 0}
    if args.hidden_dim:
        options["hidden_dim"] = args.hidden_dim
    model = build_model("gan", geometry, c.shape[1], **options)

    per_step, warmup_s = timed_fit(model, x, c, args.batch_size, args.steps, args.warmup)
    ms = 1e3 * float(np.median(per_step))
    ms_mean = 1e3 * float(np.mean(per_step))

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
          f"{args.batch_size}; {args.warmup} warm-up steps excluded; median (mean) of {args.steps} "
          f"timed steps in one `fit`\n")
    print("| backend | ms / step (median) | ms / step (mean) | showers / s (training) "
          "| warm-up incl. compile (s) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {keras.backend.backend()} | {ms:.1f} | {ms_mean:.1f} "
          f"| {1e3 * args.batch_size / ms:.0f} | {warmup_s:.1f} |")


if __name__ == "__main__":
    main()
