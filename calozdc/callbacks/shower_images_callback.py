"""TensorBoard images of generated showers beside real ones, and real-vs-generated histograms."""

import numpy as np
from keras import callbacks

from calozdc.callbacks.physics_metrics_callback import _positive_int
from calozdc.metrics import as_sample, channel_sums


def log_colour_image(showers, scale=4, cmap="viridis"):
    """Side-by-side RGB image of showers with a shared logarithmic colour scale.

    Each shower ``(H, W)`` is mapped with ``log(1 + x) / log(1 + max)``, ``max`` taken over
    all the showers given, so they are comparable; panels are separated by a white gap of
    ``scale`` pixels and every cell is drawn as ``scale × scale`` pixels.

    Args:
        showers: list of ``(H, W)`` or ``(H, W, 1)`` non-negative arrays.
        scale: pixels per cell.
        cmap: matplotlib colour map name.

    Returns:
        uint8 array ``(H * scale, (P * W + P - 1) * scale, 3)`` for ``P`` showers.
    """
    import matplotlib

    panels = [np.clip(np.asarray(s, dtype=np.float64).reshape(np.shape(s)[:2]), 0, None)
              for s in showers]
    top = max(float(p.max()) for p in panels)
    norm = np.log1p(top) if top > 0 else 1.0
    colours = matplotlib.colormaps[cmap]
    h = panels[0].shape[0]
    gap = np.ones((h, 1, 3))
    row = []
    for i, p in enumerate(panels):
        if i:
            row.append(gap)
        row.append(colours(np.log1p(p) / norm)[..., :3])
    image = np.concatenate(row, axis=1)
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    return np.round(image * 255).astype(np.uint8)


class ShowerImagesCallback(callbacks.Callback):
    """Writes shower images and channel-sum histograms to TensorBoard every ``every`` epochs.

    For each row of ``conditions`` the image ``showers/<i>`` shows the real shower (when
    ``real_showers`` is given) left of the generated one, on a shared log-scaled colour map,
    generated with the same ``seed`` at every write so that the pictures change only with the
    model. With ``histogram_showers`` the real and generated distributions of the total
    energy (``histograms/total_energy/{real,generated}``) and, for multi-channel geometries,
    of each channel sum (``histograms/channel_<c>/...``) are written too, the generated ones
    for ``histogram_conditions``. Steps are epochs. TensorBoard files are written through
    :mod:`calozdc.backend.summary`, so any Keras backend works.

    Args:
        log_dir: TensorBoard directory.
        conditions: ``(K, k)`` conditions (physical units) of the pictured showers, e.g. a few
            energies and particles.
        real_showers: optional ``(K, H, W[, 1])`` real showers for those conditions.
        every: write every this many epochs (and at the last epoch).
        seed: generation seed.
        histogram_showers: optional ``(N, H, W[, 1])`` real showers for the histograms.
        histogram_conditions: their ``(N, k)`` conditions (required with them).
        geometry: geometry name or object (channels); inferred from the grid when None.
        scale: pixels per cell in the images.
        generate_kwargs: extra arguments of ``model.generate``.

    Example:
    >>> cb = ShowerImagesCallback("logs/run1", test.conditions[:4], test.showers[:4],
    ...                           every=5)  # doctest: +SKIP
    >>> model.fit(x, c, epochs=20, callbacks=[cb])  # doctest: +SKIP

    References:
        arXiv:2407.16704 (channel sums of the ALICE ZDC).
    """

    def __init__(self, log_dir, conditions, real_showers=None, every=1, seed=0,
                 histogram_showers=None, histogram_conditions=None, geometry=None, scale=4,
                 generate_kwargs=None):
        super().__init__()
        self.log_dir = log_dir
        self.conditions = np.asarray(conditions, dtype="float32")
        if self.conditions.ndim == 1:
            self.conditions = self.conditions[:, None]
        if self.conditions.ndim != 2 or not len(self.conditions):
            raise ValueError(f"`conditions` must be a non-empty (K, k) array. "
                             f"Received: shape={np.shape(conditions)}")
        self.real_showers = None
        if real_showers is not None:
            self.real_showers = as_sample(np.asarray(real_showers)).showers
            if len(self.real_showers) != len(self.conditions):
                raise ValueError(
                    "`real_showers` must have one shower per row of `conditions`. Received: "
                    f"{len(self.real_showers)} showers, {len(self.conditions)} conditions"
                )
        self.every = _positive_int("every", every)
        self.seed = int(seed)
        self.histogram = None
        if (histogram_showers is None) != (histogram_conditions is None):
            raise ValueError("Give both `histogram_showers` and `histogram_conditions` or "
                             "neither. Received: only one")
        if histogram_showers is not None:
            self.histogram = as_sample((histogram_showers, histogram_conditions), geometry)
        self.geometry = geometry
        self.scale = _positive_int("scale", scale)
        self.generate_kwargs = dict(generate_kwargs or {})

    def due(self, epoch):
        last = (self.params or {}).get("epochs")
        return (epoch + 1) % self.every == 0 or (last is not None and epoch + 1 == last)

    def on_epoch_end(self, epoch, logs=None):
        if self.due(epoch):
            self.write(epoch)

    def write(self, step, model=None):
        """Generate and write the images (and histograms) at ``step``."""
        from calozdc.backend import summary

        model = self.model if model is None else model
        k = len(self.conditions)
        conditions = self.conditions
        if self.histogram is not None:
            conditions = np.concatenate(
                [conditions, self.histogram.conditions.astype("float32")])
        generated = as_sample(np.asarray(
            model.generate(conditions, seed=self.seed, **self.generate_kwargs))).showers
        for i in range(k):
            panels = [generated[i]]
            if self.real_showers is not None:
                panels.insert(0, self.real_showers[i])
            text = ("real (left) vs generated (right)" if self.real_showers is not None
                    else "generated") + "; conditions " + ", ".join(
                        f"{v:.4g}" for v in self.conditions[i])
            summary.write_image(self.log_dir, f"showers/{i}",
                                log_colour_image(panels, self.scale), step, description=text)
        if self.histogram is not None:
            real = self.histogram
            fake = as_sample(generated[k:], real.geometry)
            for label, sample in (("real", real), ("generated", fake)):
                flat = sample.showers.reshape(len(sample), -1)
                summary.write_histogram(self.log_dir, f"histograms/total_energy/{label}",
                                        flat.sum(axis=1, dtype=np.float64), step)
                sums = channel_sums(sample.showers, real.geometry or self.geometry)
                if sums.shape[1] > 1:
                    for c in range(sums.shape[1]):
                        summary.write_histogram(self.log_dir,
                                                f"histograms/channel_{c + 1}/{label}",
                                                sums[:, c], step)
