import keras
import numpy as np
import pytest
from _gan_helpers import (
    LATENT,
    changed,
    constant_discriminator,
    data,
    dense_networks,
    jit_options,
    linear_discriminator,
    tiny_networks,
    weights,
)

from calozdc.models.gan import ConditionalGAN
from calozdc.schedules import CyclicLR


def _gan(ratio=(1, 1), g=None, d=None, jit=False, g_opt=None, d_opt=None, cnn=False, **kwargs):
    tg, td = tiny_networks() if cnn else dense_networks()
    gan = ConditionalGAN(g or tg, d or td, LATENT, training_ratio=ratio, seed=3, **kwargs)
    gan.compile(g_opt or keras.optimizers.Adam(1e-3), d_opt or keras.optimizers.Adam(1e-3),
                jit_compile=jit)
    return gan


def _iters(opt):
    return int(keras.ops.convert_to_numpy(opt.iterations))


@pytest.mark.parametrize("cnn", [False, pytest.param(True, marks=pytest.mark.large)])
def test_fit_one_epoch_updates_both_networks(cnn):
    x, p = data(16)
    gan = _gan(jit=jit_options()[0], real_label=0.73, fake_label=0.27, cnn=cnn)
    g0, d0 = weights(gan.generator), weights(gan.discriminator)
    history = gan.fit(x, p, batch_size=8, epochs=1, verbose=0)
    for key in ("g_loss", "d_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake"):
        assert np.isfinite(history.history[key][0]), key
    assert changed(g0, weights(gan.generator)) and changed(d0, weights(gan.discriminator))
    assert _iters(gan.g_optimizer) == 2 and _iters(gan.d_optimizer) == 2


@pytest.mark.parametrize("jit", jit_options())
@pytest.mark.parametrize("ratio, d_steps, g_steps", [
    ((1, 3), [0, 3], [0, 1, 2, 3, 4, 5]),
    ((2, 1), [0, 1, 2, 3, 4, 5], [0, 2, 4]),
])
def test_training_ratio_schedule(jit, ratio, d_steps, g_steps):
    x, p = data(8)
    gan = _gan(ratio, jit=jit)
    seen_d, seen_g = [], []
    for step in range(6):
        d0, g0 = weights(gan.discriminator), weights(gan.generator)
        logs = gan.train_on_batch(x, p, return_dict=True)
        if changed(d0, weights(gan.discriminator)):
            seen_d.append(step)
            assert np.isfinite(logs["d_loss"]) and logs["d_loss"] > 0
        else:
            assert logs["d_loss"] == 0.0  # nothing recorded on a skipped step
        if changed(g0, weights(gan.generator)):
            seen_g.append(step)
    assert seen_d == d_steps and seen_g == g_steps
    assert _iters(gan.d_optimizer) == len(d_steps)
    assert _iters(gan.g_optimizer) == len(g_steps)
    assert int(keras.ops.convert_to_numpy(gan.step_counter)) == 6


def _bce(label, prob):
    return -(label * np.log(prob) + (1 - label) * np.log(1 - prob))


@pytest.mark.parametrize("labels", [(0.73, 0.27), (1.0, 0.0), (0.7, 0.3)])
def test_soft_labels_match_numpy(labels):
    bias = 0.4
    prob = 1 / (1 + np.exp(-bias))
    g, _ = dense_networks()
    gan = _gan(g=g, d=constant_discriminator(bias), real_label=labels[0], fake_label=labels[1],
               d_opt=keras.optimizers.SGD(0.0))
    x, p = data(8)
    logs = gan.train_on_batch(x, p, return_dict=True)
    want_d = _bce(labels[0], prob) + _bce(labels[1], prob)
    assert logs["d_loss"] == pytest.approx(want_d, rel=1e-5)
    assert logs["g_adv"] == pytest.approx(-np.log(prob), rel=1e-5)
    assert logs["d_real"] == pytest.approx(prob, rel=1e-6)
    assert logs["d_acc_real"] == 1.0 and logs["d_acc_fake"] == 0.0


def test_gradient_penalty_matches_analytic_linear_discriminator():
    gamma = 3.0
    d = linear_discriminator(seed=1)
    g, _ = dense_networks()
    gan = _gan(g=g, d=d, gradient_penalty_weight=gamma, d_opt=keras.optimizers.SGD(0.0))
    x, p = data(8)
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in d.trainable_variables)
    w = kernel[:-1, 0]
    a = x.reshape(8, -1) @ w + p[:, 0] * kernel[-1, 0] + bias[0]
    s = 1 / (1 + np.exp(-a))
    # ∇_x sigmoid(w·x + b) = s(1 − s) w  →  E||∇||² = E[(s(1 − s))²] ||w||²
    want_gp = np.mean((s * (1 - s)) ** 2) * np.sum(w**2)
    logs = gan.train_on_batch(x, p, return_dict=True)
    assert logs["d_gp"] == pytest.approx(want_gp, rel=1e-4)
    assert logs["d_real"] == pytest.approx(s.mean(), rel=1e-5)


def test_gradient_penalty_trains_discriminator():
    gan = _gan(gradient_penalty_weight=10.0)
    x, p = data(8)
    d0 = weights(gan.discriminator)
    logs = gan.train_on_batch(x, p, return_dict=True)
    assert np.isfinite(logs["d_gp"]) and logs["d_gp"] > 0
    assert changed(d0, weights(gan.discriminator))


def test_extra_generator_terms_are_weighted():
    calls = []

    def total_energy(y_true, y_pred, conditions):
        calls.append(tuple(conditions.shape))
        return keras.ops.square(keras.ops.sum(y_pred) - keras.ops.sum(y_true))

    g, _ = dense_networks()
    base = _gan(g=g, d=constant_discriminator(0.0), d_opt=keras.optimizers.SGD(0.0),
                g_opt=keras.optimizers.SGD(0.0))
    x, p = data(8)
    logs0 = base.train_on_batch(x, p, return_dict=True)
    assert logs0["g_loss"] == pytest.approx(logs0["g_adv"], rel=1e-6)
    gan = _gan(g=g, d=constant_discriminator(0.0), d_opt=keras.optimizers.SGD(0.0),
               g_opt=keras.optimizers.SGD(0.0), generator_loss_terms=[(total_energy, 0.5)])
    logs = gan.train_on_batch(x, p, return_dict=True)
    assert calls and calls[0] == (8, 1)
    assert logs["g_loss"] > logs["g_adv"]
    assert logs["g_adv"] == pytest.approx(np.log(2.0), rel=1e-5)


def _dense_mask_value_generator():
    z = keras.Input((LATENT,))
    p = keras.Input((1,))
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([z, p]))
    mask = keras.layers.Reshape((20, 20, 1))(keras.layers.Dense(400, activation="sigmoid")(h))
    value = keras.layers.Reshape((20, 20, 1))(keras.layers.Dense(400)(h))
    return keras.Model([z, p], keras.layers.Concatenate()([mask, value]))


def test_mask_value_heads():
    from calozdc.losses import MaskValueLoss

    cnn, _ = tiny_networks(heads="mask_value")
    assert cnn.output_shape == (None, 20, 20, 2)
    probs = keras.ops.convert_to_numpy(cnn([np.zeros((2, LATENT), "float32"),
                                            np.zeros((2, 1), "float32")]))[..., 0]
    assert probs.min() > 0 and probs.max() < 1  # sigmoid hit probabilities
    g = _dense_mask_value_generator()
    _, d = dense_networks()
    gan = _gan(g=g, d=d, generator_loss_terms=[(MaskValueLoss(value_weight=200.0), 1.0)])
    x, p = data(8)
    x = np.maximum(x, 0.0)
    logs = gan.train_on_batch(x, p, return_dict=True)
    assert np.isfinite(logs["g_loss"]) and logs["g_loss"] > logs["g_adv"]
    raw = keras.ops.convert_to_numpy(g([np.zeros((2, LATENT), "float32"), p[:2]]))
    out = keras.ops.convert_to_numpy(gan([np.zeros((2, LATENT), "float32"), p[:2]]))
    np.testing.assert_allclose(out[..., 0], raw[..., 0] * raw[..., 1], rtol=1e-6)
    assert gan.generate(p[:3], seed=0).shape == (3, 20, 20, 1)


def test_output_activation_makes_generated_cells_non_negative():
    from calozdc.losses import EnergyConservationLoss, MaskValueLoss
    from calozdc.models.gan import cnn_generator
    from calozdc.models.gan.builders import build_conditional_gan

    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, LATENT)).astype("float32"),
              rng.normal(size=(3, 1)).astype("float32")]
    with pytest.raises(ValueError, match="output_activation='bogus'"):
        cnn_generator((20, 20, 1), 1, LATENT, 4, output_activation="bogus")
    g = cnn_generator((20, 20, 1), 1, LATENT, 4, "extended2", 0.0, output_activation="relu")
    # the head is a 1x1 convolution: its pre-activation from the features before it
    features = keras.ops.convert_to_numpy(keras.Model(g.inputs, g.layers[-2].output)(inputs))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in g.get_layer("shower").weights)
    pre = features @ kernel[0, 0] + bias
    assert pre.min() < 0 < pre.max()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(g(inputs)), np.maximum(pre, 0),
                               rtol=1e-5, atol=1e-6)
    # builders thread the activation (on the value channel with mask/value heads) and extra
    # generator terms (after the mask/value term); the config keeps both
    gan = build_conditional_gan(
        (20, 20, 1), 1, latent_dim=LATENT, hidden_dim=4, heads="mask_value",
        output_activation="softplus", seed=1,
        generator_loss_terms=[(EnergyConservationLoss(target="showers", relative=False), 0.5)])
    assert keras.ops.convert_to_numpy(gan.generator(inputs))[..., 1].min() > 0
    assert [(type(t), w) for t, w in gan.generator_loss_terms] == [
        (MaskValueLoss, 1.0), (EnergyConservationLoss, 0.5)]
    back = ConditionalGAN.from_config(gan.get_config())
    assert back.generator.get_layer("value").get_config()["activation"] == "softplus"
    assert back.generator_loss_terms[1][0].get_config()["relative"] is False


def test_generate_reproducible_and_clipped():
    gan = _gan()
    cond = np.linspace(-1, 1, 5)[:, None]
    a = gan.generate(cond, seed=7, batch_size=2)
    b = gan.generate(cond, seed=7)
    c = gan.generate(cond, seed=8)
    assert a.shape == (5, 20, 20, 1) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, c)
    assert a.min() >= 0.0
    with pytest.raises(ValueError, match="conditions"):
        gan.generate(np.zeros((3, 2)))


def test_asymmetric_cyclic_lr_per_optimizer():
    g_s = CyclicLR(1e-6, 1e-4, 2, mode="exp_range", gamma=0.995)
    d_s = CyclicLR(1e-6, 7e-5, 2, mode="exp_range", gamma=0.995)
    gan = _gan(g_opt=keras.optimizers.Adam(g_s), d_opt=keras.optimizers.Adam(d_s))
    x, p = data(8)
    gan.train_on_batch(x, p)
    gan.train_on_batch(x, p)
    g_lr = float(keras.ops.convert_to_numpy(gan.g_optimizer.learning_rate))
    d_lr = float(keras.ops.convert_to_numpy(gan.d_optimizer.learning_rate))
    assert g_lr == pytest.approx(1e-6 + (1e-4 - 1e-6) * 0.995**2, rel=1e-5)
    assert d_lr == pytest.approx(1e-6 + (7e-5 - 1e-6) * 0.995**2, rel=1e-5)


@pytest.mark.parametrize("kwargs, name", [
    ({"training_ratio": (0, 1)}, "training_ratio"),
    ({"training_ratio": (1.5, 1)}, "training_ratio"),
    ({"real_label": 1.2}, "real_label"),
    ({"gradient_penalty_weight": -1.0}, "gradient_penalty_weight"),
    ({"latent_dim": 0}, "latent_dim"),
    ({"generator_loss_terms": [1.0]}, "generator_loss_terms"),
])
def test_bad_arguments(kwargs, name):
    g, d = tiny_networks()
    args = {"latent_dim": LATENT, **kwargs}
    with pytest.raises(ValueError, match=name):
        ConditionalGAN(g, d, **args)


def test_same_optimizer_twice_is_rejected():
    gan = ConditionalGAN(*tiny_networks(), LATENT)
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="distinct"):
        gan.compile(opt, opt)


def test_fit_needs_conditions():
    gan = _gan()
    x, _ = data(8)
    with pytest.raises(ValueError, match="conditions"):
        gan.fit(x, batch_size=8, epochs=1, verbose=0)
