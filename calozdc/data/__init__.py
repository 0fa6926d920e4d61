"""Data: geometries, the built-in simulator, readers/writers, datasets and transforms.

numpy + h5py only; this package knows nothing of models or Keras.
"""

from calozdc.data.geometry import ECAL20, ZN44, Geometry, available_geometries, get_geometry
from calozdc.data.materials import Material, get_material
from calozdc.data.particles import ALICE_ZN_MIX, PARTICLES, Particle, get_particle
from calozdc.data.simulate import iter_simulate, simulate
from calozdc.data.atomic import atomic_path
from calozdc.data.dataset import ShowerDataset
from calozdc.data.io import detect_format, info, load, save
from calozdc.data import transforms
