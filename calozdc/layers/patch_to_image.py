"""Patch-to-image head of a ViT: each token becomes one ``p × p`` patch of the image."""

import keras
from keras import ops

from calozdc.layers._vit_checks import padding, positive_int


def _image_shape(image_shape):
    try:
        shape = tuple(int(s) for s in image_shape)
        ok = len(shape) == 3 and min(shape) >= 1 and all(
            not isinstance(s, bool) for s in image_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("`image_shape` must be three positive integers (H, W, C). "
                         f"Received: image_shape={image_shape!r}")
    return shape


@keras.saving.register_keras_serializable(package="calozdc")
class PatchToImage(keras.layers.Layer):
    """Maps tokens ``(B, gh · gw, d)`` to an image ``(B, H, W, C)``, one patch per token.

    Token ``i`` (row-major over the ``gh × gw`` grid of :class:`PatchEmbedding`) gives the
    patch ``token · K`` with ``K`` of shape ``(d, p, p, C)`` plus one bias per channel; the
    padded ``(gh p, gw p, C)`` image is then cropped to ``(H, W, C)`` (the centred padding of
    :class:`PatchEmbedding`). This is exactly a transposed convolution with kernel = stride =
    ``p`` (the ZDC peer's ``ConvTranspose(C, (8, 8), strides=8)``, ``d p² C + C`` weights).

    Args:
        patch_size: side ``p`` of a square patch.
        image_shape: ``(H, W, C)`` of the output image.
        kernel_initializer: of ``K`` (default ``"lecun_normal"``, fan-in ``d p²`` as flax's
            ``ConvTranspose``).
        bias_initializer: of the channel biases (default zeros).
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tokens ``(B, gh · gw, d)``, ``gh = ceil(H / p)``, ``gw = ceil(W / p)``.

    Returns:
        Images ``(B, H, W, C)``.

    Example:

    >>> PatchToImage(8, (44, 44, 1))(np.zeros((2, 36, 32))).shape  # doctest: +SKIP
    (2, 44, 44, 1)

    References:
        Dosovitskiy et al. 2021, arXiv:2010.11929 (patches); Esser, Rombach & Ommer,
        "Taming Transformers", CVPR 2021, arXiv:2012.09841 (ViT decoders in VQ-GANs).
    """

    def __init__(self, patch_size, image_shape, kernel_initializer="lecun_normal",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.patch_size = positive_int(patch_size, "patch_size")
        self.image_shape = _image_shape(image_shape)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        h, w, _ = self.image_shape
        self.pads = (padding(h, self.patch_size), padding(w, self.patch_size))
        self.grid = ((h + sum(self.pads[0])) // self.patch_size,
                     (w + sum(self.pads[1])) // self.patch_size)

    def build(self, input_shape):
        n = self.grid[0] * self.grid[1]
        if len(input_shape) != 3 or input_shape[1] != n or input_shape[2] is None:
            raise ValueError(f"PatchToImage({self.patch_size}, {self.image_shape}) takes tokens "
                             f"(B, {n}, d). Received: input_shape={tuple(input_shape)}")
        p, c = self.patch_size, self.image_shape[-1]
        self.kernel = self.add_weight(shape=(int(input_shape[2]), p, p, c),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(c,), initializer=self.bias_initializer, name="bias")

    def call(self, inputs):
        (gh, gw), p = self.grid, self.patch_size
        h, w, c = self.image_shape
        kernel = ops.reshape(self.kernel, (int(self.kernel.shape[0]), p * p * c))
        x = ops.matmul(inputs, kernel)
        x = ops.reshape(x, (-1, gh, gw, p, p, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, gh * p, gw * p, c)) + self.bias
        (top, _), (left, _) = self.pads
        if (gh * p, gw * p) != (h, w):
            x = x[:, top:top + h, left:left + w, :]
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.image_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "patch_size": self.patch_size,
            "image_shape": list(self.image_shape),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config
