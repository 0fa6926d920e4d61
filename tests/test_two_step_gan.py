import keras
import numpy as np
import pytest
from _gan_helpers import LATENT, changed, data, dense_networks, jit_options, weights

from calozdc.models.gan import TwoStepGAN

LAMBDA = 3.0


def _model(jit=False, **kwargs):
    g, d = dense_networks()
    model = TwoStepGAN(g, d, LATENT, l2_weight=LAMBDA, seed=2, **kwargs)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), jit_compile=jit)
    return model


@pytest.mark.parametrize("jit", jit_options())
def test_switch_step_inside_training(jit):
    x, p = data(8)
    model = _model(jit, switch_step=2)
    assert model.phase == 1
    for step in range(4):
        d0, g0 = weights(model.discriminator), weights(model.generator)
        logs = model.train_on_batch(x, p, return_dict=True)
        assert changed(g0, weights(model.generator))
        if step < 2:  # phase 1: G(0, p) regressed on x, D untouched, g_loss is the L2 term
            assert logs["phase"] == 1.0
            assert not changed(d0, weights(model.discriminator))
            assert logs["g_loss"] == pytest.approx(logs["l2"], rel=1e-6)
            assert logs["g_adv"] == 0.0 and logs["d_loss"] == 0.0
        else:  # phase 2: adversarial + λ·L2
            assert logs["phase"] == 2.0
            assert changed(d0, weights(model.discriminator))
            assert logs["d_loss"] > 0 and logs["g_adv"] > 0
            assert logs["g_loss"] == pytest.approx(logs["g_adv"] + LAMBDA * logs["l2"], rel=1e-5)
    assert model.phase == 2
    assert int(keras.ops.convert_to_numpy(model.d_optimizer.iterations)) == 2
    assert int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)) == 4


def test_phase_one_l2_value_matches_numpy():
    x, p = data(8)
    g, d = dense_networks(dropout=0.0)
    model = TwoStepGAN(g, d, LATENT, l2_weight=LAMBDA)
    model.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    pred = keras.ops.convert_to_numpy(g([np.zeros((8, LATENT), "float32"), p]))
    logs = model.train_on_batch(x, p, return_dict=True)
    assert logs["l2"] == pytest.approx(np.mean((pred - x) ** 2), rel=1e-5)
    assert logs["g_loss"] == pytest.approx(logs["l2"], rel=1e-6)


def test_switch_epoch_in_one_fit():
    x, p = data(16)
    model = _model(switch_epoch=1)
    history = model.fit(x, p, batch_size=8, epochs=3, verbose=0)
    assert history.history["phase"] == [1.0, 2.0, 2.0]
    assert history.history["d_loss"][0] == 0.0 and history.history["d_loss"][1] > 0
    assert int(keras.ops.convert_to_numpy(model.d_optimizer.iterations)) == 4
    assert int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)) == 6


def test_two_fit_calls_with_set_phase():
    x, p = data(16)
    model = _model()
    h1 = model.fit(x, p, batch_size=8, epochs=1, verbose=0)
    assert h1.history["phase"] == [1.0]
    assert int(keras.ops.convert_to_numpy(model.d_optimizer.iterations)) == 0
    model.set_phase(2)
    h2 = model.fit(x, p, batch_size=8, epochs=1, verbose=0)
    assert h2.history["phase"] == [2.0]
    assert int(keras.ops.convert_to_numpy(model.d_optimizer.iterations)) == 2
    assert int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)) == 4


def test_generate_uses_zero_noise_in_phase_one():
    model = _model()
    cond = np.ones((3, 1), "float32")
    a, b = model.generate(cond, seed=0), model.generate(cond, seed=1)
    np.testing.assert_allclose(a, b)  # z = 0 in phase 1
    model.set_phase(2)
    assert not np.allclose(model.generate(cond, seed=0), model.generate(cond, seed=1))


@pytest.mark.parametrize("kwargs, name", [
    ({"l2_weight": -1.0}, "l2_weight"),
    ({"switch_step": -2}, "switch_step"),
    ({"switch_epoch": 1.5}, "switch_epoch"),
    ({"switch_step": 1, "switch_epoch": 1}, "at most one"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TwoStepGAN(*dense_networks(), LATENT, **kwargs)
    model = TwoStepGAN(*dense_networks(), LATENT)
    with pytest.raises(ValueError, match="phase"):
        model.set_phase(3)
