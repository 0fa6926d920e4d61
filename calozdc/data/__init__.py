"""Data: geometries, the built-in simulator, readers/writers, datasets and transforms.

numpy + h5py only; this package knows nothing of models (``ShowerDataset.batches`` imports
Keras' ``PyDataset`` lazily).
"""

from calozdc.data import transforms
from calozdc.data.atomic import atomic_path
from calozdc.data.builtin import builtin_dataset
from calozdc.data.dataset import ShowerDataset
from calozdc.data.geometry import ECAL20, ZN44, Geometry, available_geometries, get_geometry
from calozdc.data.io import detect_format, info, load, save, save_simulation
from calozdc.data.materials import Material, get_material
from calozdc.data.particles import ALICE_ZN_MIX, PARTICLES, Particle, get_particle
from calozdc.data.simulate import iter_simulate, simulate

__all__ = [
    "ALICE_ZN_MIX", "ECAL20", "PARTICLES", "ZN44", "Geometry", "Material", "Particle",
    "ShowerDataset", "atomic_path", "available_geometries", "builtin_dataset", "detect_format",
    "get_geometry", "get_material", "get_particle", "info", "iter_simulate", "load", "save", "save_simulation",
    "simulate",
    "transforms",
]
