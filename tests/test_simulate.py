"""Physics and contract tests of the built-in simulator.

Tolerances are statistical: each test uses 1,000-2,000 showers at a fixed seed, so the
estimators quoted below have relative errors of about 1 % or better; the margins chosen are
wider than that and than the known model effects noted beside each test.
"""

import numpy as np
import pytest

from calozdc.data import ZN44, get_geometry, iter_simulate, simulate


def _arrays(geometry, n, **kw):
    chunks = list(iter_simulate(geometry, n, seed=kw.pop("seed", 3), **kw))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _fixed(particle, energy, n=1500, geometry="zn44", **kw):
    kw.setdefault("impact_halfwidth_mm", 0.0)
    if geometry == "zn44":
        kw.setdefault("response", "energy")
    return _arrays(geometry, n, particles=particle, energy_range=(energy, energy), **kw)


def _layer_peak_x0(layers, geometry):
    """Depth (X0) of the maximum of the mean longitudinal profile (parabola through the peak)."""
    prof = layers.mean(axis=0)
    i = int(np.argmax(prof))
    y0, y1, y2 = prof[i - 1:i + 2]
    offset = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return (i + 0.5 + offset) * geometry.layer_thickness_mm / geometry.material.X0_mm


def test_shapes_units_and_conditions():
    ds = simulate("zn44", 300, seed=1)
    assert ds.showers.shape == (300, 44, 44, 1)
    assert ds.layers.shape == (300, 50)
    assert ds.conditions.shape == (300, 9)
    assert list(ds.condition_names) == list(ZN44().condition_names)
    # photon counts: non-negative integers
    assert np.all(ds.showers >= 0) and np.all(ds.showers == np.round(ds.showers))
    e, px, py, pz, m = (ds.conditions[:, i] for i in (0, 4, 5, 6, 7))
    np.testing.assert_allclose(e**2, px**2 + py**2 + pz**2 + m**2, rtol=1e-4)
    assert set(np.unique(ds.pdg)) <= {22, 11, -11, 2112, -2112, 2212, -2212, 211, -211,
                                      321, -321, 130, 310, 3122}
    ecal = simulate("ecal20", 200, seed=1)
    assert ecal.showers.shape == (200, 20, 20, 1) and ecal.layers.shape == (200, 18)
    assert ecal.conditions.shape == (200, 1)
    assert set(np.unique(ecal.pdg)) <= {11, -11, 22}
    # energies in MeV, inside the default 1 GeV - 1 TeV range
    assert ecal.conditions.min() >= 1e3 and ecal.conditions.max() <= 1e6


def test_same_seed_same_showers_any_worker_count():
    a = simulate("zn44", 2100, seed=7)
    b = simulate("zn44", 2100, seed=7, workers=2)
    c = simulate("zn44", 2100, seed=8)
    np.testing.assert_array_equal(a.showers, b.showers)
    np.testing.assert_array_equal(a.conditions, b.conditions)
    assert not np.array_equal(a.showers, c.showers)


def test_workers_are_spawned_once_a_threaded_framework_is_loaded():
    import keras  # noqa: F401 (loads the backend: jax, tensorflow or torch)

    from calozdc.data.simulate import _pool_context

    assert _pool_context().get_start_method() == "spawn"


def test_unseeded_simulation_records_the_seed_that_reproduces_it():
    a = simulate("zn44", 300)
    b = simulate("zn44", 300)
    seed = a.metadata["seed"]
    assert isinstance(seed, int) and seed >= 0 and seed != b.metadata["seed"]
    again = simulate("zn44", 300, seed=seed)
    np.testing.assert_array_equal(again.showers, a.showers)
    np.testing.assert_array_equal(again.conditions, a.conditions)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_names_the_value(seed):
    with pytest.raises(ValueError, match=f"seed={seed!r}"):
        simulate("zn44", 10, seed=seed)


def test_alice_like_particle_mix_is_imbalanced():
    ds = simulate("zn44", 5000, seed=2)
    frac = {pdg: np.mean(ds.pdg == pdg) for pdg in (22, 2112, 2212)}
    # binomial errors on 5000 draws are < 0.007
    assert abs(frac[22] - 0.608) < 0.03 and abs(frac[2112] - 0.233) < 0.03
    assert abs(frac[2212] - 0.053) < 0.015


@pytest.mark.parametrize("particle, shift", [("e-", -0.5), ("gamma", 0.5)])
def test_longitudinal_profile_peaks_at_pdg_tmax(particle, shift):
    # PDG: t_max = ln(E/Ec) + C, C = -0.5 (e), +0.5 (gamma). Layers are 0.97 X0 thick and the
    # mean of skewed Gamma profiles peaks a little before <T>: allow 0.6 X0.
    geo = get_geometry("zn44")
    for energy in (20.0, 200.0):
        d = _fixed(particle, energy, n=1000)
        t_max = np.log(energy * 1000 / geo.material.Ec_MeV) + shift
        assert abs(_layer_peak_x0(d["layers"], geo) - t_max) < 0.6, (particle, energy)


def test_photons_peak_deeper_than_electrons():
    geo = get_geometry("zn44")
    t_e = _layer_peak_x0(_fixed("e-", 100.0, n=1000)["layers"], geo)
    t_g = _layer_peak_x0(_fixed("gamma", 100.0, n=1000)["layers"], geo)
    assert 0.6 < t_g - t_e < 1.4  # PDG: exactly 1 X0


@pytest.mark.parametrize("geometry", ["zn44", "ecal20"])
def test_ninety_percent_within_one_moliere_radius(geometry):
    geo = get_geometry(geometry)
    energy = 100.0 if geometry == "zn44" else 100e3
    kw = {"impact_halfwidth_mm": 0.0} if geometry == "zn44" else {}
    d = _fixed("e-", energy, n=1000, geometry=geometry, **kw)
    x, y = geo.cell_centres_mm()
    r = np.hypot(x[None, :], y[:, None])
    s = d["showers"]
    frac = (s * (r < geo.material.RM_mm)).sum(axis=(1, 2)) / s.sum(axis=(1, 2))
    # PDG: ~90 % of the energy of an EM shower lies within 1 R_M; cells of 1.6 mm (zn44) and
    # 9 mm (ecal20) count whole cells, so allow 80-97 %.
    assert 0.80 < frac.mean() < 0.97, frac.mean()


@pytest.mark.parametrize("geometry, energies", [("zn44", (10.0, 40.0, 160.0, 640.0)),
                                                 ("ecal20", (10e3, 40e3, 160e3))])
def test_mean_response_linear_within_two_percent(geometry, energies):
    means = []
    for energy in energies:
        d = _fixed("e-", energy, n=1000, geometry=geometry,
                   **({"response": "photons"} if geometry == "zn44" else {}))
        means.append(d["showers"].sum(axis=(1, 2)).mean())
    ratio = np.array(means) / np.array(energies)
    assert np.max(np.abs(ratio / ratio.mean() - 1)) < 0.02, ratio


@pytest.mark.parametrize("geometry, energies", [("zn44", (10.0, 40.0, 160.0)),
                                                 ("ecal20", (2e3, 8e3, 32e3))])
def test_resolution_falls_as_one_over_sqrt_e(geometry, energies):
    res = []
    for energy in energies:
        tot = _fixed("e-", energy, n=2000, geometry=geometry)["showers"].sum(axis=(1, 2))
        res.append(tot.std() / tot.mean())
    res = np.array(res)
    assert np.all(np.diff(res) < 0)
    # fit (sigma/E)^2 = a^2/E + c^2 on the first two points, predict the third within 25 %
    e = np.array(energies)
    a2 = (res[0] ** 2 - res[1] ** 2) / (1 / e[0] - 1 / e[1])
    c2 = res[0] ** 2 - a2 / e[0]
    assert a2 > 0 and a2 / e[0] > c2  # the stochastic term dominates at low energy
    assert abs(np.sqrt(a2 / e[2] + max(c2, 0)) / res[2] - 1) < 0.25


def test_hadron_showers_deeper_and_wider_than_em():
    geo = get_geometry("zn44")
    x, y = geo.cell_centres_mm()
    r2 = x[None, :] ** 2 + y[:, None] ** 2
    depth = np.arange(geo.n_layers)
    out = {}
    for particle in ("e-", "n", "pi+"):
        d = _fixed(particle, 100.0, n=1000)
        layers, s = d["layers"], d["showers"]
        mean_depth = (layers * depth).sum(1) / np.maximum(layers.sum(1), 1e-9)
        width = np.sqrt((s * r2).sum(axis=(1, 2)) / s.sum(axis=(1, 2)))
        tot = s.sum(axis=(1, 2))
        out[particle] = (mean_depth.mean(), width.mean(), tot.mean(), tot.std() / tot.mean())
    for had in ("n", "pi+"):
        assert out[had][0] > out["e-"][0] + 5  # layers of ~1 X0; lambda_int ~ 27 X0
        assert out[had][1] > out["e-"][1] * 1.1
        assert out[had][2] < out["e-"][2]  # h/e < 1 in a Cherenkov calorimeter
        assert out[had][3] > 2 * out["e-"][3]  # EM-fraction fluctuations
    # baryons make fewer pi0 than mesons (Groom 2007): smaller EM fraction, lower response
    assert out["n"][2] < out["pi+"][2]


def test_impact_on_a_fibre_raises_the_signal():
    # Geant4 reference: sampling fraction 1.6 % within 0.1 mm of a fibre axis, 0.58 % far away
    geo = get_geometry("zn44")
    fibre = geo.cell_centres_mm()[0][22]
    kw = {"particles": "e-", "energy_range": (50, 50), "response": "energy", "n": 500}
    between = _arrays("zn44", impact_point_mm=(0.0, 0.0), **kw)["showers"]  # 4-fibre corner
    on_axis = _arrays("zn44", impact_point_mm=(fibre, fibre), **kw)["showers"]
    ratio = on_axis.sum(axis=(1, 2)).mean() / between.sum(axis=(1, 2)).mean()
    assert 2.0 < ratio < 3.5, ratio
    # the extra light sits in the fibre that was hit
    assert on_axis[:, 22, 22].mean() > 0.4 * on_axis.sum(axis=(1, 2)).mean()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"geometry": "zn45", "n": 10}, "zn45"),
        ({"geometry": "zn44", "n": 0}, "n=0"),
        ({"geometry": "zn44", "n": -5}, "n=-5"),
        ({"geometry": "zn44", "n": 2.5}, "n=2.5"),
        ({"geometry": "zn44", "n": 10, "particles": "muon"}, "muon"),
        ({"geometry": "ecal20", "n": 10, "particles": "n"}, "'n'"),
        ({"geometry": "zn44", "n": 10, "energy_range": (-1, 10)}, "energy_range"),
        ({"geometry": "zn44", "n": 10, "energy_range": (100, 10)}, "energy_range"),
        ({"geometry": "zn44", "n": 10, "energy_range": (1, float("nan"))}, "nan"),
        ({"geometry": "zn44", "n": 10, "impact_halfwidth_mm": 50}, "impact_halfwidth_mm=50"),
        ({"geometry": "zn44", "n": 10, "response": "adc"}, "adc"),
        ({"geometry": "ecal20", "n": 10, "response": "photons"}, "photons"),
        ({"geometry": "zn44", "n": 10, "workers": 0}, "workers=0"),
        ({"geometry": "zn44", "n": 10, "impact_point_mm": (40.0, 0.0)}, "impact_point_mm"),
    ],
)
def test_bad_input_names_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(**kwargs)
