"""Conditional residual MLP: a velocity/denoising network for small vectors."""

import keras
from keras import layers

from calozdc.layers.sinusoidal_embedding import SinusoidalEmbedding


@keras.saving.register_keras_serializable(package="calozdc")
class ConditionalMLP(keras.Model):
    """Residual MLP on a vector state, conditioned on time and particle conditions.

    The network of the flow family's energy model (the total deposited energy of a shower,
    a vector of size 1) and of any other low-dimensional state. It takes the same dict
    inputs as :class:`~calozdc.models.ddim.ConditionalUNet` (``noisy_showers`` is the
    state, ``(B, state_dim)``), so the DDIM and flow samplers drive either network. Time is
    embedded with sinusoids, the conditions (multiplied by ``condition_mask``, the mask
    appended, so ``mask = 0`` is the learned null condition of classifier-free guidance)
    with a dense layer; their sum modulates every residual block (FiLM, Perez et al. 2018).
    The output layer is zero-initialised, so an untrained network predicts 0.

    Args:
        state_dim: size of the state vector.
        condition_dim: number of condition features ``k``.
        width: hidden width.
        blocks: number of residual blocks.
        embedding_dim: size of the time and condition embeddings (even).
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: dict with ``"noisy_showers"`` ``(B, state_dim)``, ``"timesteps"``
            ``(B, 1)``, ``"conditions"`` ``(B, k)``, ``"condition_mask"`` ``(B, 1)``.

    Returns:
        Tensor ``(B, state_dim)`` (float32 under mixed precision).

    Example:

    >>> net = ConditionalMLP(state_dim=1, condition_dim=5)
    >>> v = net({"noisy_showers": z, "timesteps": t, "conditions": c,
    ...          "condition_mask": ones})
    """

    def __init__(self, state_dim, condition_dim, width=64, blocks=3, embedding_dim=32,
                 **kwargs):
        for name, value, low in (("state_dim", state_dim, 1), ("condition_dim", condition_dim, 1),
                                 ("width", width, 1), ("blocks", blocks, 1)):
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value}")
        if int(embedding_dim) < 2 or int(embedding_dim) % 2:
            raise ValueError(
                f"`embedding_dim` must be an even integer >= 2. Received: embedding_dim={embedding_dim}"
            )
        state_dim, condition_dim, width = int(state_dim), int(condition_dim), int(width)
        blocks, embedding_dim = int(blocks), int(embedding_dim)
        inputs = {
            "noisy_showers": keras.Input((state_dim,), name="noisy_showers"),
            "timesteps": keras.Input((1,), name="timesteps"),
            "conditions": keras.Input((condition_dim,), name="conditions"),
            "condition_mask": keras.Input((1,), name="condition_mask"),
        }
        t_emb = SinusoidalEmbedding(embedding_dim, name="time_sinusoids")(inputs["timesteps"])
        mask = inputs["condition_mask"]
        c = layers.Concatenate(name="condition_with_mask")([inputs["conditions"] * mask, mask])
        c_emb = layers.Dense(embedding_dim, activation="silu", name="condition_dense")(c)
        emb = layers.Concatenate(name="embedding")([t_emb, c_emb])
        x = layers.Dense(width, name="stem")(inputs["noisy_showers"])
        for i in range(blocks):
            h = layers.LayerNormalization(name=f"block{i}_norm")(x)
            film = layers.Dense(2 * width, name=f"block{i}_film")(emb)
            scale, shift = keras.ops.split(film, 2, axis=-1)
            h = h * (1.0 + scale) + shift
            h = layers.Dense(width, activation="silu", name=f"block{i}_dense1")(h)
            h = layers.Dense(width, name=f"block{i}_dense2")(h)
            x = layers.Add(name=f"block{i}_add")([x, h])
        x = layers.Activation("silu", name="out_act")(x)
        out = layers.Dense(state_dim, kernel_initializer="zeros", dtype="float32",
                           name="out_dense")(x)
        super().__init__(inputs=inputs, outputs=out, **kwargs)
        self.image_shape = (state_dim,)
        self.state_dim = state_dim
        self.condition_dim = condition_dim
        self.width = width
        self.blocks = blocks
        self.embedding_dim = embedding_dim

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "state_dim": self.state_dim,
            "condition_dim": self.condition_dim,
            "width": self.width,
            "blocks": self.blocks,
            "embedding_dim": self.embedding_dim,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
