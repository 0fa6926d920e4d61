"""Pre-LayerNorm transformer block (self-attention + MLP, both residual)."""

import keras

from calozdc.layers._vit_checks import positive_int, rate


@keras.saving.register_keras_serializable(package="calozdc")
def gelu_tanh(x):
    """GELU with the tanh approximation (flax's ``nn.gelu`` default), as a serialisable
    activation: ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`` (Hendrycks & Gimpel 2016,
    arXiv:1606.08415)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="calozdc")
class TransformerBlock(keras.layers.Layer):
    """Pre-LN transformer encoder block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``.

    The attention has ``num_heads`` heads of size ``d / num_heads`` with biases on the query,
    key, value and output projections (``4 d² + 4 d`` weights); the MLP is
    ``Dense(mlp_dim) → GELU (tanh) → Dropout → Dense(d) → Dropout``. With ``mlp_dim = 4 d`` the
    block holds ``12 d² + 13 d`` weights, the ZDC peer's ``TransformerBlock`` (layer-norm
    ε = 1e-6 and lecun-normal kernels, as flax's defaults).

    Args:
        num_heads: attention heads (must divide the token width ``d``).
        mlp_dim: hidden width of the MLP (ViT: ``4 d``).
        dropout: rate of the two MLP dropouts, in [0, 1) (no attention dropout).
        epsilon: layer-norm ε.
        kernel_initializer: of the dense and attention kernels.
        seed: seed of the dropout layers (None: unseeded).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tokens ``(B, N, d)``.
        attention_mask: optional boolean ``(B, N, N)``: ``True`` where query ``i`` may attend
            to key ``j``.
        use_causal_mask: attend only to earlier tokens (autoregressive models).
        training: dropout on or off.

    Returns:
        Tokens ``(B, N, d)``.

    Example:

    >>> TransformerBlock(4, 128)(np.zeros((2, 37, 32))).shape  # doctest: +SKIP
    (2, 37, 32)

    References:
        Vaswani et al. 2017, arXiv:1706.03762; Xiong et al., "On Layer Normalization in the
        Transformer Architecture", ICML 2020, arXiv:2002.04745 (pre-LN);
        Dosovitskiy et al. 2021, arXiv:2010.11929 (eqs. 2-3).
    """

    def __init__(self, num_heads, mlp_dim, dropout=0.0, epsilon=1e-6,
                 kernel_initializer="lecun_normal", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = positive_int(num_heads, "num_heads")
        self.mlp_dim = positive_int(mlp_dim, "mlp_dim")
        self.dropout = rate(dropout)
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.supports_masking = False

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("TransformerBlock takes tokens (B, N, d) with a fixed d. "
                             f"Received: input_shape={tuple(input_shape)}")
        d = int(input_shape[-1])
        if d % self.num_heads:
            raise ValueError(f"The token width must be divisible by num_heads="
                             f"{self.num_heads}. Received: input_shape={tuple(input_shape)}")
        init = self.kernel_initializer
        seed = self.seed
        self.norm1 = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=self.dtype_policy,
                                                     name="norm1")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, d // self.num_heads, kernel_initializer=init,
            dtype=self.dtype_policy, name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=self.dtype_policy,
                                                     name="norm2")
        self.mlp_in = keras.layers.Dense(self.mlp_dim, activation=gelu_tanh,
                                         kernel_initializer=init, dtype=self.dtype_policy,
                                         name="mlp_in")
        self.mlp_out = keras.layers.Dense(d, kernel_initializer=init, dtype=self.dtype_policy,
                                          name="mlp_out")
        self.dropout1 = keras.layers.Dropout(self.dropout, seed=seed, name="dropout1")
        self.dropout2 = keras.layers.Dropout(self.dropout, seed=None if seed is None else seed + 1,
                                             name="dropout2")
        shape = tuple(input_shape)
        self.norm1.build(shape)
        self.attention.build(shape, shape)
        self.norm2.build(shape)
        self.mlp_in.build(shape)
        self.mlp_out.build((*shape[:-1], self.mlp_dim))

    def call(self, inputs, attention_mask=None, use_causal_mask=False, training=None):
        h = self.norm1(inputs)
        h = self.attention(h, h, attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                           training=training)
        x = inputs + h
        h = self.mlp_in(self.norm2(x))
        h = self.dropout1(h, training=training)
        h = self.dropout2(self.mlp_out(h), training=training)
        return x + h

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "seed": self.seed,
        })
        return config
