"""Hold the built-in zn44 simulator against real Geant4 electron or photon showers, side by side.

Usage:
    python benchmarks/simulator_vs_geant4.py [--particle eminus|gamma]
        [--reference ../shared/data/geant4_zn_eminus_10-200GeV.h5]
        [--out benchmarks/out/simulator_vs_geant4] [--summary calozdc/data/reference/geant4_zn_eminus_summary.json]

``--particle gamma`` reads ``geant4_zn_gamma_10-200GeV.h5`` and writes ``comparison_gamma.{json,png}``.

Simulates the same energies, impact points and angles as the reference (``response="energy"``:
fibre energy in MeV, like the Geant4 file), then compares per energy bin: sampling fraction
and its event-to-event RMS, the same for impacts far from a fibre (> 0.4 mm), mean shower depth
and its spread (from the 50 layers of 4 mm), r50/r90 of the fibre energy about the impact point,
containment within 2/5/10.5/20 mm, fibre occupancy. Writes ``comparison.json`` (calozdc,
Geant4, ratio per quantity and bin) and ``comparison.png``; with ``--summary`` it also writes
the small Geant4-only summary that the test suite checks the simulator against (the
reference file itself is not shipped).

Generalisation: the file is also split into half ``a`` (showers 0, 2, 4, ...) and half ``b``
(1, 3, 5, ...); the photon calibration is fitted on half ``a`` only
(``calibrate_simulator.py --particle gamma --half a``), so half ``b`` is held out. The key
quantities, the linearity and the shape-feature FPD are reported against each half (FPD floor:
half ``a`` vs half ``b``), and the photon summary keeps both halves' summaries.

The per-shower spread of the mean depth is set by the few impacts inside a fibre core per bin,
so its Geant4 value is uncertain by 10-25 % per bin: the benchmark bootstraps it on both sides
(``depth_spread``: standard errors, the ratio's 68 % interval, the chance that a sample of the
reference's size lands within 20 % of the true value) and the summary keeps Geant4's.

If the reference file is absent the script says so and exits with code 1.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

from calozdc.data import atomic_path, get_geometry, load, simulate
from calozdc.data.reference_comparison import (
    RADII_MM,
    binned_summary,
    bootstrap_binned_errors,
    depth_spread_uncertainty,
    shower_quantities,
)

#: ``--particle`` choices: simulator particle name, Geant4 file, output suffix, label.
PARTICLES = {
    "eminus": ("e-", "geant4_zn_eminus_10-200GeV.h5", "", "e-"),
    "gamma": ("gamma", "geant4_zn_gamma_10-200GeV.h5", "_gamma", "photons"),
}
#: Quantities of the per-half generalisation table (the issue-22 targets).
HALF_KEYS = ("r50_mm", "r90_mm", "mean_depth_x0", "mean_depth_rms_x0", "sampling_fraction_rel_rms",
             "sampling_fraction_rel_rms_stratified")


def reference_quantities(path):
    ref = load(path)
    geo = get_geometry("zn44")
    cond = ref.conditions
    names = list(ref.condition_names)
    energy = cond[:, names.index("energy_MeV")] / 1000.0
    impact = np.stack([cond[:, names.index("x_mm")], cond[:, names.index("y_mm")]], axis=1)
    return ref, geo, energy, impact, shower_quantities(ref.showers, energy, impact, ref.layers, geo)


def simulated_quantities(n, geo, seed, particle="e-"):
    """Simulate ``n`` showers in the reference's setup (``particle``, 10-200 GeV log-uniform,
    +-5 mm, +-2 mrad, fibre energy in MeV) and their quantities."""
    start = time.process_time()
    sim = simulate(geo, n, seed=seed, particles=particle, energy_range=(10, 200),
                   impact_halfwidth_mm=5.0, angle_halfwidth_mrad=2.0, response="energy")
    sim.metadata["cpu_s_per_shower"] = (time.process_time() - start) / n
    e_sim = sim.conditions[:, 0]
    impact_sim = sim.conditions[:, 1:3] * 10.0
    return sim, e_sim, impact_sim, shower_quantities(sim.showers, e_sim, impact_sim, sim.layers, geo)


#: Per-bin quantities whose Geant4 sampling error the benchmark bootstraps (summary ``bootstrap_err``).
BOOTSTRAP_KEYS = ("sampling_fraction_rel_rms", "sampling_fraction_rel_rms_stratified", "mean_depth_rms_x0",
                  "mean_depth_x0", "r50_mm", "r90_mm")


SHAPE_FEATURES = ("centroid_depth", "width_x", "width_y", "width_depth",
                  "sparsity", "max_cell_fraction")


def _shape_features(ds):
    from calozdc.metrics import high_level_features

    names, cols = high_level_features(ds, geometry=get_geometry("zn44"), include_channels=False)
    names = list(names)
    return np.stack([cols[:, names.index(f)] for f in SHAPE_FEATURES], axis=1)


def shape_distances_by_half(ref, sim, half_a, half_b):
    """FPD/KPD of shape features, calozdc vs each fixed half of the reference, and the floor
    (half ``a`` vs half ``b``); calozdc's sample is cut to the halves' size."""
    from calozdc.metrics import fpd, kpd

    f_ref, f_sim = _shape_features(ref), _shape_features(sim)
    a, b = f_ref[half_a], f_ref[half_b]
    m = min(len(a), len(b))
    a, b, f_sim = a[:m], b[:m], f_sim[:m]
    out = {"n_per_sample": int(m)}
    for name, (x, y) in {"calozdc_vs_half_a": (a, f_sim), "calozdc_vs_half_b": (b, f_sim),
                         "geant4_floor_a_vs_b": (a, b)}.items():
        fv, fe = fpd(x, y, min_samples=m // 2, max_samples=m)
        kv, ke = kpd(x, y, batch_size=m // 2)
        out[name] = {"fpd": float(fv), "fpd_error": float(fe), "kpd": float(kv), "kpd_error": float(ke)}
    return out


def shape_distances(ref, sim, seed):
    """FPD/KPD of shape features, calozdc vs Geant4, beside the Geant4-vs-Geant4 floor.

    The floor compares the two halves of the reference; calozdc is compared with one half at
    the same sample size, so both numbers have the same finite-sample bias.
    """
    from calozdc.metrics import fpd, kpd

    f_ref, f_sim = _shape_features(ref), _shape_features(sim)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(f_ref))
    half_a, half_b = f_ref[idx[: len(idx) // 2]], f_ref[idx[len(idx) // 2:]]
    m = len(half_b)
    f_sim = f_sim[:m]
    kw_f = {"min_samples": m // 2, "max_samples": m}
    kw_k = {"batch_size": m // 2}
    out = {}
    for name, (x, y) in {"calozdc_vs_geant4": (half_a, f_sim), "geant4_floor": (half_a, half_b)}.items():
        fv, fe = fpd(x, y, **kw_f)
        kv, ke = kpd(x, y, **kw_k)
        out[name] = {"fpd": float(fv), "fpd_error": float(fe), "kpd": float(kv), "kpd_error": float(ke)}
    out["features"] = list(SHAPE_FEATURES)
    out["n_per_sample"] = int(m)
    # which features dominate: the 1-D Frechet distance of each (normalised like fpd: by the
    # largest |value| of the real feature), (mu1 - mu2)^2 + (sigma1 - sigma2)^2
    scale = np.abs(half_a).max(axis=0)
    out["per_feature"] = {}
    for j, feature in enumerate(SHAPE_FEATURES):
        row = {}
        for name, y in (("calozdc_vs_geant4", f_sim), ("geant4_floor", half_b)):
            a, b = half_a[:, j] / scale[j], y[:, j] / scale[j]
            row[name] = float((a.mean() - b.mean()) ** 2 + (a.std() - b.std()) ** 2)
        out["per_feature"][feature] = row
    return out


def _example_index(energy, impact, target_gev, geometry):
    """Index of the shower closest in energy to ``target_gev`` among impacts far from a fibre."""
    pitch = geometry.cell_size_mm
    off = impact / pitch - 0.5
    d = np.hypot(*(np.abs(off - np.round(off)) * pitch).T)
    cost = np.abs(np.log(energy / target_gev)) + 10.0 * (d < 0.4)
    return int(np.argmin(cost))


def plot(path, ref_sum, sim_sum, examples, particle_label="e-"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(15, 13.5))
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
    for ax, (label, image) in zip(axes[2], examples):
        im = ax.imshow(np.maximum(image, 1e-3), origin="lower", norm=matplotlib.colors.LogNorm(1e-2, 1e3))
        ax.set_title(label)
        fig.colorbar(im, ax=ax, label="fibre energy [MeV]")
    axes[2, 2].axis("off")
    ax = axes.flat[5]
    r = list(RADII_MM)
    ax.plot(r, [np.mean([b[f"containment_{x:g}mm"] for b in ref_sum["bins"]]) for x in r], "ko-",
            label="Geant4")
    ax.plot(r, [np.mean([b[f"containment_{x:g}mm"] for b in sim_sum["bins"]]) for x in r], "rs--",
            label="calozdc")
    ax.set_xlabel("radius about impact [mm]")
    ax.set_ylabel("containment")
    ax.legend()
    fig.suptitle(f"zn44 built-in simulator vs Geant4 ({particle_label}, 10-200 GeV, +-5 mm, +-2 mrad)")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def _cost(reference, calozdc_cpu_s):
    """Per-shower CPU time: Geant4's recorded ``event_time_s`` (one core) vs calozdc's
    ``simulate`` (process time of one process for the same number of showers)."""
    import h5py

    with h5py.File(reference, "r") as f:
        g4 = float(np.mean(f["event_time_s"][...]))
    return {"calozdc": calozdc_cpu_s, "geant4": g4, "speedup": g4 / calozdc_cpu_s}


def depth_spread_comparison(q_ref, e_ref, q_sim, e_sim, seed):
    """The spread of the mean depth per bin on both sides with bootstrap errors; the ratio's
    68 % interval from both sides' relative errors added in quadrature."""
    g4 = depth_spread_uncertainty(q_ref, e_ref, seed=seed)
    sim = depth_spread_uncertainty(q_sim, e_sim, seed=seed + 1)
    ratios = []
    for g, c in zip(g4, sim):
        ratio = c["rms_x0"] / g["rms_x0"]
        rel = np.hypot(g["bootstrap_err_x0"] / g["rms_x0"], c["bootstrap_err_x0"] / c["rms_x0"])
        ratios.append({"ratio": ratio, "rel_err": float(rel), "p16": ratio * (1 - rel), "p84": ratio * (1 + rel),
                       "pull": float((ratio - 1) / (ratio * rel)),
                       "ratio_far": c["far_rms_x0"] / g["far_rms_x0"]})
    return {"geant4": g4, "calozdc": sim, "ratio": ratios,
            "p_all_bins_within_20pct": float(np.prod([g["p_within_20pct"] for g in g4]))}


def _comparison_rows(ref_sum, sim_sum):
    rows = []
    for rb, sb in zip(ref_sum["bins"], sim_sum["bins"]):
        row = {"energy_bin_GeV": rb["energy_bin_GeV"]}
        for key, value in rb.items():
            if key in ("energy_bin_GeV", "n"):
                continue
            row[key] = {"calozdc": sb[key], "geant4": value, "ratio": sb[key] / value}
        rows.append(row)
    return rows


def _linearity(ref_sum, sim_sum):
    """Stratified mean signal / E per bin over its bin average, calozdc / Geant4."""
    sims = np.array([b["sampling_fraction_stratified"] for b in sim_sum["bins"]])
    g4s = np.array([b["sampling_fraction_stratified"] for b in ref_sum["bins"]])
    return [float(v) for v in (sims / sims.mean()) / (g4s / g4s.mean())]


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particle", choices=sorted(PARTICLES), default="eminus")
    parser.add_argument("--reference", default=None, help="default: ../shared/data/<the particle's file>")
    parser.add_argument("--out", default=os.path.join(here, "out", "simulator_vs_geant4"))
    parser.add_argument("--summary", default=None,
                        help="also write the Geant4-only summary used by the tests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n-sim", type=int, default=None,
                        help="simulated showers (default: as many as the reference; the FPD uses that many)")
    args = parser.parse_args(argv)
    particle, ref_file, suffix, label = PARTICLES[args.particle]
    reference = args.reference or os.path.join(here, "..", "..", "shared", "data", ref_file)
    if not os.path.exists(reference):
        print(f"Geant4 reference file not found: {reference} (it lives in ../shared/data; "
              "this benchmark needs it)", file=sys.stderr)
        return 1
    ref, geo, energy, impact, q_ref = reference_quantities(reference)
    sim, e_sim, impact_sim, q_sim = simulated_quantities(args.n_sim or len(energy), geo, args.seed, particle)
    ref_sum, sim_sum = binned_summary(q_ref, energy), binned_summary(q_sim, e_sim)
    command = "python benchmarks/simulator_vs_geant4.py"
    if args.particle != "eminus":
        command += f" --particle {args.particle}"
    if args.n_sim:
        command += f" --n-sim {args.n_sim}"
    comparison = {"command": command, "particle": particle, "n_simulated": len(e_sim),
                  "date": str(datetime.date.today()), "machine": platform.platform(),
                  "n_reference": len(energy), "bins": _comparison_rows(ref_sum, sim_sum)}
    for key in ("sampling_fraction_on_fibre", "sampling_fraction_far"):
        comparison[key] = {"calozdc": sim_sum[key], "geant4": ref_sum[key],
                           "ratio": sim_sum[key] / ref_sum[key]}
    comparison["linearity_stratified"] = _linearity(ref_sum, sim_sum)
    comparison["shape_fpd_kpd"] = shape_distances(ref, sim, args.seed)
    # generalisation: the same comparison against each fixed half of the reference
    index = np.arange(len(energy))
    halves = {"a": index % 2 == 0, "b": index % 2 == 1}
    half_sums = {h: binned_summary({k: v[m] for k, v in q_ref.items()}, energy[m]) for h, m in halves.items()}
    comparison["halves"] = {
        "split": "a: showers 0, 2, 4, ... of the reference file; b: showers 1, 3, 5, ...",
        **{h: {"n_reference": int(halves[h].sum()), "bins": _comparison_rows(half_sums[h], sim_sum),
               "linearity_stratified": _linearity(half_sums[h], sim_sum)} for h in halves},
        "shape_fpd_kpd": shape_distances_by_half(ref, sim, halves["a"], halves["b"]),
    }
    comparison["depth_spread"] = depth_spread_comparison(q_ref, energy, q_sim, e_sim, args.seed)
    # how far one Geant4 sample of this size moves the fluctuation quantities per bin
    comparison["geant4_bootstrap_err"] = bootstrap_binned_errors(q_ref, energy, BOOTSTRAP_KEYS, seed=args.seed)
    comparison["cpu_s_per_shower"] = _cost(reference, sim.metadata["cpu_s_per_shower"])
    os.makedirs(args.out, exist_ok=True)
    with atomic_path(os.path.join(args.out, f"comparison{suffix}.json"), overwrite=True) as tmp:
        with open(tmp, "w") as f:
            json.dump(comparison, f, indent=1)
    examples = []  # one shower each at ~50 GeV, impact far from a fibre
    for name, ds, e, imp in (("Geant4", ref, energy, impact), ("calozdc", sim, e_sim, impact_sim)):
        i = _example_index(e, imp, 50.0, geo)
        examples.append((f"{name}, {e[i]:.0f} GeV", ds.showers[i, ..., 0]))
    plot(os.path.join(args.out, f"comparison{suffix}.png"), ref_sum, sim_sum, examples, label)
    if args.summary:
        option = "" if args.particle == "eminus" else f" --particle {args.particle}"
        ref_sum["source"] = (f"derived by benchmarks/simulator_vs_geant4.py{option} from {ref_file} "
                             f"({len(energy):,} Geant4 11.4.1 {particle.replace('gamma', 'photon')} showers)")
        if args.particle != "eminus":
            ref_sum["particle"] = particle
            ref_sum["halves"] = {"split": comparison["halves"]["split"], **half_sums}
        ref_sum["mean_depth_rms_bootstrap"] = comparison["depth_spread"]["geant4"]
        ref_sum["bootstrap_err"] = comparison["geant4_bootstrap_err"]
        with atomic_path(args.summary, overwrite=True) as tmp:
            with open(tmp, "w") as f:
                json.dump(ref_sum, f, indent=1)
    print("| quantity | E bin [GeV] | calozdc | Geant4 | ratio |")
    print("|---|---|---|---|---|")
    for row in comparison["bins"]:
        lo, hi = row["energy_bin_GeV"]
        for key in ("sampling_fraction", "sampling_fraction_stratified", "sampling_fraction_rel_rms",
                    "sampling_fraction_rel_rms_stratified", "sampling_fraction_far_rel_rms",
                    "mean_depth_x0", "mean_depth_rms_x0", "depth_width_x0", "r50_mm", "r90_mm",
                    "occupancy", "max_cell_fraction"):
            c = row[key]
            print(f"| {key} | {lo:g}-{hi:g} | {c['calozdc']:.4g} | {c['geant4']:.4g} | {c['ratio']:.3f} |")
    lin = comparison["linearity_stratified"]
    print("| linearity (stratified signal/E, normalised to the bin average; calozdc/Geant4) | "
          + ", ".join(f"{v:.3f}" for v in lin) + " | | | |")
    for key in ("sampling_fraction_on_fibre", "sampling_fraction_far"):
        c = comparison[key]
        print(f"| {key} | all | {c['calozdc']:.4g} | {c['geant4']:.4g} | {c['ratio']:.3f} |")
    c = comparison["cpu_s_per_shower"]
    print(f"| CPU s per shower | all | {c['calozdc']:.3g} | {c['geant4']:.3g} | speed-up {c['speedup']:.0f}x |")
    d = comparison["shape_fpd_kpd"]
    print()
    print(f"Shape features ({', '.join(d['features'])}), {d['n_per_sample']} showers per sample:")
    print()
    print("| comparison | FPD | KPD |")
    print("|---|---|---|")
    for name in ("calozdc_vs_geant4", "geant4_floor"):
        r = d[name]
        print(f"| {name} | {r['fpd']:.4g} ± {r['fpd_error']:.2g} | {r['kpd']:.4g} ± {r['kpd_error']:.2g} |")
    print()
    print("Per feature, 1-D Fréchet distance (normalised as the FPD):")
    print()
    print("| feature | calozdc vs Geant4 | Geant4 floor |")
    print("|---|---|---|")
    for feature, r in d["per_feature"].items():
        print(f"| {feature} | {r['calozdc_vs_geant4']:.2g} | {r['geant4_floor']:.2g} |")
    print()
    print("Generalisation: calozdc / Geant4 per fixed half of the reference (a: even showers, b: odd):")
    print()
    print("| quantity | half | " + " | ".join(f"{lo:g}-{hi:g}" for lo, hi in
                                            (r["energy_bin_GeV"] for r in comparison["bins"])) + " |")
    print("|---|---|" + "---|" * len(comparison["bins"]))
    for key in HALF_KEYS:
        for h in halves:
            print(f"| {key} | {h} | " + " | ".join(f"{r[key]['ratio']:.3f}" for r in comparison["halves"][h]["bins"])
                  + " |")
    for h in halves:
        print(f"| linearity | {h} | " + " | ".join(f"{v:.3f}" for v in comparison["halves"][h]["linearity_stratified"])
              + " |")
    d = comparison["depth_spread"]
    print()
    print("Spread of the mean depth with its bootstrap uncertainty (2,000 resamples per bin):")
    print()
    print("| E bin [GeV] | Geant4 [X0] | ± boot. | n core | Geant4 far | calozdc [X0] | ± boot. | calozdc far "
          "| ratio (68 % interval) | ratio far | P(within 20 %) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for g, c, r in zip(d["geant4"], d["calozdc"], d["ratio"]):
        lo, hi = g["energy_bin_GeV"]
        print(f"| {lo:g}-{hi:g} | {g['rms_x0']:.2f} | {g['bootstrap_err_x0']:.2f} | {g['n_core']} "
              f"| {g['far_rms_x0']:.2f} | {c['rms_x0']:.2f} | {c['bootstrap_err_x0']:.2f} | {c['far_rms_x0']:.2f} "
              f"| {r['ratio']:.3f} ({r['p16']:.2f}-{r['p84']:.2f}) | {r['ratio_far']:.3f} "
              f"| {g['p_within_20pct']:.2f} |")
    print(f"\nChance that a Geant4 sample of this size lands within 20 % of its true spread in all "
          f"bins at once: {d['p_all_bins_within_20pct']:.2f}")
    print()
    print("Geant4 bootstrap standard error / value per bin (300 resamples):")
    print()
    for key, errs in comparison["geant4_bootstrap_err"].items():
        rel = [e / b[key] for e, b in zip(errs, ref_sum["bins"])]
        print(f"| {key} | " + " | ".join(f"{v:.3f}" for v in rel) + " |")
    d = comparison["halves"]["shape_fpd_kpd"]
    print()
    print(f"| comparison ({d['n_per_sample']} showers per sample) | FPD | KPD |")
    print("|---|---|---|")
    for name in ("calozdc_vs_half_a", "calozdc_vs_half_b", "geant4_floor_a_vs_b"):
        r = d[name]
        print(f"| {name} | {r['fpd']:.4g} ± {r['fpd_error']:.2g} | {r['kpd']:.4g} ± {r['kpd_error']:.2g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
