"""Scaled-sigmoid output layer: bounds a decoder's output to ``[minval, maxval]``."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="calozdc")
class ScaledSigmoid(keras.layers.Layer):
    """Maps inputs to ``minval + (maxval − minval)·sigmoid(x / temperature)``.

    A bounded last activation for decoders whose targets live in a known range, e.g.
    ``log(1 + E)`` scaled cell energies in ``[0, 9]`` (seed 003): it stops the rare runaway
    voxel predictions many orders of magnitude too high that an unbounded output can give.

    Args:
        minval: lower bound of the output.
        maxval: upper bound of the output, > ``minval``.
        temperature: input scale, > 0 (larger means a softer sigmoid).
        **kwargs: :class:`keras.layers.Layer` arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: tensor of any shape.

    Returns:
        Tensor of the same shape, values in ``(minval, maxval)``.

    Example:

    >>> layer = ScaledSigmoid(minval=0.0, maxval=9.0)
    >>> [round(float(v), 4) for v in layer(np.array([-100.0, 0.0, 100.0]))]  # doctest: +SKIP
    [0.0, 4.5, 9.0]

    References:
        Seed 003 (CaloQVAE weekly update, Nov. 21 2024: "scaled Sigmoid function (0-9) in the
        last layer of decoder").
    """

    def __init__(self, minval=0.0, maxval=9.0, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        try:
            minval, maxval, temperature = float(minval), float(maxval), float(temperature)
        except (TypeError, ValueError):
            raise ValueError(
                "`minval`, `maxval` and `temperature` must be numbers. Received: "
                f"minval={minval!r}, maxval={maxval!r}, temperature={temperature!r}"
            ) from None
        if not maxval > minval:
            raise ValueError(
                f"`maxval` must be > `minval`. Received: minval={minval}, maxval={maxval}"
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature}")
        self.minval = minval
        self.maxval = maxval
        self.temperature = temperature
        self.supports_masking = True

    def call(self, inputs):
        x = ops.sigmoid(inputs / self.temperature)
        return self.minval + (self.maxval - self.minval) * x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"minval": self.minval, "maxval": self.maxval, "temperature": self.temperature}
        )
        return config
