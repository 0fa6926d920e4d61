"""Patch embedding of a ViT: zero padding to a multiple of the patch, patches, linear map."""

import keras
from keras import ops

from calozdc.layers._vit_checks import padding, positive_int


@keras.saving.register_keras_serializable(package="calozdc")
class PatchEmbedding(keras.layers.Layer):
    """Splits an image into ``p × p`` patches and maps each one linearly to a token.

    The image ``(B, H, W, C)`` is first zero-padded to the next multiple of ``p`` in H and W
    (centred; an odd pixel goes after, so zn44's 44 × 44 becomes 48 × 48 with 2 pixels on each
    side, as in the ZDC peer), then cut into ``gh · gw`` patches in row-major patch order, each
    flattened in ``(row, column, channel)`` order, and mapped by one dense layer to
    ``embed_dim``: ``token = flatten(patch) · W + b``.

    Args:
        patch_size: side ``p`` of a square patch (the ZDC peer: 8).
        embed_dim: token width ``d``.
        kernel_initializer: of ``W`` (default ``"lecun_normal"``, as flax's ``nn.Dense``).
        bias_initializer: of ``b`` (default zeros).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: images ``(B, H, W, C)``.

    Returns:
        Tokens ``(B, gh · gw, embed_dim)`` with ``gh = ceil(H / p)``, ``gw = ceil(W / p)``.

    Example:

    >>> PatchEmbedding(8, 32)(np.zeros((2, 44, 44, 1))).shape  # doctest: +SKIP
    (2, 36, 32)

    References:
        Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
        at Scale", ICLR 2021, arXiv:2010.11929 (eq. 1).
    """

    def __init__(self, patch_size, embed_dim, kernel_initializer="lecun_normal",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.patch_size = positive_int(patch_size, "patch_size")
        self.embed_dim = positive_int(embed_dim, "embed_dim")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _geometry(self, input_shape):
        if len(input_shape) != 4 or any(s is None for s in input_shape[1:]):
            raise ValueError("PatchEmbedding takes images (B, H, W, C) of a fixed size. "
                             f"Received: input_shape={tuple(input_shape)}")
        h, w, c = (int(s) for s in input_shape[1:])
        pads = (padding(h, self.patch_size), padding(w, self.patch_size))
        grid = ((h + sum(pads[0])) // self.patch_size, (w + sum(pads[1])) // self.patch_size)
        return grid, pads, c

    def build(self, input_shape):
        _, _, channels = self._geometry(input_shape)
        self.kernel = self.add_weight(
            shape=(self.patch_size * self.patch_size * channels, self.embed_dim),
            initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(self.embed_dim,), initializer=self.bias_initializer,
                                    name="bias")

    def grid_shape(self, image_shape):
        """``(gh, gw)``: the patch grid of images ``(H, W, C)``."""
        return self._geometry((None, *image_shape))[0]

    def call(self, inputs):
        (gh, gw), pads, channels = self._geometry(inputs.shape)
        p = self.patch_size
        x = inputs
        if any(pads[0]) or any(pads[1]):
            x = ops.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
        x = ops.reshape(x, (-1, gh, p, gw, p, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, gh * gw, p * p * channels))
        return ops.matmul(x, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        (gh, gw), _, _ = self._geometry(input_shape)
        return (input_shape[0], gh * gw, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "patch_size": self.patch_size,
            "embed_dim": self.embed_dim,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config
