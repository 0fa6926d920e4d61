"""Mask/value loss: BCE on the hit mask plus a weighted MSE on the cell values."""

import keras
from keras import ops

from calozdc.losses._utils import check_positive, flatten_cells, to_float32


def mask_value_loss(
    y_true, y_pred, value_weight=200.0, threshold=0.0, from_logits=False, hits_only=True
):
    """``L_MASK + w·L_VALUE`` for a generator with a hit-probability head and a value head.

    ``y_pred`` ``(N, ..., 2)`` holds, in its last axis, the hit probability (or logit) and the
    cell value; ``y_true`` ``(N, ...)`` or ``(N, ..., 1)`` the real cell values. The true mask
    is ``y_true > threshold``. Per shower:

    * ``L_MASK`` = mean over cells of the binary cross-entropy between mask and probability;
    * ``L_VALUE`` = mean squared error of the value head, over the hit cells only
      (``hits_only``; the mask head handles the empty cells) or over all cells.

    The default ``w = 200`` balances the typical ``L_MASK ≈ 145·L_VALUE`` (seed 001).

    Args:
        y_true: real showers.
        y_pred: ``(..., 2)`` mask probability/logit and value.
        value_weight: w >= 0.
        threshold: cells above it count as hits.
        from_logits: the mask channel holds logits.
        hits_only: average the value MSE over hit cells (showers without hits add 0).

    Returns:
        float32 tensor ``(N,)``.
    """
    y_pred = to_float32(y_pred)
    y_true = to_float32(y_true)
    if int(y_pred.shape[-1]) != 2:
        raise ValueError(
            "`y_pred` must end with 2 channels (mask, value). "
            f"Received: y_pred.shape={tuple(y_pred.shape)}"
        )
    if len(y_true.shape) == len(y_pred.shape):
        if int(y_true.shape[-1]) != 1:
            raise ValueError(
                "`y_true` must have shape y_pred.shape[:-1] (optionally with a last axis of 1). "
                f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        y_true = y_true[..., 0]
    if tuple(y_true.shape[1:]) != tuple(y_pred.shape[1:-1]):
        raise ValueError(
            "`y_true` must have shape y_pred.shape[:-1]. "
            f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    prob = flatten_cells(y_pred[..., 0])
    value = flatten_cells(y_pred[..., 1])
    truth = flatten_cells(y_true)
    mask = ops.cast(truth > float(threshold), "float32")
    bce = ops.mean(ops.binary_crossentropy(mask, prob, from_logits=from_logits), axis=-1)
    sq = ops.square(value - truth)
    if hits_only:
        n_hits = ops.sum(mask, axis=-1)
        mse = ops.sum(sq * mask, axis=-1) / ops.maximum(n_hits, 1.0)
    else:
        mse = ops.mean(sq, axis=-1)
    return bce + float(value_weight) * mse


@keras.saving.register_keras_serializable(package="calozdc")
class MaskValueLoss(keras.losses.Loss):
    """Binary cross-entropy on the hit mask plus a weighted value MSE (``L_MASK + w·L_VALUE``).

    Wraps :func:`mask_value_loss`. For generators with two heads, a hit-probability map and an
    energy map (the shower is ``mask · value``). Computed in float32 whatever the inputs'
    dtype.

    Args:
        value_weight: weight w of the value term (seed 001: 200 works best of 200/500/1000).
        threshold: cells of ``y_true`` above it are hits.
        from_logits: the mask channel of ``y_pred`` holds logits.
        hits_only: value MSE over hit cells only.
        reduction, name, dtype: as :class:`keras.losses.Loss`.

    Call arguments:
        y_true: real showers ``(N, H, W[, 1])``.
        y_pred: ``(N, H, W, 2)``: mask probability (or logit), value.
        sample_weight: optional ``(N,)`` weights.

    Example:

    >>> loss = MaskValueLoss(value_weight=200.0)
    >>> loss(showers, generator_heads)  # doctest: +SKIP

    References:
        Seed 001 (AMS ECAL GAN status report: ``L_train = L_MASK + 200·L_VALUE``).
    """

    def __init__(
        self,
        value_weight=200.0,
        threshold=0.0,
        from_logits=False,
        hits_only=True,
        reduction="sum_over_batch_size",
        name="mask_value_loss",
        dtype=None,
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype, **kwargs)
        self.value_weight = check_positive("value_weight", value_weight, allow_zero=True)
        try:
            self.threshold = float(threshold)
        except (TypeError, ValueError):
            raise ValueError(
                f"`threshold` must be a number. Received: threshold={threshold!r}"
            ) from None
        self.from_logits = bool(from_logits)
        self.hits_only = bool(hits_only)
        self._dtype_arg = dtype

    def call(self, y_true, y_pred):
        return mask_value_loss(
            y_true,
            y_pred,
            value_weight=self.value_weight,
            threshold=self.threshold,
            from_logits=self.from_logits,
            hits_only=self.hits_only,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "value_weight": self.value_weight,
                "threshold": self.threshold,
                "from_logits": self.from_logits,
                "hits_only": self.hits_only,
                "dtype": self._dtype_arg,
            }
        )
        return config
