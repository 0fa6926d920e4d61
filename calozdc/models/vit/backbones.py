"""ViT backbones: generator, discriminator, VQ-VAE encoder and decoder (functional models).

Each function returns a functional ``keras.Model`` with the inputs and outputs of the CNN
backbone it replaces, so it plugs into the same family:

* :func:`vit_generator` ``[z (B, l), p (B, k)] → (B, H, W, C)`` and :func:`vit_discriminator`
  ``[x (B, H, W, C), p (B, k)] → (B, 1)`` probabilities, as
  :func:`calozdc.models.gan.cnn_generator` / :func:`~calozdc.models.gan.cnn_discriminator`
  (:class:`~calozdc.models.gan.ConditionalGAN`, :class:`~calozdc.models.gan.TwoStepGAN`);
* :func:`vit_encoder` ``(B, H, W, C) → (B, gh, gw, code_dim)`` and :func:`vit_decoder`
  ``[(B, gh, gw, code_dim), p (B, k)] → (B, H, W, C)``, as
  :func:`calozdc.models.vqvae.backbones.conv_encoder` / ``conv_decoder``
  (:class:`~calozdc.models.VQVAE`).

The layout is the ViT of the ZDC peer (github.com/m-wojnar/zdc, ``architectures/vit.py``):
images are zero-padded to a multiple of the patch, cut into ``p × p`` patches
(:class:`~calozdc.layers.PatchEmbedding`), given learned positions, and the conditions become
one extra token put first (:class:`~calozdc.layers.ConditionToken`) and dropped after the
pre-LN transformer blocks (:class:`~calozdc.layers.TransformerBlock`); a
:class:`~calozdc.layers.PatchToImage` head turns tokens back into an image. ``block="mixer"``
uses MLP-Mixer blocks instead (:class:`~calozdc.layers.MixerBlock`, no position embedding, as
the peer's ``mlp_mixer.py``). Dense kernels are lecun-normal, layer norms have ε = 1e-6 and
GELUs the tanh form, flax's defaults, so that :mod:`calozdc.models.vit.presets` rebuilds the
peer's networks with its exact parameter counts.

References:
    Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021, arXiv:2010.11929;
    Tolstikhin et al., "MLP-Mixer", NeurIPS 2021, arXiv:2105.01601;
    M. Wojnar, ZDC thesis (seed 002), github.com/m-wojnar/zdc.
"""

import keras

from calozdc.layers._vit_checks import padding, positive_int, rate
from calozdc.layers.condition_token import ConditionToken
from calozdc.layers.mixer_block import MixerBlock
from calozdc.layers.patch_embedding import PatchEmbedding
from calozdc.layers.patch_to_image import PatchToImage
from calozdc.layers.position_embedding import PositionEmbedding
from calozdc.layers.transformer_block import TransformerBlock, gelu_tanh
from calozdc.models.gan.cnn_generator import _check_activation

BLOCKS = ("transformer", "mixer")
#: Flax's ``nn.Dense`` kernel initialiser (the peer's); Keras' default is glorot-uniform.
KERNEL_INIT = "lecun_normal"
#: Flax's ``nn.LayerNorm`` ε (Keras' default is 1e-3).
EPSILON = 1e-6


def _check_image_shape(image_shape):
    try:
        shape = tuple(int(s) for s in image_shape)
        ok = len(shape) == 3 and min(shape) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("`image_shape` must be three positive integers (H, W, C), e.g. "
                         f"(44, 44, 1). Received: image_shape={image_shape!r}")
    return shape


def grid_shape(image_shape, patch_size):
    """``(gh, gw)``: the patch grid of an image ``(H, W, C)`` padded to multiples of
    ``patch_size`` (zn44 with 8 × 8 patches: ``(6, 6)``, 36 tokens)."""
    h, w, _ = _check_image_shape(image_shape)
    positive_int(patch_size, "patch_size")
    return ((h + sum(padding(h, patch_size))) // patch_size,
            (w + sum(padding(w, patch_size))) // patch_size)


def _check_common(hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio, block,
                  tokens_mlp_dim):
    positive_int(hidden_dim, "hidden_dim")
    positive_int(num_heads, "num_heads")
    positive_int(num_layers, "num_layers")
    positive_int(patch_size, "patch_size")
    positive_int(mlp_ratio, "mlp_ratio")
    positive_int(tokens_mlp_dim, "tokens_mlp_dim")
    if block not in BLOCKS:
        raise ValueError(f"`block` must be one of {BLOCKS}. Received: block={block!r}")
    if block == "transformer" and hidden_dim % num_heads:
        raise ValueError(f"`hidden_dim` must be divisible by num_heads={num_heads}. "
                         f"Received: hidden_dim={hidden_dim}")
    return rate(dropout)


def _layer_seed(seed, i):
    return None if seed is None else int(seed) + i


def _blocks(x, block, num_layers, num_heads, mlp_dim, tokens_mlp_dim, dropout, seed):
    """``num_layers`` transformer (or mixer) blocks; block ``i``'s dropouts use seeds
    ``seed + 2i`` and ``seed + 2i + 1``."""
    for i in range(num_layers):
        if block == "transformer":
            x = TransformerBlock(num_heads, mlp_dim, dropout, epsilon=EPSILON,
                                 kernel_initializer=KERNEL_INIT, seed=_layer_seed(seed, 2 * i),
                                 name=f"block{i}")(x)
        else:
            x = MixerBlock(tokens_mlp_dim, mlp_dim, epsilon=EPSILON,
                           kernel_initializer=KERNEL_INIT, name=f"block{i}")(x)
    return x


def _condition_and_blocks(x, conditions, hidden_dim, block, num_layers, num_heads, mlp_ratio,
                          tokens_mlp_dim, dropout, seed):
    """Positions (transformer only), the condition token first, the blocks, the token dropped."""
    if block == "transformer":
        x = PositionEmbedding(name="positions")(x)
    if conditions is not None:
        x = ConditionToken(hidden_dim, kernel_initializer=KERNEL_INIT,
                           name="condition_token")([x, conditions])
    x = _blocks(x, block, num_layers, num_heads, mlp_ratio * hidden_dim, tokens_mlp_dim,
                dropout, seed)
    if conditions is not None:
        x = keras.layers.Cropping1D((1, 0), name="drop_condition_token")(x)
    return x


def vit_generator(image_shape=(44, 44, 1), condition_dim=9, latent_dim=10, hidden_dim=128,
                  num_heads=4, num_layers=4, dropout=0.1, patch_size=8, token_dim=None,
                  mlp_ratio=4, block="transformer", tokens_mlp_dim=128, output_activation=None,
                  seed=None, name="generator"):
    """Conditional ViT generator ``G(z, p)``, a functional ``keras.Model([z, p]) → x``.

    Layout (the ZDC peer's GAN generator): ``concat(z, p)`` → Dense(N · t) (linear) → N tokens
    of width ``t = token_dim`` → Dense(d) + learned positions → condition token Dense(k → d)
    put first → ``num_layers`` pre-LN transformer blocks → condition token dropped →
    :class:`~calozdc.layers.PatchToImage` (one ``p × p`` patch per token, cropped to H × W) →
    ``output_activation``. ``N = gh · gw`` is the patch grid of the padded image (zn44, p = 8:
    6 × 6 = 36).

    Args:
        image_shape: ``(H, W, C)`` of a shower (any size: padded to multiples of ``p``).
        condition_dim: number of condition features ``k``.
        latent_dim: size of the noise vector ``z``.
        hidden_dim: token width ``d`` of the transformer.
        num_heads: attention heads (divide ``d``).
        num_layers: transformer (or mixer) blocks.
        dropout: rate of the MLP dropouts in each block, in [0, 1).
        patch_size: side ``p`` of a patch.
        token_dim: width ``t`` of the tokens made from ``(z, p)`` (None: ``d``; the peer: 128).
        mlp_ratio: MLP width of a block in units of ``d`` (ViT: 4).
        block: ``"transformer"`` or ``"mixer"`` (MLP-Mixer blocks, no positions).
        tokens_mlp_dim: hidden width of a mixer block's token MLP (``block="mixer"`` only).
        output_activation: None (linear) or a Keras activation, e.g. ``"softplus"`` (as
            :func:`calozdc.models.gan.cnn_generator`); the peer uses ``relu(x + 0.5)``.
        seed: base seed of the dropout layers (None: unseeded).
        name: model name.

    Returns:
        ``keras.Model`` with inputs ``[z (B, latent_dim), p (B, condition_dim)]`` and output
        ``(B, H, W, C)`` (float32 under mixed precision).

    References:
        Dosovitskiy et al. 2021, arXiv:2010.11929; github.com/m-wojnar/zdc
        (``models/gan/gan.py``, ``architectures/vit.py``).
    """
    image_shape = _check_image_shape(image_shape)
    positive_int(condition_dim, "condition_dim")
    positive_int(latent_dim, "latent_dim")
    dropout = _check_common(hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio,
                            block, tokens_mlp_dim)
    token_dim = hidden_dim if token_dim is None else positive_int(token_dim, "token_dim")
    _check_activation(output_activation)
    gh, gw = grid_shape(image_shape, patch_size)

    z = keras.Input((latent_dim,), name="z")
    p = keras.Input((condition_dim,), name="conditions")
    x = keras.layers.Concatenate(name="inputs")([z, p])
    x = keras.layers.Dense(gh * gw * token_dim, kernel_initializer=KERNEL_INIT,
                           name="dense_in")(x)
    x = keras.layers.Reshape((gh * gw, token_dim), name="tokens")(x)
    x = keras.layers.Dense(hidden_dim, kernel_initializer=KERNEL_INIT,
                           name="token_embedding")(x)
    x = _condition_and_blocks(x, p, hidden_dim, block, num_layers, num_heads, mlp_ratio,
                              tokens_mlp_dim, dropout, seed)
    x = PatchToImage(patch_size, image_shape, dtype="float32", name="to_image")(x)
    out = keras.layers.Activation(output_activation or "linear", dtype="float32",
                                  name="shower")(x)
    return keras.Model([z, p], out, name=name)


def vit_discriminator(image_shape=(44, 44, 1), condition_dim=9, hidden_dim=128, num_heads=4,
                      num_layers=4, dropout=0.1, patch_size=8, head_units=None, mlp_ratio=4,
                      block="transformer", tokens_mlp_dim=128, output="probability", seed=None,
                      name="discriminator"):
    """Conditional ViT discriminator ``D(x, p)``, a functional ``keras.Model([x, p]) → (B, 1)``.

    Layout (the ZDC peer's GAN discriminator): patches (zero-padded) → Dense(d) + learned
    positions → condition token put first → ``num_layers`` pre-LN transformer blocks →
    condition token dropped → LayerNorm → Dense(u₀) per token → flatten → Dense(u₁) → GELU →
    Dense(u₂) → GELU → Dense(1) (logit) → sigmoid (``output="probability"``, what
    :class:`~calozdc.models.gan.ConditionalGAN` expects; the sigmoid has no weights).

    Args:
        image_shape: ``(H, W, C)`` of a shower.
        condition_dim: number of condition features ``k``.
        hidden_dim: token width ``d``.
        num_heads: attention heads (divide ``d``).
        num_layers: transformer (or mixer) blocks.
        dropout: rate of the MLP dropouts in each block, in [0, 1).
        patch_size: side ``p`` of a patch.
        head_units: ``(u₀, u₁, u₂)`` widths of the head (None: ``(d, d, d // 2)``; the peer:
            ``(128, 128, 64)``).
        mlp_ratio: MLP width of a block in units of ``d``.
        block: ``"transformer"`` or ``"mixer"``.
        tokens_mlp_dim: hidden width of a mixer block's token MLP.
        output: ``"probability"`` (default) or ``"logit"``.
        seed: base seed of the dropout layers (None: unseeded).
        name: model name.

    Returns:
        ``keras.Model`` with inputs ``[x (B, H, W, C), p (B, condition_dim)]`` and output
        ``(B, 1)`` float32.

    References:
        Dosovitskiy et al. 2021, arXiv:2010.11929; github.com/m-wojnar/zdc
        (``models/gan/gan.py``).
    """
    image_shape = _check_image_shape(image_shape)
    positive_int(condition_dim, "condition_dim")
    dropout = _check_common(hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio,
                            block, tokens_mlp_dim)
    if head_units is None:
        head_units = (hidden_dim, hidden_dim, max(1, hidden_dim // 2))
    try:
        head_units = tuple(positive_int(u, "head_units") for u in head_units)
        ok = len(head_units) == 3
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("`head_units` must be three positive integers (u0, u1, u2) or None. "
                         f"Received: head_units={head_units!r}")
    if output not in ("probability", "logit"):
        raise ValueError("`output` must be 'probability' or 'logit'. "
                         f"Received: output={output!r}")

    x_in = keras.Input(image_shape, name="showers")
    p = keras.Input((condition_dim,), name="conditions")
    x = PatchEmbedding(patch_size, hidden_dim, kernel_initializer=KERNEL_INIT,
                       name="patch_embedding")(x_in)
    x = _condition_and_blocks(x, p, hidden_dim, block, num_layers, num_heads, mlp_ratio,
                              tokens_mlp_dim, dropout, seed)
    x = keras.layers.LayerNormalization(epsilon=EPSILON, name="norm")(x)
    x = keras.layers.Dense(head_units[0], kernel_initializer=KERNEL_INIT,
                           name="token_projection")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(head_units[1], activation=gelu_tanh, kernel_initializer=KERNEL_INIT,
                           name="head0")(x)
    x = keras.layers.Dense(head_units[2], activation=gelu_tanh, kernel_initializer=KERNEL_INIT,
                           name="head1")(x)
    out = keras.layers.Dense(1, kernel_initializer=KERNEL_INIT, dtype="float32",
                             name="logit")(x)
    if output == "probability":
        out = keras.layers.Activation("sigmoid", dtype="float32", name="probability")(out)
    return keras.Model([x_in, p], out, name=name)


def vit_encoder(image_shape, code_dim, hidden_dim=96, num_heads=4, num_layers=4, dropout=0.1,
                patch_size=8, mlp_ratio=4, block="transformer", tokens_mlp_dim=128,
                name="vq_encoder"):
    """ViT encoder of a VQ-VAE: ``(B, H, W, C) → (B, gh, gw, code_dim)``.

    Layout (the peer's unconditional ViT ``Encoder``, d = 96 by default): patches → Dense(d)
    + learned positions → blocks → LayerNorm → Dense(code_dim) (the peer's
    ``pre_embedding``) → reshaped to the patch grid, the input convention of
    :class:`~calozdc.models.VQVAE` (as :func:`calozdc.models.vqvae.backbones.conv_encoder`).
    zn44 with 8 × 8 patches gives 6 × 6 = 36 codes per shower.

    Args:
        image_shape: ``(H, W, C)``.
        code_dim: size of a code vector (the quantiser's ``code_dim``).
        hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio, block,
            tokens_mlp_dim: as in :func:`vit_discriminator`.
        name: model name.

    Returns:
        ``keras.Model``: images ``(B, H, W, C)`` → codes ``(B, gh, gw, code_dim)``.
    """
    image_shape = _check_image_shape(image_shape)
    positive_int(code_dim, "code_dim")
    dropout = _check_common(hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio,
                            block, tokens_mlp_dim)
    gh, gw = grid_shape(image_shape, patch_size)
    inputs = keras.Input(image_shape, name="showers")
    x = PatchEmbedding(patch_size, hidden_dim, kernel_initializer=KERNEL_INIT,
                       name="patch_embedding")(inputs)
    x = _condition_and_blocks(x, None, hidden_dim, block, num_layers, num_heads, mlp_ratio,
                              tokens_mlp_dim, dropout, None)
    x = keras.layers.LayerNormalization(epsilon=EPSILON, name="norm")(x)
    x = keras.layers.Dense(code_dim, kernel_initializer=KERNEL_INIT, name="to_codes")(x)
    outputs = keras.layers.Reshape((gh, gw, code_dim), name="code_grid")(x)
    return keras.Model(inputs, outputs, name=name)


def vit_decoder(image_shape, code_dim, condition_dim, hidden_dim=96, num_heads=4, num_layers=4,
                dropout=0.1, patch_size=8, mlp_ratio=4, block="transformer", tokens_mlp_dim=128,
                output_activation=None, name="vq_decoder"):
    """Conditional ViT decoder of a VQ-VAE: ``[(B, gh, gw, code_dim), p (B, k)] → (B, H, W, C)``.

    Layout (the peer's ViT ``Decoder``, d = 96 by default): the code grid as ``gh · gw`` tokens →
    Dense(d) + learned positions → condition token put first → blocks → condition token
    dropped → :class:`~calozdc.layers.PatchToImage` → ``output_activation`` (default linear:
    model space). The input convention of :class:`~calozdc.models.VQVAE` (as
    :func:`calozdc.models.vqvae.backbones.conv_decoder`).

    Args:
        image_shape: ``(H, W, C)`` of the output.
        code_dim: size of a code vector.
        condition_dim: number of condition features ``k``.
        hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio, block,
            tokens_mlp_dim: as in :func:`vit_generator`.
        output_activation: None (linear) or a Keras activation.
        name: model name.

    Returns:
        ``keras.Model`` with inputs ``[latent (B, gh, gw, code_dim), conditions (B, k)]`` and
        output ``(B, H, W, C)`` (float32 under mixed precision).
    """
    image_shape = _check_image_shape(image_shape)
    positive_int(code_dim, "code_dim")
    positive_int(condition_dim, "condition_dim")
    dropout = _check_common(hidden_dim, num_heads, num_layers, dropout, patch_size, mlp_ratio,
                            block, tokens_mlp_dim)
    _check_activation(output_activation)
    gh, gw = grid_shape(image_shape, patch_size)
    latent = keras.Input((gh, gw, code_dim), name="latent")
    conditions = keras.Input((condition_dim,), name="conditions")
    x = keras.layers.Reshape((gh * gw, code_dim), name="tokens")(latent)
    x = keras.layers.Dense(hidden_dim, kernel_initializer=KERNEL_INIT,
                           name="token_embedding")(x)
    x = _condition_and_blocks(x, conditions, hidden_dim, block, num_layers, num_heads,
                              mlp_ratio, tokens_mlp_dim, dropout, None)
    x = PatchToImage(patch_size, image_shape, dtype="float32", name="to_image")(x)
    outputs = keras.layers.Activation(output_activation or "linear", dtype="float32",
                                      name="reconstruction")(x)
    return keras.Model([latent, conditions], outputs, name=name)
