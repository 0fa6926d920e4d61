"""Detector geometries: named objects that know their grid, readout and conditions.

Two geometries are built in:

* ``zn44``: an ALICE-ZN-like neutron Zero Degree Calorimeter, a tungsten-alloy block with
  a 44 x 44 grid of quartz fibres parallel to the beam. The response is the number of
  Cherenkov photons per fibre (integers). The five readout channels are sums over
  checkerboard masks of the fibre grid (ALICE ZN: four towers plus a common PMT).
* ``ecal20``: an AMS-ECAL-like electromagnetic calorimeter, 20 x 20 cells in each of
  ``n_layers`` longitudinal layers (18 by default, as the AMS ECAL), energies in MeV.

A geometry is a plain object with ``get_config``/``from_config``; nothing is built at import
time. Use :func:`get_geometry` to obtain one by name.
"""

import numpy as np

from calozdc.data.materials import get_material

#: Column names of the zn44 conditions (ALICE ZDC particle vector, arXiv:2407.16704 §4).
ZN44_CONDITION_NAMES = ("energy", "vx", "vy", "vz", "px", "py", "pz", "mass", "charge")


class Geometry:
    """A calorimeter readout geometry.

    Args:
        name: short name (``"zn44"`` or ``"ecal20"``).
        shape: ``(H, W)`` of the transverse grid.
        n_layers: number of longitudinal layers the simulator records (per-layer sums).
        cell_size_mm: transverse pitch of the grid in mm.
        layer_thickness_mm: thickness of one longitudinal layer in mm.
        material: name of the material in :mod:`calozdc.data.materials`.
        condition_names: names of the condition columns (the PDG id, where present, is
            kept separately).
        energy_unit: unit of the incident energy condition (``"GeV"`` or ``"MeV"``).
        response_unit: unit of the shower values (``"photons"`` or ``"MeV"``).
        integer_response: whether the response is a count.
    """

    def __init__(
        self,
        name,
        shape,
        n_layers,
        cell_size_mm,
        layer_thickness_mm,
        material,
        condition_names,
        energy_unit,
        response_unit,
        integer_response=False,
    ):
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"`shape` must be two positive integers (H, W). Received: shape={shape}")
        if int(n_layers) < 1:
            raise ValueError(f"`n_layers` must be >= 1. Received: n_layers={n_layers}")
        if not cell_size_mm > 0 or not layer_thickness_mm > 0:
            raise ValueError(
                "`cell_size_mm` and `layer_thickness_mm` must be > 0. Received: "
                f"cell_size_mm={cell_size_mm}, layer_thickness_mm={layer_thickness_mm}"
            )
        self.name = str(name)
        self.shape = shape
        self.n_layers = int(n_layers)
        self.cell_size_mm = float(cell_size_mm)
        self.layer_thickness_mm = float(layer_thickness_mm)
        self.material = get_material(material)
        self.condition_names = tuple(condition_names)
        self.energy_unit = energy_unit
        self.response_unit = response_unit
        self.integer_response = bool(integer_response)

    # -- grid helpers -------------------------------------------------------------------
    @property
    def image_shape(self):
        """Shape of one shower as the models see it: ``(H, W, 1)``."""
        return self.shape + (1,)

    @property
    def n_conditions(self):
        return len(self.condition_names)

    def cell_centres_mm(self):
        """x (columns) and y (rows) coordinates of the cell centres, origin at the grid centre.

        Returns:
            ``(x, y)``: two arrays of length W and H.
        """
        h, w = self.shape
        x = (np.arange(w) - (w - 1) / 2.0) * self.cell_size_mm
        y = (np.arange(h) - (h - 1) / 2.0) * self.cell_size_mm
        return x, y

    @property
    def half_size_mm(self):
        """Half of the transverse extent (x, y) in mm."""
        h, w = self.shape
        return 0.5 * w * self.cell_size_mm, 0.5 * h * self.cell_size_mm

    # -- readout ------------------------------------------------------------------------
    def channel_masks(self):
        """Readout channels as boolean masks ``(C, H, W)``; one channel (the sum) by default."""
        return np.ones((1,) + self.shape, dtype=bool)

    @property
    def n_channels(self):
        return self.channel_masks().shape[0]

    def channel_sums(self, showers):
        """Sum each shower over each readout channel mask.

        Args:
            showers: array ``(N, H, W)`` or ``(N, H, W, 1)``.

        Returns:
            float64 array ``(N, C)``.
        """
        x = np.asarray(showers)
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[1:] != self.shape:
            raise ValueError(
                f"Showers for geometry '{self.name}' must have shape (N, {self.shape[0]}, "
                f"{self.shape[1]}[, 1]). Received: shape={np.shape(showers)}"
            )
        masks = self.channel_masks().reshape(-1, self.shape[0] * self.shape[1])
        return x.reshape(len(x), -1).astype(np.float64) @ masks.T.astype(np.float64)

    # -- serialisation ------------------------------------------------------------------
    def get_config(self):
        return {"name": self.name, "n_layers": self.n_layers}

    @classmethod
    def from_config(cls, config):
        return get_geometry(config["name"], **{k: v for k, v in config.items() if k != "name"})

    def __eq__(self, other):
        return isinstance(other, Geometry) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self):
        return (
            f"{type(self).__name__}(name={self.name!r}, shape={self.shape}, "
            f"n_layers={self.n_layers})"
        )


class ZN44(Geometry):
    """ALICE-ZN-like quartz-fibre calorimeter with a 44 x 44 fibre grid.

    Fibre pitch 1.6 mm (70.4 mm block), 50 virtual depth slices of 4 mm (about one radiation
    length each) for the optional per-layer output. Conditions: E [GeV], vertex (vx, vy, vz)
    [cm], momentum (px, py, pz) [GeV], mass [GeV], charge [e], plus the PDG id.

    Readout channels (arXiv:2407.16704, Fig. 1.2): channel 5 are the fibres with
    (row + col) odd; channels 1-4 the fibres with (row + col) even in the quadrants
    (rows < 22, cols < 22), (rows < 22, cols >= 22), (rows >= 22, cols < 22),
    (rows >= 22, cols >= 22).
    """

    def __init__(self, n_layers=50):
        super().__init__(
            name="zn44",
            shape=(44, 44),
            n_layers=n_layers,
            cell_size_mm=1.6,
            layer_thickness_mm=4.0,
            material="zn_w_quartz",
            condition_names=ZN44_CONDITION_NAMES,
            energy_unit="GeV",
            response_unit="photons",
            integer_response=True,
        )

    def channel_masks(self):
        h, w = self.shape
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        even = (rows + cols) % 2 == 0
        top, left = rows < h // 2, cols < w // 2
        return np.stack(
            [
                even & top & left,
                even & top & ~left,
                even & ~top & left,
                even & ~top & ~left,
                ~even,
            ]
        )


class ECAL20(Geometry):
    """AMS-ECAL-like lead/scintillating-fibre EM calorimeter, 20 x 20 cells x L layers.

    Cells of 9 mm, layers of about one radiation length (AMS ECAL: 18 layers, ~17 X0).
    Conditioned on the incident energy in MeV; particles e-, e+ and photons; cell energies
    (visible energy in the scintillating fibres) in MeV.
    """

    def __init__(self, n_layers=18):
        super().__init__(
            name="ecal20",
            shape=(20, 20),
            n_layers=n_layers,
            cell_size_mm=9.0,
            layer_thickness_mm=9.25,
            material="ams_pb_scifi",
            condition_names=("energy",),
            energy_unit="MeV",
            response_unit="MeV",
            integer_response=False,
        )


_GEOMETRIES = {"zn44": ZN44, "ecal20": ECAL20}


def available_geometries():
    """Names accepted by :func:`get_geometry`."""
    return tuple(_GEOMETRIES)


def get_geometry(geometry, **kwargs):
    """Return a :class:`Geometry` from a name, a config dict or a geometry (returned as is).

    Args:
        geometry: ``"zn44"``, ``"ecal20"``, a dict from ``Geometry.get_config()`` or a
            :class:`Geometry`.
        **kwargs: constructor arguments (e.g. ``n_layers``).
    """
    if isinstance(geometry, Geometry):
        return geometry
    if isinstance(geometry, dict):
        return Geometry.from_config(geometry)
    key = str(geometry).lower()
    if key not in _GEOMETRIES:
        raise ValueError(
            f"Unknown geometry. Expected one of {sorted(_GEOMETRIES)}. Received: geometry={geometry!r}"
        )
    return _GEOMETRIES[key](**kwargs)
