"""calozdc.losses: values vs numpy references (every backend), physics optima, gradients,
mixed precision, serialisation, input validation."""

import json

import keras
import numpy as np
import pytest
from scipy import special, stats

from calozdc import losses as L
from calozdc.data import ZN44

RTOL = 1e-5


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- numpy references


def _ref_fractions(x):
    x = np.asarray(x, np.float64)
    return x / np.maximum(x.sum(-1, keepdims=True), 1e-12)


def _ref_gamma_fractions(alpha, beta, n, dt):
    # numerical integration of the profile (independent of the gammainc route)
    t = np.linspace(0, n * dt, 200 * n + 1)
    dens = (beta * t) ** (alpha - 1) * beta * np.exp(-beta * t) / special.gamma(alpha)
    cum = np.concatenate([[0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(t))])
    edges = cum[::200]
    f = np.diff(edges)
    return f / f.sum()


def _ref_radial(showers, cell, edges):
    n, h, w = showers.shape
    xs = (np.arange(w) - (w - 1) / 2) * cell
    ys = (np.arange(h) - (h - 1) / 2) * cell
    xx, yy = np.meshgrid(xs, ys)
    out = np.zeros((n, len(edges) - 1))
    for i, e in enumerate(showers.astype(np.float64)):
        tot = e.sum()
        cx, cy = (e * xx).sum() / tot, (e * yy).sum() / tot
        r = np.hypot(xx - cx, yy - cy)
        for k in range(len(edges) - 1):
            out[i, k] = e[(r >= edges[k]) & (r < edges[k + 1])].sum() / tot
    return out


def _ref_w1_channels(real, fake, masks):
    s_r = np.einsum("nhw,chw->nc", real, masks.astype(float))
    s_f = np.einsum("nhw,chw->nc", fake, masks.astype(float))
    return np.mean([stats.wasserstein_distance(s_r[:, c], s_f[:, c]) for c in range(len(masks))])


# ---------------------------------------------------------------- longitudinal


def test_gamma_layer_fractions_match_numerical_integral():
    f = L.gamma_layer_fractions(4.0, 0.5, 18, layer_thickness_x0=1.0)
    np.testing.assert_allclose(f, _ref_gamma_fractions(4.0, 0.5, 18, 1.0), atol=2e-6)
    assert f.sum() == pytest.approx(1.0)
    raw = L.gamma_layer_fractions(4.0, 0.5, 5, normalize=False)
    assert raw.sum() < 0.3  # a short calorimeter leaks


def test_fit_gamma_profile_recovers_parameters_from_fluctuating_showers():
    rng = _rng(1)
    alpha, beta, n_layers = 5.0, 0.6, 25
    # each shower: 2000 energy spots drawn from the Gamma profile (depth in X0)
    depths = rng.gamma(alpha, 1.0 / beta, size=(400, 2000))
    layers = np.stack([np.histogram(d, bins=np.arange(n_layers + 1))[0] for d in depths])
    a_fit, b_fit = L.fit_gamma_profile(layers, layer_thickness_x0=1.0)
    assert a_fit == pytest.approx(alpha, rel=0.03)
    assert b_fit == pytest.approx(beta, rel=0.03)
    with pytest.raises(ValueError, match="layer_energies"):
        L.fit_gamma_profile(np.zeros(10))


def test_longitudinal_gamma_loss_is_zero_for_the_profile_and_matches_reference():
    f = L.gamma_layer_fractions(4.0, 0.5, 18)
    energies = np.array([10.0, 250.0, 3.0])[:, None] * f[None]
    loss = L.LongitudinalProfileLoss(alpha=4.0, beta=0.5)
    assert float(loss(np.zeros_like(energies), energies)) < 1e-12
    # a shower drawn from the profile scores far better than one from another profile
    rng = _rng(2)
    drawn = np.stack([np.histogram(rng.gamma(4.0, 2.0, 5000), bins=np.arange(19))[0]
                      for _ in range(16)]).astype("float32")
    other = np.stack([np.histogram(rng.gamma(7.0, 2.0, 5000), bins=np.arange(19))[0]
                      for _ in range(16)]).astype("float32")
    right = float(loss(drawn, drawn))
    wrong = float(loss(other, other))
    assert right < 1e-4 and wrong > 50 * right
    # numpy reference of both comparison modes, per-shower and batch mean
    x = rng.uniform(0, 5, (6, 18)).astype("float32")
    fx = _ref_fractions(x)
    np.testing.assert_allclose(
        _np(L.longitudinal_profile_loss(None, x, alpha=4.0, beta=0.5, compare="per_shower")),
        ((fx - f) ** 2).sum(-1), rtol=RTOL)
    np.testing.assert_allclose(
        _np(L.longitudinal_profile_loss(None, x, alpha=4.0, beta=0.5)),
        np.full(6, ((fx.mean(0) - f) ** 2).sum()), rtol=RTOL)


def test_longitudinal_reference_modes():
    rng = _rng(3)
    real, gen = rng.uniform(0, 5, (2, 8, 10)).astype("float32")
    fr, fg = _ref_fractions(real), _ref_fractions(gen)
    value = _np(L.longitudinal_profile_loss(real, gen))
    np.testing.assert_allclose(value, ((fg.mean(0) - fr.mean(0)) ** 2).sum(), rtol=RTOL)
    per = _np(L.longitudinal_profile_loss(real, gen, compare="per_shower"))
    np.testing.assert_allclose(per, ((fg - fr) ** 2).sum(-1), rtol=RTOL)
    ref = fr.mean(0)
    fixed = _np(L.longitudinal_profile_loss(None, gen, reference_fractions=ref))
    np.testing.assert_allclose(fixed, value, rtol=RTOL)
    # (N, H, W, L) input: the transverse axes are summed
    img = rng.uniform(0, 1, (4, 3, 3, 10)).astype("float32")
    np.testing.assert_allclose(
        _np(L.longitudinal_profile_loss(img, img, compare="per_shower")), 0.0, atol=1e-12)


# ---------------------------------------------------------------- transverse


def _model_shower(p, rc, rt, centre, shape=(20, 20), cell=1.0, sub=24):
    """Cell integrals of the core+tail 2-D density by a fine midpoint rule."""
    h, w = shape
    off = ((np.arange(sub) + 0.5) / sub - 0.5) * cell
    xs = (np.arange(w) - (w - 1) / 2) * cell
    ys = (np.arange(h) - (h - 1) / 2) * cell
    X = (xs[None, :, None, None] + off[None, None, None, :]) - centre[0]
    Y = (ys[:, None, None, None] + off[None, None, :, None]) - centre[1]
    r2 = X**2 + Y**2
    rho = p * rc**2 / (np.pi * (r2 + rc**2) ** 2) + (1 - p) * rt**2 / (np.pi * (r2 + rt**2) ** 2)
    return rho.mean(axis=(2, 3)) * cell**2


def test_core_tail_density_is_normalised_and_cdf_consistent():
    r = np.linspace(0, 2000, 400001)
    f = L.core_tail_density(r, 0.7, 1.5, 6.0)
    assert np.trapezoid(f, r) == pytest.approx(1.0, abs=5e-3)
    assert L.core_tail_cdf(3.0, 0.7, 1.5, 6.0) == pytest.approx(
        np.trapezoid(f[r <= 3.0], r[r <= 3.0]), rel=1e-4)


def test_transverse_loss_is_minimised_by_the_model_profile_anywhere_on_the_grid():
    params = dict(core_fraction=0.8, core_radius_mm=1.2, tail_radius_mm=5.0, cell_size_mm=1.0)
    showers = np.stack([_model_shower(0.8, 1.2, 5.0, c) * e
                        for c, e in (((0.0, 0.0), 100.0), ((2.3, -1.7), 50.0), ((-3.1, 0.4), 7.0))])
    loss = L.TransverseProfileLoss(**params)
    right = float(loss(showers, showers.astype("float32")))
    wider = np.stack([_model_shower(0.5, 2.5, 8.0, (0.0, 0.0)) * 100.0] * 3)
    wrong = float(loss(wider, wider.astype("float32")))
    assert right < 1e-5  # the 4x4 midpoint rule of the cell integrals
    assert wrong > 1e4 * right


def test_transverse_reference_mode_matches_numpy():
    rng = _rng(4)
    real = rng.poisson(2.0, (5, 12, 10)).astype("float32") + 0.01
    gen = rng.poisson(2.0, (5, 12, 10)).astype("float32") + 0.01
    edges = np.concatenate([np.arange(7) * 1.6, [np.inf]])
    fr, fg = _ref_radial(real, 1.6, edges), _ref_radial(gen, 1.6, edges)
    value = _np(L.transverse_profile_loss(real, gen[..., None], cell_size_mm=1.6))
    np.testing.assert_allclose(value, np.full(5, ((fg.mean(0) - fr.mean(0)) ** 2).sum()),
                               rtol=RTOL, atol=1e-8)
    per = _np(L.transverse_profile_loss(real, gen, cell_size_mm=1.6, compare="per_shower",
                                        bin_edges_mm=[0.0, 1.0, 3.0, 100.0]))
    ref = ((_ref_radial(gen, 1.6, [0, 1, 3, 100]) - _ref_radial(real, 1.6, [0, 1, 3, 100])) ** 2)
    # float32 fractions: differences of ~1e-2 carry ~1e-9 absolute rounding
    np.testing.assert_allclose(per, ref.sum(-1), rtol=RTOL, atol=1e-8)


# ---------------------------------------------------------------- energy, mask/value, asym MSE


def test_energy_conservation_loss_values_and_optimum():
    rng = _rng(5)
    # dyadic values: float32 sums are exact, so every backend must agree to rounding
    real = (rng.integers(0, 16, (4, 6, 6, 1)) / 8).astype("float32")
    gen = (rng.integers(0, 16, (4, 6, 6, 1)) / 8).astype("float32")
    er, eg = real.sum((1, 2, 3), dtype=np.float64), gen.sum((1, 2, 3), dtype=np.float64)
    np.testing.assert_allclose(_np(L.energy_conservation_loss(real, gen)),
                               ((eg - er) / (er + 1e-6)) ** 2, rtol=RTOL)
    np.testing.assert_allclose(_np(L.energy_conservation_loss(real, gen, relative=False)),
                               (eg - er) ** 2, rtol=RTOL)
    cond = np.stack([eg / 80.0, np.ones(4)], 1).astype("float32")  # E_inc, other column
    loss = L.EnergyConservationLoss(target="incident", sampling_fraction=80.0)
    assert float(loss(cond, gen)) < 1e-10
    assert float(loss(cond * 1.1, gen)) == pytest.approx((1 / 1.1 - 1) ** 2, rel=1e-4)
    with pytest.raises(ValueError, match="same shape"):
        L.energy_conservation_loss(real[:, :3], gen)


def test_mask_value_loss_matches_numpy():
    rng = _rng(6)
    truth = rng.uniform(0, 1, (3, 5, 5, 1)) * (rng.uniform(size=(3, 5, 5, 1)) > 0.6)
    prob = rng.uniform(0.05, 0.95, (3, 5, 5, 1))
    value = rng.uniform(0, 1, (3, 5, 5, 1))
    y_pred = np.concatenate([prob, value], -1).astype("float32")
    m = (truth > 0).astype(float)
    bce = -(m * np.log(prob) + (1 - m) * np.log(1 - prob)).reshape(3, -1).mean(-1)
    sq = ((value - truth) ** 2).reshape(3, -1)
    hits = (sq * m.reshape(3, -1)).sum(-1) / np.maximum(m.reshape(3, -1).sum(-1), 1)
    np.testing.assert_allclose(_np(L.mask_value_loss(truth.astype("float32"), y_pred)),
                               bce + 200.0 * hits, rtol=1e-4)
    np.testing.assert_allclose(
        _np(L.mask_value_loss(truth[..., 0], y_pred, value_weight=2.0, hits_only=False)),
        bce + 2.0 * sq.mean(-1), rtol=1e-4)
    logits = np.concatenate([np.log(prob / (1 - prob)), value], -1).astype("float32")
    np.testing.assert_allclose(_np(L.mask_value_loss(truth, logits, from_logits=True)),
                               bce + 200.0 * hits, rtol=1e-4)
    # the right answer: certain mask and exact values
    perfect = np.concatenate([m, truth], -1).astype("float32")
    assert float(L.MaskValueLoss()(truth, perfect)) < 1e-5
    with pytest.raises(ValueError, match="2 channels"):
        L.mask_value_loss(truth, value)


def test_asymmetric_exponential_mse_matches_numpy():
    rng = _rng(7)
    x = rng.uniform(0, 3, (4, 5, 5)).astype("float32")
    y = (x + rng.normal(0, 0.3, x.shape)).astype("float32")
    e_inc = np.array([0.1, 0.5, 1.0, 2.0], "float32")
    a, b = 0.7, 1.3
    dev = x - x.reshape(4, -1).mean(-1)[:, None, None]
    w = np.exp(a * dev) + np.exp(-b * dev)
    ref = ((y - x) ** 2 * w).reshape(4, -1).mean(-1)
    np.testing.assert_allclose(_np(L.asymmetric_exponential_mse(x, y, a=a, b=b)), ref, rtol=RTOL)
    np.testing.assert_allclose(
        _np(L.asymmetric_exponential_mse(x, y, a=a, b=b, incident_energy=e_inc[:, None])),
        ref * e_inc, rtol=RTOL)
    dev_b = x - x.mean()
    ref_b = ((y - x) ** 2 * (np.exp(a * dev_b) + np.exp(-b * dev_b))).reshape(4, -1).mean(-1)
    np.testing.assert_allclose(_np(L.asymmetric_exponential_mse(x, y, a=a, b=b, center="batch")),
                               ref_b, rtol=RTOL)
    # a = b = 0: twice the MSE; the class with incident-energy sample weights and "sum"
    plain = L.AsymmetricExponentialMSE(a=0.0, b=0.0)(x, y)
    assert float(plain) == pytest.approx(2 * np.mean((y - x) ** 2), rel=RTOL)
    summed = L.AsymmetricExponentialMSE(a=a, b=b, reduction="sum")(x, y, sample_weight=e_inc)
    assert float(summed) == pytest.approx(float((ref * e_inc).sum()), rel=RTOL)
    assert float(L.AsymmetricExponentialMSE()(x, x)) == 0.0
    # huge exponents stay finite
    assert np.isfinite(float(L.AsymmetricExponentialMSE(a=1e4, b=1e4)(x, y)))


# ---------------------------------------------------------------- channel Wasserstein


def test_channel_wasserstein_loss_matches_scipy_and_shift():
    masks = ZN44().channel_masks()
    rng = _rng(8)
    real = rng.poisson(1.0, (16, 44, 44)).astype("float32")
    fake = rng.poisson(1.3, (16, 44, 44, 1)).astype("float32")
    value = _np(L.channel_wasserstein_loss(real, fake, masks))
    np.testing.assert_allclose(value, np.full(16, _ref_w1_channels(real, fake[..., 0], masks)),
                               rtol=RTOL)
    assert float(L.ChannelWassersteinLoss()(real, real)) == 0.0
    # shifting every pixel by c shifts each channel sum by c * (mask size)
    shifted = float(L.ChannelWassersteinLoss(scale=2.0)(real, real + 0.5))
    assert shifted == pytest.approx(0.5 * masks.sum(axis=(1, 2)).mean() / 2.0, rel=RTOL)
    sums = _np(L.channel_sums(np.ones((1, 44, 44)), masks))
    np.testing.assert_array_equal(sums[0], masks.sum(axis=(1, 2)))
    with pytest.raises(ValueError, match="batch size"):
        L.channel_wasserstein_loss(real, fake[:8], masks)


# ---------------------------------------------------------------- generic properties

CHECKER8 = np.stack([(np.add.outer(np.arange(8), np.arange(8)) % 2) == k for k in (0, 1)])


def _cases():
    """(loss, x_shape, y_true builder) for the fit / mixed-precision / config tests."""
    f = L.gamma_layer_fractions(3.0, 0.6, 6)
    return {
        "longitudinal": (L.LongitudinalProfileLoss(alpha=3.0, beta=0.6), (6,),
                         lambda rng, n: np.tile(f, (n, 1)) * 10),
        "transverse": (L.TransverseProfileLoss(core_fraction=0.8, core_radius_mm=1.0,
                                               tail_radius_mm=3.0, cell_size_mm=1.0),
                       (8, 8, 1), lambda rng, n: rng.uniform(0, 1, (n, 8, 8, 1))),
        "energy": (L.EnergyConservationLoss(), (8, 8, 1),
                   lambda rng, n: rng.uniform(0, 1, (n, 8, 8, 1))),
        "mask_value": (L.MaskValueLoss(value_weight=5.0), (8, 8, 2),
                       lambda rng, n: rng.uniform(0, 1, (n, 8, 8, 1))
                       * (rng.uniform(size=(n, 8, 8, 1)) > 0.5)),
        "asymmetric_mse": (L.AsymmetricExponentialMSE(a=1.0, b=0.5), (8, 8, 1),
                           lambda rng, n: rng.uniform(0, 1, (n, 8, 8, 1))),
        "channel_w1": (L.ChannelWassersteinLoss(channel_masks=CHECKER8, scale=10.0), (8, 8, 1),
                       lambda rng, n: rng.poisson(2.0, (n, 8, 8, 1))),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_loss_decreases_under_fit_with_finite_gradients(name):
    loss, shape, make = _cases()[name]
    rng = _rng(9)
    keras.utils.set_random_seed(0)
    cond = rng.uniform(0, 1, (64, 3)).astype("float32")
    y = make(rng, 64).astype("float32")
    inp = keras.Input((3,))
    h = keras.layers.Dense(int(np.prod(shape)), activation="softplus")(inp)
    out = keras.layers.Reshape(shape)(h)
    if name == "mask_value":  # probabilities in the mask channel
        out = keras.layers.Activation("sigmoid")(out)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    hist = model.fit(cond, y, batch_size=64, epochs=8, verbose=0, shuffle=False).history["loss"]
    assert all(np.isfinite(hist))
    assert hist[-1] < hist[0]
    assert all(np.all(np.isfinite(_np(w))) for w in model.weights)


@pytest.mark.parametrize("name", list(_cases()))
def test_config_round_trip_and_serialisation(name):
    loss = _cases()[name][0]
    config = loss.get_config()
    json.dumps(config)
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    rng = _rng(10)
    shape = _cases()[name][1]
    y_true = _cases()[name][2](rng, 4).astype("float32")
    y_pred = rng.uniform(0.1, 1, (4,) + shape).astype("float32")
    assert float(restored(y_true, y_pred)) == pytest.approx(float(loss(y_true, y_pred)), rel=RTOL)


@pytest.mark.parametrize("name", list(_cases()))
def test_float16_inputs_under_mixed_precision_give_finite_float32(name):
    loss, shape, make = _cases()[name]
    rng = _rng(11)
    y_true = make(rng, 4).astype("float16")
    y_pred = rng.uniform(0.1, 1, (4,) + shape).astype("float16")
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        value = loss(y_true, y_pred)
        fn_value = {
            "longitudinal": lambda: L.longitudinal_profile_loss(y_true, y_pred, 3.0, 0.6),
            "transverse": lambda: L.transverse_profile_loss(y_true, y_pred),
            "energy": lambda: L.energy_conservation_loss(y_true, y_pred),
            "mask_value": lambda: L.mask_value_loss(y_true, y_pred),
            "asymmetric_mse": lambda: L.asymmetric_exponential_mse(y_true, y_pred),
            "channel_w1": lambda: L.channel_wasserstein_loss(y_true, y_pred, CHECKER8),
        }[name]()
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert keras.backend.standardize_dtype(fn_value.dtype) == "float32"
    assert np.isfinite(float(value)) and np.all(np.isfinite(_np(fn_value)))
    ref = loss(y_true.astype("float32"), y_pred.astype("float32"))
    assert float(value) == pytest.approx(float(ref), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.LongitudinalProfileLoss(alpha=2.0), "both"),
        (lambda: L.LongitudinalProfileLoss(alpha=-1.0, beta=1.0), "alpha"),
        (lambda: L.LongitudinalProfileLoss(compare="median"), "compare"),
        (lambda: L.TransverseProfileLoss(core_fraction=1.5, core_radius_mm=1,
                                         tail_radius_mm=2), "core_fraction"),
        (lambda: L.TransverseProfileLoss(cell_size_mm=0), "cell_size_mm"),
        (lambda: L.TransverseProfileLoss(bin_edges_mm=[1, 2]), "bin_edges_mm"),
        (lambda: L.EnergyConservationLoss(target="truth"), "target"),
        (lambda: L.EnergyConservationLoss(sampling_fraction=0), "sampling_fraction"),
        (lambda: L.MaskValueLoss(value_weight=-1), "value_weight"),
        (lambda: L.AsymmetricExponentialMSE(a=-1), "a"),
        (lambda: L.AsymmetricExponentialMSE(center="median"), "center"),
        (lambda: L.ChannelWassersteinLoss(geometry="zn45"), "geometry"),
        (lambda: L.ChannelWassersteinLoss(scale=0), "scale"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
