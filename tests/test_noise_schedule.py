"""NoiseSchedule: closed forms, forward process, eps / v algebra (Ho 2020, Nichol 2021,
Salimans & Ho 2022)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.models.ddim import NoiseSchedule


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_alpha_bar_monotone_from_one_to_zero(kind):
    schedule = NoiseSchedule(kind, num_timesteps=1000)
    abar = schedule.alpha_bars
    assert abar.shape == (1001,)
    assert abar[0] == 1.0
    assert np.all(np.diff(abar) < 0)
    assert abar[1] > 0.999
    assert abar[-1] < 1e-4
    betas = schedule.betas
    assert betas.shape == (1000,) and np.all((betas > 0) & (betas < 1))


def test_linear_matches_ho_2020():
    schedule = NoiseSchedule("linear", num_timesteps=50, beta_start=1e-3, beta_end=0.05)
    betas = np.linspace(1e-3, 0.05, 50)
    np.testing.assert_allclose(schedule.betas, betas, rtol=1e-10)
    np.testing.assert_allclose(schedule.alpha_bars[1:], np.cumprod(1 - betas), rtol=1e-12)


def test_cosine_matches_nichol_dhariwal_closed_form():
    T, s = 1000, 0.008
    schedule = NoiseSchedule("cosine", num_timesteps=T, cosine_offset=s, max_beta=0.999)

    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = np.array([f(t) / f(0) for t in range(T)])
    # The clip beta <= max_beta only acts at the very last step.
    np.testing.assert_allclose(schedule.alpha_bars[:T], expected, rtol=1e-9, atol=1e-15)
    assert schedule.betas[-1] == pytest.approx(0.999)
    assert schedule.betas[:-1].max() < 0.999


def test_alpha_bar_gather_matches_table():
    schedule = NoiseSchedule("cosine", num_timesteps=100)
    t = np.array([0, 1, 37, 100], dtype="int32")
    np.testing.assert_allclose(_np(schedule(t)), schedule.alpha_bars[t], rtol=1e-6)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_forward_process_is_exact(kind):
    schedule = NoiseSchedule(kind, num_timesteps=100)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(4, 3, 5, 1)).astype("float32")
    noise = rng.normal(size=(4, 3, 5, 1)).astype("float32")
    t = np.array([1, 10, 50, 100], dtype="int32")
    abar = schedule.alpha_bars[t][:, None, None, None]
    expected = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise
    np.testing.assert_allclose(_np(schedule.add_noise(x0, noise, t)), expected, atol=1e-6)
    # t = 0 is the clean data.
    np.testing.assert_allclose(_np(schedule.add_noise(x0, noise, np.zeros(4, "int32"))), x0)


def test_targets_as_defined():
    schedule = NoiseSchedule("cosine", num_timesteps=100)
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(3, 2, 2, 1)).astype("float32")
    noise = rng.normal(size=(3, 2, 2, 1)).astype("float32")
    t = np.array([5, 60, 99], dtype="int32")
    abar = schedule.alpha_bars[t][:, None, None, None]
    v = np.sqrt(abar) * noise - np.sqrt(1 - abar) * x0
    np.testing.assert_allclose(_np(schedule.target(x0, noise, t, "v")), v, atol=1e-6)
    np.testing.assert_allclose(_np(schedule.velocity(x0, noise, t)), v, atol=1e-6)
    np.testing.assert_allclose(_np(schedule.target(x0, noise, t, "epsilon")), noise)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v"])
def test_split_prediction_inverts_targets(prediction_type):
    schedule = NoiseSchedule("linear", num_timesteps=100)
    rng = np.random.default_rng(2)
    x0 = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    noise = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    t = np.array([1, 40, 100], dtype="int32")
    x_t = schedule.add_noise(x0, noise, t)
    target = schedule.target(x0, noise, t, prediction_type)
    x0_hat, eps_hat = schedule.split_prediction(x_t, target, t, prediction_type)
    np.testing.assert_allclose(_np(x0_hat), x0, atol=1e-3)
    np.testing.assert_allclose(_np(eps_hat), noise, atol=1e-4)


def test_config_round_trip_and_no_weights():
    schedule = NoiseSchedule("linear", num_timesteps=20, beta_start=2e-4, beta_end=0.03)
    assert schedule.weights == []
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(clone, NoiseSchedule)
    assert clone.kind == "linear" and clone.num_timesteps == 20
    np.testing.assert_array_equal(clone.alpha_bars, schedule.alpha_bars)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"kind": "sigmoid"}, "kind"),
        ({"num_timesteps": 0}, "num_timesteps"),
        ({"num_timesteps": 10.5}, "num_timesteps"),
        ({"beta_start": 0.1, "beta_end": 0.01}, "beta_start"),
        ({"max_beta": 1.0}, "max_beta"),
        ({"cosine_offset": -1.0}, "cosine_offset"),
    ],
)
def test_invalid_arguments_name_the_value(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NoiseSchedule(**kwargs)


def test_invalid_prediction_type():
    schedule = NoiseSchedule(num_timesteps=10)
    with pytest.raises(ValueError, match="prediction_type"):
        schedule.target(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)), np.ones(1, "int32"), "x0")
