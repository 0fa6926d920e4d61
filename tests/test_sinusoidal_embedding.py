"""SinusoidalEmbedding: values as defined (Vaswani 2017 / DDPM), config round trip."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.layers import SinusoidalEmbedding


def test_values_match_formula():
    layer = SinusoidalEmbedding(dim=6, max_period=100.0, scale=2.0)
    t = np.array([[0.0], [1.5], [7.0]], dtype="float32")
    out = np.asarray(ops.convert_to_numpy(layer(t)))
    freqs = np.array([100.0 ** (-i / 3) for i in range(3)])
    angles = 2.0 * t * freqs[None, :]
    expected = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.shape == (3, 6)
    assert layer.weights == []


def test_distinct_timesteps_give_distinct_embeddings():
    layer = SinusoidalEmbedding(dim=32)
    out = np.asarray(ops.convert_to_numpy(layer(np.arange(100, dtype="float32"))))
    distances = np.linalg.norm(out[:, None] - out[None], axis=-1)
    assert np.all(distances[~np.eye(100, dtype=bool)] > 1e-2)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), math.sqrt(16), rtol=1e-5)


def test_config_round_trip():
    layer = SinusoidalEmbedding(dim=8, max_period=500.0, scale=3.0, name="emb")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert (clone.dim, clone.max_period, clone.scale, clone.name) == (8, 500.0, 3.0, "emb")
    t = np.array([1.0, 2.0], dtype="float32")
    np.testing.assert_allclose(ops.convert_to_numpy(clone(t)), ops.convert_to_numpy(layer(t)))


@pytest.mark.parametrize(
    "kwargs, name", [({"dim": 7}, "dim"), ({"dim": 8, "max_period": 1.0}, "max_period"),
                     ({"dim": 8, "scale": 0.0}, "scale")]
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SinusoidalEmbedding(**kwargs)
