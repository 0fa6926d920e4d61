"""Longitudinal-profile loss: per-layer energy fractions vs a Gamma profile or a reference."""

import functools

import keras
import numpy as np
from keras import ops
from scipy import optimize, special

from calozdc.losses._utils import check_choice, check_positive, per_sample, to_float32

_COMPARE = ("batch_mean", "per_shower")


@functools.lru_cache(maxsize=64)
def _gamma_fractions_cached(alpha, beta, n_layers, layer_thickness_x0, normalize):
    edges = np.arange(n_layers + 1, dtype=np.float64) * layer_thickness_x0
    cdf = special.gammainc(alpha, beta * edges)
    fractions = np.diff(cdf)
    if normalize:
        total = fractions.sum()
        if not total > 0:
            raise ValueError(
                "The Gamma profile puts no energy in the layers. Received: "
                f"alpha={alpha}, beta={beta}, n_layers={n_layers}, "
                f"layer_thickness_x0={layer_thickness_x0}"
            )
        fractions = fractions / total
    fractions.setflags(write=False)
    return fractions


def gamma_layer_fractions(alpha, beta, n_layers, layer_thickness_x0=1.0, normalize=True):
    """Fraction of the energy of a Gamma longitudinal profile deposited in each layer.

    The GFlash profile (Grindhammer & Peters, arXiv:hep-ex/0001020, eq. 2; seed 001 eq. 1)
    ``dE/dt = E (βt)^(α−1) β e^(−βt) / Γ(α)`` with depth ``t`` in radiation lengths
    integrates over layer ``l`` (``t_l = l·Δt``) to
    ``P(α, β t_{l+1}) − P(α, β t_l)``, with ``P`` the regularised lower incomplete gamma
    function.

    Args:
        alpha: shape parameter α > 0.
        beta: scale parameter β > 0 (per radiation length).
        n_layers: number of layers L.
        layer_thickness_x0: layer thickness Δt in radiation lengths.
        normalize: rescale the fractions to sum to 1 over the L layers (the energy that a
            calorimeter of finite depth contains); otherwise leakage is kept.

    Returns:
        float64 array ``(L,)`` (read-only).
    """
    alpha = check_positive("alpha", alpha)
    beta = check_positive("beta", beta)
    layer_thickness_x0 = check_positive("layer_thickness_x0", layer_thickness_x0)
    if int(n_layers) != n_layers or n_layers < 1:
        raise ValueError(f"`n_layers` must be an integer >= 1. Received: n_layers={n_layers}")
    return _gamma_fractions_cached(alpha, beta, int(n_layers), layer_thickness_x0, bool(normalize))


def fit_gamma_profile(layer_energies, layer_thickness_x0=1.0):
    """Fit the Gamma-profile parameters (α, β) to per-layer energies (numpy reference).

    A least-squares fit of :func:`gamma_layer_fractions` (normalised) to the mean
    per-layer energy fractions, started from the method-of-moments estimate
    ``α = ⟨t⟩²/var(t)``, ``β = ⟨t⟩/var(t)``.

    Args:
        layer_energies: ``(N, L)`` per-shower layer energies or ``(L,)`` a mean profile.
        layer_thickness_x0: layer thickness in radiation lengths.

    Returns:
        ``(alpha, beta)`` floats.

    References:
        G. Grindhammer, S. Peters, "The parameterized simulation of electromagnetic showers
        in homogeneous and sampling calorimeters", arXiv:hep-ex/0001020.
    """
    e = np.asarray(layer_energies, dtype=np.float64)
    if e.ndim == 2:
        totals = e.sum(axis=1, keepdims=True)
        keep = totals[:, 0] > 0
        e = (e[keep] / totals[keep]).mean(axis=0)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or not e.sum() > 0:
        raise ValueError(
            "`layer_energies` must be (N, L) or (L,) finite energies with L >= 2 and a "
            f"positive total. Received: shape={np.shape(layer_energies)}"
        )
    dt = check_positive("layer_thickness_x0", layer_thickness_x0)
    f = e / e.sum()
    t = (np.arange(f.size) + 0.5) * dt
    mean = float((f * t).sum())
    var = float((f * (t - mean) ** 2).sum()) + dt**2 / 12.0
    x0 = np.log([max(mean**2 / var, 1e-2), max(mean / var, 1e-3)])

    def residuals(log_params):
        a, b = np.exp(log_params)
        return gamma_layer_fractions(a, b, f.size, dt) - f

    fit = optimize.least_squares(residuals, x0, method="lm")
    alpha, beta = np.exp(fit.x)
    return float(alpha), float(beta)


def _layer_fractions(x):
    """``(N, L)`` layer energies (or ``(N, ..., L)``, summed over the middle axes)."""
    if len(x.shape) < 2:
        raise ValueError(
            f"Layer energies must have shape (N, L) or (N, ..., L). Received: shape={x.shape}"
        )
    if len(x.shape) > 2:
        x = ops.sum(x, axis=tuple(range(1, len(x.shape) - 1)))
    total = ops.sum(x, axis=-1, keepdims=True)
    return x / ops.maximum(total, 1e-12)


def longitudinal_profile_loss(
    y_true,
    y_pred,
    alpha=None,
    beta=None,
    layer_thickness_x0=1.0,
    reference_fractions=None,
    compare="batch_mean",
):
    """Squared distance between per-layer energy fractions and a target longitudinal profile.

    ``y_pred`` holds per-layer energies ``(N, L)`` (or ``(N, H, W, L)``: layers last, summed
    over the transverse axes); they are turned into fractions ``f_l = E_l / Σ E``. The target
    is, in order of precedence:

    1. ``reference_fractions`` ``(L,)`` (e.g. mean fractions of the training data);
    2. the Gamma profile of :func:`gamma_layer_fractions` for the given ``alpha``, ``beta``;
    3. the fractions of ``y_true`` (real layer energies of the same shape as ``y_pred``).

    In modes 1–2 ``y_true`` is ignored (pass the real layers or zeros).

    Args:
        y_true: real layer energies (mode 3) or any tensor with the batch size.
        y_pred: generated layer energies.
        alpha, beta: Gamma-profile parameters (mode 2).
        layer_thickness_x0: layer thickness in radiation lengths (mode 2).
        reference_fractions: target fractions (mode 1).
        compare: ``"batch_mean"``: ``Σ_l (⟨f_l⟩_batch − target_l)²`` (the mean profile; leaves
            the shower-to-shower fluctuations free), or ``"per_shower"``:
            ``Σ_l (f_nl − target_nl)²`` for each shower.

    Returns:
        float32 tensor ``(N,)`` (batch-mean values are repeated for every sample).
    """
    check_choice("compare", compare, _COMPARE)
    y_pred = to_float32(y_pred)
    f_pred = _layer_fractions(y_pred)
    n_layers = int(f_pred.shape[-1])
    if reference_fractions is not None:
        target = np.asarray(reference_fractions, dtype=np.float32).reshape(-1)
        if target.size != n_layers:
            raise ValueError(
                f"`reference_fractions` must have one value per layer ({n_layers}). "
                f"Received: reference_fractions.shape={np.shape(reference_fractions)}"
            )
        target = ops.convert_to_tensor(target / max(float(target.sum()), 1e-12))
    elif alpha is not None or beta is not None:
        if alpha is None or beta is None:
            raise ValueError(
                f"Give both `alpha` and `beta`. Received: alpha={alpha}, beta={beta}"
            )
        target = ops.convert_to_tensor(
            gamma_layer_fractions(alpha, beta, n_layers, layer_thickness_x0).astype("float32")
        )
    else:
        y_true = to_float32(y_true)
        target = _layer_fractions(y_true)
        if int(target.shape[-1]) != n_layers:
            raise ValueError(
                "`y_true` and `y_pred` must have the same number of layers. Received: "
                f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        if compare == "batch_mean":
            target = ops.mean(target, axis=0)
    if compare == "batch_mean":
        value = ops.sum(ops.square(ops.mean(f_pred, axis=0) - target))
        return per_sample(value, f_pred)
    return ops.sum(ops.square(f_pred - target), axis=-1)


@keras.saving.register_keras_serializable(package="calozdc")
class LongitudinalProfileLoss(keras.losses.Loss):
    """Loss between generated per-layer energy fractions and a longitudinal shower profile.

    Wraps :func:`longitudinal_profile_loss`. The Gamma profile is the GFlash parametrisation
    ``dE/dt = E (βt)^(α−1) β e^(−βt)/Γ(α)`` (seed 001 eq. 1), integrated over each layer;
    without ``alpha``/``beta``/``reference_fractions`` the target is the profile of
    ``y_true``. Computed in float32 whatever the inputs' dtype.

    Args:
        alpha: Gamma shape parameter (with ``beta``), or None.
        beta: Gamma scale parameter per radiation length, or None.
        layer_thickness_x0: layer thickness in radiation lengths.
        reference_fractions: target per-layer fractions (list), or None.
        compare: ``"batch_mean"`` or ``"per_shower"``.
        reduction, name, dtype: as :class:`keras.losses.Loss`.

    Call arguments:
        y_true: real layer energies ``(N, L)`` (used only when no parametric target is set).
        y_pred: generated layer energies ``(N, L)``.
        sample_weight: optional ``(N,)`` weights.

    Returns:
        Scalar loss (with the default reduction).

    Example:

    >>> loss = LongitudinalProfileLoss(alpha=4.0, beta=0.5)
    >>> fractions = gamma_layer_fractions(4.0, 0.5, n_layers=18)
    >>> float(loss(np.zeros((2, 18)), np.stack([fractions, fractions]) * 100.0)) < 1e-10
    True

    References:
        G. Grindhammer, S. Peters, arXiv:hep-ex/0001020 (GFlash).
    """

    def __init__(
        self,
        alpha=None,
        beta=None,
        layer_thickness_x0=1.0,
        reference_fractions=None,
        compare="batch_mean",
        reduction="sum_over_batch_size",
        name="longitudinal_profile_loss",
        dtype=None,
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype, **kwargs)
        if (alpha is None) != (beta is None):
            raise ValueError(f"Give both `alpha` and `beta`. Received: alpha={alpha}, beta={beta}")
        if alpha is not None:
            check_positive("alpha", alpha)
            check_positive("beta", beta)
        check_positive("layer_thickness_x0", layer_thickness_x0)
        check_choice("compare", compare, _COMPARE)
        if reference_fractions is not None:
            ref = np.asarray(reference_fractions, dtype=np.float64).reshape(-1)
            if ref.size < 1 or not np.all(np.isfinite(ref)) or np.any(ref < 0):
                raise ValueError(
                    "`reference_fractions` must be finite and >= 0. Received: "
                    f"reference_fractions={reference_fractions}"
                )
            reference_fractions = [float(v) for v in ref]
        self.alpha = None if alpha is None else float(alpha)
        self.beta = None if beta is None else float(beta)
        self.layer_thickness_x0 = float(layer_thickness_x0)
        self.reference_fractions = reference_fractions
        self.compare = compare
        self._dtype_arg = dtype

    def call(self, y_true, y_pred):
        return longitudinal_profile_loss(
            y_true,
            y_pred,
            alpha=self.alpha,
            beta=self.beta,
            layer_thickness_x0=self.layer_thickness_x0,
            reference_fractions=self.reference_fractions,
            compare=self.compare,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha,
                "beta": self.beta,
                "layer_thickness_x0": self.layer_thickness_x0,
                "reference_fractions": self.reference_fractions,
                "compare": self.compare,
                "dtype": self._dtype_arg,
            }
        )
        return config
