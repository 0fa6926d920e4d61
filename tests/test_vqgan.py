"""VQ-GAN: loss terms, the adaptive weight (Esser et al. 2021 eq. 7), warm-up, save/load,
generation through the VQ prior, bad arguments."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.backend import backend_name
from calozdc.data import transforms as T
from calozdc.models import VQGenerator
from calozdc.models.registry import build_model
from calozdc.models.vqgan import VQGAN, patch_discriminator
from calozdc.models.vqgan import vqgan_losses as L
from calozdc.models.vqvae import conv_decoder, conv_encoder

SHAPE = (12, 12, 1)
TINY = dict(num_codes=8, code_dim=4, filters=(4, 8), prior_embed_dim=8, prior_layers=1,
            prior_heads=1, discriminator_filters=(4,), total_energy=False)


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1e3, 1e4, (n, 1)).astype("float32")
    profile = np.exp(-0.5 * ((np.arange(12) - 5.5) / 2.0) ** 2)
    showers = energy[:, :, None, None] / 50.0 * np.outer(profile, profile)[None, None]
    showers = showers[:, 0, :, :, None] * rng.gamma(2.0, 0.5, (n, 12, 12, 1))
    return showers.astype("float32"), energy


def _build(**options):
    showers, conditions = _data()
    shower_t, cond_t = T.Chain([T.Log1p(), T.Standardize()]), T.Standardize(axis="feature")
    shower_t.fit(showers, conditions)
    cond_t.fit(conditions)
    model = build_model("vqgan", SHAPE, 1, shower_transform=shower_t, condition_transform=cond_t,
                        seed=0, **{**TINY, **options})
    x = np.asarray(shower_t.forward(showers, conditions), "float32")
    c = np.asarray(cond_t.forward(conditions), "float32")
    return model, (x, c), (showers, conditions)


def _eager(model):
    # One or two steps: tracing a graph would cost more than it saves (not on JAX, whose
    # eager mode compiles every operation once: one jitted step is cheaper).
    if backend_name() != "jax":
        for sub in (model.vqvae, model.prior):
            sub.run_eagerly = True
    return model


# -- loss terms -------------------------------------------------------------------------------
def test_hinge_and_non_saturating_losses_match_their_formulas():
    real = np.array([[2.0, 0.5], [-1.0, 0.0]], "float32")
    fake = np.array([[-2.0, 0.3], [1.5, -0.5]], "float32")
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    expected = {
        ("d", "hinge"): 0.5 * (relu(1 - real).mean() + relu(1 + fake).mean()),
        ("g", "hinge"): -fake.mean(),
        ("d", "non_saturating"): 0.5 * (softplus(-real).mean() + softplus(fake).mean()),
        ("g", "non_saturating"): softplus(-fake).mean(),
    }
    for kind in L.ADVERSARIAL_LOSSES:
        d = float(ops.convert_to_numpy(L.discriminator_loss(real, fake, kind)))
        g = float(ops.convert_to_numpy(L.generator_loss(fake, kind)))
        np.testing.assert_allclose(d, expected["d", kind], rtol=1e-6)
        np.testing.assert_allclose(g, expected["g", kind], rtol=1e-6)
    # hinge: a confident discriminator (real > 1, fake < -1) has zero loss
    assert float(ops.convert_to_numpy(L.discriminator_loss(real + 5, fake - 5))) == 0.0
    with pytest.raises(ValueError, match="kind='wgan'"):
        L.generator_loss(fake, "wgan")


def test_adaptive_weight_and_feature_matching_formulas():
    rec = np.array([3.0, 4.0], "float32")            # norm 5
    adv = np.array([[0.0, 0.5], [0.0, 0.0]], "float32")  # norm 0.5
    lam = float(ops.convert_to_numpy(L.adaptive_weight(rec, adv)))
    np.testing.assert_allclose(lam, 5.0 / (0.5 + 1e-4), rtol=1e-6)
    # clipped at max_weight (a vanishing adversarial gradient)
    assert float(ops.convert_to_numpy(L.adaptive_weight(rec, 0 * adv, max_weight=7.0))) == 7.0
    real = [np.ones((2, 3, 3, 2), "float32"), np.zeros((2, 2), "float32")]
    fake = [np.zeros((2, 3, 3, 2), "float32"), np.full((2, 2), 0.5, "float32")]
    fm = float(ops.convert_to_numpy(L.feature_matching_loss(real, fake)))
    np.testing.assert_allclose(fm, (1.0 + 0.5) / 2, rtol=1e-6)


def _finite_difference_lambda(vqgan, x, c, eps=1e-2):
    """λ of eq. 7 by hand: central differences of the reconstruction and hinge losses in
    the decoder's output kernel, at the current weights."""
    auto = vqgan._autoencoder
    features = auto([x, c], training=False)["features"]
    layer = auto.output_layer  # the decoder's 3x3 "same" convolution to one channel
    kernel, bias = [np.asarray(ops.convert_to_numpy(v.value), "float64")
                    for v in layer.trainable_variables]
    # Central differences for every kernel entry at once: the perturbed kernels are the
    # output channels of one convolution (the layer is linear in its kernel).
    steps = np.zeros(kernel.shape[:3] + (2 * kernel.size,))
    for i, idx in enumerate(np.ndindex(kernel.shape)):
        steps[idx[:3] + (2 * i,)], steps[idx[:3] + (2 * i + 1,)] = eps, -eps
    stacked = (kernel + steps).astype("float32")
    y = ops.convert_to_numpy(ops.conv(features, stacked, padding="same")) + bias[0]
    rec = np.mean((y.astype("float64") - x) ** 2, axis=(0, 1, 2))
    fakes = np.moveaxis(y, -1, 0).reshape((-1,) + SHAPE).astype("float32")
    logits = vqgan.discriminator([fakes, np.tile(c, (2 * kernel.size, 1))], training=False)[0]
    adv = -ops.convert_to_numpy(logits).astype("float64").reshape(2 * kernel.size, -1).mean(1)
    grads = [(v[0::2] - v[1::2]) / (2 * eps) for v in (rec, adv)]
    return np.linalg.norm(grads[0]) / (np.linalg.norm(grads[1]) + 1e-4)


# -- training -------------------------------------------------------------------------------
def test_warmup_gates_the_adversarial_term_and_the_discriminator():
    """Also: the adaptive weight logged by the first step (computed in the train step by
    backend autodiff) equals eq. 7 by hand (finite differences) at the initial weights."""
    model, (x, c), _ = _build(warmup_steps=1, adversarial_weight=1.0)
    vqgan = _eager(model).vqvae
    expected_lambda = _finite_difference_lambda(vqgan, x, c)
    d_before = [ops.convert_to_numpy(w).copy() for w in vqgan.discriminator.weights]
    # 1 step of 16: in the warm-up
    warm = vqgan.fit(x, c, batch_size=16, epochs=1, verbose=0).history
    d_opt = vqgan.discriminator_optimizer
    assert int(ops.convert_to_numpy(d_opt.iterations)) == 0
    for before, w in zip(d_before, vqgan.discriminator.weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(w))
    assert warm["d_loss"][0] == 0.0  # no discriminator step was averaged
    # the loss is reconstruction + commitment only (the adversarial term is gated off)
    np.testing.assert_allclose(
        warm["loss"][0], warm["reconstruction_loss"][0] + warm["commitment_loss"][0], rtol=1e-5)
    assert warm["g_loss"][0] != 0.0  # computed, not used
    assert expected_lambda > 0
    np.testing.assert_allclose(warm["adaptive_weight"][0], expected_lambda, rtol=2e-2)
    after = vqgan.fit(x, c, batch_size=16, epochs=1, verbose=0).history
    assert int(ops.convert_to_numpy(d_opt.iterations)) == 1
    assert int(ops.convert_to_numpy(vqgan.autoencoder_optimizer.iterations)) == 2
    changed = [np.abs(b - ops.convert_to_numpy(w)).max()
               for b, w in zip(d_before, vqgan.discriminator.weights)]
    assert max(changed) > 0
    assert after["d_loss"][0] > 0.0
    assert not np.isclose(after["loss"][0],
                          after["reconstruction_loss"][0] + after["commitment_loss"][0],
                          rtol=1e-6)


@pytest.fixture(scope="module")
def fitted():
    model, (x, c), physical = _build(warmup_steps=1, feature_matching_weight=0.1,
                                     adversarial_loss="non_saturating")
    history = _eager(model).fit(x, c, batch_size=8, epochs=1, prior_epochs=1, verbose=0)
    return model, history.history, physical


def test_fit_logs_both_phases_and_generates_nonnegative_showers(fitted):
    model, history, (showers, conditions) = fitted
    for key in ("loss", "reconstruction_loss", "commitment_loss", "perplexity",
                "codebook_usage", "g_loss", "d_loss", "d_real", "d_fake", "adaptive_weight",
                "feature_matching", "prior_loss"):
        assert key in history and np.isfinite(history[key]).all(), key
    assert history["feature_matching"][0] > 0
    generated, codes = model.generate(conditions[:5, 0], seed=3, return_codes=True)
    assert generated.shape == (5,) + SHAPE and generated.dtype == np.float32
    assert np.isfinite(generated).all() and (generated >= 0).all()
    assert codes.shape == (5, 3, 3) and 0 <= codes.min() and codes.max() < 8
    np.testing.assert_array_equal(model.generate(conditions[:5], seed=3), generated)
    # the training monitors see the autoencoder's, the discriminator's and the prior's
    from calozdc.callbacks.training_scalars_callback import named_optimizers

    named = named_optimizers(model)
    assert [prefix for prefix, _ in named] == ["", "d_", "prior_"]
    assert named[1][1] is model.vqvae.discriminator_optimizer


def test_save_load_round_trip(fitted, tmp_path):
    model, _, (_, conditions) = fitted
    path = str(tmp_path / "vqgan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VQGenerator) and isinstance(loaded.vqvae, VQGAN)
    for key in ("adversarial_loss", "adversarial_weight", "adaptive_weight", "warmup_steps",
                "feature_matching_weight"):
        assert getattr(loaded.vqvae, key) == getattr(model.vqvae, key)
    for a, b in zip(model.vqvae.discriminator.weights, loaded.vqvae.discriminator.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    assert int(ops.convert_to_numpy(loaded.vqvae.discriminator_optimizer.iterations)) == \
        int(ops.convert_to_numpy(model.vqvae.discriminator_optimizer.iterations)) == 1
    np.testing.assert_array_equal(loaded.generate(conditions[:4], seed=7),
                                  model.generate(conditions[:4], seed=7))


def test_hypermodel_searches_the_adversarial_term_and_builds():
    import keras_tuner

    from calozdc.tuning import VQGANHyperModel, get_hypermodel

    _, _, (showers, conditions) = _build()
    space = {k: v for k, v in TINY.items() if k not in ("filters", "discriminator_filters",
                                                         "total_energy")}
    hm = get_hypermodel("vqgan", SHAPE, 1, showers[:4], conditions[:4],
                        space={**space, "adversarial_weight": 0.2})
    assert isinstance(hm, VQGANHyperModel)
    hp = keras_tuner.HyperParameters()
    options = hm.options(hm.values(hp))
    assert options["adversarial_loss"] == "hinge" and options["warmup_steps"] == 500
    assert options["adversarial_weight"] == 0.2
    model = hm.build(hp)
    assert isinstance(model.vqvae, VQGAN) and model.vqvae.adversarial_weight == 0.2
    assert model.vqvae.compiled and model.prior.compiled


def test_bad_arguments_name_the_value():
    encoder = conv_encoder(SHAPE, 4, (4,))
    decoder = conv_decoder(SHAPE, 4, 1, (4,))
    disc = patch_discriminator(SHAPE, 1, (4,))
    for kwargs, match in (({"adversarial_loss": "wgan"}, "adversarial_loss='wgan'"),
                          ({"adversarial_weight": -1.0}, "adversarial_weight=-1.0"),
                          ({"warmup_steps": 1.5}, "warmup_steps=1.5"),
                          ({"feature_matching_weight": "a"}, "feature_matching_weight='a'"),
                          ({"adaptive_weight": "yes"}, "adaptive_weight='yes'")):
        with pytest.raises(ValueError, match=match):
            VQGAN(encoder, decoder, disc, num_codes=8, **kwargs)
    with pytest.raises(ValueError, match="discriminator="):
        VQGAN(encoder, decoder, "patchgan", num_codes=8)
    with pytest.raises(ValueError, match="filters="):
        patch_discriminator(SHAPE, 1, ())


@pytest.mark.large
def test_train_cli_vqgan_writes_a_generating_run_dir(tmp_path, monkeypatch):
    """`calozdc train vqgan --data FILE` trains both phases and saves the whole generator."""
    import argparse
    import json

    from calozdc.cli import train as train_cli
    from calozdc.data import save, simulate
    from calozdc.models import registry

    original = registry.build_model  # the CLI's model at the tiny size
    tiny = {**TINY, "filters": (4, 4), "warmup_steps": 1}
    monkeypatch.setattr(registry, "build_model",
                        lambda family, *a, **k: original(family, *a, **{**k, **tiny}))
    path = tmp_path / "ecal.h5"
    save(simulate("ecal20", 40, seed=2), str(path))
    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers(dest="command"))
    run_dir = tmp_path / "run"
    args = parser.parse_args(["train", "vqgan", "--data", str(path), "--epochs", "1",
                              "--batch-size", "16", "--run-dir", str(run_dir), "--quiet"])
    assert args.func(args) == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert {"d_loss", "adaptive_weight", "prior_loss"} <= set(history)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["family"] == "vqgan"
    model = keras.saving.load_model(run_dir / "model.keras")
    assert isinstance(model, VQGenerator) and isinstance(model.vqvae, VQGAN)
    out = model.generate(np.array([[1000.0], [5000.0], [20000.0]]), seed=0)
    assert out.shape == (3, 20, 20, 1) and out.min() >= 0.0 and np.all(np.isfinite(out))
