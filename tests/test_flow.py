"""Flow matching: the objective, the ODE solvers, EMA, the energy/shape factorisation,
save/load and bad input. Tiny shapes (8x8 showers, 2 conditions, a 2-level U-Net) on every
backend."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.data import transforms
from calozdc.models.ddim import ConditionalUNet
from calozdc.models.flow import ConditionalMLP, FlowMatching, FlowSampler
from calozdc.models.flow.flow_sampler import TIME_SCALE
from calozdc.models.flow.presets import FLOW_PRESETS, build_flow, default_transforms

SHAPE, K = (8, 8, 1), 2
TINY = {"widths": (8, 8), "blocks_per_level": 1, "embedding_dim": 8, "groups": 4,
        "attention": False}


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1, 10, n)
    conditions = np.stack([energy, rng.normal(size=n)], axis=1).astype("float32")
    showers = rng.gamma(2.0, energy[:, None, None, None] * np.ones((n,) + SHAPE) / 64)
    showers[:, :2] = 0.0  # empty cells, as in a calorimeter
    return showers.astype("float32"), conditions


def _model(factorised=True, ema_decay=0.999, ema_warmup=True, p_uncond=0.1, seed=0):
    unet = ConditionalUNet(SHAPE, K + int(factorised), **TINY)
    total = ConditionalMLP(1, K, width=8, blocks=1, embedding_dim=8) if factorised else None
    shower_t, cond_t = default_transforms()
    model = FlowMatching(unet, total, p_uncond=p_uncond, ema_decay=ema_decay,
                         ema_warmup=ema_warmup, shower_transform=shower_t,
                         condition_transform=cond_t, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.fixture(scope="module")
def trained():
    """A factorised tiny model after 4 optimizer steps (fitted transforms)."""
    keras.utils.set_random_seed(0)
    showers, conditions = _data()
    model = _model()
    model.fit_transforms(showers, conditions)
    x, c = model.preprocess(showers, conditions)
    model.fit(x, c, batch_size=8, epochs=1, verbose=0)
    return model, showers, conditions


class PointMassVelocity(keras.Model):
    """The exact velocity towards a point mass ``a``: ``v(x, t) = (a - x) / (1 - t)``."""

    def __init__(self, target, **kwargs):
        super().__init__(**kwargs)
        self.target = np.asarray(target, "float32")
        self.image_shape, self.condition_dim = self.target.shape, K

    def call(self, inputs, training=False):
        x = inputs["noisy_showers"]
        t = ops.reshape(inputs["timesteps"][:, 0] / TIME_SCALE, (-1, 1, 1, 1))
        return (ops.convert_to_tensor(self.target) - x) / (1.0 - t)


class GaussianVelocity(keras.Model):
    """The marginal velocity of the straight path from N(0, 1) to N(mu, sigma^2).

    ``x_t ~ N(t mu, s_t^2)`` with ``s_t^2 = (1 - t)^2 + t^2 sigma^2``, so the flow is the
    affine map ``x_t = t mu + s_t z`` and ``v = mu + (t sigma^2 - (1 - t)) / s_t^2 (x - t mu)``;
    the exact end point of ``x(0) = z`` is ``mu + sigma z``.
    """

    def __init__(self, mu, sigma, **kwargs):
        super().__init__(**kwargs)
        self.mu, self.sigma = float(mu), float(sigma)
        self.image_shape, self.condition_dim = SHAPE, K

    def call(self, inputs, training=False):
        x = inputs["noisy_showers"]
        t = ops.reshape(inputs["timesteps"][:, 0] / TIME_SCALE, (-1, 1, 1, 1))
        s2 = (1.0 - t) ** 2 + t**2 * self.sigma**2
        return self.mu + (t * self.sigma**2 - (1.0 - t)) / s2 * (x - t * self.mu)


def test_interpolation_and_target_velocity():
    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(size=(2, 3) + SHAPE).astype("float32")
    t = np.array([[0.0], [0.25], [1.0]], "float32")
    x_t = _np(FlowMatching.interpolate(x0, x1, t))
    np.testing.assert_allclose(x_t[0], x0[0], atol=1e-6)
    np.testing.assert_allclose(x_t[1], 0.75 * x0[1] + 0.25 * x1[1], atol=1e-6)
    np.testing.assert_allclose(x_t[2], x1[2], atol=1e-6)
    # The target is the time derivative of the path (finite difference, any t).
    h = np.full((3, 1), 1e-2, "float32")
    derivative = (_np(FlowMatching.interpolate(x0, x1, t * 0.5 + h))
                  - _np(FlowMatching.interpolate(x0, x1, t * 0.5))) / 1e-2
    np.testing.assert_allclose(derivative, _np(FlowMatching.target_velocity(x0, x1)), atol=1e-3)


def test_euler_one_step_recovers_a_point_mass_exactly():
    target = np.linspace(-2.0, 3.0, int(np.prod(SHAPE))).reshape(SHAPE)
    sampler = FlowSampler(PointMassVelocity(target), steps=1, solver="euler")
    noise = np.random.default_rng(1).normal(size=(4,) + SHAPE).astype("float32")
    out = sampler.predict({"conditions": np.zeros((4, K), "float32"), "noise": noise}, verbose=0)
    np.testing.assert_allclose(out, np.broadcast_to(target, out.shape), atol=1e-5)


def test_second_order_solvers_beat_euler_on_a_gaussian_flow():
    mu, sigma = 2.0, 0.3
    noise = np.random.default_rng(2).normal(size=(8,) + SHAPE).astype("float32")
    exact = mu + sigma * noise
    errors = {}
    for solver in ("euler", "midpoint", "heun"):
        sampler = FlowSampler(GaussianVelocity(mu, sigma), steps=4, solver=solver)
        out = sampler.predict({"conditions": np.zeros((8, K), "float32"), "noise": noise},
                              verbose=0)
        errors[solver] = float(np.max(np.abs(out - exact)))
    assert errors["heun"] < 0.2 * errors["euler"], errors
    assert errors["midpoint"] < 0.2 * errors["euler"], errors
    # and Euler converges: 4x the steps, about 4x smaller error (first order)
    fine = FlowSampler(GaussianVelocity(mu, sigma), steps=16, solver="euler").predict(
        {"conditions": np.zeros((8, K), "float32"), "noise": noise}, verbose=0)
    assert float(np.max(np.abs(fine - exact))) < 0.4 * errors["euler"]


def test_time_sampling_distributions():
    model = _model(factorised=False)
    t = _np(model.sample_time(4000, "logit-normal"))
    assert t.shape == (4000, 1) and np.all((t > 0) & (t < 1))
    # logit-normal(0, 1): median 0.5, fewer draws near the ends than uniform
    assert abs(np.median(t) - 0.5) < 0.03
    assert np.mean(t < 0.1) < 0.05
    uniform = FlowMatching(ConditionalUNet(SHAPE, K, **TINY))  # the default
    u = _np(uniform.sample_time(4000))
    assert abs(np.mean(u < 0.1) - 0.1) < 0.02


def test_ema_is_a_hand_computed_average_and_is_used_by_generate():
    showers, conditions = _data()
    model = _model(ema_decay=0.5, ema_warmup=False)
    model.fit_transforms(showers, conditions)
    x, c = model.preprocess(showers, conditions)
    before = [w.copy() for w in model.velocity_network.get_weights()]
    np.testing.assert_array_equal(model.ema_velocity_network.get_weights()[0], before[0])
    model.fit(x, c, batch_size=len(x), epochs=1, verbose=0)  # one optimizer step
    after = model.velocity_network.get_weights()
    for ema, w0, w1 in zip(model.ema_velocity_network.get_weights(), before, after):
        np.testing.assert_allclose(ema, 0.5 * w0 + 0.5 * w1, rtol=1e-5, atol=1e-7)
    assert float(_np(model.ema_updates)) == 1.0
    # the total network has its EMA too
    assert len(model.ema_total_network.weights) == len(model.total_network.weights)
    a = model.generate(conditions[:4], steps=2, seed=0)
    b = model.generate(conditions[:4], steps=2, seed=0, use_ema=False)
    assert not np.allclose(a, b)


def test_factorised_generation_sums_to_the_generated_total(trained):
    model, showers, conditions = trained
    x, c = model.preprocess(showers, conditions)
    assert c.shape == (len(showers), K + 1)
    # the appended column is the standardised log total of each shower
    mean, std, _ = model.total_stats
    np.testing.assert_allclose(
        c[:, -1] * std + mean, np.log(showers.reshape(len(showers), -1).sum(1)), rtol=1e-4)
    # the zero threshold: the 1 % quantile of the non-empty model-space training cells
    positive = x[x > 0]
    assert model.zero_threshold == pytest.approx(float(np.quantile(positive, 0.01)), rel=1e-5)
    u = model.generate(conditions[:6], steps=3, seed=4, return_model_space=True)
    assert not np.any((u > 0) & (u < model.zero_threshold))
    showers_gen = model.generate(conditions[:6], steps=3, seed=4)
    totals = model.generate_totals(conditions[:6], seed=4)
    assert showers_gen.shape == (6,) + SHAPE and showers_gen.min() >= 0
    np.testing.assert_allclose(showers_gen.reshape(6, -1).sum(1), totals, rtol=1e-4)
    # deterministic for a seed, different for another
    np.testing.assert_array_equal(showers_gen, model.generate(conditions[:6], steps=3, seed=4))
    assert not np.allclose(showers_gen, model.generate(conditions[:6], steps=3, seed=5))


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_generate_with_each_solver_and_guidance(trained, solver):
    model, _, conditions = trained
    out = model.generate(conditions[:3], steps=2, solver=solver, guidance=0.5, seed=0)
    assert out.shape == (3,) + SHAPE and np.isfinite(out).all()


def test_save_and_load_keep_generation(trained, tmp_path):
    model, _, conditions = trained
    path = str(tmp_path / "flow.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, FlowMatching) and loaded.total_stats == model.total_stats
    np.testing.assert_allclose(loaded.generate(conditions[:5], steps=3, seed=2),
                               model.generate(conditions[:5], steps=3, seed=2), rtol=1e-4,
                               atol=1e-6)


def test_unfactorised_model_fits_and_generates():
    showers, conditions = _data(16)
    model = _model(factorised=False)
    model.fit_transforms(showers, conditions)
    x, c = model.preprocess(showers, conditions)
    assert c.shape == (16, K)
    history = model.fit(x, c, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    out = model.generate(conditions[:3], steps=2, seed=0)
    assert out.shape == (3,) + SHAPE and out.min() >= 0
    with pytest.raises(ValueError, match="no total network"):
        model.generate_totals(conditions[:3])


def test_presets_and_default_transforms():
    model = build_flow(SHAPE, K, preset="zdc", widths=(8, 8), embedding_dim=8)
    assert model.factorised and model.condition_dim == K
    assert model.velocity_network.condition_dim == K + 1
    assert set(FLOW_PRESETS) >= {"zdc", "default"}
    shower_t, cond_t = default_transforms()
    showers, conditions = _data(8)
    u = cond_t.fit_forward(conditions)
    np.testing.assert_allclose(cond_t.inverse(u), conditions, rtol=1e-5)
    shapes = showers / showers.reshape(8, -1).sum(1)[:, None, None, None]
    v = shower_t.fit_forward(shapes)
    assert np.all(v[:, :2] == 0)  # empty cells stay exactly at 0
    assert isinstance(shower_t.transforms[0], transforms.LogScaled)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"solver": "rk4"}, "solver"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_generate_bad_options(trained, kwargs, match):
    model, _, conditions = trained
    with pytest.raises(ValueError, match=match):
        model.generate(conditions[:2], **kwargs)


def test_bad_construction():
    unet = ConditionalUNet(SHAPE, K, **TINY)
    with pytest.raises(ValueError, match="time_sampling"):
        FlowMatching(unet, time_sampling="beta")
    with pytest.raises(ValueError, match="k \\+ 1"):
        FlowMatching(unet, ConditionalMLP(1, K))  # the image net must take k + 1
    with pytest.raises(ValueError, match="p_uncond"):
        FlowMatching(unet, p_uncond=1.0)
    with pytest.raises(ValueError, match="guidance"):
        FlowMatching(unet, p_uncond=0.0).sampler(guidance=1.0)
    with pytest.raises(ValueError, match="preset"):
        build_flow(SHAPE, K, preset="huge")


# -- latent flow -------------------------------------------------------------------------------
def _latent_model():
    from calozdc.models.flow.presets import build_latent_flow

    shower_t, cond_t = default_transforms()
    return build_latent_flow(SHAPE, K, latent_channels=2, autoencoder_widths=(4, 4),
                             widths=(8,), embedding_dim=8, total_width=8, total_blocks=1,
                             shower_transform=shower_t, condition_transform=cond_t, seed=0)


def test_latent_flow_trains_in_two_phases_and_round_trips(tmp_path):
    from calozdc.models.flow import LatentFlowMatching

    keras.utils.set_random_seed(0)
    showers, conditions = _data()
    model = _latent_model()
    assert model.state_shape == (2, 2, 2) and model.image_shape == SHAPE
    model.fit_transforms(showers, conditions)
    x, c = model.preprocess(showers, conditions)
    encoder_before = [w.copy() for w in model.encoder.get_weights()]
    history = model.fit(x, c, batch_size=8, epochs=2, autoencoder_epochs=3, verbose=0)
    assert len(history.history["autoencoder_loss"]) == 3 and len(history.history["loss"]) == 2
    assert history.history["autoencoder_loss"][-1] < history.history["autoencoder_loss"][0]
    assert model.latent_scale > 0
    # the encoder trained in phase 1 and stayed frozen in phase 2: encoding is reproducible
    assert not all(np.array_equal(a, b) for a, b in zip(encoder_before,
                                                        model.encoder.get_weights()))
    latents = model.encode(x)
    assert latents.shape == (len(x), 2, 2, 2)
    assert abs(float(np.std(latents)) - 1.0) < 1e-3  # scaled to unit spread
    out = model.generate(conditions[:5], steps=3, seed=1)
    assert out.shape == (5,) + SHAPE and out.min() >= 0
    np.testing.assert_allclose(out.reshape(5, -1).sum(1),
                               model.generate_totals(conditions[:5], seed=1), rtol=1e-4)
    path = str(tmp_path / "latent.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, LatentFlowMatching) and loaded.latent_scale == model.latent_scale
    np.testing.assert_allclose(loaded.generate(conditions[:5], steps=3, seed=1), out,
                               rtol=1e-4, atol=1e-6)


def test_latent_flow_bad_shapes():
    from calozdc.models.flow import LatentFlowMatching, conv_autoencoder

    encoder, decoder = conv_autoencoder(SHAPE, latent_channels=2, widths=(4, 4))
    unet = ConditionalUNet((4, 4, 2), K, **TINY)  # the latent grid is 2 x 2, not 4 x 4
    with pytest.raises(ValueError, match="one shape"):
        LatentFlowMatching(unet, None, encoder, decoder)
    with pytest.raises(ValueError, match="encoder"):
        LatentFlowMatching(ConditionalUNet((2, 2, 2), K, **{**TINY, "widths": (8,)}), None,
                           None, decoder)


def test_sample_weights_weight_image_and_total_losses(trained):
    """Per-shower weights reach both losses: the total is drawn total_repeats times per
    shower, so its weights are repeated too (before, a shape error)."""
    model, showers, conditions = trained
    x, c = model.preprocess(showers[:8], conditions[:8])
    weights = np.array([1, 1, 1, 1, 0, 0, 0, 0], "float32")
    keras.utils.set_random_seed(3)
    zeroed = model.compute_loss(x=x, y=c, sample_weight=weights)
    keras.utils.set_random_seed(3)
    half = model.compute_loss(x=x[:4], y=c[:4])
    assert np.isfinite(_np(zeroed)) and float(_np(zeroed)) > 0
    assert float(_np(half)) > 0


def test_zdc_preset_is_the_published_size():
    """The "zdc" preset's U-Net has about the ~70 k parameters of the published ZDC flow
    model (arXiv:2507.18811) for the zn44 grid and its 9 conditions + the log total."""
    model = build_flow((44, 44, 1), 9, preset="zdc")
    assert 60_000 <= model.velocity_network.count_params() <= 80_000


def test_zero_threshold_calibrated_to_the_real_occupancy(trained):
    model, showers, conditions = trained
    fixed = model.zero_threshold
    # sparser showers than the briefly trained model's positive cells (about half), so that
    # a threshold above 0 can bring it to their occupancy
    showers = showers.copy()
    showers[:, :, 3:] = 0.0
    try:
        value = model.calibrate_zero_threshold(showers, conditions, n=16, steps=3, seed=7)
        assert value == model.zero_threshold and value != fixed
        rows = np.sort(np.random.default_rng(7).permutation(len(showers))[:16])
        generated = model.generate(conditions[rows], steps=3, seed=7)
        assert np.mean(generated > 0) == pytest.approx(np.mean(showers[rows] > 0), abs=0.01)
        with pytest.raises(ValueError, match="n=0"):
            model.calibrate_zero_threshold(showers, conditions, n=0)
    finally:
        model.zero_threshold = fixed
    unfactorised = _model(factorised=False)
    unfactorised.zero_threshold = None  # a model space without a zero level: nothing to do
    assert unfactorised.calibrate_zero_threshold(showers, conditions) is None
