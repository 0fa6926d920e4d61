"""Generation speed of every model family, and the DDIM speed/fidelity curve.

On the current ``KERAS_BACKEND``, for one geometry (default zn44):

* **GAN** (registry ``"gan"``): showers/s of ``generate`` (untrained weights: the cost does
  not depend on their values).
* **VQ generator** (registry ``"vqvae"``): showers/s of ``generate`` (autoregressive prior
  sampling + decoding) and of decoding given code grids alone (``vqvae.decode``), i.e. with
  and without the prior-sampling cost (untrained weights).
* **DDIM** (registry ``"ddim"``, a small U-Net): trained briefly on simulated showers, then for
  each number of sampling steps the showers/s of ``generate`` and the channel Wasserstein-1
  distance (ALICE ZDC, arXiv:2407.16704 eq. 4.2; :func:`calozdc.metrics.wasserstein_channels`)
  between generated and held-out simulated showers for the same conditions, beside the
  real-vs-real floor: the speed/fidelity trade-off.

Each timed call is preceded by an untimed call on the same shapes (compilation; for DDIM
on one generation batch). Sizes are arguments with small defaults (a few minutes on a 2-core
CPU):

    KERAS_BACKEND=jax python benchmarks/generate.py
    KERAS_BACKEND=torch python benchmarks/generate.py --n-train 4000 --epochs 5 --n-test 512

The DDIM recipe of ``tests/test_learning_ddim.py`` (energy fractions, ``Log1p(scale=1)``,
Geant4-reference beam spread), trained longer, for a curve of a trained model:

    KERAS_BACKEND=tensorflow python benchmarks/generate.py --families ddim \
        --energy-range 10 200 --impact-halfwidth-mm 5 --angle-halfwidth-mrad 2 \
        --shower-transform fraction-log1p --widths 8 16 32 --embedding-dim 64 \
        --learning-rate 2e-3 --cosine-decay --ema-decay 0.99 --train-batch-size 32 \
        --n-train 4000 --epochs 10 --steps 5 --save-model ddim.keras

and, on an idle machine, the speed/fidelity curve of that model (same data options):

    KERAS_BACKEND=tensorflow python benchmarks/generate.py --families ddim \
        --energy-range 10 200 --impact-halfwidth-mm 5 --angle-halfwidth-mrad 2 \
        --n-test 256 --batch-size 128 --load-model ddim.keras

The floor is the W1 between the held-out showers and another real sample of the same size;
that sample has other conditions (energies, impact points), while generated showers share the
held-out ones, so a trained model can score below it.
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time

FAMILIES = ("gan", "vqvae", "ddim")
SHOWER_TRANSFORMS = ("log1p", "fraction-log1p")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="zn44", help="zn44 or ecal20 (default zn44)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--particles", default="e-",
                        help="simulated particle (default e-; 'mix' = the geometry's default)")
    parser.add_argument("--energy-range", type=float, nargs=2, default=None,
                        help="simulated energy range (default: zn44 20-200 GeV, ecal20 the "
                             "simulator's)")
    parser.add_argument("--impact-halfwidth-mm", type=float, default=None,
                        help="test-beam impact spread (+-mm; default: the simulator's)")
    parser.add_argument("--angle-halfwidth-mrad", type=float, default=None,
                        help="angular spread (+-mrad; default: the simulator's)")
    parser.add_argument("--shower-transform", default="log1p", choices=SHOWER_TRANSFORMS,
                        help="log1p: Log1p(scale) + Standardize (default); fraction-log1p: "
                             "DivideByIncidentEnergy + Log1p(scale) + Standardize")
    parser.add_argument("--log-scale", type=float, default=1.0, help="Log1p scale (default 1)")
    parser.add_argument("--n-generate", type=int, default=256,
                        help="showers per timed GAN / VQ call (default 256)")
    parser.add_argument("--batch-size", type=int, default=256, help="generation batch size")
    parser.add_argument("--n-train", type=int, default=3000, help="DDIM training showers")
    parser.add_argument("--n-test", type=int, default=256,
                        help="held-out showers: DDIM conditions and W1 reference (default 256)")
    parser.add_argument("--epochs", type=int, default=4, help="DDIM training epochs")
    parser.add_argument("--train-batch-size", type=int, default=64)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64],
                        help="DDIM U-Net widths (default 16 32 64)")
    parser.add_argument("--blocks-per-level", type=int, default=1)
    parser.add_argument("--embedding-dim", type=int, default=128,
                        help="DDIM time/condition embedding size (default 128)")
    parser.add_argument("--learning-rate", type=float, default=2e-4,
                        help="DDIM Adam learning rate (default 2e-4)")
    parser.add_argument("--cosine-decay", action="store_true",
                        help="DDIM learning rate cosine-decayed to 0 over the training")
    parser.add_argument("--ema-decay", type=float, default=0.999,
                        help="DDIM EMA decay (default 0.999)")
    parser.add_argument("--attention", action="store_true", help="U-Net attention (off)")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 25, 50, 100])
    parser.add_argument("--extra-seeds", type=int, nargs="*", default=[],
                        help="more DDIM generation seeds: W1 and total ratio per seed (untimed)")
    parser.add_argument("--save-model", default=None, metavar="PATH",
                        help="save the trained DDIM (.keras) for a later --load-model run")
    parser.add_argument("--load-model", default=None, metavar="PATH",
                        help="time and score this saved DDIM instead of training one (e.g. "
                             "train under load, time on an idle machine)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.save_model and os.path.exists(args.save_model):
        parser.error(f"--save-model exists (not overwritten). Received: {args.save_model}")
    if args.load_model and not os.path.isfile(args.load_model):
        parser.error(f"--load-model not found. Received: {args.load_model}")
    for name in ("n_generate", "batch_size", "n_train", "n_test", "epochs", "train_batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. "
                         f"Received: {getattr(args, name)}")
    for name in ("log_scale", "learning_rate"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0. "
                         f"Received: {getattr(args, name)}")
    if min(args.steps) < 1:
        parser.error(f"--steps must be >= 1. Received: {args.steps}")
    return args


def _timed(fn):
    """(seconds of the second call, result): the first call compiles."""
    fn()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _simulate(args, n, seed):
    from calozdc.data import simulate

    options = {}
    if args.particles != "mix":
        options["particles"] = args.particles
    if args.energy_range is not None:
        options["energy_range"] = tuple(args.energy_range)
    elif args.geometry == "zn44":
        options["energy_range"] = (20.0, 200.0)
    if args.impact_halfwidth_mm is not None:
        options["impact_halfwidth_mm"] = args.impact_halfwidth_mm
    if args.angle_halfwidth_mrad is not None:
        options["angle_halfwidth_mrad"] = args.angle_halfwidth_mrad
    return simulate(args.geometry, n, seed=seed, **options)


def _transforms(args):
    from calozdc.data import transforms

    steps = [transforms.Log1p(scale=args.log_scale), transforms.Standardize()]
    if args.shower_transform == "fraction-log1p":
        steps.insert(0, transforms.DivideByIncidentEnergy())
    return transforms.Chain(steps), transforms.Standardize(axis="feature")


def bench_gan(args, geometry, data):
    from calozdc.models.registry import build_model

    shower_t, cond_t = _transforms(args)
    shower_t.fit(data.showers, conditions=data.conditions)
    cond_t.fit(data.conditions)
    model = build_model("gan", geometry, data.conditions.shape[1], shower_transform=shower_t,
                        condition_transform=cond_t, seed=args.seed)
    cond = data.conditions[: args.n_generate]
    seconds, _ = _timed(lambda: model.generate(cond, seed=1, batch_size=args.batch_size))
    params = model.generator.count_params()
    return [("GAN", f"generator, {params:,} parameters", len(cond), seconds)]


def bench_vq(args, geometry, data):
    from calozdc.models.registry import build_model

    shower_t, cond_t = _transforms(args)
    model = build_model("vqvae", geometry, data.conditions.shape[1], shower_transform=shower_t,
                        condition_transform=cond_t, seed=args.seed)
    model.fit_transforms(data.showers, data.conditions)
    cond = data.conditions[: args.n_generate]
    seconds, (_, codes) = _timed(
        lambda: model.generate(cond, seed=1, batch_size=args.batch_size, return_codes=True))
    decode_s, _ = _timed(lambda: model.vqvae.decode(codes, cond, batch_size=args.batch_size))
    grid = "x".join(str(s) for s in codes.shape[1:])
    return [
        ("VQ generator", f"prior sampling ({grid} codes) + decoding", len(cond), seconds),
        ("VQ generator", "decoding given codes only", len(cond), decode_s),
    ]


def train_ddim(args, geometry, train):
    """(model, info) of a DDIM trained as the arguments say."""
    from calozdc.models.registry import build_model

    shower_t, cond_t = _transforms(args)
    model = build_model("ddim", geometry, train.conditions.shape[1], widths=tuple(args.widths),
                        blocks_per_level=args.blocks_per_level, attention=args.attention,
                        embedding_dim=args.embedding_dim, learning_rate=args.learning_rate,
                        ema_decay=args.ema_decay, shower_transform=shower_t,
                        condition_transform=cond_t, seed=args.seed)
    if args.cosine_decay:
        import keras

        decay_steps = args.epochs * -(-args.n_train // args.train_batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0))
    model.fit_transforms(train.showers, train.conditions)
    x, c = model.preprocess(train.showers, train.conditions)
    start = time.perf_counter()
    history = model.fit(x, c, batch_size=args.train_batch_size, epochs=args.epochs, verbose=0)
    train_s = time.perf_counter() - start
    if args.save_model:
        model.save(args.save_model)
    return model, {"loss": history.history["loss"][-1], "train_s": train_s}


def _scores(geometry, test, generated):
    """(channel W1, generated/real mean total response) against the held-out showers."""
    from calozdc import metrics

    w1, _ = metrics.wasserstein_channels(test.showers, generated, geometry)
    return w1, float(generated.sum() / test.showers.sum())


def bench_ddim(args, geometry, model, test, test_again):
    """Per number of steps: (steps, showers/s, ms/shower, channel W1); and the floor."""
    from calozdc import metrics

    real = test.showers
    # Floor: an independent real sample of the same size (same sizes as the W1 column).
    floor, _ = metrics.wasserstein_channels(real, test_again.showers, geometry)
    rows = []
    warmup = test.conditions[: args.batch_size]  # one batch: the shape every call compiles
    for steps in args.steps:
        model.generate(warmup, steps=steps, seed=args.seed + 1, batch_size=args.batch_size)
        start = time.perf_counter()
        generated = model.generate(test.conditions, steps=steps, seed=args.seed + 1,
                                   batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        scores = [_scores(geometry, test, generated)]
        for seed in args.extra_seeds:
            scores.append(_scores(geometry, test, model.generate(
                test.conditions, steps=steps, seed=seed, batch_size=args.batch_size)))
        rows.append((steps, len(generated) / seconds, 1e3 * seconds / len(generated), scores))
    return rows, {"parameters": model.denoiser.count_params(), "floor": floor}


def main(argv=None):
    args = parse_args(argv)
    import keras

    from calozdc.data import get_geometry

    geometry = get_geometry(args.geometry)
    speed_rows, ddim_rows, ddim_info = [], None, None
    if "gan" in args.families or "vqvae" in args.families:
        data = _simulate(args, max(args.n_generate, 512), args.seed + 10)
        if "gan" in args.families:
            speed_rows += bench_gan(args, geometry, data)
        if "vqvae" in args.families:
            speed_rows += bench_vq(args, geometry, data)
    if "ddim" in args.families:
        if args.load_model:
            import calozdc.models  # noqa: F401 (registers the classes with Keras)

            model = keras.saving.load_model(args.load_model)
            ddim_info = {"loaded": args.load_model}
        else:
            model, ddim_info = train_ddim(args, geometry, _simulate(args, args.n_train, args.seed))
        test = _simulate(args, args.n_test, args.seed + 1)
        test_again = _simulate(args, args.n_test, args.seed + 2)
        ddim_rows, info = bench_ddim(args, geometry, model, test, test_again)
        ddim_info.update(info)

    print("## Generation speed\n")
    print(f"- command: `KERAS_BACKEND={keras.backend.backend()} "
          f"{shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}`")
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; Python {platform.python_version()}, "
          f"keras {keras.__version__}, backend {keras.backend.backend()}")
    particles = "geometry default mix" if args.particles == "mix" else args.particles
    spread = "".join(
        f", {label} +-{value:g} {unit}"
        for label, value, unit in (("impact", args.impact_halfwidth_mm, "mm"),
                                   ("angle", args.angle_halfwidth_mrad, "mrad"))
        if value is not None)
    print(f"- data: {args.geometry}, {particles}, energy range "
          f"{args.energy_range or ('20-200 GeV' if args.geometry == 'zn44' else 'default')}"
          f"{spread}; generation batch {args.batch_size}; each timed call after one untimed "
          f"call\n")
    if speed_rows:
        print("| family | what is timed | showers | showers / s | ms / shower |")
        print("|---|---|---:|---:|---:|")
        for family, what, n, seconds in speed_rows:
            print(f"| {family} | {what} | {n} | {n / seconds:.1f} | {1e3 * seconds / n:.2f} |")
        print()
    if ddim_rows:
        if "loaded" in ddim_info:
            trained = f"DDIM loaded from {ddim_info['loaded']}, {ddim_info['parameters']:,} parameters"
        else:
            trained = (f"DDIM: U-Net widths={tuple(args.widths)}, blocks_per_level="
                       f"{args.blocks_per_level}, attention={args.attention}, "
                       f"{ddim_info['parameters']:,} parameters; shower transform "
                       f"{args.shower_transform} (Log1p scale {args.log_scale:g}); Adam "
                       f"{args.learning_rate:g}{' cosine-decayed' if args.cosine_decay else ''}, "
                       f"batch {args.train_batch_size}, EMA {args.ema_decay:g}; "
                       f"trained {args.epochs} epochs on {args.n_train} showers "
                       f"({ddim_info['train_s']:.0f} s, final loss {ddim_info['loss']:.4f})")
        print(f"{trained}; W1 on {args.n_test} held-out showers (eta=0, EMA weights); "
              f"real-vs-real floor (another {args.n_test} real showers) "
              f"{ddim_info['floor']:.3f}\n")
        seeds = " / ".join(str(s) for s in [args.seed + 1, *args.extra_seeds])
        print(f"| steps | showers / s | ms / shower | channel W1 (seed {seeds}) "
              f"| mean total gen / real (seed {seeds}) |")
        print("|---:|---:|---:|---:|---:|")
        for steps, rate, ms, scores in ddim_rows:
            w1s = " / ".join(f"{w1:.3f}" for w1, _ in scores)
            ratios = " / ".join(f"{ratio:.3f}" for _, ratio in scores)
            print(f"| {steps} | {rate:.1f} | {ms:.2f} | {w1s} | {ratios} |")


if __name__ == "__main__":
    main()
