"""Shared by the GAN step-time benchmarks (train_step.py, scaling.py): the training data and a
timed ``fit`` whose per-step wall times come from a batch-end callback."""

import time

import numpy as np


def gan_training_data(geometry, batch_size, seed=0):
    """``4 · batch_size`` simulated showers, log1p + standardised, with standardised conditions.

    Returns ``(x, c, shower_transform, condition_transform)``.
    """
    from calozdc.data import simulate, transforms

    data = simulate(geometry, 4 * batch_size, seed=seed)
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
    cond_t = transforms.Standardize(axis="feature")
    x = shower_t.fit_forward(data.showers).astype("float32")
    c = cond_t.fit_forward(data.conditions).astype("float32")
    return x, c, shower_t, cond_t


def timed_fit(model, x, c, batch_size, steps, warmup):
    """One ``fit`` of ``warmup + steps`` batches; returns ``(per_step_seconds, warmup_seconds)``.

    The callback reads every step's logs back to numpy, so a step has finished (on every
    backend) when its end time is taken; the first ``warmup`` steps (compilation) are not in
    ``per_step_seconds``.
    """
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            for value in (logs or {}).values():
                keras.ops.convert_to_numpy(value)
            self.ends.append(time.perf_counter())

    idx = np.arange((warmup + steps) * batch_size) % len(x)
    timer = StepTimer()
    start = time.perf_counter()
    model.fit(x[idx], c[idx], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[timer])
    ends = np.asarray(timer.ends)
    return np.diff(ends[warmup - 1:]), float(ends[warmup - 1] - start)
