"""ConditionalUNet: shapes for zn44 / ecal20 / odd sizes, conditioning, null condition, config."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.models.ddim import ConditionalUNet

TINY = {"widths": (4, 8, 8), "blocks_per_level": 1, "embedding_dim": 8, "groups": 4,
        "attention_heads": 2}


def _inputs(shape, k, batch=2, seed=0, mask=1.0):
    rng = np.random.default_rng(seed)
    return {
        "noisy_showers": rng.normal(size=(batch,) + shape).astype("float32"),
        "timesteps": np.full((batch, 1), 17.0, dtype="float32"),
        "conditions": rng.normal(size=(batch, k)).astype("float32"),
        "condition_mask": np.full((batch, 1), mask, dtype="float32"),
    }


def _perturb_output_layer(unet):
    # The output convolution is zero-initialised; give it weights to see the network.
    layer = unet.get_layer("out_conv")
    rng = np.random.default_rng(1)
    layer.set_weights([0.1 * rng.normal(size=w.shape).astype("float32")
                       for w in layer.get_weights()])


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.mark.parametrize(
    "shape, k, bottleneck, padded",
    [
        ((44, 44, 1), 9, (11, 11), None),  # zn44: 44 -> 22 -> 11, no padding
        ((20, 20, 1), 1, (5, 5), None),  # ecal20: 20 -> 10 -> 5
        ((13, 7, 2), 3, (4, 2), (16, 8)),  # padded to a multiple of 4, cropped back
    ],
)
def test_output_shape_resolutions_and_zero_init(shape, k, bottleneck, padded):
    unet = ConditionalUNet(shape, k, **TINY)
    tokens = unet.get_layer("mid_attention_tokens").output.shape[1]
    assert tokens == bottleneck[0] * bottleneck[1]
    names = [layer.name for layer in unet.layers]
    if padded is None:
        assert "pad" not in names and "crop" not in names
    else:
        assert unet.get_layer("pad").output.shape[1:3] == padded
    out = unet.predict(_inputs(shape, k), verbose=0)  # one compiled call (fast on JAX)
    assert out.shape == (2,) + shape
    np.testing.assert_array_equal(out, 0.0)  # zero-initialised output conv


def test_output_depends_on_time_conditions_and_mask():
    shape, k = (8, 8, 1), 3
    unet = ConditionalUNet(shape, k, **TINY)
    _perturb_output_layer(unet)
    base = _inputs(shape, k)
    out = _np(unet(base))
    other_t = dict(base, timesteps=base["timesteps"] + 300.0)
    other_c = dict(base, conditions=base["conditions"] + 1.0)
    assert np.abs(out - _np(unet(other_t))).max() > 1e-6
    assert np.abs(out - _np(unet(other_c))).max() > 1e-6
    # The null condition (mask 0) ignores the condition values.
    null = _inputs(shape, k, mask=0.0)
    null_other = dict(null, conditions=null["conditions"] * 5.0 + 2.0)
    np.testing.assert_allclose(_np(unet(null)), _np(unet(null_other)), atol=1e-6)
    assert np.abs(_np(unet(null)) - out).max() > 1e-6


def test_config_round_trip_rebuilds_same_architecture():
    unet = ConditionalUNet((20, 20, 1), 1, attention=False, dropout=0.1, **TINY)
    config = unet.get_config()
    assert config["widths"] == (4, 8, 8) and config["attention"] is False
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(unet))
    assert isinstance(clone, ConditionalUNet)
    assert [w.shape for w in clone.weights] == [w.shape for w in unet.weights]
    assert clone.count_params() == unet.count_params()
    assert "mid_attention_mha" not in [layer.name for layer in clone.layers]


def test_seeded_dropout_masks_repeat_for_a_seed_and_differ_between_blocks():
    def dropout_outputs(seed):
        unet = ConditionalUNet((8, 8, 1), 2, attention=False, dropout=0.5, seed=seed, **TINY)
        assert unet.get_config()["seed"] == seed
        drops = [layer for layer in unet.layers if layer.name.endswith("_dropout")]
        ones = ops.ones((2, 4, 4, 4))
        return [_np(layer(ones, training=True)) for layer in drops]

    first, again, other = dropout_outputs(11), dropout_outputs(11), dropout_outputs(12)
    assert len(first) == 8  # one per residual block: 3 down, 2 middle, 3 up
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    # each block draws its own mask (seed + i), not one repeated mask
    assert not np.array_equal(first[0] == 0, first[1] == 0)
    for mask in first:
        assert 0.3 < np.mean(mask == 0) < 0.7


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"image_shape": (8, 8)}, "image_shape"),
        ({"condition_dim": 0}, "condition_dim"),
        ({"widths": ()}, "widths"),
        ({"groups": 3}, "groups"),
        ({"embedding_dim": 7}, "embedding_dim"),
        ({"attention_heads": 3}, "attention_heads"),
        ({"blocks_per_level": 0}, "blocks_per_level"),
        ({"dropout": 1.0}, "dropout"),
        ({"seed": -3}, "seed=-3"),
        ({"seed": 1.5}, "seed=1.5"),
    ],
)
def test_invalid_arguments_name_the_value(kwargs, name):
    args = dict(TINY, image_shape=(8, 8, 1), condition_dim=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        ConditionalUNet(**args)
