"""Model families by name: ``family → "module:builder"``, imported on first use.

A builder has the signature ``builder(geometry, condition_dim, *, shower_transform=None,
condition_transform=None, seed=None, epochs=None?, **options) -> compiled keras.Model`` with a
``generate(conditions, seed=None, batch_size=...)`` method; the CLI's ``calozdc train FAMILY``
calls it with the geometry of the data and the fitted transforms. Add a family with one line
in :data:`calozdc.names.FAMILIES` (framework-free, read by the command line's parser).
"""

import importlib
import inspect

from calozdc.names import FAMILIES, available_families

__all__ = ["FAMILIES", "available_families", "build_model", "default_transforms", "get_builder"]


def get_builder(family):
    """Return the builder function of ``family`` (imports its module now)."""
    if family not in FAMILIES:
        raise ValueError(
            f"Unknown model family. Expected one of {available_families()}. "
            f"Received: family={family!r}"
        )
    module, _, name = FAMILIES[family].partition(":")
    return getattr(importlib.import_module(module), name)


def build_model(family, geometry, condition_dim, **options):
    """Build a compiled model of ``family``; options the builder does not take are dropped."""
    builder = get_builder(family)
    if isinstance(geometry, str):  # a geometry name ("zn44", "ecal20"): the Geometry object
        from calozdc.data.geometry import get_geometry

        geometry = get_geometry(geometry)
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        options = {k: v for k, v in options.items() if k in params}
    return builder(geometry, condition_dim, **options)


def default_transforms(family=None):
    """Unfitted ``(shower_transform, condition_transform)`` recommended for ``family``.

    A family's builder module may define ``default_transforms()`` (its recipe's model space,
    e.g. the flow family's); otherwise, and for ``family=None``: ``log1p`` then a global
    standardisation of the showers, per-feature standardisation of the conditions.
    """
    if family is not None:
        get_builder(family)  # one clear error for an unknown family
        module = importlib.import_module(FAMILIES[family].partition(":")[0])
        maker = getattr(module, "default_transforms", None)
        if maker is not None:
            return maker()
    from calozdc.data import transforms

    return (transforms.Chain([transforms.Log1p(), transforms.Standardize()]),
            transforms.Standardize(axis="feature"))
