"""Conditional patch discriminator of the VQ-GAN (a functional ``keras.Model``)."""

import keras


def patch_discriminator(image_shape, condition_dim, filters=(32, 64), name="patch_discriminator"):
    """PatchGAN discriminator ``[showers (H, W, C), conditions (k,)] → [logits, *features]``.

    The conditions are mapped by a dense layer to an ``(H, W, 1)`` plane concatenated with
    the shower; ``len(filters)`` stride-2 4×4 convolutions with LeakyReLU(0.2) follow and a
    3×3 convolution gives one logit per patch, ``(H / 2^s, W / 2^s, 1)`` (float32). The
    outputs after each stage are returned too, for feature matching. No normalisation layers
    (no batch statistics in the train step).

    Args:
        image_shape: ``(H, W, C)``.
        condition_dim: number of condition features ``k``.
        filters: channels per stride-2 stage.
        name: model name.

    References:
        Isola et al. 2017, "Image-to-image translation with conditional adversarial
        networks", arXiv:1611.07004 (PatchGAN).
        Esser, Rombach & Ommer 2021, arXiv:2012.09841 (patch discriminator of the VQ-GAN).
    """
    filters = tuple(filters)
    if not filters or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters):
        raise ValueError(f"`filters` must be a non-empty tuple of positive ints. Received: "
                         f"filters={filters!r}")
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (H, W, C). Received: image_shape={image_shape}")
    if isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 1:
        raise ValueError(f"`condition_dim` must be an integer >= 1. Received: "
                         f"condition_dim={condition_dim!r}")
    h, w = image_shape[:2]
    showers = keras.Input(image_shape, name="showers")
    conditions = keras.Input((condition_dim,), name="conditions")
    c = keras.layers.Dense(h * w, name="condition_plane")(conditions)
    c = keras.layers.Reshape((h, w, 1))(c)
    x = keras.layers.Concatenate()([showers, c])
    features = []
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 4, strides=2, padding="same", name=f"down_{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act_{i}")(x)
        features.append(x)
    logits = keras.layers.Conv2D(1, 3, padding="same", dtype="float32", name="patch_logits")(x)
    return keras.Model([showers, conditions], [logits] + features, name=name)
