"""DDIM task model and sampler: training objective, DDIM sampling, EMA, save/load.

Tiny shapes (8x8 showers, 2 conditions, a 2-level U-Net, T = 100) on every backend.
"""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.data import transforms
from calozdc.models.ddim import DDIM, ConditionalUNet, DDIMSampler, NoiseSchedule
from calozdc.models.ddim.ddim import ema_decay_at
from calozdc.models.ddim.ddim_sampler import sampling_timesteps

SHAPE, K, T = (8, 8, 1), 2, 100
TINY = {"widths": (4, 8), "blocks_per_level": 1, "embedding_dim": 8, "groups": 4,
        "attention": False}


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    conditions = np.stack([rng.uniform(1, 10, n), rng.normal(size=n)], axis=1).astype("float32")
    showers = rng.poisson(conditions[:, :1, None, None] * np.ones((n,) + SHAPE)).astype("float32")
    return showers, conditions


class OracleDenoiser(keras.Model):
    """A perfect denoiser for data that is a known function of the conditions.

    ``x0(c) = c_0 * pattern + c_1``; given ``x_t`` and ``t`` it returns the exact noise
    ``(x_t - sqrt(abar) x0) / sqrt(1 - abar)`` (or the exact velocity).
    """

    def __init__(self, schedule, prediction_type, **kwargs):
        super().__init__(**kwargs)
        self.schedule = schedule
        self.prediction_type = prediction_type
        self.image_shape, self.condition_dim = SHAPE, K
        self.pattern = np.linspace(-1.0, 1.0, int(np.prod(SHAPE))).reshape(SHAPE)

    def clean(self, conditions):
        conditions = ops.convert_to_tensor(conditions)
        pattern = ops.convert_to_tensor(self.pattern.astype("float32"))
        return conditions[:, 0, None, None, None] * pattern + conditions[:, 1, None, None, None]

    def call(self, inputs, training=False):
        x_t = inputs["noisy_showers"]
        t = ops.cast(inputs["timesteps"][:, 0], "int32")
        x0 = self.clean(inputs["conditions"])
        signal, noise = self.schedule._rates(t, x_t)
        eps = (x_t - signal * x0) / noise
        if self.prediction_type == "epsilon":
            return eps
        return signal * eps - noise * x0


class AffineDenoiser(keras.Model):
    """A fixed, imperfect denoiser ``out = a x_t + b t / T`` for the numpy reference test."""

    def __init__(self, a=0.5, b=0.2, **kwargs):
        super().__init__(**kwargs)
        self.a, self.b = a, b
        self.image_shape, self.condition_dim = SHAPE, K

    def call(self, inputs, training=False):
        t = inputs["timesteps"][:, :, None, None]
        return self.a * inputs["noisy_showers"] + self.b * t / T


def _reference_ddim(x, schedule, steps, prediction_type, a=0.5, b=0.2):
    """Song et al. 2021 eq. 12 with eta = 0, in float64 numpy."""
    abar = schedule.alpha_bars
    ts = sampling_timesteps(schedule.num_timesteps, steps)
    x = x.astype("float64")
    for t, s in zip(ts[::-1][:-1], ts[::-1][1:]):
        out = a * x + b * t / T
        if prediction_type == "epsilon":
            eps = out
            x0 = (x - np.sqrt(1 - abar[t]) * eps) / np.sqrt(abar[t])
        else:
            x0 = np.sqrt(abar[t]) * x - np.sqrt(1 - abar[t]) * out
            eps = np.sqrt(1 - abar[t]) * x + np.sqrt(abar[t]) * out
        x = np.sqrt(abar[s]) * x0 + np.sqrt(1 - abar[s]) * eps
    return x


# -- sampling -------------------------------------------------------------------------------
def test_sampling_timesteps():
    np.testing.assert_array_equal(sampling_timesteps(100, 4), [0, 25, 50, 75, 100])
    assert list(sampling_timesteps(100, 1)) == [0, 100]
    ts = sampling_timesteps(1000, 7)
    assert ts[0] == 0 and ts[-1] == 1000 and np.all(np.diff(ts) > 0)
    assert np.all(np.diff(sampling_timesteps(10, 10)) == 1)
    for bad in (0, 11, 2.5):
        with pytest.raises(ValueError, match="steps"):
            sampling_timesteps(10, bad)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v"])
def test_sampler_matches_numpy_reference(prediction_type):
    schedule = NoiseSchedule("linear", num_timesteps=T)
    sampler = DDIMSampler(AffineDenoiser(), schedule, prediction_type=prediction_type, steps=3)
    x = np.random.default_rng(0).normal(size=(3,) + SHAPE).astype("float32")
    out = _np(sampler({"conditions": np.zeros((3, K), "float32"), "noise": x}))
    expected = _reference_ddim(x, schedule, 3, prediction_type)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kind, prediction_type, tolerance",
    [("cosine", "v", 1e-4), ("linear", "v", 1e-4), ("linear", "epsilon", 1e-3),
     # eps at abar_T ~ 2e-7 amplifies float32 rounding by 1 / sqrt(abar_T)
     ("cosine", "epsilon", 2e-2)],
)
def test_oracle_denoiser_recovers_x0(kind, prediction_type, tolerance):
    schedule = NoiseSchedule(kind, num_timesteps=T)
    oracle = OracleDenoiser(schedule, prediction_type)
    model = DDIM(oracle, schedule, prediction_type=prediction_type, ema_decay=None)
    conditions = np.array([[1.0, 0.0], [2.0, -1.0], [0.5, 3.0]], dtype="float32")
    expected = _np(oracle.clean(conditions))
    for steps, eta in [(1, 0.0), (5, 0.0), (5, 1.0)]:
        out = model.generate(conditions, steps=steps, eta=eta, seed=1, non_negative=False)
        np.testing.assert_allclose(out, expected, atol=tolerance, err_msg=f"{steps=} {eta=}")


def test_eta_zero_is_deterministic_for_a_seed_and_eta_one_is_stochastic():
    schedule = NoiseSchedule("cosine", num_timesteps=T)
    model = DDIM(AffineDenoiser(a=0.3, b=0.1), schedule, ema_decay=None)
    c = np.ones((4, K), dtype="float32")
    a, b = model.generate(c, steps=5, seed=7), model.generate(c, steps=5, seed=7)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - model.generate(c, steps=5, seed=8)).max() > 1e-3
    s1 = model.generate(c, steps=5, eta=1.0, seed=7)
    np.testing.assert_array_equal(s1, model.generate(c, steps=5, eta=1.0, seed=7))
    assert np.abs(s1 - a).max() > 1e-3  # the same x_T, different trajectories
    # Batching does not change the result (padding to whole batches).
    np.testing.assert_allclose(model.generate(c, steps=5, seed=7, batch_size=3), a, atol=1e-6)


# -- training -------------------------------------------------------------------------------
def _tiny_model(**kwargs):
    unet = ConditionalUNet(SHAPE, K, **TINY)
    args = {"schedule": NoiseSchedule("cosine", num_timesteps=T), "seed": 3}
    args.update(kwargs)
    return DDIM(unet, **args)


@pytest.fixture(scope="module")
def trained():
    """A tiny DDIM with transforms, trained 2 epochs (shared by the tests below)."""
    showers, conditions = _data(32)
    model = _tiny_model(
        p_uncond=0.25,
        ema_decay=0.3,
        shower_transform=transforms.Chain([transforms.Log1p(), transforms.Standardize()]),
        condition_transform=transforms.Standardize(axis="feature"),
    )
    initial = [w.copy() for w in model.denoiser.get_weights()]
    model.fit_transforms(showers, conditions)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, c = model.preprocess(showers, conditions)
    history = model.fit(x, c, batch_size=8, epochs=2, verbose=0)
    assert float(_np(model.ema_updates)) == 8.0  # 2 epochs x 4 batches, one update per step
    return model, initial, history, conditions


def test_fit_gives_finite_loss_and_changes_weights(trained):
    model, initial, history, _ = trained
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [not np.allclose(a, b) for a, b in zip(initial, model.denoiser.get_weights())]
    assert sum(changed) > len(changed) // 2
    if keras.backend.backend() == "jax":
        assert model.jit_compile  # the train step (with the EMA update) is XLA-compiled


def test_ema_weights_differ_from_raw_and_are_used_by_generate(trained):
    model, initial, _, conditions = trained
    ema, raw = model.ema_denoiser.get_weights(), model.denoiser.get_weights()
    assert any(not np.allclose(e, r) for e, r in zip(ema, raw))
    assert any(not np.allclose(e, w0) for e, w0 in zip(ema, initial))
    c = conditions[:4]
    with_ema = model.generate(c, steps=3, seed=0)
    assert with_ema.shape == (4,) + SHAPE and np.all(np.isfinite(with_ema))
    assert np.abs(with_ema - model.generate(c, steps=3, seed=0, use_ema=False)).max() > 1e-6
    # The raw network holding the EMA weights samples exactly what generate() samples.
    model.denoiser.set_weights(ema)
    try:
        raw_with_ema_weights = model.generate(c, steps=3, seed=0, use_ema=False)
    finally:
        model.denoiser.set_weights(raw)
    np.testing.assert_allclose(raw_with_ema_weights, with_ema, rtol=1e-5, atol=1e-5)


def test_ema_matches_hand_computed_average(trained):
    model, _, _, conditions = trained
    showers, _ = _data(8, seed=1)
    x, c = model.preprocess(showers, conditions[:8])  # one batch of 8: one step per fit
    model.reset_ema()  # EMA := raw weights, update count 0
    expected = [w.copy() for w in model.denoiser.get_weights()]
    np.testing.assert_array_equal(model.ema_denoiser.get_weights()[0], expected[0])
    for n in range(4):
        model.fit(x, c, batch_size=8, epochs=1, verbose=0)  # reuses the compiled step
        d = min(0.3, (1 + n) / (10 + n))  # warm-up 0.1, 0.18, 0.25, then the decay 0.3
        expected = [d * e + (1 - d) * w for e, w in zip(expected, model.denoiser.get_weights())]
    for got, want in zip(model.ema_denoiser.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert float(_np(model.ema_updates)) == 4.0
    assert ema_decay_at(0, 0.999, False) == 0.999
    assert float(_np(ema_decay_at(0.0, 0.999, True))) == pytest.approx(0.1)


def test_loss_targets_match_forward_process():
    """call() noises x0 as x_t = sqrt(abar) x0 + sqrt(1 - abar) eps and returns eps / v."""

    class Spy(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.image_shape, self.condition_dim = SHAPE, K

        def call(self, inputs, training=False):
            t = inputs["timesteps"][:, :, None, None] * ops.ones_like(inputs["noisy_showers"])
            return ops.concatenate([inputs["noisy_showers"], t], axis=-1)

    schedule = NoiseSchedule("linear", num_timesteps=T)
    x0 = np.random.default_rng(0).normal(size=(16,) + SHAPE).astype("float32")
    c = np.zeros((16, K), "float32")
    for prediction_type in ("epsilon", "v"):
        model = DDIM(Spy(), schedule, prediction_type=prediction_type, ema_decay=None, seed=0)
        out = model({"showers": x0, "conditions": c})
        pred, target = _np(out["prediction"]), _np(out["target"])
        loss = float(_np(model.compute_loss(y_pred=out)))
        assert loss == pytest.approx(float(np.mean((pred - target) ** 2)), rel=1e-5)
        x_t, t = pred[..., :1], pred[:, 0, 0, 1].astype(int)
        assert t.min() >= 1 and t.max() <= T and len(set(t)) > 1
        abar = schedule.alpha_bars[t][:, None, None, None]
        eps = (x_t - np.sqrt(abar) * x0) / np.sqrt(1 - abar)
        if prediction_type == "epsilon":
            np.testing.assert_allclose(target, eps, atol=2e-3)
        else:
            np.testing.assert_allclose(target, np.sqrt(abar) * eps - np.sqrt(1 - abar) * x0,
                                       atol=2e-3)
        assert abs(float(np.std(eps)) - 1.0) < 0.1  # the noise is standard normal


# -- save / load ----------------------------------------------------------------------------
def test_save_load_round_trip_keeps_ema_transforms_and_samples(trained, tmp_path):
    model, _, _, conditions = trained
    path = tmp_path / "ddim.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DDIM)
    for a, b in zip(model.ema_denoiser.get_weights(), loaded.ema_denoiser.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.denoiser.get_weights(), loaded.denoiser.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert float(_np(loaded.ema_updates)) == float(_np(model.ema_updates))
    assert isinstance(loaded.shower_transform, transforms.Chain)
    assert loaded.shower_transform.get_config() == model.shower_transform.get_config()
    assert loaded.condition_transform.get_config() == model.condition_transform.get_config()
    assert (loaded.prediction_type, loaded.p_uncond, loaded.ema_decay) == ("v", 0.25, 0.3)
    # Stochastic (eta = 1) and classifier-free guided: same seed, same showers.
    c = conditions[:5]
    original = model.generate(c, steps=3, eta=1.0, guidance=1.5, seed=2)
    np.testing.assert_array_equal(
        loaded.generate(c, steps=3, eta=1.0, guidance=1.5, seed=2), original
    )
    assert np.all(np.isfinite(original))
    assert np.abs(original - model.generate(c, steps=3, seed=2)).max() > 1e-6


def test_generate_returns_physical_units(trained):
    model, _, _, conditions = trained
    physical = model.generate(conditions[:3], steps=3, seed=0)
    latent = model.generate(conditions[:3], steps=3, seed=0, return_model_space=True)
    inverse = model.shower_transform.inverse(latent, conditions[:3])
    np.testing.assert_allclose(physical, np.maximum(inverse, 0.0), rtol=1e-5)
    assert physical.min() >= 0.0  # energies / counts
    signed = model.generate(conditions[:3], steps=3, seed=0, non_negative=False)
    np.testing.assert_allclose(signed, inverse, rtol=1e-5)


# -- validation -----------------------------------------------------------------------------
def test_invalid_arguments_name_the_value():
    unet = ConditionalUNet(SHAPE, K, **TINY)
    for kwargs, name in [({"prediction_type": "x0"}, "prediction_type"),
                         ({"p_uncond": 1.0}, "p_uncond"), ({"ema_decay": 1.0}, "ema_decay"),
                         ({"clip_x0": 0.0}, "clip_x0"), ({"schedule": "cosine"}, "schedule")]:
        with pytest.raises(ValueError, match=name):
            DDIM(unet, **kwargs)
    with pytest.raises(ValueError, match="denoiser"):
        DDIM("unet")
    model = DDIM(AffineDenoiser(), NoiseSchedule(num_timesteps=T), ema_decay=None)
    with pytest.raises(ValueError, match="conditions"):
        model.generate(np.zeros((3, K + 1)))
    with pytest.raises(ValueError, match="guidance"):
        model.generate(np.zeros((3, K)), guidance=1.0)
    with pytest.raises(ValueError, match="steps"):
        model.generate(np.zeros((3, K)), steps=T + 1)
    with pytest.raises(ValueError, match="eta"):
        model.generate(np.zeros((3, K)), eta=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        model.generate(np.zeros((3, K)), batch_size=0)
    with pytest.raises(ValueError, match="showers"):
        model.preprocess(np.zeros((3, 4, 4, 1)), np.zeros((3, K)))
