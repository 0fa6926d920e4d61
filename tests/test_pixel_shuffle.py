import keras
import numpy as np
import pytest

from calozdc.layers.pixel_shuffle import PixelShuffle2D, PixelUnshuffle2D


def _numpy_shuffle(x, fh, fw):
    """Reference depth_to_space written as explicit loops."""
    b, h, w, cin = x.shape
    c = cin // (fh * fw)
    out = np.zeros((b, h * fh, w * fw, c), x.dtype)
    for i in range(fh):
        for j in range(fw):
            for k in range(c):
                out[:, i::fh, j::fw, k] = x[:, :, :, (i * fw + j) * c + k]
    return out


@pytest.mark.parametrize("factor", [2, (2, 3), (1, 2)])
def test_shuffle_matches_numpy_reference(factor):
    fh, fw = (factor, factor) if isinstance(factor, int) else factor
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 2 * fh * fw)).astype("float32")
    y = keras.ops.convert_to_numpy(PixelShuffle2D(factor)(x))
    np.testing.assert_array_equal(y, _numpy_shuffle(x, fh, fw))
    assert y.shape == (2, 3 * fh, 4 * fw, 2)


@pytest.mark.parametrize("factor", [2, (2, 3)])
def test_unshuffle_is_inverse(factor):
    fh, fw = (factor, factor) if isinstance(factor, int) else factor
    x = np.random.default_rng(1).normal(size=(2, 4 * fh, 2 * fw, 3)).astype("float32")
    down = PixelUnshuffle2D(factor)(x)
    assert tuple(down.shape) == (2, 4, 2, 3 * fh * fw)
    back = keras.ops.convert_to_numpy(PixelShuffle2D(factor)(down))
    np.testing.assert_array_equal(back, x)
    # and the other way round
    y = np.random.default_rng(2).normal(size=(2, 4, 2, 3 * fh * fw)).astype("float32")
    again = keras.ops.convert_to_numpy(PixelUnshuffle2D(factor)(PixelShuffle2D(factor)(y)))
    np.testing.assert_array_equal(again, y)


def test_in_functional_model_and_config_round_trip(tmp_path):
    inp = keras.Input((5, 5, 8))
    out = PixelUnshuffle2D(5)(PixelShuffle2D(2)(inp))
    model = keras.Model(inp, out)
    assert model.output_shape == (None, 2, 2, 50)
    layer = PixelShuffle2D((2, 3), name="ps")
    clone = PixelShuffle2D.from_config(layer.get_config())
    assert clone.factor == (2, 3)
    x = np.random.default_rng(3).normal(size=(1, 5, 5, 8)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
    )


@pytest.mark.parametrize("factor", [0, (2,), "2", (2, -1), 1.5])
def test_bad_factor(factor):
    with pytest.raises(ValueError, match="factor"):
        PixelShuffle2D(factor)


def test_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        PixelShuffle2D(2)(np.zeros((1, 2, 2, 3), "float32"))
    with pytest.raises(ValueError, match="divisible"):
        PixelUnshuffle2D(2)(np.zeros((1, 3, 2, 1), "float32"))
