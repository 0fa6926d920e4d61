"""Convolutional encoder/decoder backbones of the VQ-VAE, with zn44 and ecal20 defaults.

Plain functions returning functional ``keras.Model`` s (they save and load with the
:class:`~calozdc.models.VQVAE` that holds them). Any encoder ``image → (h, w, code_dim)`` and
decoder ``[latent (h, w, code_dim), conditions (k,)] → image`` can be passed instead.
"""

import keras

#: Per-geometry defaults: two stride-2 stages, so zn44 → 11×11 = 121 codes and
#: ecal20 → 5×5 = 25 codes per shower (the prior's sequence length).
GEOMETRY_DEFAULTS = {
    "zn44": {"filters": (32, 64), "code_dim": 16, "num_codes": 256},
    "ecal20": {"filters": (32, 64), "code_dim": 16, "num_codes": 128},
}


def _check_filters(filters):
    filters = tuple(filters)
    if not filters or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters):
        raise ValueError(f"`filters` must be a non-empty tuple of positive ints. Received: "
                         f"filters={filters!r}")
    return filters


def _check_image_shape(image_shape, n_stages):
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (H, W, C). Received: image_shape={image_shape}")
    factor = 2 ** n_stages
    if image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(
            f"H and W must be divisible by 2**len(filters) = {factor}. Received: "
            f"image_shape={image_shape}"
        )
    return image_shape


def conv_encoder(image_shape, code_dim, filters=(32, 64), name="vq_encoder"):
    """Encoder ``(H, W, C) → (H / 2^s, W / 2^s, code_dim)``: ``s`` stride-2 conv stages.

    Each stage is a stride-2 3×3 convolution and a 3×3 residual convolution (ReLU); a 1×1
    convolution projects to ``code_dim``.
    """
    filters = _check_filters(filters)
    image_shape = _check_image_shape(image_shape, len(filters))
    inputs = keras.Input(image_shape, name="showers")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu",
                                name=f"down_{i}")(x)
        r = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"res_{i}")(x)
        x = keras.layers.Add(name=f"add_{i}")([x, r])
    outputs = keras.layers.Conv2D(code_dim, 1, name="to_codes")(x)
    return keras.Model(inputs, outputs, name=name)


def conv_decoder(image_shape, code_dim, condition_dim, filters=(64, 32), name="vq_decoder"):
    """Decoder ``[(h, w, code_dim), (k,)] → (H, W, C)``, conditioned on the particle.

    The conditions are mapped by a dense layer to a ``(h, w, 8)`` feature map concatenated
    with the latent; ``len(filters)`` stride-2 transposed convolutions upsample to the image;
    a linear 3×3 convolution gives the output (model space, e.g. standardised log-energies).
    """
    filters = _check_filters(filters)
    image_shape = _check_image_shape(image_shape, len(filters))
    if isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 1:
        raise ValueError(f"`condition_dim` must be an integer >= 1. Received: "
                         f"condition_dim={condition_dim!r}")
    factor = 2 ** len(filters)
    h, w = image_shape[0] // factor, image_shape[1] // factor
    latent = keras.Input((h, w, code_dim), name="latent")
    conditions = keras.Input((condition_dim,), name="conditions")
    c = keras.layers.Dense(h * w * 8, activation="relu", name="condition_map")(conditions)
    c = keras.layers.Reshape((h, w, 8))(c)
    x = keras.layers.Concatenate()([latent, c])
    x = keras.layers.Conv2D(filters[0], 3, padding="same", activation="relu", name="stem")(x)
    for i, f in enumerate(filters):
        r = keras.layers.Conv2D(int(x.shape[-1]), 3, padding="same", activation="relu",
                                name=f"res_{i}")(x)
        x = keras.layers.Add(name=f"add_{i}")([x, r])
        x = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation="relu",
                                         name=f"up_{i}")(x)
    # float32 output layer under mixed precision (it feeds the loss and generate()).
    outputs = keras.layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32",
                                  name="to_image")(x)
    return keras.Model([latent, conditions], outputs, name=name)


def default_backbones(geometry, condition_dim, code_dim=None, filters=None):
    """``(encoder, decoder)`` for a geometry name or object (zn44, ecal20) or ``(H, W, C)``."""
    name = getattr(geometry, "name", geometry if isinstance(geometry, str) else None)
    if isinstance(geometry, str):
        from calozdc.data.geometry import get_geometry

        geometry = get_geometry(geometry)
    if hasattr(geometry, "shape") and hasattr(geometry, "name"):
        image_shape = (*tuple(geometry.shape), 1)
    else:
        image_shape = tuple(geometry)
    defaults = GEOMETRY_DEFAULTS.get(name, GEOMETRY_DEFAULTS["ecal20"])
    code_dim = defaults["code_dim"] if code_dim is None else code_dim
    filters = tuple(defaults["filters"] if filters is None else filters)
    encoder = conv_encoder(image_shape, code_dim, filters)
    decoder = conv_decoder(image_shape, code_dim, condition_dim, tuple(reversed(filters)))
    return encoder, decoder
