"""calozdc: fast, faithful conditional generative models for calorimeter simulation.

Keras 3 multi-backend (TensorFlow, JAX, PyTorch). Subpackages:

* :mod:`calozdc.data` - geometries, the built-in shower simulator, readers/writers,
  datasets and invertible transforms (numpy + h5py).
* :mod:`calozdc.layers`, :mod:`calozdc.losses`, :mod:`calozdc.models` - Keras code.
* :mod:`calozdc.metrics` - physics metrics (numpy/scipy).
* :mod:`calozdc.cli` - the ``calozdc`` command.

Subpackages are imported on first use, so ``import calozdc`` does not load a framework.
"""

import importlib

from calozdc.version import __version__

_SUBPACKAGES = ("backend", "callbacks", "data", "layers", "losses", "metrics", "models",
                "schedules", "tuning")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"calozdc.{name}")
    raise AttributeError(f"module 'calozdc' has no attribute {name!r}")


__all__ = ["__version__", *_SUBPACKAGES]
