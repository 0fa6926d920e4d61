"""Conditional CNN discriminator D(x, p) of seed 000 (PixelUnshuffle ×2 → 3×3 → dense)."""

import keras

from calozdc.layers.pixel_shuffle import PixelUnshuffle2D
from calozdc.models.gan.blocks import (
    check_dropout,
    check_image_shape,
    check_positive_int,
    conv_block,
    layer_seed,
    linear_block,
)

#: Seed 000 layouts: conv widths (multiples of h) at full, half and quarter resolution, and the
#: number of LinearBlocks before the output.
DISCRIMINATOR_VARIANTS = {
    "default": {"stages": ((1, 1), (2, 1), (2, 1)), "linear": 2},
    "simplified": {"stages": ((1,), (1,), (1,)), "linear": 1},
}


def cnn_discriminator(image_shape=(20, 20, 1), condition_dim=1, hidden_dim=32,
                      variant="default", dropout=0.1, seed=None, name="discriminator"):
    """Build the conditional CNN discriminator as a functional ``keras.Model([x, p]) → prob``.

    Layout (20×20 shown, ``h = hidden_dim``): the conditions are mapped by a dense layer to
    one extra image channel; stem 5×5 conv → 5×5 blocks → PixelUnshuffle(2) → (10, 10, 4h)
    → 5×5 blocks → PixelUnshuffle(2) → (5, 5, 4h) → 3×3 blocks → 3×3 'valid' conv →
    (3, 3, h) → flatten, concatenated with ``p`` → LinearBlock(4h)×n → Dense(1) → sigmoid.
    Dropout after each resolution stage.

    Args:
        image_shape: ``(H, W, C)``, H and W multiples of 4 (>= 12).
        condition_dim: number of condition features.
        hidden_dim: base width ``h``.
        variant: ``"default"`` or ``"simplified"`` (seed 000).
        dropout: dropout rate, in [0, 1).
        seed: base seed of the dropout layers (None: unseeded; on PyTorch unseeded dropout
            draws from torch's global generator, so give a seed for reproducible resumes).
        name: model name.

    Returns:
        ``keras.Model`` with inputs ``[x (B, H, W, C), p (B, condition_dim)]`` and output the
        probability ``(B, 1)`` (float32) that ``x`` is real.

    References:
        Seed 000 (W. Y. Chan, ZDC status report 2025/05/15: "default" and "simplified").
    """
    h_img, w_img, channels = check_image_shape(image_shape)
    check_positive_int(condition_dim, "condition_dim")
    check_positive_int(hidden_dim, "hidden_dim")
    dropout = check_dropout(dropout)
    if variant not in DISCRIMINATOR_VARIANTS:
        raise ValueError(
            f"`variant` must be one of {sorted(DISCRIMINATOR_VARIANTS)}. "
            f"Received: variant={variant!r}"
        )
    layout = DISCRIMINATOR_VARIANTS[variant]
    hd = hidden_dim

    x_in = keras.Input((h_img, w_img, channels), name="showers")
    p = keras.Input((condition_dim,), name="conditions")
    c = keras.layers.Dense(h_img * w_img, name="condition_map")(p)
    c = keras.layers.Reshape((h_img, w_img, 1), name="condition_image")(c)
    x = keras.layers.Concatenate(name="inputs")([x_in, c])
    x = conv_block(x, hd, 5, name="stem")
    for stage, (kernel, widths) in enumerate(zip((5, 5, 3), layout["stages"])):
        for j, mult in enumerate(widths):
            x = conv_block(x, mult * hd, kernel, name=f"stage{stage}_block{j}")
        x = keras.layers.Dropout(dropout, seed=layer_seed(seed, stage), name=f"dropout{stage}")(x)
        if stage < 2:
            x = PixelUnshuffle2D(2, name=f"pixel_unshuffle{stage}")(x)
    x = keras.layers.Conv2D(hd, 3, padding="valid", name="conv_valid")(x)
    x = keras.layers.LeakyReLU(0.2, name="conv_valid_act")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Concatenate(name="features")([x, p])
    for i in range(layout["linear"]):
        x = linear_block(x, 4 * hd, name=f"linear{i}")
    x = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    out = keras.layers.Activation("sigmoid", dtype="float32", name="probability")(x)
    return keras.Model([x_in, p], out, name=name)
