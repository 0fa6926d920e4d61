"""Periodic, atomic training checkpoints that a later ``fit`` resumes exactly."""

import glob
import json
import os
import tempfile
import time

import keras
import numpy as np
from keras import callbacks

from calozdc.backend.rng_state import global_rng_state, set_global_rng_state
from calozdc.callbacks.physics_metrics_callback import _positive_int

#: Name of the checkpoint's JSON file (written last: it is the commit point).
CHECKPOINT_JSON = "checkpoint.json"


def _layers(model):
    return model._flatten_layers(include_self=True)


def sync_model_state(model):
    """Write the JAX trainer's in-flight state back into the variables of ``model`` and of the
    models nested in it (a no-op on other backends and outside ``fit``)."""
    for layer in _layers(model):
        if hasattr(layer, "jax_state_sync"):
            layer.jax_state_sync()


def seed_generator_states(model):
    """States of every ``keras.random.SeedGenerator`` of ``model`` (noise, dropout), as lists
    of ints in layer order. ``.keras`` files do not store them; a resumed ``fit`` needs them to
    draw the same random numbers as an uninterrupted one."""
    states, seen = [], set()
    for layer in _layers(model):
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator.state) not in seen:
                seen.add(id(generator.state))
                value = keras.ops.convert_to_numpy(generator.state.value)
                states.append([int(v) for v in np.asarray(value).reshape(-1)])
    return states


def restore_seed_generator_states(model, states):
    """Assign ``states`` (from :func:`seed_generator_states`) to the model's seed generators."""
    generators, seen = [], set()
    for layer in _layers(model):
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator.state) not in seen:
                seen.add(id(generator.state))
                generators.append(generator)
    if len(generators) != len(states):
        raise ValueError(
            f"The checkpoint holds {len(states)} random-generator states but the model has "
            f"{len(generators)}. Received: {len(states)} states"
        )
    for generator, state in zip(generators, states):
        variable = generator.state
        variable.assign(np.asarray(state, dtype=variable.dtype).reshape(tuple(variable.shape)))


def _jsonable_logs(logs):
    out = {}
    for name, value in (logs or {}).items():
        try:
            out[str(name)] = float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(()))
        except (TypeError, ValueError):
            continue
    return out


def read_checkpoint(directory):
    """The checkpoint JSON of ``directory`` (a dict with ``epoch``, ``model``, ``history``...).

    Raises:
        ValueError: no checkpoint there, or its model file is missing.
    """
    path = os.path.join(os.fspath(directory), CHECKPOINT_JSON)
    if not os.path.isfile(path):
        raise ValueError(f"No checkpoint in this directory. Received: directory={directory!r}")
    with open(path) as f:
        info = json.load(f)
    model_path = os.path.join(os.fspath(directory), info.get("model", ""))
    if not os.path.isfile(model_path):
        raise ValueError(f"The checkpoint's model file is missing. Received: {model_path!r}")
    info["model_path"] = model_path
    return info


def load_checkpoint(directory, compile=True):
    """Load the model of a :class:`RunCheckpoint` directory with its random-generator states.

    The backend's global random state saved with the checkpoint (torch's generator, which
    unseeded dropout layers use) is restored too, so call this right before ``fit``.

    Returns:
        ``(model, info)``: the model (weights, optimizer state, transforms) and the checkpoint
        dict (``epoch`` = epochs completed, ``history`` of those epochs, ``metadata``).
    """
    import calozdc.models  # noqa: F401  (registers the model classes)

    info = read_checkpoint(directory)
    model = keras.saving.load_model(info["model_path"], compile=compile)
    restore_seed_generator_states(model, info.get("seed_states", []))
    set_global_rng_state(info.get("global_rng_state") or {})
    return model, info


class RunCheckpoint(callbacks.Callback):
    """Writes a resumable checkpoint into ``directory`` every ``every`` epochs, atomically.

    A checkpoint is ``model-epochNNNNN.keras`` (``model.save``: weights, the optimizers' state
    and the model's transforms) plus ``checkpoint.json`` with the number of epochs completed,
    the history of the epoch logs so far, the ``keras.random.SeedGenerator`` states (not part
    of ``.keras`` files; needed for an exact resume), the backend's global random state
    (:mod:`calozdc.backend.rng_state`) and the caller's ``metadata`` (e.g. the
    command-line arguments and seed). The model file is written under a temporary name and
    renamed; the JSON, written the same way after it, names the model file, so a crash at any
    moment leaves the previous checkpoint intact. Older model files are deleted afterwards.

    Checkpoints are written at the end of every ``every``-th epoch, of the last epoch and of an
    epoch after which training stops (e.g. ``EarlyStopping``) -- but never when ``guard`` (a
    :class:`~calozdc.callbacks.NonFiniteGuard`) has tripped: non-finite weights do not replace
    the last good checkpoint. Place this callback after those that add values to the logs.

    Args:
        directory: checkpoint directory (created).
        every: checkpoint every this many epochs.
        metadata: JSON-serialisable dict stored in every checkpoint under ``metadata``.
        history: epoch logs of earlier epochs (``{name: [values]}``) when resuming.

    Attributes:
        history: ``{name: [value per epoch]}`` of all epochs so far (``None`` where an epoch's
            logs lack the key, e.g. the prior's losses during a VQ-VAE's first phase).
        last_epoch, last_path: epochs completed at, and model file of, the last checkpoint.
        guard: optional :class:`~calozdc.callbacks.NonFiniteGuard`.

    Example:

    >>> ckpt = RunCheckpoint("runs/gan/checkpoint", every=5, metadata={"seed": 0})
    >>> model.fit(batches, epochs=50, callbacks=[ckpt])            # doctest: +SKIP
    >>> model, info = load_checkpoint("runs/gan/checkpoint")        # doctest: +SKIP
    >>> model.fit(batches, epochs=60, initial_epoch=info["epoch"])  # doctest: +SKIP
    """

    def __init__(self, directory, every=1, metadata=None, history=None, guard=None):
        super().__init__()
        self.directory = os.fspath(directory)
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ValueError(
                f"The checkpoint directory is a file. Received: directory={self.directory!r}"
            )
        self.every = _positive_int("every", every)
        self.metadata = dict(metadata or {})
        json.dumps(self.metadata, default=str)
        self.history = {k: [None if v is None else float(v) for v in vals]
                        for k, vals in (history or {}).items()}
        self.guard = guard
        self.last_epoch = None  # epochs completed at the last checkpoint written
        self.last_path = None  # its model file
        self.seen_epoch = None  # epochs completed at the last epoch end seen

    def _bad(self):
        return self.guard is not None and self.guard.tripped

    def on_epoch_end(self, epoch, logs=None):
        if self._bad():
            return
        self.seen_epoch = epoch + 1
        n_before = len(next(iter(self.history.values()), []))
        for name, value in _jsonable_logs(logs).items():
            self.history.setdefault(name, [None] * n_before).append(value)
        for values in self.history.values():  # keys missing from this epoch's logs: null
            if len(values) < n_before + 1:
                values.append(None)
        last = (self.params or {}).get("epochs")
        due = ((epoch + 1) % self.every == 0 or (last is not None and epoch + 1 >= last)
               or bool(getattr(self.model, "stop_training", False)))
        if due:
            self.save(epoch + 1)

    def save(self, epochs_done, model=None):
        """Write the checkpoint of ``epochs_done`` completed epochs now."""
        model = self.model if model is None else model
        sync_model_state(model)
        os.makedirs(self.directory, exist_ok=True)
        name = f"model-epoch{int(epochs_done):05d}.keras"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=self.directory)
        os.close(fd)
        try:
            model.save(tmp, overwrite=True)
            os.replace(tmp, os.path.join(self.directory, name))
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        info = {
            "epoch": int(epochs_done),
            "model": name,
            "history": self.history,
            "seed_states": seed_generator_states(model),
            "global_rng_state": global_rng_state(),
            "metadata": self.metadata,
            "keras_backend": keras.backend.backend(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json(os.path.join(self.directory, CHECKPOINT_JSON), info)
        for old in glob.glob(os.path.join(self.directory, "model-epoch*.keras")):
            if os.path.basename(old) != name:
                os.remove(old)
        self.last_epoch = int(epochs_done)
        self.last_path = os.path.join(self.directory, name)


def write_json(path, obj):
    """Write ``obj`` as JSON to ``path`` atomically (replacing it)."""
    from calozdc.data.atomic import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=str, allow_nan=True)
