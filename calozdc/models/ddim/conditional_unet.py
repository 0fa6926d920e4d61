"""Conditional U-Net denoiser for calorimeter showers."""

import itertools

import keras
from keras import layers, ops

from calozdc.layers.sinusoidal_embedding import SinusoidalEmbedding

#: Names of the inputs of every calozdc DDIM denoiser (a dict).
DENOISER_INPUTS = ("noisy_showers", "timesteps", "conditions", "condition_mask")


def _residual_block(x, emb, width, groups, dropout, name, seed=None):
    """GroupNorm-SiLU-Conv twice, FiLM-modulated by ``emb``, with a residual path."""
    h = layers.GroupNormalization(groups, name=f"{name}_norm1")(x)
    h = layers.Activation("silu", name=f"{name}_act1")(h)
    h = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    # FiLM (Perez et al. 2018): per-channel scale and shift from time + condition embedding.
    film = layers.Dense(2 * width, name=f"{name}_film")(emb)
    film = layers.Reshape((1, 1, 2 * width), name=f"{name}_film_reshape")(film)
    scale, shift = ops.split(film, 2, axis=-1)
    h = layers.GroupNormalization(groups, name=f"{name}_norm2")(h)
    h = h * (1.0 + scale) + shift
    h = layers.Activation("silu", name=f"{name}_act2")(h)
    if dropout > 0:
        h = layers.Dropout(dropout, seed=seed, name=f"{name}_dropout")(h)
    h = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(h)
    if x.shape[-1] != width:
        x = layers.Conv2D(width, 1, name=f"{name}_skip")(x)
    return layers.Add(name=f"{name}_add")([x, h])


def _attention_block(x, heads, groups, name):
    """Self-attention over the pixels of a low-resolution feature map, residual."""
    height, width, channels = x.shape[1:]
    h = layers.GroupNormalization(groups, name=f"{name}_norm")(x)
    h = layers.Reshape((height * width, channels), name=f"{name}_tokens")(h)
    # float32 under mixed precision: attention logits/softmax are overflow-prone in float16,
    # and JAX on CPU cannot lower the float16 attention kernel (F16 x F16 -> F32 dot).
    h = layers.MultiHeadAttention(
        heads, channels // heads, dtype="float32", name=f"{name}_mha"
    )(h, h)
    h = layers.Reshape((height, width, channels), name=f"{name}_image")(h)
    return layers.Add(name=f"{name}_add")([x, h])


@keras.saving.register_keras_serializable(package="calozdc")
class ConditionalUNet(keras.Model):
    """U-Net that predicts the noise (or velocity) of a noisy shower, given t and conditions.

    Encoder levels of residual blocks at widths ``widths[0], widths[1], ...``, each level
    after the first at half the resolution (stride-2 convolutions; the image is zero-padded
    to a multiple of ``2**(len(widths) - 1)`` and the output cropped back, so zn44 runs at
    44 -> 22 -> 11 and ecal20 at 20 -> 10 -> 5 without padding), a middle block with
    optional self-attention at the lowest resolution, and a mirrored decoder with skip
    connections. The timestep is embedded with sinusoids (DDPM), the particle conditions
    with an MLP; the two embeddings are added and injected into every residual block as
    FiLM scale and shift. For classifier-free guidance the conditions are multiplied by
    ``condition_mask`` and the mask is appended to them, so ``mask = 0`` is the learned
    unconditional ("null") input. The output convolution is zero-initialised, so an
    untrained network predicts 0.

    Args:
        image_shape: ``(H, W, C)`` of the showers.
        condition_dim: number of condition features ``k``.
        widths: channels per resolution level (length >= 1).
        blocks_per_level: residual blocks per level in the encoder and the decoder.
        embedding_dim: size of the time and condition embeddings (even).
        attention: whether to add self-attention at the lowest resolution.
        attention_heads: number of attention heads (must divide ``widths[-1]``).
        groups: GroupNormalization groups (must divide every width).
        dropout: dropout rate inside the residual blocks.
        seed: seed of the dropout masks (block ``i`` uses ``seed + i``); None: unseeded
            (then ``keras.utils.set_random_seed`` decides).
        **kwargs: standard `keras.Model` arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: dict with ``"noisy_showers"`` ``(B, H, W, C)``, ``"timesteps"`` ``(B, 1)``
            (float, ``0 .. T``), ``"conditions"`` ``(B, k)`` and ``"condition_mask"``
            ``(B, 1)`` (1 = use the conditions, 0 = unconditional).

    Returns:
        Tensor ``(B, H, W, C)``: the predicted noise or velocity (float32; under a mixed
        precision policy the timestep embedding, the attention and the output layers compute
        in float32, the rest in float16/bfloat16).

    Example:

    >>> unet = ConditionalUNet(image_shape=(44, 44, 1), condition_dim=9)
    >>> out = unet({"noisy_showers": x_t, "timesteps": t, "conditions": c,
    ...             "condition_mask": ones})

    References:
        Ronneberger et al. 2015, "U-Net", arXiv:1505.04597.
        Ho, Jain & Abbeel 2020, arXiv:2006.11239, appendix B (the diffusion U-Net).
        Perez et al. 2018, "FiLM", arXiv:1709.07871.
        Ho & Salimans 2022, "Classifier-free diffusion guidance", arXiv:2207.12598.
    """

    def __init__(
        self,
        image_shape,
        condition_dim,
        widths=(32, 64, 128),
        blocks_per_level=2,
        embedding_dim=128,
        attention=True,
        attention_heads=4,
        groups=8,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(
                f"`image_shape` must be three positive integers (H, W, C). "
                f"Received: image_shape={image_shape}"
            )
        if int(condition_dim) < 1:
            raise ValueError(f"`condition_dim` must be >= 1. Received: condition_dim={condition_dim}")
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"`widths` must be positive integers. Received: widths={widths}")
        if int(blocks_per_level) < 1:
            raise ValueError(
                f"`blocks_per_level` must be >= 1. Received: blocks_per_level={blocks_per_level}"
            )
        if int(embedding_dim) < 2 or int(embedding_dim) % 2:
            raise ValueError(
                f"`embedding_dim` must be an even integer >= 2. Received: embedding_dim={embedding_dim}"
            )
        if int(groups) < 1 or any(w % int(groups) for w in widths):
            raise ValueError(
                f"`groups` must divide every width. Received: groups={groups}, widths={widths}"
            )
        if attention and (int(attention_heads) < 1 or widths[-1] % int(attention_heads)):
            raise ValueError(
                "`attention_heads` must divide widths[-1]. Received: "
                f"attention_heads={attention_heads}, widths={widths}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"`seed` must be None or an integer >= 0. Received: seed={seed!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        condition_dim, blocks_per_level = int(condition_dim), int(blocks_per_level)
        embedding_dim, groups, attention_heads = int(embedding_dim), int(groups), int(attention_heads)

        # --- functional graph ------------------------------------------------------------
        inputs = {
            "noisy_showers": keras.Input(image_shape, name="noisy_showers"),
            "timesteps": keras.Input((1,), name="timesteps"),
            "conditions": keras.Input((condition_dim,), name="conditions"),
            "condition_mask": keras.Input((1,), name="condition_mask"),
        }
        height, width_px, channels = image_shape
        factor = 2 ** (len(widths) - 1)
        pad_h, pad_w = (-height) % factor, (-width_px) % factor
        pads = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))

        t_emb = SinusoidalEmbedding(embedding_dim, name="time_sinusoids")(inputs["timesteps"])
        t_emb = layers.Dense(embedding_dim, activation="silu", name="time_dense1")(t_emb)
        t_emb = layers.Dense(embedding_dim, name="time_dense2")(t_emb)
        mask = inputs["condition_mask"]
        c = layers.Concatenate(name="condition_with_mask")([inputs["conditions"] * mask, mask])
        c_emb = layers.Dense(embedding_dim, activation="silu", name="condition_dense1")(c)
        c_emb = layers.Dense(embedding_dim, name="condition_dense2")(c_emb)
        emb = layers.Add(name="embedding")([t_emb, c_emb])
        emb = layers.Activation("silu", name="embedding_act")(emb)

        x = inputs["noisy_showers"]
        if pad_h or pad_w:
            x = layers.ZeroPadding2D(pads, name="pad")(x)
        x = layers.Conv2D(widths[0], 3, padding="same", name="stem")(x)
        block_seeds = itertools.count(0)

        def residual(x, width, name):
            block_seed = None if seed is None else seed + next(block_seeds)
            return _residual_block(x, emb, width, groups, dropout, name, block_seed)

        skips = []
        for level, width in enumerate(widths):
            for block in range(blocks_per_level):
                x = residual(x, width, f"down{level}_block{block}")
                skips.append(x)
            if level < len(widths) - 1:
                x = layers.Conv2D(
                    width, 3, strides=2, padding="same", name=f"down{level}_downsample"
                )(x)
        x = residual(x, widths[-1], "mid_block0")
        if attention:
            x = _attention_block(x, attention_heads, groups, "mid_attention")
        x = residual(x, widths[-1], "mid_block1")
        for level in reversed(range(len(widths))):
            width = widths[level]
            for block in range(blocks_per_level):
                x = layers.Concatenate(name=f"up{level}_skip{block}")([x, skips.pop()])
                x = residual(x, width, f"up{level}_block{block}")
            if level > 0:
                x = layers.UpSampling2D(2, name=f"up{level}_upsample")(x)
                x = layers.Conv2D(widths[level - 1], 3, padding="same", name=f"up{level}_conv")(x)
        x = layers.GroupNormalization(groups, name="out_norm")(x)
        x = layers.Activation("silu", name="out_act")(x)
        # The output layers compute in float32 under mixed precision (Keras' advice): the
        # prediction enters the MSE loss and the sampler's float32 update.
        x = layers.Conv2D(
            channels, 3, padding="same", kernel_initializer="zeros", dtype="float32",
            name="out_conv",
        )(x)
        if pad_h or pad_w:
            x = layers.Cropping2D(pads, dtype="float32", name="crop")(x)
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        self.image_shape = image_shape
        self.condition_dim = condition_dim
        self.widths = widths
        self.blocks_per_level = blocks_per_level
        self.embedding_dim = embedding_dim
        self.attention = bool(attention)
        self.attention_heads = attention_heads
        self.groups = groups
        self.dropout = float(dropout)
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": self.image_shape,
            "condition_dim": self.condition_dim,
            "widths": self.widths,
            "blocks_per_level": self.blocks_per_level,
            "embedding_dim": self.embedding_dim,
            "attention": self.attention,
            "attention_heads": self.attention_heads,
            "groups": self.groups,
            "dropout": self.dropout,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
