"""Asymmetric exponentially weighted MSE (seed 003) with incident-energy weights."""

import keras
from keras import ops

from calozdc.losses._utils import check_choice, check_positive, flatten_cells, to_float32

_CENTERS = ("event", "batch")
#: Exponents are clipped to this magnitude so the weights stay finite in float32.
_MAX_EXPONENT = 60.0


def asymmetric_exponential_mse(
    y_true, y_pred, a=1.0, b=1.0, incident_energy=None, center="event"
):
    """MSE weighted per cell by ``exp(a(x−⟨x⟩)) + exp(−b(x−⟨x⟩))``, x the true cell value.

    Seed 003 (CaloQVAE): ``AE_loss_per_event = MSE·[exp(a(x−⟨x⟩)) + exp(−b(x−⟨x⟩))]`` and
    ``Sum_AE_loss = scaled_E_inc ⊗ AE_loss_per_event``. Here the bracket weights each cell's
    squared error by how far the true (scaled, e.g. ``log1p``) value ``x`` is above (``a``)
    or below (``b``) the mean ``⟨x⟩`` of the shower's cells (``center="event"``) or of the
    batch (``"batch"``); the per-shower loss is the mean over cells, multiplied by
    ``incident_energy`` when given (the seed's scaled incident-energy weights). With
    ``a = b = 0`` it is twice the MSE. Larger ``a`` stresses the energetic cells, larger
    ``b`` the nearly empty ones (granularity).

    Args:
        y_true: real (scaled) showers ``(N, ...)``.
        y_pred: predicted showers, same shape.
        a: weight exponent above the mean (>= 0).
        b: weight exponent below the mean (>= 0).
        incident_energy: optional ``(N,)`` or ``(N, 1)`` per-shower weights (scaled E_inc).
        center: ``"event"`` or ``"batch"`` for ⟨x⟩.

    Returns:
        float32 tensor ``(N,)``.
    """
    check_choice("center", center, _CENTERS)
    y_true = flatten_cells(to_float32(y_true))
    y_pred = flatten_cells(to_float32(y_pred))
    if tuple(y_true.shape[1:]) != tuple(y_pred.shape[1:]):
        raise ValueError(
            "`y_true` and `y_pred` must have the same number of cells. Received: "
            f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    if center == "event":
        mean = ops.mean(y_true, axis=-1, keepdims=True)
    else:
        mean = ops.mean(y_true)
    dev = ops.stop_gradient(y_true - mean)
    up = ops.exp(ops.clip(float(a) * dev, -_MAX_EXPONENT, _MAX_EXPONENT))
    down = ops.exp(ops.clip(-float(b) * dev, -_MAX_EXPONENT, _MAX_EXPONENT))
    per_event = ops.mean(ops.square(y_pred - y_true) * (up + down), axis=-1)
    if incident_energy is not None:
        per_event = per_event * ops.reshape(to_float32(incident_energy), (-1,))
    return per_event


@keras.saving.register_keras_serializable(package="calozdc")
class AsymmetricExponentialMSE(keras.losses.Loss):
    """Cell-wise MSE with asymmetric exponential weights around the shower mean (seed 003).

    Wraps :func:`asymmetric_exponential_mse`:
    ``mean_cells (ŷ−x)²·[exp(a(x−⟨x⟩)) + exp(−b(x−⟨x⟩))]`` per shower. The seed weights each
    shower by its scaled incident energy: pass those weights as ``sample_weight`` (in ``fit``
    or when calling the loss) and use ``reduction="sum"`` to reproduce the seed's sum.
    Computed in float32 whatever the inputs' dtype.

    Args:
        a: exponent for cells above the mean, >= 0.
        b: exponent for cells below the mean, >= 0.
        center: ``"event"`` (⟨x⟩ per shower) or ``"batch"``.
        reduction, name, dtype: as :class:`keras.losses.Loss`.

    Call arguments:
        y_true: real (scaled) showers ``(N, ...)``.
        y_pred: predicted showers ``(N, ...)``.
        sample_weight: optional ``(N,)`` weights, e.g. the scaled incident energies.

    Example:

    >>> loss = AsymmetricExponentialMSE(a=1.0, b=2.0, reduction="sum")
    >>> value = loss(x, x_hat, sample_weight=e_inc / e_inc.max())  # doctest: +SKIP

    References:
        Seed 003 (CaloQVAE weekly update, Nov. 21 2024: new loss and log(1+x) scaling).
    """

    def __init__(
        self,
        a=1.0,
        b=1.0,
        center="event",
        reduction="sum_over_batch_size",
        name="asymmetric_exponential_mse",
        dtype=None,
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype, **kwargs)
        self.a = check_positive("a", a, allow_zero=True)
        self.b = check_positive("b", b, allow_zero=True)
        self.center = check_choice("center", center, _CENTERS)
        self._dtype_arg = dtype

    def call(self, y_true, y_pred):
        return asymmetric_exponential_mse(y_true, y_pred, a=self.a, b=self.b, center=self.center)

    def get_config(self):
        config = super().get_config()
        config.update({"a": self.a, "b": self.b, "center": self.center, "dtype": self._dtype_arg})
        return config
