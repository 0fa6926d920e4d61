"""ViT layers (calozdc.layers) and backbones (calozdc.models.vit): shapes, padding, the condition
token, masks, configs, saving, a GAN / VQ-VAE step with ViT networks and the ZDC peer's sizes."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.layers import (
    ConditionToken,
    MixerBlock,
    PatchEmbedding,
    PatchToImage,
    PositionEmbedding,
    TransformerBlock,
)
from calozdc.models.vit import (
    ZDC_PARAMETERS,
    ViTDenoiser,
    grid_shape,
    vit_decoder,
    vit_discriminator,
    vit_encoder,
    vit_generator,
    zdc_gan_networks,
    zdc_vq_backbones,
)


def np_(x):
    return ops.convert_to_numpy(x)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _numpy_patches(x, p):
    """Reference: centred zero padding to multiples of p, row-major patches, (row, col, ch)."""
    b, h, w, c = x.shape
    ph, pw = (-h) % p, (-w) % p
    x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    gh, gw = x.shape[1] // p, x.shape[2] // p
    out = np.zeros((b, gh * gw, p * p * c), x.dtype)
    for i in range(gh):
        for j in range(gw):
            out[:, i * gw + j] = x[:, i * p:(i + 1) * p, j * p:(j + 1) * p, :].reshape(b, -1)
    return out


def _identity_patch_layers(image_shape, p):
    """PatchEmbedding and PatchToImage whose kernels are identities (d = p·p·C)."""
    d = p * p * image_shape[-1]
    embed = PatchEmbedding(p, d)
    embed.build((None, *image_shape))
    embed.kernel.assign(np.eye(d, dtype="float32"))
    head = PatchToImage(p, image_shape)
    n = int(np.prod(grid_shape(image_shape, p)))
    head.build((None, n, d))
    head.kernel.assign(np.eye(d, dtype="float32").reshape(d, p, p, image_shape[-1]))
    return embed, head


# ----------------------------------------------------------------------------------- layers
@pytest.mark.parametrize("image_shape,p", [((5, 6, 2), 4), ((44, 44, 1), 8), ((8, 8, 1), 4)])
def test_patch_embedding_pads_and_orders_like_the_reference(image_shape, p):
    x = _rng().normal(size=(2, *image_shape)).astype("float32")
    embed, head = _identity_patch_layers(image_shape, p)
    tokens = np_(embed(x))
    np.testing.assert_allclose(tokens, _numpy_patches(x, p), atol=1e-6)
    gh, gw = grid_shape(image_shape, p)
    assert tokens.shape == (2, gh * gw, p * p * image_shape[-1])
    assert embed.compute_output_shape((None, *image_shape)) == (None, gh * gw, tokens.shape[-1])
    # the head is the exact inverse: padding added by the embedding is cropped again
    np.testing.assert_allclose(np_(head(tokens)), x, atol=1e-6)


def test_zn44_grid_and_padding():
    assert grid_shape((44, 44, 1), 8) == (6, 6)  # 44 → 48, 2 pixels each side (the peer)
    assert grid_shape((20, 20, 1), 8) == (3, 3)
    x = np.zeros((1, 44, 44, 1), "float32")
    x[0, 0, 0, 0] = 1.0  # top-left pixel sits at (2, 2) of the first padded 8 × 8 patch
    embed, _ = _identity_patch_layers((44, 44, 1), 8)
    tokens = np_(embed(x))
    assert tokens[0, 0, 2 * 8 + 2] == 1.0 and tokens.sum() == 1.0


def test_patch_to_image_bias_is_per_channel():
    head = PatchToImage(2, (3, 3, 2), bias_initializer=keras.initializers.Constant(0.5))
    out = np_(head(np.zeros((4, 4, 5), "float32")))
    assert out.shape == (4, 3, 3, 2) and np.allclose(out, 0.5)
    assert head.count_params() == 5 * 2 * 2 * 2 + 2  # d p² C + C, a ConvTranspose's count


def test_position_embedding_adds_one_vector_per_position():
    layer = PositionEmbedding()
    x = _rng(1).normal(size=(3, 7, 4)).astype("float32")
    y = np_(layer(x))
    emb = np_(layer.embeddings)
    assert emb.shape == (7, 4) and np.std(emb) > 0
    np.testing.assert_allclose(y - x, np.broadcast_to(emb, x.shape), atol=1e-6)


def test_condition_token_is_prepended():
    layer = ConditionToken(4)
    tokens = _rng(2).normal(size=(3, 5, 4)).astype("float32")
    cond = _rng(3).normal(size=(3, 2)).astype("float32")
    y = np_(layer([tokens, cond]))
    assert y.shape == (3, 6, 4)
    np.testing.assert_allclose(y[:, 1:], tokens, atol=1e-6)
    expected = cond @ np_(layer.kernel) + np_(layer.bias)
    np.testing.assert_allclose(y[:, 0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="embed_dim=8"):
        ConditionToken(8)([tokens, cond])


def test_transformer_block_counts_masks_and_equivariance():
    d, n = 8, 5
    block = TransformerBlock(2, 4 * d, dropout=0.5, seed=0)
    x = _rng(4).normal(size=(2, n, d)).astype("float32")
    y = np_(block(x))
    assert y.shape == (2, n, d)
    assert block.count_params() == 12 * d * d + 13 * d  # the peer's per-block count
    # inference is deterministic; training draws dropout masks
    np.testing.assert_allclose(np_(block(x)), y, atol=1e-6)
    assert not np.allclose(np_(block(x, training=True)), y, atol=1e-4)
    # no mask: permuting the tokens permutes the output
    perm = np.array([3, 0, 4, 1, 2])
    np.testing.assert_allclose(np_(block(x[:, perm])), y[:, perm], atol=1e-5)
    # causal mask: token i does not see tokens after it
    causal = np_(block(x, use_causal_mask=True))
    x2 = x.copy()
    x2[:, 3:] += 1.0
    changed = np_(block(x2, use_causal_mask=True))
    np.testing.assert_allclose(changed[:, :3], causal[:, :3], atol=1e-5)
    assert not np.allclose(changed[:, 3:], causal[:, 3:])
    # an explicit mask equal to the causal one gives the same output
    mask = np.tril(np.ones((n, n), bool))[None].repeat(2, 0)
    np.testing.assert_allclose(np_(block(x, attention_mask=mask)), causal, atol=1e-5)
    with pytest.raises(ValueError, match="num_heads=3"):
        TransformerBlock(3, 16)(x)


def test_mixer_block_counts_and_token_mixing():
    n, d = 5, 6
    block = MixerBlock(7, 9)
    x = _rng(5).normal(size=(2, n, d)).astype("float32")
    y = np_(block(x))
    assert y.shape == (2, n, d)
    assert block.count_params() == (n * 7 + 7 + 7 * n + n) + (d * 9 + 9 + 9 * d + d) + 4 * d
    x2 = x.copy()
    # the token MLP mixes positions: token 0 sees a change of token 4 (not a constant shift,
    # which the layer norm over channels would remove)
    x2[:, 4] += _rng(6).normal(size=(2, d))
    assert not np.allclose(np_(block(x2))[:, 0], y[:, 0])


@pytest.mark.parametrize("layer", [
    PatchEmbedding(4, 8, name="pe"), PositionEmbedding(name="pos"), ConditionToken(8),
    TransformerBlock(2, 16, dropout=0.1, epsilon=1e-5, seed=3), MixerBlock(4, 8),
    PatchToImage(4, (6, 6, 2)),
])
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)).get_config() == config


@pytest.mark.parametrize("make", [
    lambda: PatchEmbedding(0, 8), lambda: PatchEmbedding(4, -1),
    lambda: TransformerBlock(2, 16, dropout=1.0), lambda: PatchToImage(4, (6, 6)),
    lambda: vit_generator((44, 44, 1), 9, 10, hidden_dim=10, num_heads=4),
    lambda: vit_generator((44, 44, 1), 9, 10, 8, 2, 1, block="cnn"),
    lambda: vit_discriminator((44, 44, 1), 9, 8, 2, 1, head_units=(8, 8)),
    lambda: vit_discriminator((44, 44, 1), 9, 8, 2, 1, output="prob"),
    lambda: vit_encoder((44, 44), 8),
])
def test_bad_arguments_raise_one_value_error(make):
    with pytest.raises(ValueError, match="Received"):
        make()


# ----------------------------------------------------------------------------------- backbones
TINY = {"hidden_dim": 8, "num_heads": 2, "num_layers": 1, "patch_size": 4}


def run(model, inputs):
    """A forward pass at inference, compiled on JAX/TensorFlow (much faster than eager JAX)."""
    return np.asarray(model.predict_on_batch(inputs))


@pytest.fixture(scope="module")
def tiny_gan_networks():
    return (vit_generator((12, 12, 1), 2, 4, output_activation="softplus", seed=1, **TINY),
            vit_discriminator((12, 12, 1), 2, seed=2, **TINY))


def test_backbones_shapes_and_conventions(tiny_gan_networks):
    g, d = tiny_gan_networks
    z = _rng(6).normal(size=(3, 4)).astype("float32")
    p = _rng(7).normal(size=(3, 2)).astype("float32")
    x = run(g, [z, p])
    assert x.shape == (3, 12, 12, 1) and x.min() >= 0  # softplus output
    prob = run(d, [x, p])
    assert prob.shape == (3, 1) and ((prob > 0) & (prob < 1)).all()
    # the condition token conditions the output
    assert not np.allclose(run(g, [z, p + 1.0]), x)
    assert g.get_layer("condition_token").count_params() == 2 * 8 + 8
    enc = vit_encoder((10, 10, 1), 5, **TINY)  # 10 → 12 padded: 3 × 3 codes
    dec = vit_decoder((10, 10, 1), 5, 2, **TINY)
    assert enc.output_shape == (None, 3, 3, 5) and dec.input_shape[0] == (None, 3, 3, 5)
    codes = run(enc, _rng(8).normal(size=(3, 10, 10, 1)).astype("float32"))
    assert codes.shape == (3, 3, 3, 5)
    assert run(dec, [codes, p]).shape == (3, 10, 10, 1)
    mixer = vit_generator((12, 12, 1), 2, 4, block="mixer", tokens_mlp_dim=6, **TINY)
    assert run(mixer, [z, p]).shape == (3, 12, 12, 1)
    assert not any(isinstance(layer, PositionEmbedding) for layer in mixer.layers)
    assert any(isinstance(layer, MixerBlock) for layer in mixer.layers)


def test_peer_parameter_counts():
    """The ZDC peer's GAN() and image VQ-VAE sizes (shared/peers/zdc/ARCH.md, RESULTS.md)."""
    generator, discriminator = zdc_gan_networks()
    assert generator.count_params() == 915_841 == ZDC_PARAMETERS["generator"]
    assert discriminator.count_params() == 1_422_337 == ZDC_PARAMETERS["discriminator"]
    assert generator.output_shape == (None, 44, 44, 1)
    assert generator.input_shape == [(None, 10), (None, 9)]
    encoder, decoder = zdc_vq_backbones()
    # the peer's encoder plus its pre_embedding Dense(96 → 256), which we keep in the encoder
    assert encoder.count_params() == 457_248 + 24_832
    # the peer's (unconditional) decoder plus our condition token Dense(9 → 96)
    assert decoder.count_params() == 481_633 + 9 * 96 + 96
    assert encoder.output_shape == (None, 6, 6, 256)


def test_generator_and_discriminator_save_and_load_same_outputs(tiny_gan_networks, tmp_path):
    g, d = tiny_gan_networks
    z = _rng(9).normal(size=(2, 4)).astype("float32")
    p = _rng(10).normal(size=(2, 2)).astype("float32")
    for model, inputs in ((g, [z, p]), (d, [run(g, [z, p]), p])):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(run(loaded, inputs), run(model, inputs), atol=1e-6)
        assert loaded.count_params() == model.count_params()
    logit = vit_discriminator((12, 12, 1), 2, output="logit", **TINY)
    assert logit.layers[-1].name == "logit"


def test_gan_with_vit_backbone_fits_one_step():
    from calozdc.models.gan import build_conditional_gan

    model = build_conditional_gan((12, 12, 1), 2, backbone="vit", latent_dim=4, vit_heads=2,
                                  vit_layers=1, patch_size=4, hidden_dim=8, seed=0)
    assert any(isinstance(layer, TransformerBlock) for layer in model.generator.layers)
    # one step: tracing costs more than it saves, except on JAX (eager op by op is slower)
    model.run_eagerly = keras.backend.backend() != "jax"
    x = np.abs(_rng(11).normal(size=(8, 12, 12, 1))).astype("float32")
    c = _rng(12).normal(size=(8, 2)).astype("float32")
    before = [np_(w).copy() for w in (model.generator.trainable_weights[0],
                                      model.discriminator.trainable_weights[0])]
    history = model.fit(x, c, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][0]) and np.isfinite(history.history["g_loss"][0])
    after = [np_(w) for w in (model.generator.trainable_weights[0],
                              model.discriminator.trainable_weights[0])]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(after, before))
    from calozdc.models.gan import build_two_step_gan

    two_step = build_two_step_gan((12, 12, 1), 2, backbone="vit", latent_dim=4, vit_heads=2,
                                  vit_layers=1, patch_size=4, hidden_dim=8, seed=0)
    assert two_step.generator.count_params() == model.generator.count_params()
    with pytest.raises(ValueError, match="backbone='vae'"):
        build_conditional_gan((12, 12, 1), 2, backbone="vae")
    with pytest.raises(ValueError, match="heads='mask_value'"):
        build_conditional_gan((12, 12, 1), 2, backbone="vit", heads="mask_value")


def test_vqvae_takes_vit_backbones():
    from calozdc.models import VQVAE

    encoder = vit_encoder((8, 8, 1), 3, **TINY)
    decoder = vit_decoder((8, 8, 1), 3, 2, **TINY)
    model = VQVAE(encoder, decoder, num_codes=8)
    assert model.latent_shape == (2, 2, 3) and model.condition_dim == 2
    x = _rng(13).normal(size=(4, 8, 8, 1)).astype("float32")
    c = _rng(14).normal(size=(4, 2)).astype("float32")
    out = model((x, ops.convert_to_tensor(c)))
    assert tuple(out["reconstruction"].shape) == (4, 8, 8, 1)
    assert tuple(out["indices"].shape) == (4, 2, 2)


def test_vit_denoiser_plugs_into_ddim_and_saves(tmp_path):
    from calozdc.models import DDIM, NoiseSchedule

    net = ViTDenoiser((10, 10, 1), 2, hidden_dim=8, num_heads=2, num_layers=1, patch_size=4,
                      seed=0)
    rng = _rng(15)
    inputs = {"noisy_showers": rng.normal(size=(4, 10, 10, 1)).astype("float32"),
              "timesteps": rng.uniform(0, 1000, size=(4, 1)).astype("float32"),
              "conditions": rng.normal(size=(4, 2)).astype("float32"),
              "condition_mask": np.ones((4, 1), "float32")}
    out = run(net, inputs)
    assert out.shape == (4, 10, 10, 1) and np.allclose(out, 0.0)  # zero-initialised head
    ddim = DDIM(net, NoiseSchedule("cosine", 20), p_uncond=0.5, ema_decay=None, seed=0)
    assert ddim.image_shape == (10, 10, 1) and ddim.condition_dim == 2
    ddim.compile(optimizer=keras.optimizers.Adam(1e-2),
                 run_eagerly=keras.backend.backend() != "jax")
    x = rng.normal(size=(8, 10, 10, 1)).astype("float32")
    c = rng.normal(size=(8, 2)).astype("float32")
    ddim.fit(x, c, batch_size=8, epochs=1, verbose=0)
    trained = run(net, inputs)
    assert np.abs(trained).max() > 0
    # the condition mask reaches the output: unconditional != conditional prediction
    uncond = dict(inputs, condition_mask=np.zeros((4, 1), "float32"))
    assert not np.allclose(run(net, uncond), trained)
    path = tmp_path / "denoiser.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ViTDenoiser) and loaded.get_config() == net.get_config()
    np.testing.assert_allclose(run(loaded, inputs), trained, atol=1e-6)


def test_cli_config_selects_the_vit_backbone():
    """``calozdc train gan --set backbone=vit`` / ``--preset zdc-vit`` resolve to ViT networks."""
    from calozdc.cli import train_config
    from calozdc.models.vit.presets import ZDC_GAN
    from calozdc.presets import get_preset

    preset = get_preset("gan", "zdc-vit")
    assert preset["backbone"] == "vit"
    # the preset's builder arguments are the sizes of zdc_gan_networks (counted above): the
    # builder's token width and head widths default to (d, d, d // 2) = the peer's
    d = preset["hidden_dim"]
    assert (d, preset["latent_dim"], preset["vit_heads"], preset["vit_layers"],
            preset["patch_size"], preset["dropout"]) == tuple(
        ZDC_GAN[k] for k in ("hidden_dim", "latent_dim", "num_heads", "num_layers",
                             "patch_size", "dropout"))
    assert ZDC_GAN["token_dim"] == d and ZDC_GAN["head_units"] == (d, d, d // 2)
    sets = [("backbone", "vit"), ("hidden_dim", 8), ("latent_dim", 4), ("vit_heads", 2),
            ("vit_layers", 1), ("patch_size", 4)]
    config = train_config.resolve("gan", sets=sets)
    assert config["model"]["backbone"] == "vit"
    model = train_config.build_model(config, (12, 12, 1), 2, None, None)
    assert model.generator.get_layer("block0").num_heads == 2
    assert model.discriminator.get_layer("patch_embedding").patch_size == 4
    with pytest.raises(ValueError, match="backbone"):
        train_config.build_model(train_config.resolve("gan", sets=[("backbone", "rnn")]),
                                 (12, 12, 1), 2, None, None)
