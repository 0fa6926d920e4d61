"""The zn44 simulator's photons against the committed summary of real Geant4 photon showers.

The summary (calozdc/data/reference/geant4_zn_gamma_summary.json) is derived from the
1,500-shower Geant4 11.4 photon reference by ``benchmarks/simulator_vs_geant4.py --particle
gamma --summary ...``; it also holds the summaries of the file's two halves (a: even-numbered
showers, b: odd). The photon constants (calozdc/data/reference/zn44_calibration_gamma.json) are
fitted on half a only by ``benchmarks/calibrate_simulator.py --particle gamma --half a``, so half
b is showers the calibration never saw. Tolerances follow issue 22 where one Geant4 sample can
resolve them (see ``SAMPLING_LIMITED`` and the signal-fluctuation test); energy bins 10-20 ...
120-200 GeV with 190-370 Geant4 showers each (95-185 per half).
"""

import copy
import importlib
import json
import re

import numpy as np
import pytest

from calozdc.data import get_geometry, simulate
from calozdc.data.reference_comparison import (
    binned_summary,
    depth_spread_uncertainty,
    load_geant4_summary,
    shower_quantities,
)
from calozdc.data.simulate import (
    PHOTON_CALIBRATED_KEYS,
    geometry_model,
    load_zn44_calibration,
    load_zn44_photon_calibration,
)

N_SIM = 12_000
SETUP = dict(energy_range=(10, 200), impact_halfwidth_mm=5.0, angle_halfwidth_mrad=2.0, response="energy")


def _quantities(particle, n, seed):
    geo = get_geometry("zn44")
    sim = simulate(geo, n, seed=seed, particles=particle, **SETUP)
    energy = sim.conditions[:, 0]
    return shower_quantities(sim.showers, energy, sim.conditions[:, 1:3] * 10.0, sim.layers, geo), energy


def _summary(particle, n, seed):
    return binned_summary(*_quantities(particle, n, seed))


@pytest.fixture(scope="module")
def photons():
    # 12,000 photons: a few hundred simulated showers per bin on a fibre (gain x2-5) make a
    # 4,000-shower relative RMS move by +-10 % per bin by itself
    return _quantities("gamma", N_SIM, 12)


@pytest.fixture(scope="module")
def summaries(photons):
    return binned_summary(*photons), load_geant4_summary("gamma")


def _sampling_interval(photons, g4_bins, key, n_draw=200, seed=0):
    """Per bin, the 0.5th and 99.5th percentiles of ``key`` in random subsets of the simulated
    showers of Geant4's size (per bin): where one Geant4 sample of that size may land if the
    simulator were the truth."""
    q, energy = photons
    rng = np.random.default_rng(seed)
    edges = [b["energy_bin_GeV"] for b in g4_bins]
    members = [np.flatnonzero((energy >= lo) & (energy < hi)) for lo, hi in edges]
    values = []
    for _ in range(n_draw):
        idx = np.concatenate([rng.choice(m, b["n"], replace=False) for m, b in zip(members, g4_bins)])
        values.append([b[key] for b in binned_summary({k: v[idx] for k, v in q.items()}, energy[idx])["bins"]])
    return np.percentile(values, [0.5, 99.5], axis=0)


def _ratios(sim, bins, key):
    return np.array([s[key] / g[key] for s, g in zip(sim["bins"], bins)])


@pytest.mark.parametrize("key, tol", [
    ("r50_mm", 0.05), ("mean_depth_x0", 0.05),
    # (r90 at 10-20 GeV: 0.973 of Geant4 in the benchmark's 24,000 showers, 0.968 in this test's)
    ("r90_mm", 0.05),
    ("containment_2mm", 0.06), ("containment_10.5mm", 0.03), ("occupancy", 0.05),
    ("sampling_fraction_far", 0.03),
    ("max_cell_fraction", 0.12),  # the fibre at the impact point
])
def test_photon_shapes_and_fluctuations_per_energy_bin(summaries, key, tol):
    sim, g4 = summaries
    ratios = _ratios(sim, g4["bins"], key)
    assert np.all(np.abs(ratios - 1) < tol), (key, ratios)


@pytest.mark.parametrize("key, tol", [("sampling_fraction_rel_rms_stratified", 0.15),
                                      ("sampling_fraction_rel_rms", 0.25)])
def test_photon_signal_fluctuations_per_energy_bin(summaries, photons, key, tol):
    # Issue 22: the relative RMS of the total signal within 15 % (stratified by fibre distance)
    # and 25 % (plain) per bin. The few Geant4 impacts on a fibre (signal x2-3) set it: the
    # committed bootstrap puts Geant4's own error at 7-13 % per bin (its two halves differ by 1.44x
    # at 80-120 GeV). Bins where Geant4 resolves the tolerance (error <= tol/2) are held to it;
    # in the others Geant4's value must be one that a simulated sample of its size reaches (99 %
    # interval); the average over the bins is held to the tolerance.
    sim, g4 = summaries
    ratios = _ratios(sim, g4["bins"], key)
    g4_values = np.array([b[key] for b in g4["bins"]])
    rel = np.array(g4["bootstrap_err"][key]) / g4_values
    resolved = rel <= tol / 2
    assert resolved.sum() >= 1, rel
    assert np.all(np.abs(ratios[resolved] - 1) < tol), (key, ratios, rel)
    lo, hi = _sampling_interval(photons, g4["bins"], key)
    inside = (g4_values >= lo) & (g4_values <= hi)
    assert np.all(inside[~resolved]), (key, ratios, g4_values, lo, hi)
    assert abs(ratios.mean() - 1) < tol, (key, ratios)


@pytest.mark.parametrize("key, tol", [("r50_mm", 0.08), ("r90_mm", 0.08), ("mean_depth_x0", 0.08)])
def test_photon_calibration_generalises_to_the_held_out_half(summaries, key, tol):
    # Half b (135-180 Geant4 showers per bin) was never seen by the fit. Its own sampling error
    # is about twice the whole file's: Geant4's two halves differ by up to 4 % in r50 and 7 % in
    # the mean depth per bin, so 8 % here; the fitted half a must do no better than half b.
    sim, g4 = summaries
    held_out = np.abs(_ratios(sim, g4["halves"]["b"]["bins"], key) - 1)
    fitted = np.abs(_ratios(sim, g4["halves"]["a"]["bins"], key) - 1)
    assert np.all(held_out < tol), (key, held_out)
    assert held_out.mean() < fitted.mean() + 0.03, (key, held_out, fitted)


#: Quantities whose per-bin Geant4 value moves by more than the issue's tolerance between the two
#: halves of the file (their ~5-15 fibre-core impacts per bin start 15-30 X0 late and dominate):
#: per bin, Geant4's value must be one a simulated sample of its size reaches (99 % interval); the
#: average over the bins is held to the issue's tolerance.
SAMPLING_LIMITED = {"mean_depth_rms_x0": 0.20}


def test_photon_depth_spread_within_geant4_sampling(summaries, photons):
    sim, g4 = summaries
    halves = g4["halves"]
    for key, tol in SAMPLING_LIMITED.items():
        a = np.array([b[key] for b in halves["a"]["bins"]])
        b = np.array([b[key] for b in halves["b"]["bins"]])
        assert np.max(np.abs(a / b - 1)) > 0.2  # why: Geant4 disagrees with itself by > 20 %
        ratios = np.array([s[key] / g[key] for s, g in zip(sim["bins"], g4["bins"])])
        assert abs(ratios.mean() - 1) < tol, (key, ratios)
        g4_values = np.array([b[key] for b in g4["bins"]])
        lo, hi = _sampling_interval(photons, g4["bins"], key)
        assert np.all((g4_values >= lo) & (g4_values <= hi)), (key, g4_values, lo, hi)
    # the committed bootstrap of Geant4's spread (benchmarks/simulator_vs_geant4.py): 10-25 % per
    # bin, so issue 22's 20 % is a 0.8-2 sigma test of one Geant4 bin; the simulator's spread must
    # lie within 2.5 combined standard errors of Geant4's in every bin
    boot = g4["mean_depth_rms_bootstrap"]
    g4_rel = np.array([b["bootstrap_err_x0"] / b["rms_x0"] for b in boot])
    assert np.all((g4_rel > 0.10) & (g4_rel < 0.30)), g4_rel
    np.testing.assert_allclose([b["rms_x0"] for b in boot], [b["mean_depth_rms_x0"] for b in g4["bins"]], rtol=1e-9)
    mine = depth_spread_uncertainty(*photons, n_boot=500)
    ratio = np.array([m["rms_x0"] for m in mine]) / np.array([b["rms_x0"] for b in boot])
    rel = np.hypot(g4_rel, [m["bootstrap_err_x0"] / m["rms_x0"] for m in mine])
    assert np.all(np.abs(ratio - 1) < 2.5 * rel), (ratio, rel)
    # far from a fibre (> 0.4 mm), where no late start can dominate, within 20 % per bin
    far = np.array([m["far_rms_x0"] for m in mine]) / np.array([b["far_rms_x0"] for b in boot])
    assert np.all(np.abs(far - 1) < 0.2), far


def test_photon_response_linear_like_geant4(summaries):
    # Issue 22: linear within 2 %, per bin, stratified by the impact's distance to a fibre;
    # against the held-out half within 5 % (Geant4's halves differ by up to 3 % per bin)
    sim, g4 = summaries
    s = np.array([b["sampling_fraction_stratified"] for b in sim["bins"]])
    for bins, tol in ((g4["bins"], 0.02), (g4["halves"]["b"]["bins"], 0.05)):
        g = np.array([b["sampling_fraction_stratified"] for b in bins])
        ratio = (s / s.mean()) / (g / g.mean())
        assert np.all(np.abs(ratio - 1) < tol), (tol, ratio)


def test_photon_impact_point_effect(summaries):
    sim, g4 = summaries
    # impacts < 0.2 mm from a fibre axis (n ~ 60 in Geant4) and > 0.4 mm
    assert abs(sim["sampling_fraction_on_fibre"] / g4["sampling_fraction_on_fibre"] - 1) < 0.15
    assert abs(sim["sampling_fraction_far"] / g4["sampling_fraction_far"] - 1) < 0.03
    # Geant4: photons gain less on a fibre than electrons (no charged primary in the quartz)
    assert g4["sampling_fraction_on_fibre"] < 0.9 * load_geant4_summary("e-")["sampling_fraction_on_fibre"]


def test_photons_start_later_and_fluctuate_less_than_electrons(summaries):
    sim, g4 = summaries
    g4_e = load_geant4_summary("e-")
    sim_e = _summary("e-", 2000, 13)
    # Geant4 facts the photon model is built on ...
    shift = np.array([g["mean_depth_x0"] - e["mean_depth_x0"] for g, e in zip(g4["bins"], g4_e["bins"])])
    assert np.all(shift > 0.2) and 0.3 < shift.mean() < 1.0, shift
    key = "sampling_fraction_rel_rms_stratified"
    assert g4["bins"][0][key] < g4_e["bins"][0][key]
    # ... and the simulator reproduces the mean shift (Exp(9/7 X0) conversion, pair shower)
    sim_shift = np.array([g["mean_depth_x0"] - e["mean_depth_x0"] for g, e in zip(sim["bins"], sim_e["bins"])])
    assert abs(sim_shift.mean() - shift.mean()) < 0.35, (sim_shift, shift)


def test_photon_calibration_file_has_provenance_and_held_out_check():
    cal = load_zn44_photon_calibration()
    prov = cal["provenance"]
    assert cal["particle"] == "gamma"
    assert prov["reference_file"] == "geant4_zn_gamma_10-200GeV.h5"
    assert re.fullmatch(r"[0-9a-f]{64}", prov["reference_sha256"])
    assert prov["script"] == "benchmarks/calibrate_simulator.py"
    assert "--particle gamma --half a" in prov["command"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prov["date"])
    assert prov["fit_half"] == "a" and prov["reference_showers"] == 750
    assert cal["constants"]["conversion_mean_free_path_x0"] == pytest.approx(9 / 7)
    held = cal["targets"]["held_out"]
    assert held["half"] == "b" and held["reference_showers"] == 750
    g4_bins = load_geant4_summary("gamma")["bins"]
    assert [r["energy_bin_GeV"] for r in held["per_bin"]] == [b["energy_bin_GeV"] for b in g4_bins]
    for rows in (cal["targets"]["per_bin"], held["per_bin"]):
        for r in rows:  # r50, r90 and the mean depth of the fitted and the unseen half within 8 %
            for key in ("r50_mm", "r90_mm", "mean_depth_x0"):
                assert abs(r[key]["after"] / r[key]["geant4"] - 1) < 0.08, (key, r[key])
            assert abs(r["linearity"]["after"] - 1) < 0.05
    model = geometry_model("zn44")
    for key in PHOTON_CALIBRATED_KEYS:
        value = cal["constants"][key]
        if key == "em":
            assert all(model["gamma"]["em"][k] == v for k, v in value.items())
        else:
            assert model["gamma"][key] == value and np.isfinite(value)
    assert "conversion_mean_free_path_x0" not in model  # electrons and hadrons do not convert


def test_photons_read_their_own_calibration(monkeypatch):
    sim_module = importlib.import_module("calozdc.data.simulate")
    kw = dict(seed=3, energy_range=(10, 200), impact_halfwidth_mm=5.0, response="energy")
    base = simulate("zn44", 96, particles="gamma", **kw)
    base_e = simulate("zn44", 64, particles="e-", **kw)
    cal = copy.deepcopy(load_zn44_photon_calibration())
    cal["constants"]["sampling_fraction"] *= 2.0
    monkeypatch.setattr(sim_module, "load_zn44_photon_calibration", lambda path=None: cal)
    doubled = simulate("zn44", 96, particles="gamma", **kw)
    # same random numbers, twice the photon sampling fraction: every fibre and layer doubles
    np.testing.assert_allclose(doubled.showers, 2.0 * base.showers, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(doubled.layers, 2.0 * base.layers, rtol=1e-5, atol=1e-4)
    # electrons do not see the photon constants
    np.testing.assert_array_equal(simulate("zn44", 64, particles="e-", **kw).showers, base_e.showers)
    # a conversion mean free path 3 X0 longer moves the photons' mean depth ~3 X0 deeper
    cal["constants"]["conversion_mean_free_path_x0"] += 3.0
    deeper = simulate("zn44", 96, particles="gamma", **kw)
    t = (np.arange(base.layers.shape[1]) + 0.5) * 4.0 / 4.14
    shift = (deeper.layers @ t / deeper.layers.sum(1)).mean() - (base.layers @ t / base.layers.sum(1)).mean()
    assert 2.0 < shift < 4.0, shift


def test_photon_model_only_for_photons_in_a_mixed_chunk(monkeypatch):
    sim_module = importlib.import_module("calozdc.data.simulate")
    kw = dict(seed=4, energy_range=(10, 200), impact_halfwidth_mm=5.0, response="energy")
    mixed = simulate("zn44", 200, particles={"gamma": 1, "e-": 1}, **kw)
    cal = copy.deepcopy(load_zn44_photon_calibration())
    cal["constants"]["sampling_fraction"] *= 3.0
    monkeypatch.setattr(sim_module, "load_zn44_photon_calibration", lambda path=None: cal)
    tripled = simulate("zn44", 200, particles={"gamma": 1, "e-": 1}, **kw)
    photon = mixed.pdg == 22
    assert 50 < photon.sum() < 150
    total = mixed.showers.sum(axis=(1, 2, 3))
    ratio = tripled.showers.sum(axis=(1, 2, 3)) / total
    np.testing.assert_allclose(ratio[photon], 3.0, rtol=1e-4)
    np.testing.assert_allclose(ratio[~photon], 1.0, rtol=1e-6)


def test_photon_calibration_errors(tmp_path):
    path = tmp_path / "cal.json"
    constants = copy.deepcopy(load_zn44_calibration()["constants"])  # lacks the conversion
    path.write_text(json.dumps({"constants": constants}))
    with pytest.raises(ValueError, match="conversion_mean_free_path_x0"):
        load_zn44_photon_calibration(str(path))
    with pytest.raises(ValueError, match="particle='n'"):
        load_geant4_summary("n")


def test_depth_spread_bootstrap():
    rng = np.random.default_rng(0)
    energy = rng.uniform(10, 200, 3000)
    q = {"mean_depth_x0": rng.normal(10.0, 2.0, 3000), "fibre_distance_mm": rng.uniform(0, 1.1, 3000)}
    rows = depth_spread_uncertainty(q, energy, n_boot=400)
    for row in rows:
        # a normal sample's RMS has standard error sigma / sqrt(2 n)
        assert row["rms_x0"] == pytest.approx(2.0, rel=0.15)
        assert row["bootstrap_err_x0"] == pytest.approx(row["rms_x0"] / np.sqrt(2 * row["n"]), rel=0.25)
        assert row["bootstrap_p16_x0"] < row["rms_x0"] < row["bootstrap_p84_x0"]
    with pytest.raises(ValueError, match="n_boot=5"):
        depth_spread_uncertainty(q, energy, n_boot=5)
