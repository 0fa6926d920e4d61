import os

import keras
import numpy as np
import pytest
from _gan_helpers import LATENT, SHAPE, dense_networks

from calozdc.backend import summary
from calozdc.callbacks import (
    PhysicsMetricsCallback,
    ShowerImagesCallback,
    log_colour_image,
    physics_metrics,
)
from calozdc.metrics import channel_sums, wasserstein_per_channel
from calozdc.models.gan import ConditionalGAN


def _tiny_gan():
    g, d = dense_networks()
    model = ConditionalGAN(g, d, LATENT, seed=0)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    return model


def _real(n=24, seed=0):
    rng = np.random.default_rng(seed)
    showers = rng.exponential(1.0, size=(n, *SHAPE)).astype("float32")
    conditions = rng.uniform(-1, 1, size=(n, 1)).astype("float32")
    return showers, conditions


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """3 epochs with both callbacks (metrics every 2 epochs, images every epoch) and Keras'
    TensorBoard callback after the metrics callback."""
    log_dir = str(tmp_path_factory.mktemp("tb"))
    showers, conditions = _real()
    model = _tiny_gan()
    metrics = PhysicsMetricsCallback(showers, conditions, every=2, seed=5,
                                     log_dir=os.path.join(log_dir, "physics"))
    images = ShowerImagesCallback(os.path.join(log_dir, "images"), conditions[:3],
                                  showers[:3], every=1, seed=2, histogram_showers=showers,
                                  histogram_conditions=conditions, scale=3)
    tensorboard = keras.callbacks.TensorBoard(os.path.join(log_dir, "keras"))
    history = model.fit(showers, conditions, batch_size=8, epochs=3, verbose=0,
                        validation_data=(showers[:8], conditions[:8]),
                        callbacks=[metrics, images, tensorboard])
    summary.close()
    return model, metrics, history, log_dir, showers, conditions


def test_metrics_reach_history_on_due_epochs_and_equal_a_direct_computation(fitted):
    model, metrics, history, _, showers, conditions = fitted
    # every=2 over 3 epochs: epoch index 1 and the last epoch (2)
    assert [h["epoch"] for h in metrics.history] == [1, 2]
    assert history.history["val_channel_w1"] == [h["val_channel_w1"] for h in metrics.history]
    assert len(history.history["g_loss"]) == 3
    generated = model.generate(conditions, seed=5)
    w1 = wasserstein_per_channel(channel_sums(showers, "ecal20"), channel_sums(generated, "ecal20"))
    np.testing.assert_allclose(metrics.history[-1]["val_channel_w1"], w1.mean(), rtol=1e-6)
    # ecal20 has one channel: the channel W1 is the total-energy W1
    np.testing.assert_allclose(metrics.history[-1]["val_total_energy_w1"], w1.mean(), rtol=1e-6)
    assert metrics.history[-1]["val_channel_w1"] > 0


def test_scalar_events_hold_the_logged_values(fitted):
    _, metrics, _, log_dir, _, _ = fitted
    events = summary.read_events(os.path.join(log_dir, "physics"))
    assert set(events) == {"physics/val_channel_w1", "physics/val_total_energy_w1"}
    steps = [s for s, _ in events["physics/val_channel_w1"]]
    values = [v for _, v in events["physics/val_channel_w1"]]
    assert steps == [1, 2]
    np.testing.assert_allclose(values, [h["val_channel_w1"] for h in metrics.history], rtol=1e-6)
    # Keras' TensorBoard callback, placed after ours, sees the metric in the logs too
    keras_events = summary.read_events(os.path.join(log_dir, "keras"))
    assert "epoch_channel_w1" in keras_events and "epoch_g_loss" in keras_events


def test_image_and_histogram_events(fitted):
    model, _, _, log_dir, showers, conditions = fitted
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(os.path.join(log_dir, "images"),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    image_tags = [t for t in tags["tensors"] if t.startswith("showers/")]
    assert sorted(image_tags) == ["showers/0", "showers/1", "showers/2"]
    assert acc.SummaryMetadata("showers/1").plugin_data.plugin_name == "images"
    image = acc.Tensors("showers/1")
    assert [e.step for e in image] == [0, 1, 2]
    # tf.summary.image stores [width, height, png]: real | gap | generated, 3 pixels per cell
    width, height = (int(v) for v in image[0].tensor_proto.string_val[:2])
    assert (height, width) == (SHAPE[0] * 3, (2 * SHAPE[1] + 1) * 3)
    hist_tags = {"histograms/total_energy/real", "histograms/total_energy/generated"}
    assert hist_tags <= set(tags["tensors"])
    # the decoded last image equals the colour map of the real and generated showers
    events = summary.read_events(os.path.join(log_dir, "images"))
    step, last = events["showers/1"][-1]
    generated = model.generate(np.concatenate([conditions[:3], conditions]), seed=2)[1]
    expected = log_colour_image([showers[1], generated], scale=3)
    assert step == 2 and last.shape == expected.shape
    assert np.abs(last.astype(int) - expected.astype(int)).max() <= 1
    # histogram counts cover all showers; the real one is the same every epoch
    real = events["histograms/total_energy/real"]
    assert [s for s, _ in real] == [0, 1, 2]
    assert all(h[:, 2].sum() == pytest.approx(len(showers)) for _, h in real)
    totals = showers.reshape(len(showers), -1).sum(1)
    assert real[0][1][0, 0] == pytest.approx(totals.min(), rel=1e-5)
    assert real[0][1][-1, 1] == pytest.approx(totals.max(), rel=1e-5)


def test_physics_metrics_zn44_has_five_channels():
    rng = np.random.default_rng(0)
    real = rng.exponential(2.0, size=(16, 44, 44)).astype("float32")
    fake = rng.exponential(2.5, size=(12, 44, 44)).astype("float32")
    out = physics_metrics(real, fake, "zn44")
    w1 = wasserstein_per_channel(channel_sums(real, "zn44"), channel_sums(fake, "zn44"))
    assert [f"channel_w1_{c}" for c in range(1, 6)] == sorted(k for k in out if k.startswith("channel_w1_"))
    np.testing.assert_allclose(out["channel_w1"], w1.mean())
    np.testing.assert_allclose([out[f"channel_w1_{c}"] for c in range(1, 6)], w1)
    same = physics_metrics(real, real, "zn44", distances=True)
    assert same["channel_w1"] == 0 and same["total_energy_w1"] == 0
    assert abs(same["fpd"]) < 1e-3 and "kpd" in same


def test_log_colour_image_scale_and_shape():
    a = np.zeros((2, 3))
    b = np.full((2, 3), np.e - 1)
    image = log_colour_image([a, b], scale=2)
    assert image.shape == (4, 14, 3) and image.dtype == np.uint8
    assert np.all(image[:, 6:8] == 255)  # white gap
    assert not np.array_equal(image[0, 0], image[0, -1])  # 0 and max have different colours


def test_invalid_arguments_name_the_value(tmp_path):
    showers, conditions = _real(4)
    with pytest.raises(ValueError, match="every=0"):
        PhysicsMetricsCallback(showers, conditions, every=0)
    with pytest.raises(ValueError, match="one shower per row"):
        ShowerImagesCallback(str(tmp_path), conditions[:2], showers[:3])
    with pytest.raises(ValueError, match="both"):
        ShowerImagesCallback(str(tmp_path), conditions, histogram_showers=showers)
    with pytest.raises(ValueError, match="step=-1"):
        summary.write_scalar(str(tmp_path), "x", 1.0, -1)
