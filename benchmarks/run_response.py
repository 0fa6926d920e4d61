"""Mean total response per incident-energy quartile of a ``calozdc train`` run, generated vs real.

Reads the run's own test split (as ``calozdc evaluate RUN`` does), generates one shower per
test condition (seed 1) and prints, per quartile of the incident energy, the ratio of the
mean generated total to the mean real total with its statistical error::

    python benchmarks/run_response.py runs/lf
"""

import sys

import numpy as np


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python benchmarks/run_response.py RUN_DIR")
    from calozdc.cli.run_dir import load_run_model, run_data_split

    model, _ = load_run_model(argv[0])
    test = run_data_split(argv[0], "test")[0]
    generated = model.generate(test.conditions, seed=1)
    energy = np.asarray(test.conditions)[:, 0]
    real_t = np.asarray(test.showers).reshape(len(test), -1).sum(axis=1)
    gen_t = generated.reshape(len(generated), -1).sum(axis=1)
    edges = np.quantile(energy, [0.0, 0.25, 0.5, 0.75, 1.0])
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = (energy >= lo) & (energy <= hi)
        ratio = gen_t[rows].mean() / real_t[rows].mean()
        rel = np.hypot(gen_t[rows].std() / gen_t[rows].mean(), real_t[rows].std() / real_t[rows].mean())
        print(f"E {lo:8.1f} - {hi:8.1f}: n={rows.sum():5d}  mean total gen/real {ratio:.3f} "
              f"+- {ratio * rel / np.sqrt(rows.sum()):.3f}")


if __name__ == "__main__":
    main()
