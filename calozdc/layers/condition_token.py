"""A token made from the conditions, prepended to a sequence of tokens."""

import keras
from keras import ops

from calozdc.layers._vit_checks import positive_int


@keras.saving.register_keras_serializable(package="calozdc")
class ConditionToken(keras.layers.Layer):
    """Maps the conditions linearly to one token and puts it first in the sequence.

    ``[tokens (B, N, d), conditions (B, k)] → (B, N + 1, d)`` with token 0 equal to
    ``conditions · W + b``: the ZDC peer's way of conditioning its ViT encoder and decoder
    (the token is dropped again after the transformer blocks, e.g. with
    ``keras.layers.Cropping1D((1, 0))``).

    Args:
        embed_dim: token width ``d`` (must equal the tokens' last axis).
        kernel_initializer: of ``W`` (default ``"lecun_normal"``, as flax's ``nn.Dense``).
        bias_initializer: of ``b`` (default zeros).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: ``[tokens (B, N, d), conditions (B, k)]``.

    Returns:
        Tokens ``(B, N + 1, d)``, the condition token first.

    Example:

    >>> ConditionToken(32)([np.zeros((2, 36, 32)), np.zeros((2, 9))]).shape  # doctest: +SKIP
    (2, 37, 32)

    References:
        Dosovitskiy et al. 2021, arXiv:2010.11929 (an extra learned token, eq. 1);
        M. Wojnar, ZDC thesis (seed 002) and github.com/m-wojnar/zdc (condition token).
    """

    def __init__(self, embed_dim, kernel_initializer="lecun_normal", bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = positive_int(embed_dim, "embed_dim")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _check(self, input_shape):
        try:
            tokens, conditions = input_shape
            ok = len(tokens) == 3 and len(conditions) == 2 and conditions[-1] is not None
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError("ConditionToken takes [tokens (B, N, d), conditions (B, k)]. "
                             f"Received: input_shape={input_shape}")
        if tokens[-1] is not None and int(tokens[-1]) != self.embed_dim:
            raise ValueError(f"The tokens' width must equal embed_dim={self.embed_dim}. "
                             f"Received: input_shape={input_shape}")
        return tokens, conditions

    def build(self, input_shape):
        _, conditions = self._check(input_shape)
        self.kernel = self.add_weight(shape=(int(conditions[-1]), self.embed_dim),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(self.embed_dim,), initializer=self.bias_initializer,
                                    name="bias")

    def call(self, inputs):
        tokens, conditions = inputs
        conditions = ops.cast(conditions, tokens.dtype)
        token = ops.matmul(conditions, self.kernel) + self.bias
        return ops.concatenate([ops.expand_dims(token, 1), tokens], axis=1)

    def compute_output_shape(self, input_shape):
        tokens, _ = self._check(input_shape)
        n = None if tokens[1] is None else int(tokens[1]) + 1
        return (tokens[0], n, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "embed_dim": self.embed_dim,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config
