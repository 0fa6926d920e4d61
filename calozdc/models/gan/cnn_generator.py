"""CNN generator G(z, p) of seed 001 (dense stack → 3×3 → ConvTranspose → 5×5 → conv blocks →
PixelShuffle ×2), for 20×20, 44×44 and other multiple-of-4 grids."""

import keras

from calozdc.layers.pixel_shuffle import PixelShuffle2D
from calozdc.models.gan.blocks import (
    check_dropout,
    check_image_shape,
    check_positive_int,
    conv_block,
    layer_seed,
    linear_block,
)

#: Seed 001 layouts: LinearBlocks of width 4h before the last one, conv widths per stage
#: (in multiples of h) and the final blocks at full resolution.
GENERATOR_VARIANTS = {
    "default": {"linear": 3, "stage": (2, 2, 2, 4), "final": 4},
    "extended2": {"linear": 1, "stage": (2, 4), "final": 2},
}
HEADS = ("single", "mask_value")


def _check_activation(activation):
    if activation is None:
        return
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            "`output_activation` must be None or a Keras activation (name or callable). "
            f"Received: output_activation={activation!r}"
        ) from None


def cnn_generator(image_shape=(20, 20, 1), condition_dim=1, latent_dim=16, hidden_dim=32,
                  variant="default", dropout=0.1, heads="single", seed=None, name="generator",
                  output_activation=None):
    """Build the conditional CNN generator as a functional ``keras.Model([z, p]) → x``.

    Layout (H×W = 20×20 shown; ``h = hidden_dim``, any H, W multiple of 4 works, e.g. 44×44
    starts from 9×9 → 11×11): ``concat(z, p)`` → Dense(4h) → LinearBlock(4h)×n →
    LinearBlock(9h) → Dropout → reshape (3, 3, h) → ConvTranspose 3×3 → (5, 5) → 3×3 conv
    blocks → Dropout → PixelShuffle(2) → (10, 10) → 5×5 conv blocks → Dropout →
    PixelShuffle(2) → (20, 20) → 5×5 conv blocks → 1×1 convolution head.

    Args:
        image_shape: ``(H, W, C)`` of a shower, H and W multiples of 4 (>= 12).
        condition_dim: number of condition features ``p``.
        latent_dim: size of the noise vector ``z`` (>= 1; a two-step GAN feeds zeros in its
            first phase).
        hidden_dim: base width ``h`` (seed 001: 32; keep small for CPU).
        variant: ``"default"`` or ``"extended2"`` (seed 001 "Extended 2").
        dropout: dropout rate after the dense stack and each upsampling stage (seed 000: 0.1).
        heads: ``"single"`` (C output channels, linear) or ``"mask_value"`` (seed 001: two
            channels, a hit probability (sigmoid) and a value map; C must be 1).
        seed: base seed of the dropout layers (None: unseeded; on PyTorch unseeded dropout
            draws from torch's global generator, so give a seed for reproducible resumes).
        name: model name.
        output_activation: activation of the shower output (``"single"``) or of the value
            channel (``"mask_value"``): None (default, linear) or a Keras activation name or
            callable, e.g. ``"softplus"`` (``"relu"`` units can die early in training: all
            cells 0, seen at learning rates 1e-3 to 1e-2) so that the output is non-negative in a model space
            where an empty cell is 0 (``DivideByIncidentEnergy`` followed by
            ``Standardize(center=False)``); then :meth:`ConditionalGAN.generate`'s clipping
            of negative values to 0 does not bias the total response upwards.

    Returns:
        ``keras.Model`` with inputs ``[z (B, latent_dim), p (B, condition_dim)]`` and output
        ``(B, H, W, C)`` or, with mask/value heads, ``(B, H, W, 2)`` (the shower is the product
        of the two channels). The last layers compute in float32 under mixed precision.

    References:
        Seed 001 (W. Y. Chan, ZDC status report 2025/06/27: "default" and "Extended 2");
        Shi et al. 2016, arXiv:1609.05158 (pixel shuffle).
    """
    h_img, w_img, channels = check_image_shape(image_shape)
    check_positive_int(condition_dim, "condition_dim")
    check_positive_int(latent_dim, "latent_dim")
    check_positive_int(hidden_dim, "hidden_dim")
    dropout = check_dropout(dropout)
    if variant not in GENERATOR_VARIANTS:
        raise ValueError(
            f"`variant` must be one of {sorted(GENERATOR_VARIANTS)}. Received: variant={variant!r}"
        )
    if heads not in HEADS:
        raise ValueError(f"`heads` must be one of {HEADS}. Received: heads={heads!r}")
    if heads == "mask_value" and channels != 1:
        raise ValueError(
            f"Mask/value heads need one image channel. Received: image_shape={image_shape}"
        )
    _check_activation(output_activation)
    layout = GENERATOR_VARIANTS[variant]
    hd = hidden_dim
    bh, bw = h_img // 4 - 2, w_img // 4 - 2

    z = keras.Input((latent_dim,), name="z")
    p = keras.Input((condition_dim,), name="conditions")
    x = keras.layers.Concatenate(name="inputs")([z, p])
    x = keras.layers.Dense(4 * hd, name="dense_in")(x)
    for i in range(layout["linear"]):
        x = linear_block(x, 4 * hd, name=f"linear{i}")
    x = linear_block(x, bh * bw * hd, name="linear_out")
    x = keras.layers.Dropout(dropout, seed=layer_seed(seed, 0), name="dropout0")(x)
    x = keras.layers.Reshape((bh, bw, hd), name="unflatten")(x)
    x = keras.layers.Conv2DTranspose(hd, 3, padding="valid", name="deconv")(x)
    for stage, kernel in ((1, 3), (2, 5)):
        for j, mult in enumerate(layout["stage"]):
            x = conv_block(x, mult * hd, kernel, name=f"stage{stage}_block{j}")
        x = keras.layers.Dropout(dropout, seed=layer_seed(seed, stage), name=f"dropout{stage}")(x)
        # the last block of a stage has 4h channels: PixelShuffle(2) → h channels, 2× size
        x = PixelShuffle2D(2, name=f"pixel_shuffle{stage}")(x)
    for j in range(layout["final"]):
        x = conv_block(x, hd, 5, name=f"final_block{j}")
    if heads == "single":
        out = keras.layers.Conv2D(channels, 1, activation=output_activation, dtype="float32",
                                  name="shower")(x)
    else:
        mask = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
        value = keras.layers.Conv2D(1, 1, activation=output_activation, dtype="float32",
                                    name="value")(x)
        out = keras.layers.Concatenate(dtype="float32", name="mask_value")([mask, value])
    return keras.Model([z, p], out, name=name)
