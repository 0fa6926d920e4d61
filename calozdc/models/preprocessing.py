"""How task models keep their preprocessing: transforms in, JSON-compatible configs out.

Every model family stores a shower transform and a condition transform
(:mod:`calozdc.data.transforms`) and saves them in ``get_config()``, so that ``generate``
returns physical units after a ``.keras`` round trip.
"""

import numpy as np

from calozdc.data import transforms

#: Transform from an instance, its serialized dict, a name or None (returned as is).
get_transform = transforms.get


def serialize_transform(transform):
    """JSON-compatible config of a transform; None and already-serialized dicts pass through."""
    if transform is None or isinstance(transform, dict):
        return transform
    return transforms.serialize(transform)


def check_conditions(conditions, condition_dim, physical=False):
    """Conditions as a float32 ``(N, condition_dim)`` array, or one ValueError naming the problem.

    Used by every family's ``generate`` (and physical-unit helpers). A 1-D array is taken as
    ``(N, 1)`` when ``condition_dim == 1``.

    Args:
        conditions: array-like ``(N, k)``.
        condition_dim: the ``k`` the model takes.
        physical: the conditions are in physical units (the model has a condition
            transform), so column 0 is the incident energy and must be > 0.

    Raises:
        ValueError: not numeric, wrong shape, no rows, NaN/inf, or a non-positive energy.
    """
    array = np.asarray(conditions)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"`conditions` must be numeric. Received: dtype={array.dtype}")
    array = array.astype("float32")
    if array.ndim == 1 and condition_dim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != condition_dim:
        raise ValueError(
            f"`conditions` must have shape (N, {condition_dim}). "
            f"Received: conditions.shape={array.shape}"
        )
    if len(array) == 0:
        raise ValueError(
            f"`conditions` has no rows: nothing to generate. Received: conditions.shape={array.shape}"
        )
    finite = np.isfinite(array)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise ValueError(f"`conditions` must be finite. Received: conditions[{i}, {j}]={array[i, j]}")
    if physical and np.any(array[:, 0] <= 0):
        i = int(np.flatnonzero(array[:, 0] <= 0)[0])
        raise ValueError(
            "`conditions[:, 0]` is the incident energy and must be > 0. "
            f"Received: conditions[{i}, 0]={array[i, 0]}"
        )
    return array


def fit_zero_threshold(shower_transform, showers, conditions, quantile):
    """The model-space level below which a generated cell counts as empty, or None.

    The ``quantile`` of the non-empty cells of the training showers in model space, when the
    transform keeps empty cells at exactly 0 (a zero-preserving model space, e.g. a
    ``Standardize(center=False)`` chain); None when it does not (a centred standardisation
    puts the zero level elsewhere), when ``quantile`` is None or when nothing is non-empty.
    Generators leave small noise around the zero level of the many empty cells of a
    calorimeter image; setting cells below the smallest real signals to 0 removes it.

    Args:
        shower_transform: fitted transform or None (model space = physical units).
        showers, conditions: training showers and their physical conditions.
        quantile: in [0, 1), or None.
    """
    if quantile is None:
        return None
    showers = np.asarray(showers, dtype="float32")
    if shower_transform is not None:
        zero = shower_transform.forward(np.zeros_like(showers[:1]), conditions[:1])
        if np.any(np.abs(np.asarray(zero)) > 0):
            return None
        showers = np.asarray(shower_transform.forward(showers, conditions))
    positive = showers[showers > 0]
    return float(np.quantile(positive, quantile)) if positive.size else None


def total_floor(totals, what="The energy/shape factorisation"):
    """The floor that puts empty showers at a finite log total: 1e-6 of the median positive
    total (negligible energy). Shared by the flow's log-total statistics and the total model.

    Raises:
        ValueError: no shower has a positive total.
    """
    totals = np.asarray(totals)
    positive = totals[totals > 0]
    if positive.size == 0:
        raise ValueError(f"{what} needs showers with a positive total. "
                         f"Received: {len(totals)} empty showers")
    return 1e-6 * float(np.median(positive))


def apply_zero_threshold(samples, threshold, image_rank):
    """``samples`` (model space, ``(N, ...)``) with cells below ``threshold`` set to 0; a sample
    with no cell left above it is kept as it was (not turned into an empty image)."""
    if threshold is None:
        return samples
    kept = np.where(samples < threshold, 0.0, samples).astype(samples.dtype)
    empty = ~np.any(kept.reshape(len(kept), -1) > 0, axis=1)
    return np.where(empty.reshape((-1,) + (1,) * image_rank), samples, kept)


def check_generate_options(batch_size, seed):
    """One clear ValueError for a bad ``batch_size`` or ``seed`` of ``generate``."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"`seed` must be None or a non-negative integer. Received: seed={seed}")


class ImageConditionsMixin:
    """Checks and condition preprocessing of a model with ``image_shape``, ``condition_dim``
    and a ``condition_transform`` (the diffusion and flow families)."""

    def _transform_conditions(self, conditions):
        if self.condition_transform is not None:
            conditions = self.condition_transform.forward(conditions)
        return np.asarray(conditions, dtype="float32")

    def _check_conditions(self, conditions):
        return check_conditions(conditions, self.condition_dim,
                                physical=self.condition_transform is not None)

    def _check_arrays(self, showers, conditions):
        showers = np.asarray(showers, dtype="float32")
        if showers.shape[1:] != self.image_shape:
            raise ValueError(
                f"`showers` must have shape (N, {', '.join(map(str, self.image_shape))}). "
                f"Received: showers.shape={showers.shape}"
            )
        conditions = self._check_conditions(conditions)
        if len(showers) != len(conditions):
            raise ValueError(
                "`showers` and `conditions` must have the same length. Received: "
                f"{len(showers)} and {len(conditions)}"
            )
        return showers, conditions


def predict_in_whole_batches(sampler, conditions, noise, batch, callbacks=None):
    """``sampler.predict({"conditions", "noise"})`` in batches of ``batch`` rows, the last
    one padded with repeated rows so that every call has the same shape (one compilation);
    float32 numpy output with the padding removed."""
    n = len(conditions)
    pad = (-n) % batch
    if pad:
        conditions = np.concatenate([conditions, conditions[:pad]])
        noise = np.concatenate([noise, noise[:pad]])
    out = sampler.predict({"conditions": conditions, "noise": noise}, batch_size=batch,
                          verbose=0, callbacks=callbacks)
    return np.asarray(out, dtype="float32")[:n]
