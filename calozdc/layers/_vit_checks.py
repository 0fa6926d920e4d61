"""Argument checks shared by the ViT layers (private)."""


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def rate(value, name="dropout"):
    try:
        ok = 0.0 <= float(value) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def padding(size, patch_size):
    """``(before, after)`` zero padding that makes ``size`` a multiple of ``patch_size``:
    centred, the odd pixel after (the ZDC peer pads 44 → 48 by 2 on each side)."""
    total = (-size) % patch_size
    return total // 2, total - total // 2
