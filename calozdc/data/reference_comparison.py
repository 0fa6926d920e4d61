"""Shower quantities compared between the built-in zn44 simulator and Geant4.

``benchmarks/simulator_vs_geant4.py`` computes them on the Geant4 reference files
(``geant4_zn_eminus_10-200GeV.h5`` and ``geant4_zn_gamma_10-200GeV.h5``, not shipped) and writes
the Geant4 side as ``calozdc/data/reference/geant4_zn_{eminus,gamma}_summary.json``, which the
tests hold the simulator against; :func:`load_geant4_summary` reads them.
"""

import json
import os

import numpy as np

ENERGY_BINS_GEV = (10.0, 20.0, 40.0, 80.0, 120.0, 200.0)
RADII_MM = (2.0, 5.0, 10.5, 20.0)
#: Strata of the impact point's distance to the nearest fibre axis (mm) for the
#: post-stratified mean signal (see :func:`binned_summary`).
FIBRE_DISTANCE_EDGES_MM = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.2)


def fibre_distance_weights(pitch_mm=1.6, edges=FIBRE_DISTANCE_EDGES_MM, grid=400):
    """Fraction of impact points uniform over one fibre cell in each distance stratum."""
    u = (np.arange(grid) + 0.5) / grid - 0.5
    d = np.hypot(u[:, None], u[None, :]).ravel() * pitch_mm
    return np.histogram(d, np.asarray(edges))[0] / d.size


def shower_quantities(showers, energy_gev, impact_xy_mm, layers, geometry):
    """Per-shower quantities compared between calozdc and Geant4 (numpy arrays of length N)."""
    s = showers.reshape(len(showers), *geometry.shape).astype(np.float64)
    total = s.sum(axis=(1, 2))
    x, y = geometry.cell_centres_mm()
    r = np.hypot(x[None, None, :] - impact_xy_mm[:, 0, None, None],
                 y[None, :, None] - impact_xy_mm[:, 1, None, None])
    order = np.argsort(r.reshape(len(s), -1), axis=1)
    r_sorted = np.take_along_axis(r.reshape(len(s), -1), order, axis=1)
    cum = np.cumsum(np.take_along_axis(s.reshape(len(s), -1), order, axis=1), axis=1)
    cum /= np.maximum(total[:, None], 1e-12)
    out = {
        "sampling_fraction": total / (energy_gev * 1000.0),
        "occupancy": (s > 0).mean(axis=(1, 2)),
        "r50_mm": r_sorted[np.arange(len(s)), np.argmax(cum >= 0.5, axis=1)],
        "r90_mm": r_sorted[np.arange(len(s)), np.argmax(cum >= 0.9, axis=1)],
    }
    for radius in RADII_MM:
        out[f"containment_{radius:g}mm"] = (s * (r < radius)).sum(axis=(1, 2)) / np.maximum(total, 1e-12)
    t = (np.arange(layers.shape[1]) + 0.5) * geometry.layer_thickness_mm / geometry.material.X0_mm
    lay = layers.astype(np.float64)
    mean_depth = (lay * t).sum(1) / np.maximum(lay.sum(1), 1e-12)
    out["mean_depth_x0"] = mean_depth
    out["depth_width_x0"] = np.sqrt(np.maximum(
        (lay * (t[None] - mean_depth[:, None]) ** 2).sum(1) / np.maximum(lay.sum(1), 1e-12), 0.0))
    out["max_cell_fraction"] = s.reshape(len(s), -1).max(axis=1) / np.maximum(total, 1e-12)
    pitch = geometry.cell_size_mm
    fx = (np.round(impact_xy_mm[:, 0] / pitch - 0.5) + 0.5) * pitch
    fy = (np.round(impact_xy_mm[:, 1] / pitch - 0.5) + 0.5) * pitch
    out["fibre_distance_mm"] = np.hypot(impact_xy_mm[:, 0] - fx, impact_xy_mm[:, 1] - fy)
    return out


def _strata_moments(x, mask, stratum, n_strata):
    """Per stratum of ``x[mask]``: mean, mean square and the squared standard error of the mean
    (a stratum without showers takes the moments of the nearest one that has some; one shower
    has no error)."""
    means, second, variances = np.zeros(n_strata), np.zeros(n_strata), np.zeros(n_strata)
    for k in range(n_strata):
        v = x[mask & (stratum == k)]
        if len(v):
            means[k], second[k] = v.mean(), (v**2).mean()
            variances[k] = v.var(ddof=1) / len(v) if len(v) > 1 else 0.0
        else:
            means[k], second[k] = np.nan, np.nan
    full = np.flatnonzero(~np.isnan(means))
    for k in np.flatnonzero(np.isnan(means)) if len(full) else ():
        nearest = full[np.argmin(np.abs(full - k))]
        means[k], second[k] = means[nearest], second[nearest]
    return means, second, variances


def binned_summary(q, energy_gev):
    """Mean (and RMS for the fluctuating quantities) of each quantity per energy bin.

    ``sampling_fraction_stratified`` is the mean signal / E post-stratified in the distance of
    the impact point to the nearest fibre axis (:data:`FIBRE_DISTANCE_EDGES_MM`, weights of
    impacts uniform over a fibre cell): the ~5 % of impacts on a fibre axis carry 2-3x the
    signal, so the plain per-bin mean fluctuates by 1.6-2.6 % with a few hundred showers, the
    stratified one by 0.6-1 %; ``sampling_fraction_rel_rms_stratified`` is the event-to-event
    RMS / mean from the same strata (post-stratification: Cochran, "Sampling Techniques",
    3rd ed., 1977, sec. 5A.9). ``*_err`` are standard errors of the means.
    """
    rows = []
    far = q["fibre_distance_mm"] > 0.4
    edges = np.asarray(FIBRE_DISTANCE_EDGES_MM)
    weights = fibre_distance_weights(edges=edges)
    stratum = np.digitize(q["fibre_distance_mm"], edges[1:-1])
    for lo, hi in zip(ENERGY_BINS_GEV[:-1], ENERGY_BINS_GEV[1:]):
        m = (energy_gev >= lo) & (energy_gev < hi)
        sf = q["sampling_fraction"]
        row = {"energy_bin_GeV": [lo, hi], "n": int(m.sum()),
               "sampling_fraction": float(sf[m].mean()),
               "sampling_fraction_rel_rms": float(sf[m].std() / sf[m].mean()),
               "sampling_fraction_far": float(sf[m & far].mean()),
               "sampling_fraction_far_rel_rms": float(sf[m & far].std() / sf[m & far].mean()),
               "sampling_fraction_err": float(sf[m].std() / np.sqrt(m.sum())),
               "sampling_fraction_far_err": float(sf[m & far].std() / np.sqrt((m & far).sum())),
               "mean_depth_x0": float(q["mean_depth_x0"][m].mean()),
               "mean_depth_rms_x0": float(q["mean_depth_x0"][m].std()),
               "r50_mm": float(np.median(q["r50_mm"][m])),
               "r90_mm": float(np.median(q["r90_mm"][m])),
               "depth_width_x0": float(q["depth_width_x0"][m].mean()),
               "max_cell_fraction": float(q["max_cell_fraction"][m].mean()),
               "occupancy": float(q["occupancy"][m].mean())}
        means, second, variances = _strata_moments(sf, m, stratum, len(weights))
        row["sampling_fraction_stratified"] = float(weights @ means)
        row["sampling_fraction_rel_rms_stratified"] = float(
            np.sqrt(max(weights @ second - (weights @ means) ** 2, 0.0)) / (weights @ means))
        row["sampling_fraction_stratified_err"] = float(np.sqrt(weights**2 @ variances))
        for radius in RADII_MM:
            key = f"containment_{radius:g}mm"
            row[key] = float(q[key][m].mean())
        rows.append(row)
    near = q["fibre_distance_mm"] < 0.2
    return {"bins": rows,
            "sampling_fraction_on_fibre": float(q["sampling_fraction"][near].mean()),
            "sampling_fraction_far": float(q["sampling_fraction"][far].mean())}


def _check_n_boot(n_boot):
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise ValueError(f"`n_boot` must be an integer >= 10. Received: n_boot={n_boot!r}")


def depth_spread_uncertainty(q, energy_gev, n_boot=2000, seed=0, fibre_radius_mm=0.1825):
    """Bootstrap uncertainty of the per-shower spread of the mean depth, per energy bin.

    ``mean_depth_rms_x0`` (the RMS over a bin's showers of each shower's mean depth) is set
    mostly by the few impacts inside a fibre core (their showers start 15-20 X0 late), so its
    sampling error is large. Resampling a bin's showers with replacement ``n_boot`` times (Efron
    & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 6) gives its standard error and
    16th/84th percentiles; ``n_core`` (impacts within ``fibre_radius_mm`` of a fibre axis) and
    ``far_rms_x0`` (the same RMS of impacts > 0.4 mm from a fibre) show where the spread comes
    from. ``p_within_20pct`` is the fraction of resamples within 20 % of the bin's value: about
    the chance that a sample of this size lands within 20 % of the true spread.

    Args:
        q: per-shower quantities (:func:`shower_quantities`).
        energy_gev: (N,) energies.
        n_boot: bootstrap resamples (>= 10).
        seed: seed of the resampling.

    Returns:
        list of dicts per bin of :data:`ENERGY_BINS_GEV`.
    """
    _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    rows = []
    for lo, hi in zip(ENERGY_BINS_GEV[:-1], ENERGY_BINS_GEV[1:]):
        m = (energy_gev >= lo) & (energy_gev < hi)
        x = q["mean_depth_x0"][m]
        d = q["fibre_distance_mm"][m]
        rms = float(x.std())
        boot = x[rng.integers(0, len(x), (n_boot, len(x)))].std(axis=1)
        rows.append({"energy_bin_GeV": [lo, hi], "n": int(m.sum()), "rms_x0": rms,
                     "bootstrap_err_x0": float(boot.std()),
                     "bootstrap_p16_x0": float(np.percentile(boot, 16)),
                     "bootstrap_p84_x0": float(np.percentile(boot, 84)),
                     "p_within_20pct": float(np.mean(np.abs(boot / rms - 1) < 0.2)),
                     "n_core": int((d < fibre_radius_mm).sum()),
                     "far_rms_x0": float(x[d > 0.4].std())})
    return rows


def bootstrap_binned_errors(q, energy_gev, keys, n_boot=300, seed=0):
    """Bootstrap standard errors of :func:`binned_summary`'s ``keys`` per energy bin.

    Resamples the showers with replacement ``n_boot`` times and recomputes the summary (Efron &
    Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 6): how far one sample of this size
    can move each per-bin value, e.g. the relative RMS of the total signal, which the few impacts
    on a fibre (2-3x the signal) set.

    Returns:
        dict key -> list of standard errors, one per bin of :data:`ENERGY_BINS_GEV`.
    """
    _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    n = len(energy_gev)
    values = {k: [] for k in keys}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        summary = binned_summary({k: v[idx] for k, v in q.items()}, energy_gev[idx])
        for k in keys:
            values[k].append([b[k] for b in summary["bins"]])
    return {k: [float(x) for x in np.std(v, axis=0)] for k, v in values.items()}


#: Committed Geant4 summary file of each reference particle.
SUMMARY_FILES = {"e-": "geant4_zn_eminus_summary.json", "gamma": "geant4_zn_gamma_summary.json"}


def load_geant4_summary(particle="e-"):
    """The committed per-energy-bin summary of the Geant4 ``particle`` reference (a dict).

    Args:
        particle: ``"e-"`` (1,550 electron showers) or ``"gamma"`` (1,500 photon showers; its
            summary also holds ``halves``: the same summary of the even- and odd-numbered
            showers, ``"a"`` the half the photon calibration was fitted on).
    """
    if particle not in SUMMARY_FILES:
        raise ValueError(f"No Geant4 summary for this particle. Expected one of {sorted(SUMMARY_FILES)}. "
                         f"Received: particle={particle!r}")
    path = os.path.join(os.path.dirname(__file__), "reference", SUMMARY_FILES[particle])
    with open(path) as f:
        return json.load(f)
