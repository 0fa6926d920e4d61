"""Flow matching (pixel and latent) against the DDIM: same showers, same training budget.

Trains three models on the same training showers for the same number of epochs (same batch
size): the pixel-space flow and the DDIM with the same U-Net widths (each family with its
recipe: ``calozdc.models.registry.default_transforms``), and the latent flow (its
autoencoder and a latent U-Net of the same widths; its epochs are split between the two
phases). Then, for 1, 2, 4, 10 and 25 steps and every solver (flow: Euler, midpoint, Heun;
DDIM: deterministic DDIM), generates the test showers' conditions and reports the channel
W1 (arXiv:2407.16704 eq. 4.2), FPD, the mean total per energy bin and ms per shower
(batch 256, after a warm-up call), beside the floor: the same metrics between the test
showers and a real sample of the same size drawn from the training showers.

Data: the Geant4 electron file (80/20 split) when it is present, else simulated zn44
electrons in the Geant4-reference setup (say which in the output)::

    python benchmarks/flow_vs_ddim.py --epochs 15 --out flow_vs_ddim.json
    python benchmarks/flow_vs_ddim.py --quick          # the chain end to end in minutes
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

STEPS = (1, 2, 4, 10, 25)
SOLVERS = {"flow": ("euler", "midpoint", "heun"), "latent-flow": ("euler", "midpoint", "heun"),
           "ddim": ("ddim",)}
DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "data", "geant4_zn_eminus_10-200GeV.h5")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_FILE, help="shower file (default: Geant4 e-)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 64])
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--families", nargs="+", default=["flow", "latent-flow", "ddim"],
                   choices=sorted(SOLVERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 epoch")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or min(args.steps) < 1:
        raise ValueError(f"--epochs, --batch-size and --steps must be >= 1. Received: "
                         f"epochs={args.epochs}, batch_size={args.batch_size}, steps={args.steps}")
    return args


def load_data(args):
    from calozdc.data import load, simulate

    if os.path.exists(args.data):
        ds = load(args.data)
        source = os.path.basename(args.data)
        energy_gev = 1e-3  # Geant4 files: MeV
    else:
        print(f"flow_vs_ddim: {args.data} not found; simulated zn44 e- instead", flush=True)
        ds = simulate("zn44", 4000, seed=args.seed, particles="e-", energy_range=(10.0, 200.0),
                      impact_halfwidth_mm=5.0, angle_halfwidth_mrad=2.0)
        source, energy_gev = "simulated zn44 e-", 1.0
    train, test = ds.split((0.8, 0.2), seed=args.seed)
    if args.quick:
        train, test = train[np.arange(min(200, len(train)))], \
            test[np.arange(min(64, len(test)))]
    return train, test, source, energy_gev


def build(family, train, args):
    from calozdc.models.registry import build_model, default_transforms

    shower_t, cond_t = default_transforms(family)
    options = {"widths": tuple(args.widths[:2]) if family == "latent-flow" else tuple(args.widths)}
    if family == "ddim":
        options.update(blocks_per_level=1, attention=False)
    model = build_model(family, train.geometry, train.conditions.shape[1],
                        shower_transform=shower_t, condition_transform=cond_t, seed=args.seed,
                        **options)
    model.fit_transforms(train.showers, train.conditions)
    return model


def fit(family, model, train, args):
    import keras

    keras.utils.set_random_seed(args.seed)
    x, c = model.preprocess(train.showers, train.conditions)
    start = time.perf_counter()
    if family == "latent-flow":  # the same epochs in all, split between its two phases
        ae = max(1, args.epochs // 3)
        model.fit(x, c, batch_size=args.batch_size, epochs=max(1, args.epochs - ae),
                  autoencoder_epochs=ae, verbose=0)
    else:
        model.fit(x, c, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    return time.perf_counter() - start


def generate(family, model, conditions, steps, solver, seed, batch=256):
    if family == "ddim":
        return model.generate(conditions, steps=steps, seed=seed, batch_size=batch)
    return model.generate(conditions, steps=steps, solver=solver, seed=seed, batch_size=batch)


def ms_per_shower(family, model, conditions, steps, solver, batch=256):
    c = np.resize(conditions, (batch,) + conditions.shape[1:])
    generate(family, model, c, steps, solver, 0, batch)  # compile
    start = time.perf_counter()
    generate(family, model, c, steps, solver, 1, batch)
    return 1e3 * (time.perf_counter() - start) / batch


def score(test, reference, generated, energy_gev):
    from leaderboard import energy_bin_summary

    from calozdc.metrics import Sample, evaluate

    real = Sample(test.showers, test.conditions, None, test.geometry)
    ref = Sample(reference.showers, reference.conditions, None, reference.geometry)
    result = evaluate(real, Sample(generated, test.conditions, None, test.geometry),
                      real_reference=ref, seed=0, paired=False)["metrics"]
    energies = test.conditions[:, 0] * energy_gev
    bins = energy_bin_summary(test.showers, energies, generated)
    return {
        "w1": result["w1_channels_mean"]["value"], "w1_floor": result["w1_channels_mean"]["floor"],
        "w1_ratio": result["w1_channels_mean"]["ratio"], "fpd": result["fpd"]["value"],
        "fpd_ratio": result["fpd"]["ratio"],
        "mean_total_ratio": [b.get("mean_total_ratio") for b in bins],
        "rel_rms_ratio": [b.get("rel_rms_total_ratio") for b in bins],
    }


def main(argv=None):
    args = parse_args(argv)
    import keras

    train, test, source, energy_gev = load_data(args)
    rng = np.random.default_rng(args.seed)
    reference = train[np.sort(rng.choice(len(train), len(test), replace=False))]
    rows = []
    for family in args.families:
        model = build(family, train, args)
        seconds = fit(family, model, train, args)
        print(f"{family}: trained {args.epochs} epochs in {seconds:.0f} s", flush=True)
        for steps in args.steps:
            for solver in SOLVERS[family]:
                generated = generate(family, model, test.conditions, steps, solver, args.seed + 1)
                row = {"family": family, "steps": steps, "solver": solver, "train_s": seconds,
                       **score(test, reference, generated, energy_gev),
                       "ms_per_shower": ms_per_shower(family, model, test.conditions, steps,
                                                      solver)}
                rows.append(row)
                print(f"{family:11s} {solver:8s} steps {steps:3d}: W1/floor {row['w1_ratio']:.2f} "
                      f"FPD/floor {row['fpd_ratio']:.1f} totals "
                      f"{np.round(row['mean_total_ratio'], 3).tolist()} "
                      f"{row['ms_per_shower']:.2f} ms/shower", flush=True)
    out = {"command": " ".join(["python", "benchmarks/flow_vs_ddim.py"] + (argv or sys.argv[1:])),
           "date": datetime.date.today().isoformat(), "machine": platform.platform(),
           "cpus": os.cpu_count(), "backend": keras.backend.backend(), "data": source,
           "n_train": len(train), "n_test": len(test), "rows": rows}
    if args.out:
        from calozdc.data import atomic_path

        with atomic_path(args.out, overwrite=True) as tmp, open(tmp, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return out


if __name__ == "__main__":
    main()
