"""Invertible, serialisable preprocessing transforms (numpy).

Models see transformed data; users and metrics see physical units. A model keeps one shower
transform and one condition transform, fitted on the **training split only**, and stores their
:func:`serialize`-d dicts in its config, so ``generate(conditions)`` can undo them.

Every transform has the same interface:

* ``fit(x, conditions=None)`` learns its parameters from exactly the arrays it is given (pass
  the training split; never the validation or test data) and returns ``self``. Stateless
  transforms (``Log1p``, ``LogitFraction``, ``DivideByIncidentEnergy``) need no fit.
* ``forward(x, conditions=None)`` and ``inverse(u, conditions=None)``:
  ``inverse(forward(x, c), c) == x`` up to float rounding. In float32 (tested on shower-like
  values 1e-3..1e4 and zeros): relative 1e-5 for ``Log1p``, ``LogitFraction`` and
  ``DivideByIncidentEnergy``; for ``Standardize``/``MinMax`` and chains containing them,
  relative 1e-5 plus an absolute ~1e-6 of the data's scale (the float32 rounding of the
  standardised value; empty cells come back as tiny values of either sign, not exact zeros,
  except with ``Standardize(center=False)``, which maps 0 to exactly 0).
  Float64 inputs round-trip to ~1e-9 relative. Transforms that depend on the incident energy
  (``LogitFraction``, ``DivideByIncidentEnergy``) read it from
  ``conditions[:, column] * factor``; the others ignore ``conditions``.
* ``get_config()`` returns exactly the constructor arguments, fitted parameters included (as
  plain lists), so ``type(t).from_config(t.get_config())`` is the same, fitted transform and
  the config is JSON-serialisable.

Floating inputs keep their dtype (computation in float64); integer inputs (photon counts)
give float32.

Example:

>>> from calozdc.data import transforms
>>> t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
>>> u = t.fit(train.showers).forward(train.showers)          # doctest: +SKIP
>>> cfg = transforms.serialize(t)                            # JSON-compatible dict
>>> x = transforms.deserialize(cfg).inverse(u)               # doctest: +SKIP
"""

import numpy as np

_REGISTRY = {}


def _register(cls):
    _REGISTRY[cls.__name__] = cls
    return cls


def _out_dtype(x):
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype("float32")


def _as_float(x, name="x"):
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"`{name}` must be a numeric array. Received: dtype={x.dtype}")
    return x


def _check_finite(x, what):
    """NaN/inf in data to fit or transform would silently poison a model: refuse them."""
    if np.issubdtype(x.dtype, np.floating) and x.size and not np.isfinite(x).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(
            f"{what} must be finite. Received: x[{', '.join(map(str, where))}]={x[where]}"
        )


def _array_or_none(value):
    return None if value is None else np.asarray(value, dtype=np.float64)


def _to_list(value):
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    return value.tolist()


class Transform:
    """Base class of the calozdc transforms (see the module docstring for the contract).

    Subclasses implement ``_forward(x, conditions)`` and ``_inverse(u, conditions)`` on float64
    arrays, optionally ``_fit(x, conditions)`` and ``fitted``, and ``get_config()``.
    """

    #: whether forward/inverse need ``conditions``.
    needs_conditions = False

    def __init__(self, **kwargs):
        if kwargs:
            raise ValueError(
                f"Unrecognized arguments for {type(self).__name__}. Received: {kwargs}"
            )

    @property
    def fitted(self):
        return True

    def fit(self, x, conditions=None):
        """Learn the parameters from ``x`` (the training split only); returns ``self``."""
        x = _as_float(x)
        _check_finite(x, f"Data to fit {type(self).__name__} on")
        self._check_conditions(x, conditions)
        self._fit(x.astype(np.float64), conditions)
        return self

    def _fit(self, x, conditions):
        pass

    def forward(self, x, conditions=None):
        """Map physical values ``x`` to the model's space."""
        return self._apply(self._forward, x, conditions)

    def inverse(self, u, conditions=None):
        """Map model-space values ``u`` back to physical values."""
        return self._apply(self._inverse, u, conditions)

    def fit_forward(self, x, conditions=None):
        """``fit(x, conditions).forward(x, conditions)``."""
        return self.fit(x, conditions).forward(x, conditions)

    def _apply(self, fn, x, conditions):
        if not self.fitted:
            raise ValueError(
                f"{type(self).__name__} is not fitted: call fit(x) on the training split first "
                f"(or build it from a saved config). Received: {self!r}"
            )
        x = _as_float(x)
        if fn == self._forward:  # inverse() may see model outputs: not checked here
            _check_finite(x, f"Input of {type(self).__name__}.forward")
        self._check_conditions(x, conditions)
        return fn(x.astype(np.float64), conditions).astype(_out_dtype(x))

    def _check_conditions(self, x, conditions):
        if not self.needs_conditions:
            return
        if conditions is None:
            raise ValueError(
                f"{type(self).__name__} needs `conditions` (incident energy in column "
                f"{self.column}). Received: conditions=None"
            )
        c = np.asarray(conditions)
        if c.ndim != 2 or c.shape[0] != (x.shape[0] if x.ndim else -1):
            raise ValueError(
                f"`conditions` must have shape (N, k) with the same N as x ({x.shape[:1]}). "
                f"Received: conditions.shape={c.shape}"
            )
        if not 0 <= self.column < c.shape[1]:
            raise ValueError(
                f"Condition column {self.column} is out of range for conditions with "
                f"{c.shape[1]} columns. Received: column={self.column}"
            )

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_config().items() if not isinstance(v, list)
        )
        return f"{type(self).__name__}({args})"


def _incident_energy(conditions, column, factor):
    energy = np.asarray(conditions, dtype=np.float64)[:, column] * factor
    if not np.all(np.isfinite(energy)) or np.any(energy <= 0):
        bad = energy[~(np.isfinite(energy) & (energy > 0))][0]
        raise ValueError(
            f"Incident energies (conditions[:, {column}] * {factor}) must be finite and > 0. "
            f"Received: energy={bad}"
        )
    return energy


def _broadcast_rows(values, x):
    return values.reshape((-1,) + (1,) * (x.ndim - 1))


@_register
class Log1p(Transform):
    """``u = log(1 + x / scale)``, the "new scaling" of the CaloQVAE group (seed 003).

    Compresses the many orders of magnitude of cell energies / photon counts while keeping
    zeros at zero. Stateless.

    Args:
        scale: positive divisor applied before the logarithm (the value that maps to log 2).

    Call arguments:
        x: array with ``x > -scale`` (showers are non-negative). ``conditions`` is ignored.

    Returns:
        Array of the same shape.

    Example:

    >>> Log1p(scale=10.0).forward(np.array([0.0, 10.0]))
    array([0.        , 0.69314718])

    References:
        CaloQVAE status report, Nov. 2024 (seeds/003): "New scaling: log(1+x)".
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"`scale` must be finite and > 0. Received: scale={scale}")
        self.scale = float(scale)

    def _forward(self, x, conditions):
        if x.size and np.min(x) <= -self.scale:
            raise ValueError(
                f"Log1p needs x > -scale ({-self.scale}). Received: min(x)={np.min(x)}"
            )
        return np.log1p(x / self.scale)

    def _inverse(self, u, conditions):
        return self.scale * np.expm1(u)

    def get_config(self):
        return {"scale": self.scale}


@_register
class DivideByIncidentEnergy(Transform):
    """``u = x / (conditions[:, column] * factor)``: the energy fraction of each cell.

    Args:
        column: condition column holding the incident energy.
        factor: multiplies that column to put it in the unit of the showers (e.g. ``1000``
            for showers in MeV and energies in GeV; photons per GeV for zn44 counts).

    Call arguments:
        x: showers ``(N, ...)``; ``conditions``: ``(N, k)`` with positive energies.

    Example:

    >>> DivideByIncidentEnergy(factor=1000.0).forward(
    ...     np.array([[500.0]]), conditions=np.array([[1.0]]))
    array([[0.5]])
    """

    needs_conditions = True

    def __init__(self, column=0, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(column) != column or column < 0:
            raise ValueError(f"`column` must be an integer >= 0. Received: column={column}")
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError(f"`factor` must be finite and > 0. Received: factor={factor}")
        self.column = int(column)
        self.factor = float(factor)

    def _forward(self, x, conditions):
        return x / _broadcast_rows(_incident_energy(conditions, self.column, self.factor), x)

    def _inverse(self, u, conditions):
        return u * _broadcast_rows(_incident_energy(conditions, self.column, self.factor), u)

    def get_config(self):
        return {"column": self.column, "factor": self.factor}


@_register
class LogitFraction(Transform):
    """Shifted logit of the energy fraction, seed 003 ``_reduce`` with ``R = eps``.

    With ``e = x / E_inc`` (``E_inc = conditions[:, column] * factor``)::

        x' = R + (1 - 2R) e
        u  = log(x' / (1 - x')) - log(R / (1 - R))

    so ``u = 0`` for an empty cell and ``u`` grows like ``log(e / R)`` for ``e >> R``. It is
    evaluated as ``log1p(a / R) - log1p(-a / (1 - R))`` with ``a = (1 - 2R) e`` and inverted
    as ``a = expm1(u) R (1 - R) / ((1 - R) + R e^u)``, which keeps full relative precision for
    fractions far below ``R`` (the naive formula cancels catastrophically there).

    Args:
        eps: the regulator ``R`` in (0, 0.5); 1e-7 as in seed 003.
        column: condition column holding the incident energy.
        factor: multiplies that column to put it in the unit of the showers.

    Call arguments:
        x: showers ``(N, ...)`` with ``0 <= x <= E_inc``; ``conditions``: ``(N, k)``.

    Example:

    >>> t = LogitFraction()
    >>> u = t.forward(showers, conditions=conditions)                  # doctest: +SKIP
    >>> np.allclose(t.inverse(u, conditions=conditions), showers)      # doctest: +SKIP
    True

    References:
        CaloQVAE status report, Nov. 2024 (seeds/003), "old scaling" ``_reduce``; the logit
        preprocessing of CaloFlow, C. Krause and D. Shih, arXiv:2106.05285, eq. (4.1).
    """

    needs_conditions = True

    def __init__(self, eps=1e-7, column=0, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        if not (0 < eps < 0.5):
            raise ValueError(f"`eps` must be in (0, 0.5). Received: eps={eps}")
        if int(column) != column or column < 0:
            raise ValueError(f"`column` must be an integer >= 0. Received: column={column}")
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError(f"`factor` must be finite and > 0. Received: factor={factor}")
        self.eps = float(eps)
        self.column = int(column)
        self.factor = float(factor)

    def _forward(self, x, conditions):
        energy = _broadcast_rows(_incident_energy(conditions, self.column, self.factor), x)
        frac = x / energy
        # Tolerate float32 rounding of a cell holding the whole energy.
        if frac.size and (np.min(frac) < 0 or np.max(frac) > 1 + 1e-6):
            bad = np.min(frac) if np.min(frac) < 0 else np.max(frac)
            raise ValueError(
                "LogitFraction needs 0 <= x / E_inc <= 1 (check `factor` converts the energy "
                f"column to the shower unit). Received: fraction={bad}"
            )
        r = self.eps
        a = (1.0 - 2.0 * r) * np.minimum(frac, 1.0)
        return np.log1p(a / r) - np.log1p(-a / (1.0 - r))

    def _inverse(self, u, conditions):
        energy = _broadcast_rows(_incident_energy(conditions, self.column, self.factor), u)
        r = self.eps
        # Clip so that exp() cannot overflow; u above logit(1-R)-logit(R) means fraction 1.
        u_max = 2.0 * np.log((1.0 - r) / r)
        u = np.clip(u, -u_max, u_max)
        a = np.expm1(u) * r * (1.0 - r) / ((1.0 - r) + r * np.exp(u))
        return a / (1.0 - 2.0 * r) * energy

    def get_config(self):
        return {"eps": self.eps, "column": self.column, "factor": self.factor}


@_register
class LogScaled(Transform):
    """``u = log(1 + x / scale)`` with ``scale`` fitted as a quantile of the positive values.

    :class:`Log1p` with a data-driven scale, so one recipe serves showers in MeV, in photon
    counts or in fractions of the total: cells well below ``scale`` stay near-linear (and
    an empty cell stays exactly 0), cells above it are compressed logarithmically. With the
    default ``quantile=0.5`` half of the non-empty cells of the training data lie in the
    linear part.

    Args:
        quantile: quantile in (0, 1) of the positive training values that becomes ``scale``.
        scale: the fitted scale (set by :meth:`fit`, or given to rebuild a fitted transform).

    Call arguments:
        x: array with ``x > -scale``; ``conditions`` is ignored.

    Example:

    >>> t = LogScaled(quantile=0.5).fit(np.array([0.0, 1.0, 2.0, 3.0]))
    >>> t.scale
    2.0

    References:
        CaloQVAE status report, Nov. 2024 (seeds/003): "New scaling: log(1+x)".
    """

    def __init__(self, quantile=0.5, scale=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 < quantile < 1:
            raise ValueError(f"`quantile` must be in (0, 1). Received: quantile={quantile}")
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"`scale` must be None or finite and > 0. Received: scale={scale}")
        self.quantile = float(quantile)
        self.scale = None if scale is None else float(scale)

    @property
    def fitted(self):
        return self.scale is not None

    def _fit(self, x, conditions):
        positive = x[x > 0]
        if positive.size == 0:
            raise ValueError(
                "LogScaled needs some positive values to fit its scale. Received: no "
                f"positive value among {x.size}"
            )
        self.scale = float(np.quantile(positive, self.quantile))

    def _forward(self, x, conditions):
        if x.size and np.min(x) <= -self.scale:
            raise ValueError(
                f"LogScaled needs x > -scale ({-self.scale}). Received: min(x)={np.min(x)}"
            )
        return np.log1p(x / self.scale)

    def _inverse(self, u, conditions):
        # exp() overflows float64 above ~709: such a value is no shower anyway.
        return self.scale * np.expm1(np.minimum(u, 700.0))

    def get_config(self):
        return {"quantile": self.quantile, "scale": self.scale}


@_register
class LogColumns(Transform):
    """Natural logarithm of some condition columns (e.g. the incident energy), others kept.

    Shower properties scale with ``log E`` (depth of maximum, relative resolution), so a
    network conditioned on ``log E`` interpolates over a log-uniform spectrum far more
    evenly than on ``E``; chain it before :class:`Standardize`.

    Args:
        columns: indices of the columns to take the log of (values must be > 0).

    Call arguments:
        x: ``(N, k)`` conditions; ``conditions`` is ignored.

    Example:

    >>> LogColumns([0]).forward(np.array([[np.e, 5.0]]))
    array([[1., 5.]])
    """

    def __init__(self, columns=(0,), **kwargs):
        super().__init__(**kwargs)
        columns = _to_list(np.asarray(columns).reshape(-1))
        if not columns or any(int(c) != c or c < 0 for c in columns):
            raise ValueError(
                f"`columns` must be non-negative integers. Received: columns={columns}"
            )
        self.columns = [int(c) for c in columns]

    def _check(self, x):
        if x.ndim != 2 or max(self.columns) >= x.shape[1]:
            raise ValueError(
                f"LogColumns({self.columns}) needs (N, k) data with k > {max(self.columns)}. "
                f"Received: shape={x.shape}"
            )

    def _forward(self, x, conditions):
        self._check(x)
        values = x[:, self.columns]
        if values.size and not np.all(values > 0):
            bad = values[~(values > 0)][0]
            raise ValueError(
                f"LogColumns needs positive values in columns {self.columns}. "
                f"Received: value={bad}"
            )
        u = x.copy()
        u[:, self.columns] = np.log(values)
        return u

    def _inverse(self, u, conditions):
        self._check(u)
        x = u.copy()
        x[:, self.columns] = np.exp(np.minimum(u[:, self.columns], 700.0))
        return x

    def get_config(self):
        return {"columns": list(self.columns)}


def _check_axis(axis):
    if axis not in (None, "feature"):
        raise ValueError(f"`axis` must be None or 'feature'. Received: axis={axis!r}")


def _reduce_axes(x, axis):
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"Cannot fit on an empty array. Received: shape={x.shape}")
    return None if axis is None else 0


def _check_fitted_shape(param, x, axis, name):
    if axis == "feature" and param.shape != x.shape[1:]:
        raise ValueError(
            f"{name} was fitted on features of shape {param.shape}. "
            f"Received: x.shape={x.shape}"
        )


@_register
class Standardize(Transform):
    """``u = (x - mean) / std`` with mean and std fitted on the training data.

    Seed 001 ("data normalization, mu = 0, sigma = 1"). Constant features (std 0) get std 1.
    With ``center=False`` the data are only scaled, ``u = x / std`` (the mean is fixed at 0,
    like scikit-learn's ``StandardScaler(with_mean=False)``): an empty cell stays exactly 0
    and sums over cells stay proportional to the physical total, which suits sparse showers
    (e.g. after :class:`DivideByIncidentEnergy`).

    Args:
        axis: ``None`` for one mean/std over all values (showers), ``"feature"`` for one per
            feature, i.e. over axis 0 (condition columns, or pixels of showers).
        mean: fitted mean (scalar or array of the feature shape); set by :meth:`fit` (all
            zeros when ``center=False``).
        std: fitted standard deviation; set by :meth:`fit`.
        center: subtract the mean (default) or only divide by the standard deviation.

    Example:

    >>> t = Standardize(axis="feature").fit(train_conditions)        # doctest: +SKIP
    >>> z = t.forward(test_conditions)                               # doctest: +SKIP
    >>> Standardize(center=False).fit(np.array([0.0, 2.0])).forward(np.array([0.0, 2.0]))
    array([0., 2.])
    """

    def __init__(self, axis=None, mean=None, std=None, center=True, **kwargs):
        super().__init__(**kwargs)
        _check_axis(axis)
        if not isinstance(center, (bool, np.bool_)):
            raise ValueError(f"`center` must be True or False. Received: center={center!r}")
        if (mean is None) != (std is None):
            raise ValueError(
                f"Pass both `mean` and `std` or neither. Received: mean={mean}, std={std}"
            )
        self.axis = axis
        self.center = bool(center)
        self.mean = _array_or_none(mean)
        self.std = _array_or_none(std)
        if self.std is not None and not np.all(self.std > 0):
            raise ValueError(f"`std` must be > 0. Received: std={std}")
        if not self.center and self.mean is not None and np.any(self.mean != 0):
            raise ValueError(
                f"`mean` must be 0 when center=False. Received: mean={mean}"
            )

    @property
    def fitted(self):
        return self.mean is not None

    def _fit(self, x, conditions):
        axes = _reduce_axes(x, self.axis)
        mean = np.mean(x, axis=axes)
        std = np.std(x, axis=axes)
        # Constant features: the rounding of the mean can leave a std of ~1e-16 |mean|.
        self.std = np.where(std > 1e-10 * np.abs(mean), std, 1.0)
        self.mean = mean if self.center else np.zeros_like(mean)

    def _forward(self, x, conditions):
        _check_fitted_shape(self.mean, x, self.axis, "Standardize")
        return (x - self.mean) / self.std

    def _inverse(self, u, conditions):
        _check_fitted_shape(self.mean, u, self.axis, "Standardize")
        return u * self.std + self.mean

    def get_config(self):
        return {"axis": self.axis, "mean": _to_list(self.mean), "std": _to_list(self.std),
                "center": self.center}


@_register
class MinMax(Transform):
    """Linear map of the fitted ``[data_min, data_max]`` onto ``feature_range``.

    The scikit-learn ``MinMaxScaler`` for conditions; constant features map to the lower end.

    Args:
        feature_range: ``(low, high)`` with ``low < high``.
        axis: ``"feature"`` (default; per column) or ``None`` (one range for all values).
        data_min: fitted minimum; set by :meth:`fit`.
        data_max: fitted maximum; set by :meth:`fit`.

    Example:

    >>> MinMax().fit(np.array([[0.0], [4.0]])).forward(np.array([[1.0]]))
    array([[0.25]])
    """

    def __init__(self, feature_range=(0.0, 1.0), axis="feature", data_min=None, data_max=None,
                 **kwargs):
        super().__init__(**kwargs)
        _check_axis(axis)
        low, high = (float(v) for v in feature_range)
        if not low < high:
            raise ValueError(
                f"`feature_range` must be (low, high) with low < high. "
                f"Received: feature_range={feature_range}"
            )
        if (data_min is None) != (data_max is None):
            raise ValueError(
                "Pass both `data_min` and `data_max` or neither. "
                f"Received: data_min={data_min}, data_max={data_max}"
            )
        self.feature_range = (low, high)
        self.axis = axis
        self.data_min = _array_or_none(data_min)
        self.data_max = _array_or_none(data_max)

    @property
    def fitted(self):
        return self.data_min is not None

    def _fit(self, x, conditions):
        axes = _reduce_axes(x, self.axis)
        self.data_min = np.min(x, axis=axes)
        self.data_max = np.max(x, axis=axes)

    def _scale(self):
        span = self.data_max - self.data_min
        low, high = self.feature_range
        return (high - low) / np.where(span > 0, span, 1.0)

    def _forward(self, x, conditions):
        _check_fitted_shape(self.data_min, x, self.axis, "MinMax")
        return (x - self.data_min) * self._scale() + self.feature_range[0]

    def _inverse(self, u, conditions):
        _check_fitted_shape(self.data_min, u, self.axis, "MinMax")
        return (u - self.feature_range[0]) / self._scale() + self.data_min

    def get_config(self):
        return {
            "feature_range": list(self.feature_range),
            "axis": self.axis,
            "data_min": _to_list(self.data_min),
            "data_max": _to_list(self.data_max),
        }


@_register
class Chain(Transform):
    """Apply transforms in order; invert in reverse order.

    ``fit`` fits each transform on the output of the previous ones (all on the training data
    given). ``conditions`` are passed to every member.

    Args:
        transforms: list of transforms, names (see :func:`get`) or serialized dicts.

    Example:

    >>> t = Chain([LogitFraction(), Standardize()])
    >>> u = t.fit_forward(train.showers, conditions=train.conditions)   # doctest: +SKIP
    """

    def __init__(self, transforms, **kwargs):
        super().__init__(**kwargs)
        if isinstance(transforms, (str, dict, Transform)) or not hasattr(transforms, "__iter__"):
            raise ValueError(
                f"`transforms` must be a list of transforms. Received: transforms={transforms!r}"
            )
        self.transforms = [get(t) for t in transforms]

    @property
    def fitted(self):
        return all(t.fitted for t in self.transforms)

    @property
    def needs_conditions(self):
        return any(t.needs_conditions for t in self.transforms)

    def _check_conditions(self, x, conditions):
        pass  # each member checks its own

    def fit(self, x, conditions=None):
        x = _as_float(x)
        _check_finite(x, "Data to fit Chain on")
        for t in self.transforms:
            t.fit(x, conditions)
            x = t.forward(x, conditions)
        return self

    def forward(self, x, conditions=None):
        x = _as_float(x)
        dtype = _out_dtype(x)
        x = x.astype(np.float64)
        for t in self.transforms:
            x = t.forward(x, conditions)
        return x.astype(dtype)

    def inverse(self, u, conditions=None):
        u = _as_float(u)
        dtype = _out_dtype(u)
        u = u.astype(np.float64)
        for t in reversed(self.transforms):
            u = t.inverse(u, conditions)
        return u.astype(dtype)

    def get_config(self):
        return {"transforms": [serialize(t) for t in self.transforms]}

    def __repr__(self):
        return f"Chain({self.transforms!r})"


_ALIASES = {
    "log1p": "Log1p",
    "log_scaled": "LogScaled",
    "log_columns": "LogColumns",
    "logit_fraction": "LogitFraction",
    "logit": "LogitFraction",
    "divide_by_incident_energy": "DivideByIncidentEnergy",
    "standardize": "Standardize",
    "minmax": "MinMax",
    "min_max": "MinMax",
    "chain": "Chain",
}


def serialize(transform):
    """Return ``{"class_name": ..., "config": ...}`` (JSON-compatible) for a transform."""
    if not isinstance(transform, Transform):
        raise ValueError(
            f"Expected a calozdc transform. Received: transform={transform!r}"
        )
    return {"class_name": type(transform).__name__, "config": transform.get_config()}


def _lookup(name):
    key = _ALIASES.get(str(name).lower(), str(name))
    if key not in _REGISTRY:
        raise ValueError(
            f"Unknown transform. Expected one of {sorted(_REGISTRY)} or "
            f"{sorted(_ALIASES)}. Received: name={name!r}"
        )
    return _REGISTRY[key]


def deserialize(config):
    """Rebuild a transform (fitted parameters included) from :func:`serialize`'s dict."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "Expected a dict with keys 'class_name' and 'config'. Received: "
            f"config={config!r}"
        )
    return _lookup(config["class_name"]).from_config(dict(config.get("config") or {}))


def get(identifier):
    """Return a transform from an instance, a serialized dict or a name (default arguments).

    Names: ``"log1p"``, ``"logit_fraction"``, ``"divide_by_incident_energy"``,
    ``"standardize"``, ``"minmax"`` or the class names. ``None`` returns ``None``.
    """
    if identifier is None or isinstance(identifier, Transform):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _lookup(identifier)
        if cls is Chain:
            raise ValueError(
                "A Chain needs its transforms: use Chain([...]). "
                f"Received: identifier={identifier!r}"
            )
        return cls()
    raise ValueError(
        f"Cannot interpret a transform from this value. Received: identifier={identifier!r}"
    )
