"""How task models keep their preprocessing: transforms in, JSON-compatible configs out.

Every model family stores a shower transform and a condition transform
(:mod:`calozdc.data.transforms`) and saves them in ``get_config()``, so that ``generate``
returns physical units after a ``.keras`` round trip.
"""

from calozdc.data import transforms

#: Transform from an instance, its serialized dict, a name or None (returned as is).
get_transform = transforms.get


def serialize_transform(transform):
    """JSON-compatible config of a transform; None and already-serialized dicts pass through."""
    if transform is None or isinstance(transform, dict):
        return transform
    return transforms.serialize(transform)
