"""The :mod:`calozdc.data.transforms` transforms as ``keras.ops`` functions (graph-friendly).

A fitted transform's ``forward`` / ``inverse`` run in numpy float64; an exported generator
needs the same maps inside its graph. :func:`forward_ops` and :func:`inverse_ops` rebuild
them from the fitted parameters in ``keras.ops`` (float32), so TensorFlow, JAX and PyTorch
can trace them and every exporter can convert them. They follow the numpy formulas term by
term (the float32 results agree with the numpy ones to ~1e-6 relative).
"""

import numpy as np
from keras import ops

from calozdc.data import transforms as T


def expm1(u):
    """``exp(u) - 1`` to full float32 relative precision from ``exp`` and ``log`` only
    (tf2onnx converts neither Expm1 nor Log1p): ``(e - 1) u / log(e)``, ``e = exp(u)``, the
    exp counterpart (due to W. Kahan) of the log1p formula of :func:`log1p`."""
    e = ops.exp(u)
    special = ops.logical_or(ops.logical_or(ops.equal(e, 1.0), ops.equal(e, 0.0)),
                             ops.isinf(e))
    general = (e - 1.0) * u / ops.where(special, 1.0, ops.log(ops.where(special, 2.0, e)))
    return ops.where(ops.equal(e, 1.0), u, ops.where(special, e - 1.0, general))


def log1p(x):
    """``log(1 + x)`` to full float32 relative precision from ``log`` only:
    ``log(w) x / (w - 1)`` with ``w = 1 + x`` (D. Goldberg, "What every computer scientist
    should know about floating-point arithmetic", ACM Computing Surveys 23 (1991), thm 4)."""
    w = 1.0 + x
    one = ops.equal(w, 1.0)
    return ops.where(one, x, ops.log(w) * x / ops.where(one, 1.0, w - 1.0))


def _const(value):
    return ops.convert_to_tensor(np.asarray(value, dtype="float32"))


def _energy(transform, conditions, ndim):
    """Incident energy ``conditions[:, column] * factor`` broadcast to rank ``ndim``."""
    energy = ops.cast(conditions, "float32")[:, transform.column] * transform.factor
    return ops.reshape(energy, (-1,) + (1,) * (ndim - 1))


def _column_mask(transform, x):
    k = int(x.shape[-1])
    mask = np.zeros((k,), dtype=bool)
    mask[transform.columns] = True
    return ops.convert_to_tensor(mask)


def _check_supported(transform):
    if not isinstance(transform, (T.Log1p, T.LogScaled, T.DivideByIncidentEnergy,
                                  T.LogitFraction, T.LogColumns, T.Standardize, T.MinMax,
                                  T.Chain)):
        raise ValueError(
            "This transform has no graph version for export (supported: Log1p, LogScaled, "
            "DivideByIncidentEnergy, LogitFraction, LogColumns, Standardize, MinMax, Chain). "
            f"Received: transform={transform!r}"
        )
    if not transform.fitted:
        raise ValueError(f"The transform is not fitted: nothing to export. Received: {transform!r}")


def forward_ops(transform, x, conditions=None):
    """``transform.forward(x, conditions)`` in ``keras.ops`` (None: identity)."""
    if transform is None:
        return x
    _check_supported(transform)
    x = ops.cast(x, "float32")
    if isinstance(transform, T.Chain):
        for member in transform.transforms:
            x = forward_ops(member, x, conditions)
        return x
    if isinstance(transform, (T.Log1p, T.LogScaled)):
        return log1p(x / transform.scale)
    if isinstance(transform, T.DivideByIncidentEnergy):
        return x / _energy(transform, conditions, len(x.shape))
    if isinstance(transform, T.LogitFraction):
        r = transform.eps
        frac = ops.minimum(x / _energy(transform, conditions, len(x.shape)), 1.0)
        a = (1.0 - 2.0 * r) * frac
        return log1p(a / r) - log1p(-a / (1.0 - r))
    if isinstance(transform, T.LogColumns):
        mask = _column_mask(transform, x)
        return ops.where(mask, ops.log(ops.where(mask, x, 1.0)), x)
    if isinstance(transform, T.Standardize):
        return (x - _const(transform.mean)) / _const(transform.std)
    # MinMax
    return (x - _const(transform.data_min)) * _const(transform._scale()) + \
        transform.feature_range[0]


def inverse_ops(transform, u, conditions=None):
    """``transform.inverse(u, conditions)`` in ``keras.ops`` (None: identity)."""
    if transform is None:
        return u
    _check_supported(transform)
    u = ops.cast(u, "float32")
    if isinstance(transform, T.Chain):
        for member in reversed(transform.transforms):
            u = inverse_ops(member, u, conditions)
        return u
    if isinstance(transform, T.Log1p):
        return transform.scale * expm1(u)
    if isinstance(transform, T.LogScaled):
        # numpy clips at 700 (float64 overflow); float32 overflows above ~88.
        return transform.scale * expm1(ops.minimum(u, 80.0))
    if isinstance(transform, T.DivideByIncidentEnergy):
        return u * _energy(transform, conditions, len(u.shape))
    if isinstance(transform, T.LogitFraction):
        r = transform.eps
        u_max = float(2.0 * np.log((1.0 - r) / r))
        u = ops.clip(u, -u_max, u_max)
        a = expm1(u) * (r * (1.0 - r)) / ((1.0 - r) + r * ops.exp(u))
        return a / (1.0 - 2.0 * r) * _energy(transform, conditions, len(u.shape))
    if isinstance(transform, T.LogColumns):
        mask = _column_mask(transform, u)
        return ops.where(mask, ops.exp(ops.minimum(u, 80.0)), u)
    if isinstance(transform, T.Standardize):
        return u * _const(transform.std) + _const(transform.mean)
    return (u - transform.feature_range[0]) / _const(transform._scale()) + \
        _const(transform.data_min)
