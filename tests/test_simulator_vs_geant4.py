"""The zn44 simulator against the committed summary of real Geant4 electron showers.

The summary (calozdc/data/reference/geant4_zn_eminus_summary.json) is derived from the
1,550-shower Geant4 11.4 reference by benchmarks/simulator_vs_geant4.py; the full comparison
(JSON + PNG) is that benchmark. Energy bins 10-20, 20-40, 40-80, 80-120, 120-200 GeV with
210-370 Geant4 showers each. Tolerances follow issue 11 (r50, r90, mean depth 10 %; relative
RMS of the total signal 25 %; linearity 3 %). The simulator's zn44 constants come from
calozdc/data/reference/zn44_calibration.json, fitted by benchmarks/calibrate_simulator.py.
"""

import copy
import importlib
import json
import re

import numpy as np
import pytest

from calozdc.data import get_geometry, simulate
from calozdc.data.reference_comparison import binned_summary, load_geant4_summary, shower_quantities
from calozdc.data.simulate import CALIBRATED_KEYS, geometry_model, load_zn44_calibration


@pytest.fixture(scope="module")
def summaries():
    geo = get_geometry("zn44")
    sim = simulate(geo, 4000, seed=11, particles="e-", energy_range=(10, 200),
                   impact_halfwidth_mm=5.0, angle_halfwidth_mrad=2.0, response="energy")
    energy = sim.conditions[:, 0]
    q = shower_quantities(sim.showers, energy, sim.conditions[:, 1:3] * 10.0, sim.layers, geo)
    return binned_summary(q, energy), load_geant4_summary()


@pytest.mark.parametrize("key, tol", [
    ("sampling_fraction", 0.10),  # mean fibre energy / E
    ("sampling_fraction_far", 0.10),  # impacts > 0.4 mm from a fibre axis
    ("sampling_fraction_on_fibre", 0.15),  # impacts < 0.2 mm from a fibre axis (n ~ 80)
])
def test_sampling_fraction_and_impact_point_effect(summaries, key, tol):
    sim, g4 = summaries
    if key == "sampling_fraction":
        for s, g in zip(sim["bins"], g4["bins"]):
            assert abs(s[key] / g[key] - 1) < tol, (s["energy_bin_GeV"], s[key], g[key])
    else:
        assert abs(sim[key] / g4[key] - 1) < tol, (sim[key], g4[key])


@pytest.mark.parametrize("key, tol", [
    ("r50_mm", 0.10), ("r90_mm", 0.10),
    ("containment_2mm", 0.08), ("containment_5mm", 0.06), ("containment_10.5mm", 0.04),
    ("containment_20mm", 0.03),
    ("occupancy", 0.20),  # fibres with any energy: set by the spot density
    ("mean_depth_x0", 0.08),
    # per-shower depth spread: set by the ~20 impacts per bin inside a fibre core, whose
    # showers start late; Poisson-limited, so only the scale is checked
    ("mean_depth_rms_x0", 0.5),
    ("sampling_fraction_far_rel_rms", 0.35),  # 37 %/sqrt(E) (+) 4 % vs Geant4
    ("sampling_fraction_rel_rms", 0.25),  # event-to-event RMS of the total fibre signal
])
def test_shapes_and_fluctuations_per_energy_bin(summaries, key, tol):
    sim, g4 = summaries
    ratios = np.array([s[key] / g[key] for s, g in zip(sim["bins"], g4["bins"])])
    assert np.all(np.abs(ratios - 1) < tol), (key, ratios)


def test_summary_has_the_reference_trends(summaries):
    _, g4 = summaries
    bins = g4["bins"]
    # Geant4 facts the simulator is built on: occupancy and depth grow with energy, the
    # impact-point effect more than doubles the signal on a fibre axis
    assert all(b["occupancy"] < c["occupancy"] for b, c in zip(bins, bins[1:]))
    assert bins[-1]["mean_depth_x0"] > bins[0]["mean_depth_x0"]
    assert g4["sampling_fraction_on_fibre"] > 2 * g4["sampling_fraction_far"]


def test_mean_signal_linear_in_energy_like_geant4(summaries):
    # Issue 11: the mean signal linear in E like Geant4's within 3 %. Compared per bin: mean
    # signal / E normalised to its average over the bins. The plain per-bin mean of Geant4
    # fluctuates by 1.6-2.6 % (the ~5 % of impacts on a fibre axis carry 2-3x the signal), too
    # much for a 3 % test; post-stratified in the impact's distance to the nearest fibre
    # (binned_summary) it is known to 0.6-1.0 %, and far from a fibre (> 0.4 mm) to 0.5-0.7 %.
    sim, g4 = summaries
    for key in ("sampling_fraction_stratified", "sampling_fraction_far"):
        s = np.array([b[key] for b in sim["bins"]])
        g = np.array([b[key] for b in g4["bins"]])
        ratio = (s / s.mean()) / (g / g.mean())
        assert np.all(np.abs(ratio - 1) < 0.03), (key, ratio)
    errors = np.array([b["sampling_fraction_stratified_err"] / b["sampling_fraction_stratified"]
                       for b in g4["bins"]])
    assert np.all(errors < 0.011), errors  # 3 % is a >= 2.7 sigma test of each Geant4 bin


def test_calibration_file_has_provenance():
    cal = load_zn44_calibration()
    prov = cal["provenance"]
    assert prov["reference_file"] == "geant4_zn_eminus_10-200GeV.h5"
    assert re.fullmatch(r"[0-9a-f]{64}", prov["reference_sha256"])
    assert prov["script"] == "benchmarks/calibrate_simulator.py"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prov["date"])
    assert prov["reference_showers"] == 1550
    # the fitted targets and the values achieved, per energy bin
    rows = cal["targets"]["per_bin"]
    assert [r["energy_bin_GeV"] for r in rows] == [b["energy_bin_GeV"] for b in load_geant4_summary()["bins"]]
    assert cal["targets"]["tolerances_met"] is True
    for r in rows:
        assert abs(r["r90_mm"]["after"] / r["r90_mm"]["geant4"] - 1) < 0.10
    model = geometry_model("zn44")
    for key in CALIBRATED_KEYS:
        value = cal["constants"][key]
        if key == "em":
            assert all(model["em"][k] == v for k, v in value.items())
        else:
            assert model[key] == value and np.isfinite(value)


def test_simulate_reads_the_calibration(monkeypatch):
    sim_module = importlib.import_module("calozdc.data.simulate")
    kw = dict(seed=3, particles="e-", energy_range=(10, 200), impact_halfwidth_mm=5.0, response="energy")
    base = simulate("zn44", 64, **kw)
    cal = copy.deepcopy(load_zn44_calibration())
    cal["constants"]["sampling_fraction"] *= 2.0
    monkeypatch.setattr(sim_module, "load_zn44_calibration", lambda path=None: cal)
    doubled = simulate("zn44", 64, **kw)
    # same random numbers, twice the sampling fraction: every fibre and layer doubles
    np.testing.assert_allclose(doubled.showers, 2.0 * base.showers, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(doubled.layers, 2.0 * base.layers, rtol=1e-5, atol=1e-4)
    cal["constants"]["em"]["t_offset"] += 2.0  # deeper showers
    deeper = simulate("zn44", 64, **kw)
    depth = np.arange(deeper.layers.shape[1])
    assert (deeper.layers @ depth / deeper.layers.sum(1)).mean() > (base.layers @ depth / base.layers.sum(1)).mean() + 1


def test_calibration_file_errors(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"constants": {"em": {}}}))
    with pytest.raises(ValueError, match="sampling_fraction"):
        load_zn44_calibration(str(path))
