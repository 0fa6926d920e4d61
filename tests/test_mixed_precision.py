"""Mixed precision (``mixed_float16`` / ``mixed_bfloat16``) for every model family.

Each family is built under the policy (VQ-VAE and DDIM through the registry; the GANs with
tiny dense networks, cheap to compile, and CyclicLR optimizers as their builders use; the CNN
backbones are checked forward), fitted for one short epoch on a few tiny samples and asked to
generate: losses finite, weights and the numerically sensitive state (EMA, codebook) float32,
user-facing outputs float32. Under ``mixed_float16`` the optimizers are ``LossScaleOptimizer``
s; an injected overflow (a loss scale so large that the float16 gradients are infinite) must
halve the scale and skip the update of that network only. The fitted models are shared by
the tests of this module (one build and trace per model).
"""

import keras
import numpy as np
import pytest
from _gan_helpers import LATENT, dense_networks
from _gan_helpers import data as gan_data
from keras import ops

from calozdc.models.gan import ConditionalGAN, TwoStepGAN, cnn_discriminator, cnn_generator
from calozdc.models.registry import build_model
from calozdc.schedules import CyclicLR

SHAPE = (12, 12, 1)
POLICIES = ("mixed_float16", "mixed_bfloat16")
TINY = {
    "gan": dict(real_label=0.7, fake_label=0.3, gradient_penalty_weight=1.0),
    "twostep": dict(l2_weight=10.0, switch_step=1),
    "vqvae": dict(num_codes=4, code_dim=2, filters=(2, 2), prior_embed_dim=4, prior_layers=1,
                  prior_heads=1),
    "vqgan": dict(num_codes=4, code_dim=2, filters=(2, 2), prior_embed_dim=4, prior_layers=1,
                  prior_heads=1, discriminator_filters=(2,), warmup_steps=0),
    "ddim": dict(widths=(8,), blocks_per_level=1, embedding_dim=4, attention=True,
                 num_timesteps=10),
    "flow": dict(widths=(8,), blocks_per_level=1, embedding_dim=4, attention=True,
                 total_width=4, total_blocks=1),
    "latent-flow": dict(latent_channels=2, autoencoder_widths=(4, 4), widths=(8,),
                        embedding_dim=4, total_width=4, total_blocks=1),
}
BATCH = 4
OVERFLOW_SCALE = 2.0**120  # finite in float32; a float16 gradient scaled by it is inf
SANE_SCALE = 2.0**8


@pytest.fixture(autouse=True)
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _dense_gan(family):
    """A GAN family model on tiny dense networks whose last layers compute in float32 (as in
    the CNN backbones), compiled like the builders: Adam(β1 = 0.5) with CyclicLR per network."""
    z, p = keras.Input((2,)), keras.Input((1,))
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([z, p]))
    h = keras.layers.Dense(int(np.prod(SHAPE)), dtype="float32")(h)
    generator = keras.Model([z, p], keras.layers.Reshape(SHAPE, dtype="float32")(h))
    x, q = keras.Input(SHAPE), keras.Input((1,))
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x), q])
    h = keras.layers.Dense(8, activation="relu")(h)
    h = keras.layers.Dense(1, dtype="float32")(h)
    discriminator = keras.Model([x, q], keras.layers.Activation("sigmoid", dtype="float32")(h))
    cls = ConditionalGAN if family == "gan" else TwoStepGAN
    model = cls(generator, discriminator, 2, seed=0, **TINY[family])
    model.compile(*(keras.optimizers.Adam(CyclicLR(1e-5, lr, 2, mode="exp_range", gamma=0.99),
                                          beta_1=0.5) for lr in (1e-3, 7e-4)))
    return model


@pytest.fixture(scope="module")
def trained():
    """``trained(family, policy) -> (model, history)``: built under ``policy`` and fitted one
    epoch (two steps); cached for the module. Sets the policy."""
    cache = {}

    def get(family, policy):
        keras.mixed_precision.set_global_policy(policy)
        if (family, policy) not in cache:
            if family in ("gan", "twostep"):
                model = _dense_gan(family)
            else:
                model = build_model(family, SHAPE, 1, seed=0, **TINY[family])
            x, p = _data()
            options = {"prior_epochs": 1} if family in ("vqvae", "vqgan") else {}
            if family in ("flow", "latent-flow"):  # model-space conditions + log total
                p = np.concatenate([p, -p], axis=1)
                model.total_stats = [0.0, 1.0, 1e-6]
            history = model.fit(x, p, batch_size=BATCH, epochs=1, verbose=0, **options)
            cache[family, policy] = (model, history.history)
        return cache[family, policy]

    yield get
    cache.clear()


def _data(n=2 * BATCH, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *SHAPE)).astype("float32")
    p = rng.uniform(-1.0, 1.0, size=(n, 1)).astype("float32")
    return x, p


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _values(variables):
    return [_np(v.value).copy() for v in variables]


def _same(before, variables):
    return all(np.array_equal(a, _np(v.value)) for a, v in zip(before, variables))


def _optimizers(family, model):
    if family in ("gan", "twostep"):
        return [model.g_optimizer, model.d_optimizer]
    if family == "vqvae":
        return [model.vqvae.optimizer, model.prior.optimizer]
    if family == "vqgan":  # autoencoder, discriminator, prior
        return [*model.vqvae.optimizer.optimizers, model.prior.optimizer]
    if family == "latent-flow":
        return [model.optimizer, model.autoencoder.optimizer]
    return [model.optimizer]


def _forward_outputs(family, model, x, p):
    """What a user gets from a forward pass (model space)."""
    if family in ("gan", "twostep"):
        z = np.zeros((len(p), model.latent_dim), "float32")
        return [model([z, p])]
    if family in ("vqvae", "vqgan"):
        out = model((x, p))
        codes = np.zeros((len(p), model.prior.sequence_length), "int32")
        return [out["reconstruction"], model.prior({"codes": codes, "conditions": p})]
    if family == "flow":
        out = model({"showers": x, "conditions": np.concatenate([p, -p], axis=1)})
        return [out["prediction"], out["target"], out["total_prediction"]]
    if family == "latent-flow":
        latents = model.encoder(x)
        out = model({"showers": latents, "conditions": np.concatenate([p, -p], axis=1)})
        return [latents, model.decoder(latents), out["prediction"], out["total_prediction"]]
    out = model({"showers": x, "conditions": p})
    return [out["prediction"], out["target"]]


def _family_cases():
    """(family, policy) pairs; the bfloat16 U-Net and VQ fits are the slow ones (JAX compile)."""
    heavy = {("ddim", "mixed_bfloat16"), ("vqvae", "mixed_bfloat16"), ("flow", "mixed_bfloat16"),
             ("vqgan", "mixed_bfloat16")}
    # latent-flow under float16 only: its networks are the flow's and a small autoencoder,
    # already covered under bfloat16 by the flow; float16 adds its second loss-scaled optimizer.
    return [pytest.param(f, p, marks=[pytest.mark.large] if (f, p) in heavy else [])
            for f in sorted(TINY) for p in POLICIES
            if (f, p) != ("latent-flow", "mixed_bfloat16")]


@pytest.mark.parametrize("family, policy", _family_cases())
def test_family_fits_and_generates_float32(trained, family, policy):
    model, history = trained(family, policy)
    assert model.dtype_policy.name == policy
    losses = {k: np.asarray(v) for k, v in history.items()}
    assert losses and all(np.all(np.isfinite(v)) for v in losses.values()), losses
    expected_key = {"gan": "d_gp", "twostep": "l2", "vqvae": "prior_loss", "ddim": "loss",
                    "flow": "loss", "latent-flow": "autoencoder_loss", "vqgan": "d_loss"}
    assert expected_key[family] in losses
    if family == "twostep":
        assert losses["phase"][-1] == 1.5  # switch_step=1: one pretraining, one adversarial step

    # Dynamic loss scaling exactly under mixed_float16, for every optimizer of the family.
    for optimizer in _optimizers(family, model):
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16"), (family, optimizer)
    # Weights and the numerically sensitive state stay float32.
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    if family == "ddim":
        assert all(w.dtype == "float32" for w in model.ema_denoiser.weights)
        assert float(_np(model.ema_updates.value)) == 2.0  # one EMA update per step
    if family in ("flow", "latent-flow"):
        ema = model.ema_velocity_network.weights + model.ema_total_network.weights
        assert all(w.dtype == "float32" for w in ema)
        assert float(_np(model.ema_updates.value)) == 2.0
    if family in ("vqvae", "vqgan"):
        quantizer = model.vqvae.quantizer
        assert quantizer.codebook.dtype == "float32" and quantizer.ema_sum.dtype == "float32"

    x, p = _data(3, seed=1)
    for out in _forward_outputs(family, model, x, p):
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    options = {"steps": 2} if family in ("ddim", "flow", "latent-flow") else {}
    showers = model.generate(p, seed=0, **options)
    assert isinstance(showers, np.ndarray) and showers.dtype == np.float32
    assert showers.shape == (3, *SHAPE) and np.all(np.isfinite(showers))


@pytest.mark.parametrize("overflow", ["discriminator", "generator"])
def test_gan_overflow_skips_only_that_networks_step(trained, overflow):
    """Each GAN network has its own dynamic scale: an overflow skips that network's update
    (weights, moments, iteration count) and halves its scale; the other one trains."""
    model, _ = trained("gan", "mixed_float16")
    nets = {"generator": (model.generator, model.g_optimizer),
            "discriminator": (model.discriminator, model.d_optimizer)}
    other = "generator" if overflow == "discriminator" else "discriminator"
    (net, opt), (other_net, other_opt) = nets[overflow], nets[other]
    opt.dynamic_scale.assign(OVERFLOW_SCALE)
    other_opt.dynamic_scale.assign(SANE_SCALE)
    weights, other_weights = _values(net.trainable_variables), _values(other_net.trainable_variables)
    moments = _values(opt.inner_optimizer.variables)
    steps, other_steps = int(_np(opt.iterations.value)), int(_np(other_opt.iterations.value))

    x, p = _data(BATCH, seed=2)
    logs = model.fit(x, p, batch_size=BATCH, epochs=1, verbose=0).history  # one step

    assert float(_np(opt.dynamic_scale.value)) == OVERFLOW_SCALE / 2
    assert int(_np(opt.iterations.value)) == steps
    assert _same(weights, net.trainable_variables)
    assert _same(moments, opt.inner_optimizer.variables)
    assert float(_np(other_opt.dynamic_scale.value)) == SANE_SCALE
    assert int(_np(other_opt.iterations.value)) == other_steps + 1
    assert not _same(other_weights, other_net.trainable_variables)
    assert np.isfinite(logs["g_loss" if overflow == "discriminator" else "d_loss"][0])


def test_ddim_overflow_skips_weights_and_ema(trained):
    """Keras' own train step (DDIM): an overflowing step and its EMA update are skipped."""
    model, _ = trained("ddim", "mixed_float16")
    opt = model.optimizer
    opt.dynamic_scale.assign(OVERFLOW_SCALE)
    weights, ema = _values(model.trainable_variables), _values(model.ema_denoiser.weights)
    steps, ema_count = int(_np(opt.iterations.value)), float(_np(model.ema_updates.value))

    x, p = _data(BATCH, seed=2)
    model.fit(x, p, batch_size=BATCH, epochs=1, verbose=0)  # one step

    assert float(_np(opt.dynamic_scale.value)) == OVERFLOW_SCALE / 2
    assert int(_np(opt.iterations.value)) == steps
    assert _same(weights, model.trainable_variables)
    assert _same(ema, model.ema_denoiser.weights)
    assert float(_np(model.ema_updates.value)) == ema_count

    opt.dynamic_scale.assign(SANE_SCALE)
    model.fit(x, p, batch_size=BATCH, epochs=1, verbose=0)
    assert int(_np(opt.iterations.value)) == steps + 1
    assert float(_np(model.ema_updates.value)) == ema_count + 1
    assert not _same(weights, model.trainable_variables)
    assert not _same(ema, model.ema_denoiser.weights)


def test_gradient_penalty_input_gradient_is_loss_scaled():
    """R1 under mixed_float16: ∇_x D is taken of the loss-scaled D output. A float16 layer
    whose input gradient s(1 − s)·w ~ 1e-7 would underflow unscaled (float16 subnormals)."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    x_in, p_in = keras.Input((20, 20, 1)), keras.Input((1,))
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x_in), p_in])
    kernel = np.random.default_rng(1).normal(0.0, 1e-2, size=(401, 1)).astype("float32")
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(kernel),
                               bias_initializer=keras.initializers.Constant(12.0))(h)
    prob = keras.layers.Activation("sigmoid", dtype="float32")(logit)
    gan = ConditionalGAN(dense_networks()[0], keras.Model([x_in, p_in], prob), LATENT,
                         gradient_penalty_weight=1.0, seed=3)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.SGD(0.0))
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    x, p = gan_data(8)

    logs = gan.train_on_batch(x, p, return_dict=True)

    w = kernel.astype("float16").astype("float64")  # the weights as the float16 layer sees them
    a = x.reshape(8, -1).astype("float16") @ w[:-1, 0] + p[:, 0] * w[-1, 0] + 12.0
    s = 1.0 / (1.0 + np.exp(-a))
    want_gp = np.mean((s * (1.0 - s)) ** 2) * np.sum(w[:-1, 0] ** 2)
    assert logs["d_gp"] == pytest.approx(want_gp, rel=2e-2)
    assert logs["d_real"] == pytest.approx(s.mean(), rel=1e-5)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("heads", ["single", "mask_value"])
def test_cnn_backbones_output_float32(policy, heads):
    """The GAN builders' CNN networks compute under the policy and return float32."""
    keras.mixed_precision.set_global_policy(policy)
    generator = cnn_generator(SHAPE, 1, 2, 2, "extended2", 0.0, heads)
    discriminator = cnn_discriminator(SHAPE, 1, 2, "simplified", 0.0)
    assert generator.get_layer("final_block0_conv").compute_dtype == policy[len("mixed_"):]
    x, p = _data(3, seed=3)
    showers = generator([np.ones((3, 2), "float32"), p])
    prob = discriminator([x, p])
    for out in (showers, prob):
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert np.all(np.isfinite(_np(out)))
    assert np.all((_np(prob) > 0) & (_np(prob) < 1))
