"""calozdc.layers.ScaledSigmoid: values, bounds, saving, validation."""

import keras
import numpy as np
import pytest
from scipy.special import expit

from calozdc.layers import ScaledSigmoid


def test_values_and_bounds():
    x = np.array([[-1e4, -2.0, 0.0, 1.5, 1e4]], "float32")
    y = keras.ops.convert_to_numpy(ScaledSigmoid(minval=0.0, maxval=9.0)(x))
    np.testing.assert_allclose(y, 9.0 * expit(x.astype(np.float64)), rtol=1e-6)
    assert y.min() >= 0.0 and y.max() <= 9.0
    z = keras.ops.convert_to_numpy(ScaledSigmoid(-1.0, 3.0, temperature=2.0)(x))
    np.testing.assert_allclose(z, -1.0 + 4.0 * expit(x.astype(np.float64) / 2),
                               rtol=1e-6, atol=1e-6)


def test_model_save_load_round_trip(tmp_path):
    inp = keras.Input((4,))
    out = ScaledSigmoid(0.0, 9.0, name="bound")(keras.layers.Dense(3)(inp))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-6)
    layer = ScaledSigmoid(1.0, 2.0, temperature=0.5)
    cfg = layer.get_config()
    assert (cfg["minval"], cfg["maxval"], cfg["temperature"]) == (1.0, 2.0, 0.5)
    assert ScaledSigmoid.from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("kwargs, match", [({"minval": 2.0, "maxval": 1.0}, "maxval"),
                                           ({"temperature": 0.0}, "temperature"),
                                           ({"minval": "a"}, "minval")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScaledSigmoid(**kwargs)
