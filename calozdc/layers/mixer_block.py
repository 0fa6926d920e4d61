"""MLP-Mixer block: an MLP across the tokens, then one across the channels (both residual)."""

import keras
from keras import ops

from calozdc.layers._vit_checks import positive_int
from calozdc.layers.transformer_block import gelu_tanh


@keras.saving.register_keras_serializable(package="calozdc")
class MixerBlock(keras.layers.Layer):
    """``x + MLP_tokens(LN(x)ᵀ)ᵀ``, then ``x + MLP_channels(LN(x))``; each MLP is
    ``Dense(hidden) → GELU (tanh) → Dense(back)``.

    A cheaper alternative to :class:`TransformerBlock` (no attention: the token-mixing MLP has
    fixed weights per pair of positions, so it needs a fixed number of tokens). The ZDC thesis
    compares it with the ViT (Table 4.4); the peer's defaults are ``tokens_mlp_dim=128``,
    ``channels_mlp_dim=384`` at ``d = 96``.

    Args:
        tokens_mlp_dim: hidden width of the token-mixing MLP.
        channels_mlp_dim: hidden width of the channel-mixing MLP.
        epsilon: layer-norm ε (flax's default 1e-6).
        kernel_initializer: of the dense kernels (default ``"lecun_normal"``).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tokens ``(B, N, d)`` with fixed ``N`` and ``d``.

    Returns:
        Tokens ``(B, N, d)``.

    Example:

    >>> MixerBlock(64, 128)(np.zeros((2, 37, 32))).shape  # doctest: +SKIP
    (2, 37, 32)

    References:
        Tolstikhin et al., "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021,
        arXiv:2105.01601 (eq. 1).
    """

    def __init__(self, tokens_mlp_dim, channels_mlp_dim, epsilon=1e-6,
                 kernel_initializer="lecun_normal", **kwargs):
        super().__init__(**kwargs)
        self.tokens_mlp_dim = positive_int(tokens_mlp_dim, "tokens_mlp_dim")
        self.channels_mlp_dim = positive_int(channels_mlp_dim, "channels_mlp_dim")
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError("MixerBlock takes tokens (B, N, d) with fixed N and d. "
                             f"Received: input_shape={tuple(input_shape)}")
        n, d = int(input_shape[1]), int(input_shape[2])
        init, policy = self.kernel_initializer, self.dtype_policy

        def dense(units, name, activation=None):
            return keras.layers.Dense(units, activation=activation, kernel_initializer=init,
                                      dtype=policy, name=name)

        self.norm1 = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=policy,
                                                     name="norm1")
        self.token_in = dense(self.tokens_mlp_dim, "token_in", gelu_tanh)
        self.token_out = dense(n, "token_out")
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=policy,
                                                     name="norm2")
        self.channel_in = dense(self.channels_mlp_dim, "channel_in", gelu_tanh)
        self.channel_out = dense(d, "channel_out")
        self.norm1.build((None, n, d))
        self.token_in.build((None, d, n))
        self.token_out.build((None, d, self.tokens_mlp_dim))
        self.norm2.build((None, n, d))
        self.channel_in.build((None, n, d))
        self.channel_out.build((None, n, self.channels_mlp_dim))

    def call(self, inputs):
        h = ops.transpose(self.norm1(inputs), (0, 2, 1))
        h = ops.transpose(self.token_out(self.token_in(h)), (0, 2, 1))
        x = inputs + h
        return x + self.channel_out(self.channel_in(self.norm2(x)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "tokens_mlp_dim": self.tokens_mlp_dim,
            "channels_mlp_dim": self.channels_mlp_dim,
            "epsilon": self.epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        })
        return config
