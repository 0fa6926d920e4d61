"""Where a trained DDIM's energy goes: mean totals per energy bin and the empty cells.

For a saved zn44 DDIM (e.g. from ``benchmarks/generate.py --save-model``) and held-out
simulated showers in the Geant4-reference setup (e-, 10-200 GeV, impact +-5 mm, angle
+-2 mrad), for each number of DDIM steps (eta = 0, EMA weights):

* generated / real mean total response per incident-energy bin, with ``generate``'s default
  (negative cells set to 0) and without (``non_negative=False``): the difference is the
  energy the clipped zero-level noise adds;
* the fraction of empty cells, generated minus real.

    KERAS_BACKEND=tensorflow python benchmarks/ddim_zero_level.py ddim.keras --steps 5 100
"""

import argparse

import numpy as np

ENERGY_BINS = ((10.0, 25.0), (25.0, 60.0), (60.0, 200.0))
SETUP = {"particles": "e-", "energy_range": (10.0, 200.0), "impact_halfwidth_mm": 5.0,
         "angle_halfwidth_mrad": 2.0}


def bin_total_ratios(real, generated, energies):
    """Generated / real mean total response per energy bin."""
    real_totals = real.reshape(len(real), -1).sum(axis=1)
    gen_totals = generated.reshape(len(generated), -1).sum(axis=1)
    return [gen_totals[rows].mean() / real_totals[rows].mean()
            for rows in ((energies >= lo) & (energies < hi) for lo, hi in ENERGY_BINS)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="saved zn44 DDIM (.keras)")
    parser.add_argument("--n-test", type=int, default=512, help="held-out showers (default 512)")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 25, 100])
    parser.add_argument("--seed", type=int, default=1, help="data and generation seed")
    args = parser.parse_args(argv)
    if args.n_test < 2 or min(args.steps) < 1:
        parser.error(f"--n-test must be >= 2 and --steps >= 1. Received: {args.n_test}, "
                     f"{args.steps}")
    import keras

    import calozdc.models  # noqa: F401 (registers the classes with Keras)
    from calozdc.data import simulate

    model = keras.saving.load_model(args.model)
    test = simulate("zn44", args.n_test, seed=args.seed, **SETUP)
    energies = test.conditions[:, 0]
    bins = " / ".join(f"{lo:g}-{hi:g}" for lo, hi in ENERGY_BINS)
    print(f"| steps | gen / real total ({bins} GeV) | same, negatives kept | "
          "empty cells gen - real |")
    print("|---:|---:|---:|---:|")
    for steps in args.steps:
        kept = model.generate(test.conditions, steps=steps, seed=args.seed, batch_size=128,
                              non_negative=False)
        clipped = np.maximum(kept, 0.0)  # what generate() returns by default
        empty = (clipped == 0).mean() - (test.showers == 0).mean()
        fmt = " / ".join
        print(f"| {steps} | {fmt(f'{r:.3f}' for r in bin_total_ratios(test.showers, clipped, energies))} "
              f"| {fmt(f'{r:.3f}' for r in bin_total_ratios(test.showers, kept, energies))} "
              f"| {empty:+.3f} |")


if __name__ == "__main__":
    main()
