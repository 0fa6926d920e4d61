"""VQVAE, CodePrior and VQGenerator: two-phase fit, sampling rules, units, save/load."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.data import simulate
from calozdc.data import transforms as T
from calozdc.losses import AsymmetricExponentialMSE
from calozdc.models import VQVAE, CodePrior, VQGenerator
from calozdc.models.registry import build_model
from calozdc.models.vqvae import conv_decoder, conv_encoder, default_backbones, sample_logits

TINY = dict(num_codes=16, code_dim=4, filters=(4, 4), prior_embed_dim=8, prior_layers=1,
            prior_heads=2, restart_after=4)


def _transforms():
    return T.Chain([T.Log1p(), T.Standardize()]), T.Standardize(axis="feature")


@pytest.fixture(scope="module")
def trained():
    """A tiny ecal20 generator fitted through the registry, as `calozdc train vqvae` does."""
    data = simulate("ecal20", 96, seed=0)
    train = data
    shower_t, cond_t = _transforms()
    shower_t.fit(train.showers, train.conditions)
    cond_t.fit(train.conditions)
    model = build_model("vqvae", data.geometry, 1, shower_transform=shower_t,
                        condition_transform=cond_t, seed=0, **TINY)
    batches = train.batches(24, shower_transform=shower_t, condition_transform=cond_t)
    codebook = np.array(ops.convert_to_numpy(model.vqvae.quantizer.codebook.value))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, self.model.name, sorted(logs)))

    history = model.fit(batches, epochs=2, prior_epochs=1, callbacks=[Record()], verbose=0)
    return dict(model=model, data=data, history=history, codebook=codebook, seen=seen)


def test_two_phase_fit_logs_codebook_metrics(trained):
    model, history, seen = trained["model"], trained["history"].history, trained["seen"]
    for key in ("loss", "reconstruction_loss", "commitment_loss", "perplexity",
                "codebook_usage", "prior_loss"):
        assert key in history, key
    assert len(history["loss"]) == 2 and len(history["prior_loss"]) == 1
    assert all(1.0 <= p <= 16.0 for p in history["perplexity"])
    assert all(0.0 < u <= 1.0 for u in history["codebook_usage"])
    # Callbacks see the generator and one run of 3 epochs; the prior's logs are prefixed.
    assert [(e, name) for e, name, _ in seen] == [(0, model.name), (1, model.name),
                                                  (2, model.name)]
    assert "prior_loss" in seen[2][2] and "perplexity" in seen[0][2]
    # The EMA codebook moved during phase 1 (inside fit, compiled on JAX/TF).
    moved = np.abs(ops.convert_to_numpy(model.vqvae.quantizer.codebook.value) - trained["codebook"])
    assert moved.max() > 1e-3


def test_generate_shapes_units_and_seeds(trained):
    model, data = trained["model"], trained["data"]
    cond = data.conditions[:5]
    showers, codes = model.generate(cond, seed=1, return_codes=True)
    assert showers.shape == (5, 20, 20, 1) and showers.dtype == np.float32
    assert np.all(np.isfinite(showers)) and showers.min() >= 0.0
    assert codes.shape == (5, 5, 5) and codes.min() >= 0 and codes.max() < 16
    # Physical units: the decoded model-space showers mapped back by the inverse transform.
    cond_model = model.condition_transform.forward(cond)
    u = model.vqvae.decode_model_space(codes, np.asarray(cond_model, "float32"))
    expected = np.clip(model.shower_transform.inverse(u, cond), 0.0, None)
    np.testing.assert_allclose(showers, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.generate(cond, seed=1), showers)
    assert not np.array_equal(model.generate(cond, seed=2), showers)
    assert model.generate(data.conditions[:5, 0], seed=1).shape == (5, 20, 20, 1)
    with pytest.raises(ValueError, match="conditions.shape"):
        model.generate(np.ones((3, 2)))


def test_save_load_round_trip_same_generation(trained, tmp_path):
    model, data = trained["model"], trained["data"]
    path = tmp_path / "vq.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VQGenerator)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded.vqvae.quantizer.codebook.value),
                                  ops.convert_to_numpy(model.vqvae.quantizer.codebook.value))
    cond = data.conditions[:4]
    np.testing.assert_allclose(loaded.generate(cond, seed=7), model.generate(cond, seed=7),
                               rtol=1e-5, atol=1e-5)
    assert loaded.shower_transform.get_config() == model.shower_transform.get_config()


def test_encode_decode_reconstruct(trained):
    vqvae, data = trained["model"].vqvae, trained["data"]
    showers, cond = data.showers[:6], data.conditions[:6]
    idx = vqvae.encode(showers, cond)
    assert idx.shape == (6, 5, 5) and idx.dtype == np.int32
    assert idx.min() >= 0 and idx.max() < 16
    rec = vqvae.reconstruct(showers, cond)
    assert rec.shape == showers.shape and rec.min() >= 0.0
    np.testing.assert_allclose(vqvae.decode(idx, cond), rec, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="indices"):
        vqvae.decode(np.full((6, 5, 5), 16), cond)


def test_sample_logits_top_k_and_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 12)).astype("float32")
    top3 = np.argsort(-logits, axis=1)[:, :3]
    draws = ops.convert_to_numpy(sample_logits(logits, 2.0, top_k=3, seed=0))
    assert all(d in row for d, row in zip(draws, top3))
    assert np.mean(draws != top3[:, 0]) > 0.2  # not only the argmax
    argmax = logits.argmax(axis=1)
    np.testing.assert_array_equal(ops.convert_to_numpy(sample_logits(logits, 0.0)), argmax)
    np.testing.assert_array_equal(ops.convert_to_numpy(sample_logits(logits, 1e-4, seed=1)),
                                  argmax)
    np.testing.assert_array_equal(ops.convert_to_numpy(sample_logits(logits, 1.0, top_k=1,
                                                                     seed=2)), argmax)
    with pytest.raises(ValueError, match="top_k=13"):
        sample_logits(logits, 1.0, top_k=13)
    with pytest.raises(ValueError, match="temperature=-1"):
        sample_logits(logits, -1.0)


def test_prior_sampling_respects_top_k_and_greedy():
    prior = CodePrior(num_codes=10, sequence_length=4, condition_dim=2, embed_dim=8,
                      num_heads=2, num_layers=1, seed=0)
    cond = np.random.default_rng(0).normal(size=(6, 2)).astype("float32")
    logits = ops.convert_to_numpy(prior({"codes": np.zeros((6, 4), "int32"), "conditions": cond}))
    assert logits.shape == (6, 4, 10)
    greedy = prior.sample(cond, temperature=0.0)
    np.testing.assert_array_equal(prior.sample(cond, temperature=1.0, top_k=1, seed=3), greedy)
    # Greedy codes are the argmax of the logits given the codes before them (causality).
    logits = ops.convert_to_numpy(prior({"codes": greedy, "conditions": cond}))
    np.testing.assert_array_equal(logits.argmax(-1), greedy)
    codes = prior.sample(cond, temperature=1.0, top_k=3, seed=4)
    logits = ops.convert_to_numpy(prior({"codes": codes, "conditions": cond}))
    ranks = (logits > np.take_along_axis(logits, codes[..., None], -1)).sum(-1)
    assert codes.min() >= 0 and codes.max() < 10 and ranks.max() < 3
    np.testing.assert_array_equal(prior.sample(cond, top_k=3, seed=4), codes)


@pytest.mark.parametrize("jit", [True, False])
def test_vqvae_fit_updates_codebook_with_jit_and_custom_loss(jit):
    # jit=False on JAX: the trainer passes numpy batches (once failed in the decoder call)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    c = rng.normal(size=(16, 2)).astype("float32")
    model = VQVAE(conv_encoder((8, 8, 1), 3, (4,)), conv_decoder((8, 8, 1), 3, 2, (4,)),
                  num_codes=8, reconstruction_loss=AsymmetricExponentialMSE(a=0.5, b=0.5))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  jit_compile=jit and keras.backend.backend() != "torch")
    before = np.array(ops.convert_to_numpy(model.quantizer.codebook.value))
    history = model.fit((x, c), batch_size=8, epochs=1, verbose=0)
    after = ops.convert_to_numpy(model.quantizer.codebook.value)
    assert np.abs(after - before).max() > 1e-4
    assert np.isfinite(history.history["loss"][0])
    clone = VQVAE.from_config(model.get_config())
    assert isinstance(clone.reconstruction_loss, AsymmetricExponentialMSE)
    with pytest.raises(ValueError, match="code_dim"):
        from calozdc.layers import VectorQuantizerEMA
        VQVAE(model.encoder, model.decoder, VectorQuantizerEMA(8, 5))
    with pytest.raises(ValueError, match="reconstruction_loss"):
        VQVAE(model.encoder, model.decoder, reconstruction_loss="huber?")


def test_prior_learning_rate_decays_on_a_cosine_per_epoch_and_is_restored(tmp_path):
    data = simulate("ecal20", 48, seed=1)
    shower_t, cond_t = _transforms()
    shower_t.fit(data.showers, data.conditions)
    cond_t.fit(data.conditions)
    batches = data.batches(24, shower_transform=shower_t, condition_transform=cond_t)
    rates = {}
    for decay_to in (0.1, None):
        model = build_model("vqvae", data.geometry, 1, shower_transform=shower_t,
                            condition_transform=cond_t, seed=0, prior_learning_rate=2e-3,
                            prior_decay_to=decay_to, total_energy=False, **TINY)
        history = model.fit(batches, epochs=1, prior_epochs=4, verbose=0).history
        rates[decay_to] = history.get("prior_learning_rate")
        # The optimizer's own rate is back where it started (a second phase starts there).
        assert float(ops.convert_to_numpy(model.prior.optimizer.learning_rate)) == \
            pytest.approx(2e-3)
    expected = [2e-3 * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * i / 4))) for i in range(4)]
    np.testing.assert_allclose(rates[0.1], expected, rtol=1e-5)
    assert rates[None] is None  # no decay: the rate is not touched nor logged
    path = str(tmp_path / "decay.keras")
    model.prior_decay_to = 0.1
    model.save(path)
    assert keras.saving.load_model(path).prior_decay_to == 0.1
    with pytest.raises(ValueError, match="prior_decay_to=1.5"):
        VQGenerator(model.vqvae, model.prior, prior_decay_to=1.5)


def test_generator_validation():
    encoder, decoder = conv_encoder((8, 8, 1), 3, (4,)), conv_decoder((8, 8, 1), 3, 1, (4,))
    vqvae = VQVAE(encoder, decoder, num_codes=8)
    with pytest.raises(ValueError, match="sequence_length"):
        VQGenerator(vqvae, CodePrior(8, 15, 1, embed_dim=8, num_heads=2, num_layers=1))
    with pytest.raises(ValueError, match="top_k"):
        VQGenerator(vqvae, top_k=9)
    with pytest.raises(ValueError, match="compile"):
        VQGenerator(vqvae).fit((np.zeros((2, 8, 8, 1)), np.zeros((2, 1))))


@pytest.mark.large
def test_zn44_reconstruction_beats_mean_shower():
    data = simulate("zn44", 256, seed=1)
    train, test = data.split((0.75, 0.25), seed=0)
    shower_t, cond_t = _transforms()
    encoder, decoder = default_backbones("zn44", train.conditions.shape[1], code_dim=8,
                                         filters=(16, 16))
    model = VQVAE(encoder, decoder, num_codes=64, shower_transform=shower_t,
                  condition_transform=cond_t)
    model.fit_transforms(train.showers, train.conditions)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    x, c = model.preprocess(train.showers, train.conditions)
    model.fit((x, c), batch_size=32, epochs=4, verbose=0)
    xt, ct = model.preprocess(test.showers, test.conditions)
    rec = model.decode_model_space(model.encode_model_space(xt), ct)
    mse = float(np.mean((rec - xt) ** 2))
    baseline = float(np.mean((x.mean(axis=0, keepdims=True) - xt) ** 2))
    print(f"\nzn44 model-space MSE: VQ-VAE {mse:.3f}, mean shower {baseline:.3f}")
    assert mse < 0.7 * baseline


@pytest.mark.large
def test_train_cli_vqvae_writes_a_generating_run_dir(tmp_path, monkeypatch):
    """`calozdc train vqvae --data FILE` trains both stages and saves the whole generator."""
    import argparse
    import json

    from calozdc.cli import train as train_cli
    from calozdc.data import save
    from calozdc.models import registry

    original = registry.build_model  # the CLI's model, at the tiny size (compiles fast on JAX)
    monkeypatch.setattr(registry, "build_model",
                        lambda family, *a, **k: original(family, *a, **{**TINY, **k}))

    path = tmp_path / "ecal.h5"
    save(simulate("ecal20", 40, seed=2), str(path))
    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers(dest="command"))
    run_dir = tmp_path / "run"
    args = parser.parse_args(["train", "vqvae", "--data", str(path), "--epochs", "1",
                              "--batch-size", "16", "--run-dir", str(run_dir), "--quiet"])
    assert args.func(args) == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert "perplexity" in history and "prior_loss" in history
    model = keras.saving.load_model(run_dir / "model.keras")
    assert isinstance(model, VQGenerator)
    out = model.generate(np.array([[1000.0], [5000.0], [20000.0]]), seed=0)
    assert out.shape == (3, 20, 20, 1) and out.min() >= 0.0 and np.all(np.isfinite(out))
