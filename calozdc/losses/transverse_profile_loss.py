"""Transverse-profile loss: radial energy profile about the centroid vs core + tail model."""

import keras
import numpy as np
from keras import ops

from calozdc.losses._utils import (
    check_choice,
    check_positive,
    image_2d,
    per_sample,
    to_float32,
)

_COMPARE = ("batch_mean", "per_shower")


def core_tail_density(r, core_fraction, core_radius, tail_radius):
    """Radial density ``f(r)`` of the core + tail transverse profile (numpy).

    ``f(r) = p·2rRc²/(r²+Rc²)² + (1−p)·2rRt²/(r²+Rt²)²`` (seed 001 eq. 2; GFlash,
    arXiv:hep-ex/0001020 eq. 10), normalised so that ``∫_0^∞ f(r) dr = 1``. Its cumulative
    is ``F(r) = p·r²/(r²+Rc²) + (1−p)·r²/(r²+Rt²)``.
    """
    r = np.asarray(r, dtype=np.float64)
    p, rc, rt = float(core_fraction), float(core_radius), float(tail_radius)
    return p * 2 * r * rc**2 / (r**2 + rc**2) ** 2 + (1 - p) * 2 * r * rt**2 / (r**2 + rt**2) ** 2


def core_tail_cdf(r, core_fraction, core_radius, tail_radius):
    """Fraction of the energy within radius ``r`` of the core + tail profile (numpy)."""
    r2 = np.square(np.asarray(r, dtype=np.float64))
    p, rc, rt = float(core_fraction), float(core_radius), float(tail_radius)
    return p * r2 / (r2 + rc**2) + (1 - p) * r2 / (r2 + rt**2)


def default_bin_edges(shape, cell_size_mm):
    """Radial bins one cell wide out to half the larger grid side, plus an overflow bin."""
    n = max(int(shape[0]), int(shape[1])) // 2
    return np.concatenate([np.arange(n + 1) * float(cell_size_mm), [np.inf]])


def _cell_grid(shape, cell_size_mm):
    h, w = int(shape[0]), int(shape[1])
    x = (np.arange(w) - (w - 1) / 2.0) * cell_size_mm
    y = (np.arange(h) - (h - 1) / 2.0) * cell_size_mm
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return xx.reshape(-1).astype("float32"), yy.reshape(-1).astype("float32")


def _centroid(e_flat, xs, ys):
    total = ops.maximum(ops.sum(e_flat, axis=-1, keepdims=True), 1e-12)
    cx = ops.sum(e_flat * xs, axis=-1, keepdims=True) / total
    cy = ops.sum(e_flat * ys, axis=-1, keepdims=True) / total
    return cx, cy


def _bin_membership(cx, cy, xs, ys, edges):
    """One-hot ``(N, cells, K)`` of each cell's radial bin about the centroid."""
    r = ops.sqrt(ops.square(xs - cx) + ops.square(ys - cy))[..., None]
    lo = ops.convert_to_tensor(edges[:-1].astype("float32"))
    hi = ops.convert_to_tensor(edges[1:].astype("float32"))
    return ops.cast(ops.logical_and(r >= lo, r < hi), "float32")


def _radial_fractions(e_flat, onehot):
    total = ops.maximum(ops.sum(e_flat, axis=-1, keepdims=True), 1e-12)
    return ops.einsum("nc,nck->nk", e_flat, onehot) / total


def _model_cell_weights(cx, cy, xs, ys, cell_size, p, rc, rt, supersample):
    """Energy fraction of the core + tail profile (centred on the centroid) in each cell.

    The 2-D density is ``ρ(r) = f(r)/(2πr) = p·Rc²/(π(r²+Rc²)²) + (1−p)·Rt²/(π(r²+Rt²)²)``;
    its integral over a cell is approximated by a ``supersample × supersample`` midpoint rule.
    """
    offsets = ((np.arange(supersample) + 0.5) / supersample - 0.5) * cell_size
    ox, oy = np.meshgrid(offsets, offsets, indexing="ij")
    ox = ops.convert_to_tensor(ox.reshape(-1).astype("float32"))
    oy = ops.convert_to_tensor(oy.reshape(-1).astype("float32"))
    dx = (xs - cx)[..., None] + ox  # (N, cells, s²)
    dy = (ys - cy)[..., None] + oy
    r2 = ops.square(dx) + ops.square(dy)
    rho = p * rc**2 / (np.pi * ops.square(r2 + rc**2)) + (1.0 - p) * rt**2 / (
        np.pi * ops.square(r2 + rt**2)
    )
    return ops.mean(rho, axis=-1) * cell_size**2


def transverse_profile_loss(
    y_true,
    y_pred,
    core_fraction=None,
    core_radius_mm=None,
    tail_radius_mm=None,
    cell_size_mm=1.0,
    bin_edges_mm=None,
    compare="batch_mean",
    supersample=4,
):
    """Squared distance between the radial energy profile of showers and a target profile.

    For each shower ``y_pred`` ``(N, H, W[, C])`` the energy centroid ``(x̄, ȳ)`` is found and
    the fraction of the energy in radial bins ``[r_k, r_{k+1})`` about it (cell centres,
    pitch ``cell_size_mm``) is computed. The target is

    * with ``core_fraction``, ``core_radius_mm``, ``tail_radius_mm``: the core + tail model
      ``f(r) = p·2rRc²/(r²+Rc²)² + (1−p)·2rRt²/(r²+Rt²)²`` (seed 001 eq. 2), integrated over
      the same cells about the same centroid (so a shower that follows the model exactly,
      wherever it is centred and however coarse the grid, has loss 0);
    * otherwise the radial profile of ``y_true`` (real showers) about its own centroid.

    Args:
        y_true: real showers ``(N, H, W[, C])`` (reference mode) or ignored.
        y_pred: generated showers ``(N, H, W[, C])``; channels are summed.
        core_fraction: p in [0, 1].
        core_radius_mm: Rc > 0 in mm.
        tail_radius_mm: Rt > 0 in mm.
        cell_size_mm: cell pitch in mm (``geometry.cell_size_mm``).
        bin_edges_mm: increasing radial bin edges in mm starting at 0; default one cell wide
            out to half the larger grid side, plus an overflow bin to infinity.
        compare: ``"batch_mean"`` (mean radial profile of the batch) or ``"per_shower"``.
        supersample: sub-points per cell side for the model's cell integrals.

    Returns:
        float32 tensor ``(N,)``: ``Σ_k (f_k − target_k)²``.
    """
    check_choice("compare", compare, _COMPARE)
    cell_size_mm = check_positive("cell_size_mm", cell_size_mm)
    y_pred = image_2d(to_float32(y_pred), "y_pred")
    shape = tuple(int(d) for d in y_pred.shape[1:3])
    if bin_edges_mm is None:
        edges = default_bin_edges(shape, cell_size_mm)
    else:
        edges = np.asarray(bin_edges_mm, dtype=np.float64).reshape(-1)
        if edges.size < 2 or edges[0] != 0 or np.any(np.diff(edges) <= 0):
            raise ValueError(
                "`bin_edges_mm` must be increasing, start at 0 and have >= 2 entries. "
                f"Received: bin_edges_mm={bin_edges_mm}"
            )
    xs_np, ys_np = _cell_grid(shape, cell_size_mm)
    xs, ys = ops.convert_to_tensor(xs_np), ops.convert_to_tensor(ys_np)
    e_pred = ops.reshape(y_pred, (-1, shape[0] * shape[1]))
    cx, cy = _centroid(e_pred, xs, ys)
    onehot = _bin_membership(cx, cy, xs, ys, edges)
    f_pred = _radial_fractions(e_pred, onehot)

    parametric = (core_fraction, core_radius_mm, tail_radius_mm)
    if any(v is not None for v in parametric):
        if any(v is None for v in parametric):
            raise ValueError(
                "Give all of `core_fraction`, `core_radius_mm`, `tail_radius_mm`. Received: "
                f"core_fraction={core_fraction}, core_radius_mm={core_radius_mm}, "
                f"tail_radius_mm={tail_radius_mm}"
            )
        p = float(core_fraction)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`core_fraction` must be in [0, 1]. Received: core_fraction={p}")
        rc = check_positive("core_radius_mm", core_radius_mm)
        rt = check_positive("tail_radius_mm", tail_radius_mm)
        if int(supersample) != supersample or supersample < 1:
            raise ValueError(f"`supersample` must be an integer >= 1. Received: {supersample}")
        cx_s, cy_s = ops.stop_gradient(cx), ops.stop_gradient(cy)
        weights = _model_cell_weights(
            cx_s, cy_s, xs, ys, cell_size_mm, p, rc, rt, int(supersample)
        )
        target = _radial_fractions(weights, ops.stop_gradient(onehot))
    else:
        y_true = image_2d(to_float32(y_true), "y_true")
        if tuple(int(d) for d in y_true.shape[1:3]) != shape:
            raise ValueError(
                "`y_true` and `y_pred` must have the same grid. Received: "
                f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        e_true = ops.reshape(y_true, (-1, shape[0] * shape[1]))
        tx, ty = _centroid(e_true, xs, ys)
        target = _radial_fractions(e_true, _bin_membership(tx, ty, xs, ys, edges))
    if compare == "batch_mean":
        value = ops.sum(ops.square(ops.mean(f_pred, axis=0) - ops.mean(target, axis=0)))
        return per_sample(value, f_pred)
    return ops.sum(ops.square(f_pred - target), axis=-1)


@keras.saving.register_keras_serializable(package="calozdc")
class TransverseProfileLoss(keras.losses.Loss):
    """Loss between the radial shower profile about the energy centroid and a target.

    Wraps :func:`transverse_profile_loss`: the target is the core + tail parametrisation
    ``f(r) = p·2rRc²/(r²+Rc²)² + (1−p)·2rRt²/(r²+Rt²)²`` (seed 001 eq. 2) integrated over the
    detector cells, or, without parameters, the radial profile of ``y_true``. Computed in
    float32 whatever the inputs' dtype.

    Args:
        core_fraction: p in [0, 1], or None (reference mode).
        core_radius_mm: core radius Rc in mm, or None.
        tail_radius_mm: tail radius Rt in mm, or None.
        cell_size_mm: cell pitch in mm (zn44: 1.6, ecal20: 9.0).
        bin_edges_mm: radial bin edges in mm (list), or None for the default.
        compare: ``"batch_mean"`` or ``"per_shower"``.
        supersample: sub-points per cell side for the model's cell integrals.
        reduction, name, dtype: as :class:`keras.losses.Loss`.

    Call arguments:
        y_true: real showers ``(N, H, W[, C])`` (reference mode) or any tensor.
        y_pred: generated showers ``(N, H, W[, C])``.
        sample_weight: optional ``(N,)`` weights.

    Example:

    >>> loss = TransverseProfileLoss(core_fraction=0.8, core_radius_mm=2.0,
    ...                              tail_radius_mm=8.0, cell_size_mm=1.6)
    >>> value = loss(showers, generated)  # doctest: +SKIP

    References:
        G. Grindhammer, S. Peters, arXiv:hep-ex/0001020 (GFlash), eq. 10.
    """

    def __init__(
        self,
        core_fraction=None,
        core_radius_mm=None,
        tail_radius_mm=None,
        cell_size_mm=1.0,
        bin_edges_mm=None,
        compare="batch_mean",
        supersample=4,
        reduction="sum_over_batch_size",
        name="transverse_profile_loss",
        dtype=None,
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype, **kwargs)
        parametric = (core_fraction, core_radius_mm, tail_radius_mm)
        if any(v is not None for v in parametric):
            if any(v is None for v in parametric):
                raise ValueError(
                    "Give all of `core_fraction`, `core_radius_mm`, `tail_radius_mm`. "
                    f"Received: core_fraction={core_fraction}, "
                    f"core_radius_mm={core_radius_mm}, tail_radius_mm={tail_radius_mm}"
                )
            if not 0.0 <= float(core_fraction) <= 1.0:
                raise ValueError(
                    f"`core_fraction` must be in [0, 1]. Received: core_fraction={core_fraction}"
                )
            check_positive("core_radius_mm", core_radius_mm)
            check_positive("tail_radius_mm", tail_radius_mm)
        check_positive("cell_size_mm", cell_size_mm)
        check_choice("compare", compare, _COMPARE)
        if int(supersample) != supersample or supersample < 1:
            raise ValueError(
                f"`supersample` must be an integer >= 1. Received: supersample={supersample}"
            )
        if bin_edges_mm is not None:
            edges = np.asarray(bin_edges_mm, dtype=np.float64).reshape(-1)
            if edges.size < 2 or edges[0] != 0 or np.any(np.diff(edges) <= 0):
                raise ValueError(
                    "`bin_edges_mm` must be increasing, start at 0 and have >= 2 entries. "
                    f"Received: bin_edges_mm={bin_edges_mm}"
                )
            bin_edges_mm = [float(v) for v in edges]
        self.core_fraction = None if core_fraction is None else float(core_fraction)
        self.core_radius_mm = None if core_radius_mm is None else float(core_radius_mm)
        self.tail_radius_mm = None if tail_radius_mm is None else float(tail_radius_mm)
        self.cell_size_mm = float(cell_size_mm)
        self.bin_edges_mm = bin_edges_mm
        self.compare = compare
        self.supersample = int(supersample)
        self._dtype_arg = dtype

    def call(self, y_true, y_pred):
        return transverse_profile_loss(
            y_true,
            y_pred,
            core_fraction=self.core_fraction,
            core_radius_mm=self.core_radius_mm,
            tail_radius_mm=self.tail_radius_mm,
            cell_size_mm=self.cell_size_mm,
            bin_edges_mm=self.bin_edges_mm,
            compare=self.compare,
            supersample=self.supersample,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "core_fraction": self.core_fraction,
                "core_radius_mm": self.core_radius_mm,
                "tail_radius_mm": self.tail_radius_mm,
                "cell_size_mm": self.cell_size_mm,
                "bin_edges_mm": self.bin_edges_mm,
                "compare": self.compare,
                "supersample": self.supersample,
                "dtype": self._dtype_arg,
            }
        )
        return config
