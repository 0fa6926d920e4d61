"""Shared helpers of the calozdc losses (keras.ops only)."""

from keras import ops


def to_float32(x):
    """Cast to float32: losses compute in float32 even under mixed precision."""
    return ops.cast(ops.convert_to_tensor(x), "float32")


def per_sample(value, reference):
    """Broadcast a scalar batch-level loss to one value per sample of ``reference``.

    Batch-level losses (distribution distances, batch-mean profiles) return one value per
    sample so that Keras reductions and ``sample_weight`` work as for any other loss; the
    default ``"sum_over_batch_size"`` reduction then gives back the scalar.
    """
    ones = ops.ones_like(reference[:, 0] if len(reference.shape) > 1 else reference)
    return ones * value


def flatten_cells(x):
    """``(N, ...)`` -> ``(N, prod(...))``."""
    n_cells = 1
    for d in x.shape[1:]:
        n_cells *= int(d)
    return ops.reshape(x, (-1, n_cells))


def image_2d(x, name="y_pred"):
    """Shower images ``(N, H, W)`` or ``(N, H, W, C)`` -> ``(N, H, W)`` (channels summed)."""
    if len(x.shape) == 4:
        return ops.sum(x, axis=-1)
    if len(x.shape) == 3:
        return x
    raise ValueError(
        f"`{name}` must be shower images of shape (N, H, W) or (N, H, W, C). "
        f"Received: {name}.shape={tuple(x.shape)}"
    )


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")
    return value


def check_positive(name, value, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}") from None
    if not (v >= 0 if allow_zero else v > 0) or v != v:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be {bound}. Received: {name}={value!r}")
    return v
