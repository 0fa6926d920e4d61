"""Physics metrics of generated showers in the epoch logs (History, EarlyStopping, tuners)."""

import numpy as np
from keras import callbacks

from calozdc.metrics import as_sample, channel_sums, compute_metrics, wasserstein_per_channel


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def physics_metrics(real, generated, geometry=None, distances=False, seed=0):
    """The callback's metrics of ``generated`` against ``real`` (both physical units).

    Returns:
        dict with ``channel_w1`` (mean over readout channels of the channel-sum W1,
        arXiv:2407.16704 eq. 4.2), ``channel_w1_<c>`` per channel when there are several,
        ``total_energy_w1`` (W1 of the shower totals) and, with ``distances``, ``fpd`` and
        ``kpd`` of the high-level features (jetnet 0.2.5 definitions).
    """
    r = as_sample(real, geometry)
    g = as_sample(generated, r.geometry)
    w1 = wasserstein_per_channel(channel_sums(r.showers, r.geometry),
                                 channel_sums(g.showers, r.geometry))
    out = {"channel_w1": float(w1.mean())}
    if len(w1) > 1:
        out.update({f"channel_w1_{c + 1}": float(v) for c, v in enumerate(w1)})
    totals = [s.showers.reshape(len(s), -1).sum(axis=1, dtype=np.float64) for s in (r, g)]
    out["total_energy_w1"] = float(wasserstein_per_channel(*totals)[0])
    if distances:
        m = compute_metrics(r, g, paired=False, seed=seed)
        for name in ("fpd", "kpd"):
            if name in m:
                out[name] = float(m[name]["value"])
    return out


class PhysicsMetricsCallback(callbacks.Callback):
    """Puts physics metrics of generated showers into the epoch ``logs`` every ``every`` epochs.

    At the end of every ``every``-th epoch (and of the last one) the callback generates one
    shower per row of ``real_conditions`` with ``model.generate(conditions, seed=seed)`` (the
    same noise every time) and compares them with ``real_showers``: the mean channel-sum
    Wasserstein-1 distance (``{prefix}channel_w1``, the ALICE ZDC figure of merit), one per
    channel for multi-channel geometries, the total-energy W1 and optionally FPD/KPD. The
    values are added to ``logs``, so ``History``, ``EarlyStopping``, KerasTuner objectives and
    Keras' ``TensorBoard`` callback (placed after this one) see them; with ``log_dir`` they
    are also written as TensorBoard scalars ``physics/{prefix}<name>`` at step = epoch.

    Args:
        real_showers: ``(N, H, W[, 1])`` real showers in physical units.
        real_conditions: ``(N, k)`` their conditions in physical units.
        every: compute every this many epochs.
        geometry: geometry name or object (channels); inferred from the grid when None.
        prefix: prefix of the log keys.
        seed: generation seed (fixed, so the metric changes only with the model).
        distances: also compute FPD and KPD (slower).
        generate_kwargs: extra arguments of ``model.generate`` (e.g. ``{"steps": 10}``).
        log_dir: optional TensorBoard directory for the scalars.

    Example:
    >>> cb = PhysicsMetricsCallback(val.showers, val.conditions, every=5)  # doctest: +SKIP
    >>> model.fit(x, c, epochs=20, callbacks=[cb])  # doctest: +SKIP
    >>> cb.history[-1]["val_channel_w1"]  # doctest: +SKIP

    References:
        arXiv:2407.16704 eq. 4.2 (channel W1); arXiv:2211.10295 (FPD, KPD).
    """

    def __init__(self, real_showers, real_conditions, every=1, geometry=None, prefix="val_",
                 seed=0, distances=False, generate_kwargs=None, log_dir=None):
        super().__init__()
        self.real = as_sample((real_showers, real_conditions), geometry)
        self.real_conditions = np.asarray(self.real.conditions, dtype="float32")
        self.every = _positive_int("every", every)
        self.geometry = self.real.geometry
        if not isinstance(prefix, str):
            raise ValueError(f"`prefix` must be a string. Received: prefix={prefix!r}")
        self.prefix = prefix
        self.seed = int(seed)
        self.distances = bool(distances)
        self.generate_kwargs = dict(generate_kwargs or {})
        self.log_dir = log_dir
        self.history = []

    def due(self, epoch):
        """Whether metrics are computed at the end of ``epoch`` (0-based)."""
        last = (self.params or {}).get("epochs")
        return (epoch + 1) % self.every == 0 or (last is not None and epoch + 1 == last)

    def compute(self, model=None):
        """Generate for the fixed conditions and return the metrics (keys with ``prefix``)."""
        model = self.model if model is None else model
        generated = model.generate(self.real_conditions, seed=self.seed, **self.generate_kwargs)
        values = physics_metrics(self.real, np.asarray(generated), self.geometry,
                                 self.distances, self.seed)
        return {self.prefix + k: v for k, v in values.items()}

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        values = self.compute()
        if logs is not None:
            logs.update(values)
        self.history.append({"epoch": int(epoch), **values})
        if self.log_dir is not None:
            from calozdc.backend import summary

            for name, value in values.items():
                summary.write_scalar(self.log_dir, f"physics/{name}", value, epoch)
