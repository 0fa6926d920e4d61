"""Sub-pixel rearrangements: ``PixelShuffle2D`` (depth → space) and ``PixelUnshuffle2D``.

The two classes are a pair (one is the exact inverse of the other), so they share a file.
"""

import keras
from keras import ops


def _factors(factor):
    """Normalise ``factor`` (int or pair of ints) to ``(fh, fw)``."""
    if isinstance(factor, int) and not isinstance(factor, bool):
        factor = (factor, factor)
    try:
        fh, fw = (int(f) for f in factor)
        ok = all(isinstance(f, int) and not isinstance(f, bool) for f in factor)
    except (TypeError, ValueError):
        ok = False
    if not ok or fh < 1 or fw < 1:
        raise ValueError(
            f"`factor` must be a positive int or a pair of positive ints. Received: factor={factor}"
        )
    return fh, fw


@keras.saving.register_keras_serializable(package="calozdc")
class PixelShuffle2D(keras.layers.Layer):
    """Rearranges channels into space: ``(B, H, W, C·fh·fw) → (B, H·fh, W·fw, C)``.

    Channels-last sub-pixel upsampling with the channel order of TensorFlow's
    ``depth_to_space``: output pixel ``(h·fh + i, w·fw + j, c)`` takes input channel
    ``(i·fw + j)·C + c`` of pixel ``(h, w)``. Uses ``keras.ops`` only (all backends).

    Args:
        factor: upscale factor, an int or a pair ``(fh, fw)`` (seed 001: ``(2, 2)``).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tensor ``(B, H, W, C·fh·fw)``.

    Returns:
        Tensor ``(B, H·fh, W·fw, C)``.

    Example:

    >>> PixelShuffle2D(2)(np.zeros((1, 5, 5, 8))).shape  # doctest: +SKIP
    (1, 10, 10, 2)

    References:
        Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
        Sub-Pixel Convolutional Neural Network", CVPR 2016, arXiv:1609.05158.
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = _factors(factor)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        fh, fw = self.factor
        if c is not None and c % (fh * fw):
            raise ValueError(
                f"The number of channels must be divisible by fh·fw={fh * fw}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return (
            b,
            None if h is None else h * fh,
            None if w is None else w * fw,
            None if c is None else c // (fh * fw),
        )

    def call(self, inputs):
        _, h, w, c = self.compute_output_shape(inputs.shape)
        fh, fw = self.factor
        x = ops.reshape(inputs, (-1, h // fh, w // fw, fh, fw, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h, w, c))

    def get_config(self):
        config = super().get_config()
        config["factor"] = list(self.factor)
        return config


@keras.saving.register_keras_serializable(package="calozdc")
class PixelUnshuffle2D(keras.layers.Layer):
    """Rearranges space into channels: ``(B, H, W, C) → (B, H/fh, W/fw, C·fh·fw)``.

    The exact inverse of :class:`PixelShuffle2D` with the same ``factor`` (TensorFlow's
    ``space_to_depth`` channel order); a learning-free downsampling used by the
    discriminators (seed 000). Uses ``keras.ops`` only.

    Args:
        factor: downscale factor, an int or a pair ``(fh, fw)``; H and W must be divisible by it.
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tensor ``(B, H, W, C)``.

    Returns:
        Tensor ``(B, H/fh, W/fw, C·fh·fw)``.

    Example:

    >>> PixelUnshuffle2D(2)(np.zeros((1, 20, 20, 3))).shape  # doctest: +SKIP
    (1, 10, 10, 12)

    References:
        Shi et al. 2016, arXiv:1609.05158 (the inverse rearrangement).
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = _factors(factor)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        fh, fw = self.factor
        if (h is not None and h % fh) or (w is not None and w % fw):
            raise ValueError(
                f"Height and width must be divisible by the factor {self.factor}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return (
            b,
            None if h is None else h // fh,
            None if w is None else w // fw,
            None if c is None else c * fh * fw,
        )

    def call(self, inputs):
        _, h, w, c = inputs.shape
        _, ho, wo, co = self.compute_output_shape(inputs.shape)
        fh, fw = self.factor
        x = ops.reshape(inputs, (-1, ho, fh, wo, fw, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, ho, wo, co))

    def get_config(self):
        config = super().get_config()
        config["factor"] = list(self.factor)
        return config
