"""VQ-GAN against the plain VQ generator of the same size: same showers, same training budget.

Builds the VQ generator (``build_vq_generator``) and the VQ-GAN generator (``build_vqgan``)
with the same encoder, decoder, codebook and prior (the VQ-GAN adds a patch discriminator,
used in training only) and the same transforms; trains both on the same training showers
for the same epochs and batch size (VQ-VAE / VQ-GAN phase, then the prior phase with the
same epochs, or ``--prior-epochs``); the VQ-GAN's adversarial term starts after ``--warmup`` of its steps. Both
generate the test showers' conditions (seed fixed; the prior samples with its key/value
cache) and are scored by the mean channel W1 (arXiv:2407.16704 eq. 4.2) and FPD beside the
floor: the same metrics between the test showers and as many real showers drawn from the
training split. The total-energy model of the factorisation is off in both by default (the
comparison is of the shower networks); ``--total-energy`` turns it on in both (the families'
default: totals drawn from it, images scaled to them). Reconstruction W1 of the autoencoders
is reported too.

Data: the Geant4 electron file when present, else simulated zn44 electrons; ``--data zn44``:
the built-in zn44 showers with ``calozdc simulate zn44``'s default particle mix (as many as
``--n-train`` + 2 ``--n-test`` need)::

    python benchmarks/vqgan_vs_vq.py --n-train 2000 --epochs 4 --out vqgan_vs_vq.json
    python benchmarks/vqgan_vs_vq.py --data zn44 --n-train 6000 --n-test 1000 --epochs 6
    python benchmarks/vqgan_vs_vq.py --quick          # the chain end to end in a minute
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "data", "geant4_zn_eminus_10-200GeV.h5")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_FILE,
                   help="shower file (default: Geant4 e-), or 'zn44' for built-in showers")
    p.add_argument("--n-train", type=int, default=2000, help="training showers (at most)")
    p.add_argument("--n-test", type=int, default=500, help="test showers (at most)")
    p.add_argument("--epochs", type=int, default=4, help="epochs of the autoencoder phase")
    p.add_argument("--prior-epochs", type=int, default=None,
                   help="epochs of the prior phase (default: --epochs)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=None,
                   help="VQ-GAN warm-up steps (default: a quarter of its steps)")
    p.add_argument("--adversarial-weight", type=float, default=0.5)
    p.add_argument("--adversarial-loss", default="hinge", choices=["hinge", "non_saturating"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-energy", action="store_true",
                   help="both with their total model (the families' default; fitted by "
                        "fit_totals on the training split, outside the timed fit)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 epoch")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if min(args.n_train, args.n_test, args.epochs, args.batch_size) < 1:
        raise ValueError(f"--n-train, --n-test, --epochs and --batch-size must be >= 1. "
                         f"Received: {args.n_train}, {args.n_test}, {args.epochs}, "
                         f"{args.batch_size}")
    if args.prior_epochs is not None and args.prior_epochs < 1:
        raise ValueError(f"--prior-epochs must be >= 1. Received: {args.prior_epochs}")
    return args


def load_data(args):
    from calozdc.data import load, simulate

    if args.data == "zn44":
        n = (200 + 2 * 64) if args.quick else args.n_train + 2 * args.n_test
        ds = simulate("zn44", int(n / 0.8) + 1, seed=args.seed)
        source = "built-in zn44 (default particle mix)"
    elif os.path.exists(args.data):
        ds, source = load(args.data), os.path.basename(args.data)
    else:
        print(f"vqgan_vs_vq: {args.data} not found; simulated zn44 e- instead", flush=True)
        ds = simulate("zn44", args.n_train + 2 * args.n_test, seed=args.seed, particles="e-",
                      energy_range=(10.0, 200.0))
        source = "simulated zn44 e-"
    train, test = ds.split((0.8, 0.2), seed=args.seed)
    n_train, n_test = (200, 64) if args.quick else (args.n_train, args.n_test)
    rng = np.random.default_rng(args.seed)
    train = train[np.sort(rng.choice(len(train), min(n_train, len(train)), replace=False))]
    test = test[np.arange(min(n_test, len(test)))]
    return ds, train, test, source


def build(family, train, args, steps):
    from calozdc.models.registry import build_model, default_transforms

    shower_t, cond_t = default_transforms(family)
    shower_t.fit(train.showers, train.conditions)
    cond_t.fit(train.conditions)
    options = {"total_energy": bool(args.total_energy)}
    if family == "vqgan":
        options.update(warmup_steps=steps // 4 if args.warmup is None else args.warmup,
                       adversarial_weight=args.adversarial_weight,
                       adversarial_loss=args.adversarial_loss)
    return build_model(family, train.geometry, train.conditions.shape[1],
                       shower_transform=shower_t, condition_transform=cond_t, seed=args.seed,
                       **options)


def w1_and_fpd(test, reference, generated):
    from calozdc.metrics import Sample, evaluate

    real = Sample(test.showers, test.conditions, None, test.geometry)
    ref = Sample(reference.showers, reference.conditions, None, reference.geometry)
    result = evaluate(real, Sample(generated, test.conditions, None, test.geometry),
                      real_reference=ref, seed=0, paired=False)["metrics"]
    w1, fpd = result["w1_channels_mean"], result["fpd"]
    return {"w1": w1["value"], "w1_floor": w1["floor"], "w1_ratio": w1["ratio"],
            "fpd": fpd["value"], "fpd_floor": fpd["floor"], "fpd_ratio": fpd["ratio"]}


def main(argv=None):
    args = parse_args(argv)
    import keras

    _, train, test, source = load_data(args)
    epochs = 1 if args.quick else args.epochs
    prior_epochs = epochs if args.quick or args.prior_epochs is None else args.prior_epochs
    rng = np.random.default_rng(args.seed + 1)
    reference = train[np.sort(rng.choice(len(train), min(len(test), len(train)),
                                         replace=False))]
    steps = epochs * -(-len(train) // args.batch_size)
    rows = []
    for family in ("vqvae", "vqgan"):
        keras.utils.set_random_seed(args.seed)
        model = build(family, train, args, steps)
        x, c = model.vqvae.preprocess(train.showers, train.conditions)
        start = time.perf_counter()
        history = model.fit(x, c, batch_size=args.batch_size, epochs=epochs, verbose=0,
                            prior_epochs=prior_epochs)
        seconds = time.perf_counter() - start
        if args.total_energy:
            model.fit_totals(train.showers, train.conditions)
        generated = model.generate(test.conditions, seed=args.seed + 2)
        rec = model.vqvae.reconstruct(test.showers, test.conditions)
        row = {"family": family, "train_s": seconds, "epochs": epochs, "steps": steps,
               "prior_epochs": prior_epochs,
               "autoencoder_params": model.vqvae.encoder.count_params()
               + model.vqvae.decoder.count_params(),
               "prior_params": model.prior.count_params(),
               "discriminator_params": model.vqvae.discriminator.count_params()
               if family == "vqgan" else 0,
               "final_reconstruction_loss": float(history.history["reconstruction_loss"][-1]),
               "final_prior_loss": float(history.history["prior_loss"][-1]),
               **w1_and_fpd(test, reference, generated),
               "reconstruction": w1_and_fpd(test, reference, rec)}
        if family == "vqgan":
            row["warmup_steps"] = model.vqvae.warmup_steps
            row["final_d_loss"] = float(history.history["d_loss"][-1])
            row["final_adaptive_weight"] = float(history.history["adaptive_weight"][-1])
        rows.append(row)
        print(f"{family}: {seconds:.0f} s; generated W1 {row['w1']:.3f} (floor "
              f"{row['w1_floor']:.3f}, ratio {row['w1_ratio']:.2f}), FPD ratio "
              f"{row['fpd_ratio']:.1f}; reconstruction W1 {row['reconstruction']['w1']:.3f}",
              flush=True)
    out = {"command": " ".join(["python", "benchmarks/vqgan_vs_vq.py"]
                               + (argv if argv is not None else sys.argv[1:])),
           "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, load average "
                      f"{os.getloadavg()[0]:.1f}",
           "backend": keras.backend.backend(), "data": source, "n_train": len(train),
           "n_test": len(test), "batch_size": args.batch_size,
           "total_energy": bool(args.total_energy), "rows": rows}
    if args.out:
        from calozdc.data import atomic_path

        with atomic_path(args.out, overwrite=True) as tmp, open(tmp, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return out


if __name__ == "__main__":
    main()
