"""The zn44 simulator against the committed summary of real Geant4 electron showers.

The summary (calozdc/data/reference/geant4_zn_eminus_summary.json) is derived from the
1,550-shower Geant4 11.4 reference by benchmarks/simulator_vs_geant4.py; the full comparison
(JSON + PNG) is that benchmark. Energy bins 10-20, 20-40, 40-80, 80-120, 120-200 GeV with
210-370 Geant4 showers each. Tolerances follow issue 11 (r50, r90, mean depth 10 %; relative
RMS of the total signal 25 %), except linearity (below).
"""

import numpy as np
import pytest

from calozdc.data import get_geometry, simulate
from calozdc.data.reference_comparison import binned_summary, load_geant4_summary, shower_quantities


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
    # Mean signal per GeV in each bin, normalised to its average over the bins: Geant4's is not
    # flat (+6 % at 10-20 GeV, where impacts on a fibre axis gain most) and the model follows
    # it. Issue 11 asks for 3 %; each Geant4 bin mean carries 1.5-2.5 % statistical error from
    # the ~5 % of impacts on a fibre axis (signal x2-3), so 5 % is what this sample can test.
    sim, g4 = summaries
    s = np.array([b["sampling_fraction"] for b in sim["bins"]])
    g = np.array([b["sampling_fraction"] for b in g4["bins"]])
    assert np.all(np.abs(s / s.mean() - g / g.mean()) < 0.05), (s / s.mean(), g / g.mean())
