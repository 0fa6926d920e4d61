"""A light view of showers + conditions + layers that every metric accepts."""

import numpy as np

from calozdc.data.geometry import Geometry, get_geometry

#: Geometry inferred from the grid shape when none is given.
_SHAPE_TO_GEOMETRY = {(44, 44): "zn44", (20, 20): "ecal20"}


class Sample:
    """Showers ``(N, H, W)`` with optional conditions ``(N, k)`` and layer sums ``(N, L)``.

    Args:
        showers: array ``(N, H, W)`` or ``(N, H, W, 1)``.
        conditions: optional ``(N, k)`` or ``(N,)`` array; column 0 is the incident energy.
        layers: optional ``(N, L)`` per-layer energies.
        geometry: optional :class:`~calozdc.data.Geometry` or name.
    """

    def __init__(self, showers, conditions=None, layers=None, geometry=None):
        x = np.asarray(showers)
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or len(x) == 0:
            raise ValueError(
                "Showers must have shape (N, H, W) or (N, H, W, 1) with N >= 1. "
                f"Received: shape={np.shape(showers)}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        self.showers = x
        self.conditions = _optional_rows(conditions, len(x), "conditions", ndim=2)
        self.layers = _optional_rows(layers, len(x), "layers", ndim=2)
        self.geometry = None if geometry is None else get_geometry(geometry)

    def __len__(self):
        return len(self.showers)

    @property
    def incident_energy(self):
        return None if self.conditions is None else self.conditions[:, 0].astype(np.float64)

    def take(self, index):
        """The sub-sample at ``index`` (integer array)."""
        return Sample(
            self.showers[index],
            None if self.conditions is None else self.conditions[index],
            None if self.layers is None else self.layers[index],
            self.geometry,
        )


def _optional_rows(values, n, name, ndim):
    if values is None:
        return None
    v = np.asarray(values)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != ndim or len(v) != n:
        raise ValueError(
            f"`{name}` must have {n} rows (one per shower). Received: {name}.shape={v.shape}"
        )
    return v


def as_sample(data, geometry=None):
    """Wrap ``data`` as a :class:`Sample`.

    Accepts a :class:`Sample`, an object with ``showers`` (and optionally ``conditions``,
    ``layers``, ``geometry``) attributes such as ``calozdc.data.ShowerDataset``, a mapping with
    those keys (e.g. an ``.npz`` file), a ``(showers, conditions)`` tuple or a bare array of
    showers.
    """
    if isinstance(data, Sample):
        sample = data
    elif hasattr(data, "showers"):
        sample = Sample(
            data.showers,
            getattr(data, "conditions", None),
            getattr(data, "layers", None),
            getattr(data, "geometry", None) if geometry is None else None,
        )
    elif hasattr(data, "keys") and "showers" in data:
        sample = Sample(
            data["showers"],
            data["conditions"] if "conditions" in data else None,
            data["layers"] if "layers" in data else None,
        )
    elif isinstance(data, tuple) and len(data) in (2, 3):
        sample = Sample(*data)
    else:
        sample = Sample(data)
    if geometry is not None:
        sample.geometry = get_geometry(geometry)
    if sample.geometry is None:
        name = _SHAPE_TO_GEOMETRY.get(tuple(sample.showers.shape[1:]))
        sample.geometry = get_geometry(name) if name else _grid_geometry(sample.showers.shape[1:])
    if tuple(sample.geometry.shape) != tuple(sample.showers.shape[1:]):
        raise ValueError(
            f"Showers of shape {sample.showers.shape[1:]} do not match geometry "
            f"'{sample.geometry.name}' {sample.geometry.shape}. Received: "
            f"geometry={sample.geometry.name!r}"
        )
    return sample


def _grid_geometry(shape):
    """A neutral geometry (unit cells, one channel) for grids of unknown detectors."""
    return Geometry(
        name=f"grid{shape[0]}x{shape[1]}",
        shape=shape,
        n_layers=1,
        cell_size_mm=1.0,
        layer_thickness_mm=1.0,
        material="zn_w_quartz",
        condition_names=("energy",),
        energy_unit="",
        response_unit="",
    )
