"""Data-parallel training on several devices, one entry point for every backend.

:func:`distribution_scope` is the only switch a user needs: build, compile and ``fit`` a
model inside it and Keras' trainer spreads each global batch over the devices.

* JAX: ``keras.distribution.DataParallel`` is set as the global distribution (the previous one
  is restored on exit). The jitted train step runs SPMD over the device mesh: it sees the
  *global* batch (losses, random draws and ``lax.cond`` behave as on one device), the batch is
  sharded and gradients are all-reduced by XLA.
* TensorFlow: a ``tf.distribute.MirroredStrategy`` scope. Keras runs ``train_step`` once per
  replica on its slice of the batch (``strategy.run``) and the optimizers all-reduce (sum)
  the gradients, so per-replica losses that are means over the local batch must be divided by
  the number of replicas (:func:`scale_loss_for_replicas`); random draws that must not depend
  on the device count are drawn for the global batch and sliced (:func:`replica_rows`);
  statistics that must cover the global batch are gathered (:func:`gather_replicas`).
  Variables without cross-replica aggregation (counters, EMA copies, seed states) are
  assigned per replica; every replica computes the same value, so the copies stay equal.
* PyTorch: Keras' torch backend has no distribution API, so ``"data-parallel"`` raises.

The helpers below are what calozdc's custom train steps use; on one device (any backend, or
outside a strategy) they are identities.
"""

import contextlib

import keras

from calozdc.backend import backend_name

KINDS = ("none", "data-parallel")
_MIRRORED = {}  # TensorFlow strategies by device tuple

_TORCH_MESSAGE = (
    "Data-parallel training is not supported by calozdc on the torch backend: Keras' torch "
    "backend has no distribution API (keras.distribution works on JAX, tf.distribute on "
    "TensorFlow). Use KERAS_BACKEND=jax (keras.distribution.DataParallel) or "
    "KERAS_BACKEND=tensorflow (tf.distribute.MirroredStrategy) for several devices, or train "
    "on one device with torch (kind='none'). Received: kind='data-parallel', backend='torch'"
)


def _device_type(names):
    for kind in ("gpu", "tpu"):
        if any(name.startswith(kind) for name in names):
            return kind
    return "cpu"


def _normalize(name):
    """``"/device:CPU:3"``, ``"CPU:3"``, ``"cpu:3"`` -> ``"cpu:3"``."""
    text = str(name).strip().lower()
    if text.startswith("/"):
        text = text.split("/")[-1]
    if text.startswith("device:"):
        text = text[len("device:"):]
    return text


def available_devices(device_type=None):
    """Devices a data-parallel run of the active backend can use, as ``"type:index"`` names.

    Accelerators are preferred (GPU, then TPU); without any, the (possibly simulated) CPU
    devices are listed: JAX ``--xla_force_host_platform_device_count`` / ``jax_num_cpu_devices``,
    TensorFlow logical CPU devices (see :func:`configure_cpu_devices`). ``len(...)`` is the
    device count.

    Args:
        device_type: ``"cpu"``, ``"gpu"``, ``"tpu"`` or None (best available).

    Returns:
        list of str, e.g. ``["gpu:0", "gpu:1"]`` or ``["cpu:0", ..., "cpu:7"]``.
    """
    if device_type is not None and device_type not in ("cpu", "gpu", "tpu"):
        raise ValueError(
            f"`device_type` must be 'cpu', 'gpu', 'tpu' or None. Received: device_type={device_type!r}"
        )
    name = backend_name()
    if name == "jax":
        import jax

        devices = [f"{d.platform.lower()}:{d.id}" for d in jax.devices()]
        if device_type is not None and _device_type(devices) != device_type:
            try:
                devices = [f"{device_type}:{d.id}" for d in jax.devices(device_type)]
            except RuntimeError:
                devices = []
        return [_normalize(d).replace("cuda:", "gpu:").replace("rocm:", "gpu:") for d in devices]
    if name == "tensorflow":
        import tensorflow as tf

        kinds = [device_type] if device_type else ["gpu", "tpu", "cpu"]
        for kind in kinds:
            found = [_normalize(d.name) for d in tf.config.list_logical_devices(kind.upper())]
            if found:
                return found
        return []
    if name == "torch":
        import torch

        if device_type in (None, "gpu") and torch.cuda.is_available():
            return [f"gpu:{i}" for i in range(torch.cuda.device_count())]
        return [] if device_type in ("gpu", "tpu") else ["cpu:0"]
    raise ValueError(f"Unsupported Keras backend. Received: backend={name!r}")


def configure_cpu_devices(count):
    """Split the host CPU into ``count`` devices (testing data parallelism without accelerators).

    Must run before the backend initialises its devices (before the first op): on JAX it sets
    ``jax_num_cpu_devices``; on TensorFlow it configures ``count`` logical CPU devices. Raises
    ``RuntimeError`` when it is too late (start a fresh process, or set
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` for JAX before it starts).
    No-op on torch.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`count` must be a positive integer. Received: count={count!r}")
    name = backend_name()
    if name == "jax":
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError as err:
            raise RuntimeError(
                f"JAX has already initialised its devices; cannot create {count} CPU devices "
                "now. Configure them at the start of a fresh process."
            ) from err
    elif name == "tensorflow":
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
            )
        except RuntimeError as err:
            raise RuntimeError(
                f"TensorFlow has already initialised its devices; cannot create {count} "
                "logical CPU devices now. Configure them at the start of a fresh process."
            ) from err


def _select(devices):
    """``devices`` argument -> list of normalised names (None: all available)."""
    available = available_devices()
    if devices is None:
        selected = available
    elif isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"`devices` must be between 1 and the {len(available)} available devices "
                f"({available}). Received: devices={devices}"
            )
        selected = available[:devices]
    elif isinstance(devices, (list, tuple)) and devices and all(isinstance(d, str) for d in devices):
        selected = [_normalize(d) for d in devices]
        unknown = [d for d in selected if d not in available]
        if unknown or len(set(selected)) != len(selected):
            raise ValueError(
                f"`devices` must be distinct names among {available}. Received: devices={list(devices)}"
            )
    else:
        raise ValueError(
            "`devices` must be None, a device count or a list of device names such as "
            f"['gpu:0', 'gpu:1']. Received: devices={devices!r}"
        )
    if not selected:
        raise ValueError(f"No device available for data-parallel training. Received: devices={devices!r}")
    return selected


@contextlib.contextmanager
def distribution_scope(kind="none", devices=None):
    """Context in which models are built, compiled and trained data-parallel.

    Args:
        kind: ``"none"`` (one device, the backend's default placement) or
            ``"data-parallel"`` (each global batch split evenly over ``devices``; the global
            batch size should be a multiple of the device count).
        devices: None (all of :func:`available_devices`), a count (the first ``n``) or a list
            of names such as ``["gpu:0", "gpu:1"]``.

    Yields:
        ``keras.distribution.DataParallel`` (JAX), ``tf.distribute.MirroredStrategy``
        (TensorFlow), or None for ``kind="none"``.

    Raises:
        ValueError: unknown ``kind``, bad ``devices``, or ``"data-parallel"`` on torch.

    Example:

    >>> with distribution_scope("data-parallel"):                     # doctest: +SKIP
    ...     model = build_model("gan", "zn44", 9)      # builds and compiles
    ...     model.fit(showers_t, conditions_t, batch_size=256, epochs=10)

    References:
        Keras distribution API, https://keras.io/api/distribution/;
        TensorFlow distributed training, https://www.tensorflow.org/guide/distributed_training.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    if kind == "none":
        if devices is not None:
            raise ValueError(
                f"`devices` is only used with kind='data-parallel'. Received: devices={devices!r}"
            )
        yield None
        return
    name = backend_name()
    if name == "torch":
        raise ValueError(_TORCH_MESSAGE)
    selected = _select(devices)
    if name == "jax":
        previous = keras.distribution.distribution()
        distribution = keras.distribution.DataParallel(devices=selected)
        keras.distribution.set_distribution(distribution)
        try:
            yield distribution
        finally:
            keras.distribution.set_distribution(previous)
        return
    if name == "tensorflow":
        import tensorflow as tf

        key = tuple(selected)
        if key not in _MIRRORED:
            # One strategy per device set and process: a second MirroredStrategy on the same
            # devices restarts the collective instance keys of the first and its all-reduces
            # collide with cached ones ("Shape mismatch in the collective instance").
            _MIRRORED[key] = tf.distribute.MirroredStrategy([f"/{d.upper()}" for d in selected])
        strategy = _MIRRORED[key]
        with strategy.scope():
            yield strategy
        return
    raise ValueError(f"Unsupported Keras backend. Received: backend={name!r}")


# ---------------------------------------------------------------------- train-step helpers
def _tf_replica_context():
    """The TF replica context of a multi-replica ``strategy.run`` call, else None."""
    if backend_name() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync < 2:
        return None
    return context


def replica_count():
    """Number of replicas that each run the train step on a slice of the batch (TF strategy);
    1 on one device and on JAX, whose SPMD step sees the global batch."""
    context = _tf_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def scale_loss_for_replicas(loss):
    """``loss / replicas``: the optimizers sum the replicas' gradients (TF), so a loss averaged
    over the local batch becomes the global-batch average. Identity on one replica."""
    count = replica_count()
    if count == 1:
        return loss
    return keras.ops.multiply(loss, keras.ops.cast(1.0 / count, loss.dtype))


def replica_rows(draw, local_batch):
    """Random rows for this replica's slice that do not depend on the replica count.

    ``draw(n)`` returns ``n`` rows (e.g. ``keras.random.normal((n, d), seed=...)``). With
    ``R`` replicas each replica draws the rows of the global batch ``R * local_batch`` from
    the same seed state and keeps its own slice, so the values equal those of a one-device
    run on the same global batch (exactly when the batch splits evenly). Costs ``R`` times the
    draw; one device: ``draw(local_batch)``.
    """
    context = _tf_replica_context()
    if context is None:
        return draw(local_batch)
    import tensorflow as tf

    count = context.num_replicas_in_sync
    rows = draw(local_batch * count)
    start = tf.cast(context.replica_id_in_sync_group, "int32") * tf.cast(local_batch, "int32")
    return rows[start:start + local_batch]



def gather_replicas(x):
    """Concatenate ``x`` (rows of this replica's slice) over the replicas, in replica order:
    the rows of the global batch on every replica (TF strategy); identity elsewhere."""
    context = _tf_replica_context()
    if context is None:
        return x
    return context.all_gather(x, axis=0)
