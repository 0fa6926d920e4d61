"""TensorBoard event files: write scalars, images and histograms, read them back.

TensorBoard's file format is written with ``tf.summary``, so this module imports TensorFlow
(installed with calozdc) whatever ``KERAS_BACKEND`` is; it is the only place the callbacks
touch it. Writers are cached per log directory and flushed after every write, so a reader
sees the events at once.
"""

import os

import numpy as np

_WRITERS = {}


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _writer(log_dir):
    key = os.path.abspath(os.fspath(log_dir))
    writer = _WRITERS.get(key)
    if writer is None:
        os.makedirs(key, exist_ok=True)
        writer = _tf().summary.create_file_writer(key)
        _WRITERS[key] = writer
    return writer


def _step(step):
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"`step` must be a non-negative integer. Received: step={step!r}")
    return int(step)


def write_scalar(log_dir, tag, value, step):
    """Write the scalar ``value`` under ``tag`` at ``step`` to the event file in ``log_dir``."""
    tf = _tf()
    writer = _writer(log_dir)
    with writer.as_default():
        tf.summary.scalar(tag, float(value), step=_step(step))
    writer.flush()


def write_image(log_dir, tag, images, step, description=None):
    """Write images under ``tag`` at ``step``.

    Args:
        log_dir: directory of the event file.
        tag: summary tag.
        images: ``uint8`` array ``(H, W, C)`` or ``(K, H, W, C)`` with ``C`` in 1, 3, 4.
        step: non-negative integer (the epoch).
        description: optional Markdown text shown by TensorBoard.
    """
    tf = _tf()
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4) or x.dtype != np.uint8:
        raise ValueError(
            "`images` must be uint8 with shape (H, W, C) or (K, H, W, C), C in (1, 3, 4). "
            f"Received: shape={np.shape(images)}, dtype={x.dtype}"
        )
    writer = _writer(log_dir)
    with writer.as_default():
        tf.summary.image(tag, x, step=_step(step), max_outputs=len(x), description=description)
    writer.flush()


def write_histogram(log_dir, tag, values, step, buckets=30):
    """Write a histogram of the finite entries of ``values`` under ``tag`` at ``step``."""
    tf = _tf()
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    writer = _writer(log_dir)
    with writer.as_default():
        tf.summary.histogram(tag, v, step=_step(step), buckets=int(buckets))
    writer.flush()


def close(log_dir=None):
    """Close the writer of ``log_dir`` (all writers if None)."""
    keys = list(_WRITERS) if log_dir is None else [os.path.abspath(os.fspath(log_dir))]
    for key in keys:
        writer = _WRITERS.pop(key, None)
        if writer is not None:
            writer.close()


def read_events(log_dir):
    """Read all summaries of the event files under ``log_dir`` (recursively).

    Returns:
        dict ``tag -> list of (step, value)`` sorted by step, where ``value`` is a float for
        scalars, a ``uint8`` array ``(H, W, C)`` for images (one entry per image) and a
        float64 array ``(B, 3)`` of ``(left, right, count)`` rows for histograms.
    """
    tf = _tf()
    out = {}
    for root, _, files in os.walk(os.fspath(log_dir)):
        for name in sorted(files):
            if "tfevents" not in name:
                continue
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    out.setdefault(value.tag, []).extend(
                        (int(event.step), v) for v in _decode(tf, value)
                    )
    return {tag: sorted(items, key=lambda item: item[0]) for tag, items in out.items()}


def _decode(tf, value):
    plugin = value.metadata.plugin_data.plugin_name
    if value.HasField("simple_value"):
        return [float(value.simple_value)]
    array = tf.make_ndarray(value.tensor)
    if plugin == "images":
        # [width, height, encoded image 1, encoded image 2, ...]
        return [tf.io.decode_image(png).numpy() for png in array[2:]]
    if plugin == "histograms":
        return [np.asarray(array, dtype=np.float64)]
    if array.dtype.kind in "OSU":  # text summaries (e.g. Keras' model config)
        return [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel()]
    if array.ndim == 0:
        return [float(array)]
    return [array]
