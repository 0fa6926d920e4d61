"""Sinusoidal embedding of a scalar (diffusion timestep, noise level)."""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="calozdc")
class SinusoidalEmbedding(keras.layers.Layer):
    """Embeds a scalar per example as sines and cosines of geometric frequencies.

    For a scalar ``t`` and ``dim = 2 h`` the output is
    ``[sin(scale t w_0), ..., sin(scale t w_{h-1}), cos(scale t w_0), ..., cos(scale t w_{h-1})]``
    with ``w_i = max_period^(-i / h)``, the Transformer position encoding used as the
    timestep embedding of DDPM. The layer has no weights.

    Args:
        dim: even output size.
        max_period: longest period of the sinusoids, in units of ``scale * t``.
        scale: factor applied to ``t`` before the sinusoids (e.g. ``1000`` when ``t`` is a
            continuous time in ``[0, 1]``).
        **kwargs: standard `keras.layers.Layer` arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: tensor of shape ``(batch,)`` or ``(batch, 1)``.

    Returns:
        Tensor of shape ``(batch, dim)`` in the layer's compute dtype. Under mixed precision
        the input is read and the sinusoids are computed in float32 (a timestep near 1000
        is not exact in float16/bfloat16, nor is the angle ``t w_i``); only the result is cast.

    Example:

    >>> layer = SinusoidalEmbedding(dim=8)
    >>> layer(keras.ops.convert_to_tensor([[0.0], [10.0]])).shape
    (2, 8)

    References:
        Vaswani et al. 2017, "Attention is all you need", arXiv:1706.03762, §3.5.
        Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models",
        arXiv:2006.11239, appendix B.
    """

    def __init__(self, dim, max_period=10000.0, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2 or dim % 2:
            raise ValueError(f"`dim` must be an even integer >= 2. Received: dim={dim}")
        if not max_period > 1:
            raise ValueError(f"`max_period` must be > 1. Received: max_period={max_period}")
        if not scale > 0:
            raise ValueError(f"`scale` must be > 0. Received: scale={scale}")
        self.dim = dim
        self.max_period = float(max_period)
        self.scale = float(scale)
        self.built = True

    @property
    def input_dtype(self):
        # Not autocast to a float16/bfloat16 compute dtype: the sinusoids need float32.
        return "float32"

    def call(self, inputs):
        t = ops.cast(ops.reshape(inputs, (-1, 1)), "float32") * self.scale
        half = self.dim // 2
        # A numpy constant, not ops.arange: the same float32 values, and jax2onnx (Keras'
        # ONNX exporter on JAX) cannot trace arange with a Python bound.
        exponents = ops.convert_to_tensor(np.arange(half, dtype="float32") / np.float32(half))
        frequencies = ops.exp(-math.log(self.max_period) * exponents)
        angles = t * ops.expand_dims(frequencies, 0)
        embedding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(embedding, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "max_period": self.max_period, "scale": self.scale})
        return config
