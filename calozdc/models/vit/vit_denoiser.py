"""ViT denoiser (or velocity network) with the DDIM / flow-matching dict inputs."""

import keras
from keras import layers

from calozdc.layers.condition_token import ConditionToken
from calozdc.layers.patch_embedding import PatchEmbedding
from calozdc.layers.patch_to_image import PatchToImage
from calozdc.layers.position_embedding import PositionEmbedding
from calozdc.layers.sinusoidal_embedding import SinusoidalEmbedding
from calozdc.layers.transformer_block import TransformerBlock
from calozdc.models.vit.backbones import EPSILON, KERNEL_INIT, _check_common, _check_image_shape


@keras.saving.register_keras_serializable(package="calozdc")
class ViTDenoiser(keras.Model):
    """A ViT in place of :class:`~calozdc.models.ddim.ConditionalUNet`: same inputs and output.

    The noisy shower is cut into ``p × p`` patches (zero-padded to a multiple of ``p``) with
    learned positions; the timestep (sinusoids → Dense → SiLU) and the masked conditions
    (``[p · mask, mask]``, so that classifier-free guidance's null condition is a token too)
    become two extra tokens put first, as in U-ViT; after the pre-LN transformer blocks the
    two tokens are dropped, a final layer norm and a zero-initialised
    :class:`~calozdc.layers.PatchToImage` head give the prediction (ε, v or the velocity: the
    task model decides). Usable as the ``denoiser`` of :class:`~calozdc.models.DDIM` and the
    velocity network of :class:`~calozdc.models.FlowMatching` (timesteps in ``[0, 1000]``).

    Args:
        image_shape: ``(H, W, C)`` of the showers.
        condition_dim: number of condition features ``k``.
        hidden_dim: token width ``d`` (even).
        num_heads: attention heads (divide ``d``).
        num_layers: transformer blocks.
        patch_size: side ``p`` of a patch (zn44: 4 gives 11 × 11 = 121 tokens).
        mlp_ratio: MLP width of a block in units of ``d``.
        dropout: MLP dropout rate of the blocks, in [0, 1).
        seed: base seed of the dropout layers (None: unseeded).
        **kwargs: :class:`keras.Model` arguments (``name``...).

    Call arguments:
        inputs: dict with ``"noisy_showers"`` ``(B, H, W, C)``, ``"timesteps"`` ``(B, 1)``,
            ``"conditions"`` ``(B, k)`` and ``"condition_mask"`` ``(B, 1)`` (1: conditioned,
            0: unconditional), as every calozdc denoiser.

    Returns:
        ``(B, H, W, C)`` (float32 under mixed precision).

    Example:

    >>> net = ViTDenoiser((44, 44, 1), 1, hidden_dim=64, num_layers=2)
    >>> ddim = DDIM(net, NoiseSchedule("cosine", 1000))  # doctest: +SKIP

    References:
        Bao et al., "All are Worth Words: A ViT Backbone for Diffusion Models", CVPR 2023,
        arXiv:2209.12152 (time and condition as tokens); Peebles & Xie, "Scalable Diffusion
        Models with Transformers", ICCV 2023, arXiv:2212.09748 (zero-initialised output).
    """

    def __init__(self, image_shape, condition_dim, hidden_dim=64, num_heads=4, num_layers=4,
                 patch_size=4, mlp_ratio=4, dropout=0.0, seed=None, **kwargs):
        image_shape = _check_image_shape(image_shape)
        if isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 1:
            raise ValueError(f"`condition_dim` must be a positive integer. "
                             f"Received: condition_dim={condition_dim!r}")
        dropout = _check_common(hidden_dim, num_heads, num_layers, dropout, patch_size,
                                mlp_ratio, "transformer", 1)
        if hidden_dim % 2:
            raise ValueError(f"`hidden_dim` must be even (sinusoidal time embedding). "
                             f"Received: hidden_dim={hidden_dim}")
        inputs = {
            "noisy_showers": keras.Input(image_shape, name="noisy_showers"),
            "timesteps": keras.Input((1,), name="timesteps"),
            "conditions": keras.Input((condition_dim,), name="conditions"),
            "condition_mask": keras.Input((1,), name="condition_mask"),
        }
        t = SinusoidalEmbedding(hidden_dim, name="time_sinusoids")(inputs["timesteps"])
        t = layers.Dense(hidden_dim, activation="silu", kernel_initializer=KERNEL_INIT,
                         name="time_dense")(t)
        mask = inputs["condition_mask"]
        c = layers.Concatenate(name="condition_with_mask")([inputs["conditions"] * mask, mask])
        x = PatchEmbedding(patch_size, hidden_dim, kernel_initializer=KERNEL_INIT,
                           name="patch_embedding")(inputs["noisy_showers"])
        x = PositionEmbedding(name="positions")(x)
        x = ConditionToken(hidden_dim, kernel_initializer=KERNEL_INIT,
                           name="condition_token")([x, c])
        x = ConditionToken(hidden_dim, kernel_initializer=KERNEL_INIT, name="time_token")([x, t])
        for i in range(num_layers):
            x = TransformerBlock(num_heads, mlp_ratio * hidden_dim, dropout, epsilon=EPSILON,
                                 kernel_initializer=KERNEL_INIT,
                                 seed=None if seed is None else seed + 2 * i, name=f"block{i}")(x)
        x = layers.Cropping1D((2, 0), name="drop_time_condition_tokens")(x)
        x = layers.LayerNormalization(epsilon=EPSILON, name="norm")(x)
        # Zero-initialised output (as the U-Net's): the first predictions are 0.
        x = PatchToImage(patch_size, image_shape, kernel_initializer="zeros", dtype="float32",
                         name="to_image")(x)
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        self.image_shape = image_shape
        self.condition_dim = condition_dim
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.patch_size = patch_size
        self.mlp_ratio = mlp_ratio
        self.dropout = dropout
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": list(self.image_shape),
            "condition_dim": self.condition_dim,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "patch_size": self.patch_size,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
