"""Learned position embedding added to a sequence of tokens."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="calozdc")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position: ``y[:, i] = x[:, i] + E[i]``.

    ``E`` has shape ``(N, d)`` for inputs ``(B, N, d)`` (fixed ``N``). The default initialiser
    is the fan-in-scaled truncated normal of flax's ``nn.Embed``, which the ZDC peer uses.

    Args:
        initializer: of ``E`` (default ``VarianceScaling(1, "fan_in", "truncated_normal")``).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tokens ``(B, N, d)``.

    Returns:
        Tokens ``(B, N, d)``.

    Example:

    >>> PositionEmbedding()(np.zeros((2, 36, 32))).shape  # doctest: +SKIP
    (2, 36, 32)

    References:
        Dosovitskiy et al. 2021, arXiv:2010.11929 (learned 1-D position embeddings, eq. 1).
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError("PositionEmbedding takes tokens (B, N, d) with fixed N and d. "
                             f"Received: input_shape={tuple(input_shape)}")
        self.embeddings = self.add_weight(shape=(int(input_shape[1]), int(input_shape[2])),
                                          initializer=self.initializer, name="embeddings")

    def call(self, inputs):
        return inputs + ops.expand_dims(ops.cast(self.embeddings, inputs.dtype), 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config
