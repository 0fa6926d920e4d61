"""Building blocks of the CNN backbones (seed 000/001 ``Conv2dBlock``/``LinearBlock``)."""

import keras


def conv_block(x, filters, kernel_size, name):
    """``Conv2dBlockHkWk``: k×k convolution ('same' padding) + LeakyReLU(0.2)."""
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    return keras.layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def linear_block(x, units, name):
    """``LinearBlock``: dense + layer normalisation + LeakyReLU(0.2)."""
    x = keras.layers.Dense(units, name=f"{name}_dense")(x)
    x = keras.layers.LayerNormalization(name=f"{name}_norm")(x)
    return keras.layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def check_image_shape(image_shape):
    """Return ``(H, W, C)``; H and W must be multiples of 4 and at least 12."""
    try:
        h, w, c = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        h = w = c = 0
    if h < 12 or w < 12 or h % 4 or w % 4 or c < 1:
        raise ValueError(
            "`image_shape` must be (H, W, C) with H and W multiples of 4, at least 12 "
            f"(e.g. (20, 20, 1) or (44, 44, 1)). Received: image_shape={image_shape}"
        )
    return h, w, c


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def check_dropout(value):
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={value}")
    return float(value)


def layer_seed(seed, i):
    """Seed of the i-th seeded layer of a backbone (None stays None: unseeded)."""
    return None if seed is None else int(seed) + i
