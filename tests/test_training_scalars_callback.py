"""TrainingScalarsCallback: learning rates, loss scales and codebook health reach the logs and
Keras' TensorBoard event files (read back with calozdc.backend.summary)."""

import math

import keras
import numpy as np
import pytest
from _gan_helpers import LATENT, data, dense_networks

from calozdc.backend import summary
from calozdc.callbacks import TrainingScalarsCallback
from calozdc.layers import VectorQuantizerEMA
from calozdc.models import VQVAE, CodePrior, VQGenerator
from calozdc.models.gan import ConditionalGAN
from calozdc.models.vqvae import conv_decoder, conv_encoder
from calozdc.schedules import CyclicLR

G_SCHEDULE = dict(base_lr=1e-5, max_lr=1e-3, step_size_up=3, step_size_down=2, mode="triangular2")
D_SCHEDULE = dict(base_lr=2e-5, max_lr=5e-4, step_size_up=2, step_size_down=None,
                  mode="exp_range", gamma=0.9)


def cyclic_lr(t, base_lr, max_lr, step_size_up, step_size_down=None, mode="triangular",
              gamma=1.0):
    """Smith's cyclical rate with torch's up/down split (the formula of CyclicLR's docstring)."""
    down = step_size_up if step_size_down is None else step_size_down
    total = step_size_up + down
    ratio = step_size_up / total
    cycle = math.floor(1 + t / total)
    x = 1 + t / total - cycle
    s = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1),
             "exp_range": gamma ** t}[mode]
    return base_lr + (max_lr - base_lr) * s * scale


def _scalars(log_dir, tag):
    events = summary.read_events(log_dir)
    assert tag in events, sorted(events)
    return events[tag]


def _fit_gan(log_dir, ratio=(1, 2), epochs=2, on_batch=False):
    g, d = dense_networks()
    gan = ConditionalGAN(g, d, LATENT, training_ratio=ratio, seed=0)
    gan.compile(g_optimizer=keras.optimizers.Adam(CyclicLR(**G_SCHEDULE), name="g_adam"),
                d_optimizer=keras.optimizers.Adam(CyclicLR(**D_SCHEDULE), name="d_adam"))
    x, p = data(16)
    cbs = [TrainingScalarsCallback(on_batch=on_batch),
           keras.callbacks.TensorBoard(log_dir, update_freq="batch" if on_batch else "epoch")]
    history = gan.fit(x, p, batch_size=4, epochs=epochs, verbose=0, callbacks=cbs)
    return gan, history


def test_gan_learning_rates_follow_the_cyclic_schedules_in_tensorboard(tmp_path):
    log_dir = str(tmp_path)
    gan, history = _fit_gan(log_dir, ratio=(1, 2), on_batch=True)
    h = history.history
    # 4 steps per epoch; n_d:n_g = 1:2 -> G updates every step, D on steps 0, 2, 4, ...
    assert h["g_iterations"] == [4.0, 8.0] and h["d_iterations"] == [2.0, 4.0]
    for prefix, schedule in (("g_", G_SCHEDULE), ("d_", D_SCHEDULE)):
        lrs = _scalars(log_dir, f"epoch_{prefix}lr")
        its = _scalars(log_dir, f"epoch_{prefix}iterations")
        assert [s for s, _ in lrs] == [0, 1] == [s for s, _ in its]
        for (_, lr), (_, t) in zip(lrs, its):
            np.testing.assert_allclose(lr, cyclic_lr(int(t), **schedule), rtol=1e-5)
        np.testing.assert_allclose([v for _, v in lrs], h[f"{prefix}lr"], rtol=1e-6)
        # per batch (update_freq="batch"): every step's rate at that step's update count
        batch_lrs = _scalars(log_dir, f"batch_{prefix}lr")
        batch_its = dict(_scalars(log_dir, f"batch_{prefix}iterations"))
        assert len(batch_lrs) == 8
        for step, lr in batch_lrs:
            np.testing.assert_allclose(lr, cyclic_lr(int(batch_its[step]), **schedule), rtol=1e-5)
        assert len({round(v, 9) for _, v in batch_lrs}) > 2  # the rate moves
    assert sorted(int(v) for _, v in _scalars(log_dir, "batch_d_iterations")) == [1, 1, 2, 2, 3,
                                                                                    3, 4, 4]
    # the current rate equals the optimizer's own (Keras) reading after fit
    np.testing.assert_allclose(h["g_lr"][-1], float(gan.g_optimizer.learning_rate), rtol=1e-6)
    events = summary.read_events(log_dir)
    assert "epoch_g_loss" in events  # Keras' own scalars still written
    # Keras' TensorBoard reads both rates through OptimizerPair.optimizers (not the pair's 0)
    for name, prefix in (("g_adam", "g_"), ("d_adam", "d_")):
        keras_lrs = [v for _, v in events[f"epoch_learning_rate_{name}"]]
        np.testing.assert_allclose(keras_lrs, h[f"{prefix}lr"], rtol=1e-6)
    assert "epoch_learning_rate" not in events
    assert "g_loss_scale" not in h  # float32: no loss scaling


def test_loss_scale_is_logged_under_mixed_float16(tmp_path):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        gan, history = _fit_gan(str(tmp_path / "gan"), ratio=(1, 1), epochs=1)
        # a single-optimizer model: Keras wraps its optimizer in a LossScaleOptimizer
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                                  keras.layers.Dense(1, dtype="float32")])
        model.compile(keras.optimizers.SGD(0.01), "mse")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        rng = np.random.default_rng(0)
        single = model.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 1)), batch_size=4,
                           epochs=1, verbose=0,
                           callbacks=[TrainingScalarsCallback(),
                                      keras.callbacks.TensorBoard(str(tmp_path / "single"))])
    finally:
        keras.config.set_dtype_policy(policy)
    assert keras.config.dtype_policy().name == "float32"
    for prefix, optimizer in (("g_", gan.g_optimizer), ("d_", gan.d_optimizer)):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        (step, value), = _scalars(str(tmp_path / "gan"), f"epoch_{prefix}loss_scale")
        assert step == 0 and math.isfinite(value) and value > 0
        assert value == history.history[f"{prefix}loss_scale"][0]
        assert value == float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
    (_, value), = _scalars(str(tmp_path / "single"), "epoch_loss_scale")
    assert math.isfinite(value) and value > 0
    assert value == float(keras.ops.convert_to_numpy(model.optimizer.dynamic_scale))
    np.testing.assert_allclose(single.history["lr"], [0.01], rtol=1e-6)


def _tiny_vqvae(num_codes=8):
    # the shapes of tests/test_progress.py's generator (JAX reuses compiled initialisers)
    return VQVAE(conv_encoder((4, 4, 1), 3, (2,)), conv_decoder((4, 4, 1), 3, 2, (2,)),
                 quantizer=VectorQuantizerEMA(num_codes, 3, restart_after=50, seed=1,
                                              name="quantizer"))


def test_vq_model_logs_perplexity_and_dead_codes_once(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 4, 1)).astype("float32")
    c = rng.normal(size=(16, 2)).astype("float32")
    prior = CodePrior(8, 4, 2, embed_dim=4, num_heads=1, num_layers=1, name="prior")
    gen = VQGenerator(_tiny_vqvae(8), prior)
    gen.compile(optimizer=keras.optimizers.Adam(2e-3),
                prior_optimizer=keras.optimizers.Adam(CyclicLR(1e-4, 1e-3, step_size_up=5)))
    callback = TrainingScalarsCallback(dead_code_steps=2)
    before = callback.scalars(gen)
    assert before["dead_code_fraction"] == 0.0 and before["iterations"] == 0.0
    assert 1.0 <= before["codebook_perplexity"] <= 8.0  # no model metric seen yet
    # phase 1 only (the VQ-VAE); callbacks see the generator and both optimizers
    history = gen.fit((x, c), batch_size=8, epochs=2, prior_epochs=0, verbose=0,
                      callbacks=[callback, keras.callbacks.TensorBoard(str(tmp_path))])
    perplexity = _scalars(str(tmp_path), "epoch_perplexity")
    assert len(perplexity) == 2 and all(1.0 <= v <= 8.0 for _, v in perplexity)
    # the VQ-VAE logs its own (batch) perplexity: the callback does not add a second one
    assert "codebook_perplexity" not in history.history
    unused = keras.ops.convert_to_numpy(gen.vqvae.quantizer.unused_steps.value)
    (_, dead), = [e for e in _scalars(str(tmp_path), "epoch_dead_code_fraction") if e[0] == 1]
    np.testing.assert_allclose(dead, np.mean(unused >= 2), rtol=1e-6)
    assert 0.0 <= dead <= 1.0
    np.testing.assert_allclose(history.history["lr"], [2e-3, 2e-3], rtol=1e-6)
    assert history.history["iterations"] == [2.0, 4.0]
    np.testing.assert_allclose(history.history["prior_lr"], cyclic_lr(0, 1e-4, 1e-3, 5),
                               rtol=1e-6)


def test_quantizer_without_a_perplexity_metric_gets_the_codebook_perplexity():
    inputs = keras.Input((5,))
    h = keras.layers.Dense(4)(inputs)
    h = VectorQuantizerEMA(6, 4, restart_after=None, seed=2, add_commitment_loss=False)(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    rng = np.random.default_rng(1)
    history = model.fit(rng.normal(size=(12, 5)), rng.normal(size=(12, 1)), batch_size=4,
                        epochs=1, verbose=0, callbacks=[TrainingScalarsCallback()])
    layer = [lay for lay in model.layers if isinstance(lay, VectorQuantizerEMA)][0]
    counts = np.asarray(keras.ops.convert_to_numpy(layer.ema_count.value), np.float64)
    p = counts / counts.sum()
    expected = math.exp(-np.sum(p * np.log(p)))
    value = history.history["codebook_perplexity"][0]
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert 1.0 <= value <= 6.0


def test_validation_and_config():
    for bad in ({"dead_code_steps": 0}, {"dead_code_steps": 2.5}, {"on_batch": 1}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            TrainingScalarsCallback(**bad)
    assert TrainingScalarsCallback(True, 3).get_config() == {"on_batch": True,
                                                             "dead_code_steps": 3}
