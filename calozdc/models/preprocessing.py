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
