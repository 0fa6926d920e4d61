"""``ShowerBatches``: a Keras ``PyDataset`` over a :class:`ShowerDataset`.

The only Keras import of :mod:`calozdc.data` (``PyDataset`` is how Keras 3 feeds Python data
to ``model.fit`` on every backend).
"""

import math

import keras
import numpy as np

from calozdc.data import transforms as transforms_lib

_TARGETS = (None, "showers", "conditions")


class ShowerBatches(keras.utils.PyDataset):
    """Batches of a :class:`~calozdc.data.ShowerDataset` for ``model.fit`` on any backend.

    Batch structure (float32 numpy arrays; ``S`` = showers ``(b, H, W, 1)``, ``C`` =
    conditions ``(b, k)``):

    * ``targets=None`` (default): ``((S, C),)`` so Keras unpacks ``x = (S, C)`` and no ``y``.
      Generative models read both in ``train_step``/``compute_loss``:
      ``showers, conditions = x``.
    * ``targets="showers"``: ``(C, S)``: x = conditions, y = showers (e.g. TwoStepGAN step 1,
      a regression of the shower on the particle).
    * ``targets="conditions"``: ``(S, C)``: x = showers, y = conditions.

    The order is reshuffled at the end of every epoch from ``seed + epoch`` (reproducible).
    With ``balanced`` each epoch draws ``len(dataset)`` indices with
    :meth:`ShowerDataset.balanced_indices`. Lazy (file-backed) datasets are read one batch
    at a time.

    Args:
        dataset: the :class:`ShowerDataset`.
        batch_size: showers per batch.
        shuffle: shuffle the order every epoch.
        seed: base seed of the shuffling / balanced sampling.
        balanced: ``None``, ``"pdg"`` or ``"energy"``.
        shower_transform: optional fitted transform (or serialized dict) applied to the
            showers with the batch's physical conditions.
        condition_transform: optional fitted transform applied to the conditions.
        preprocess: optional callable ``(showers, conditions) -> (showers, conditions)``
            mapping a batch in physical units to model space, instead of the two
            transforms (e.g. ``FlowMatching.preprocess``, which appends the shower's log
            total to its conditions).
        targets: ``None``, ``"showers"`` or ``"conditions"`` (see above).
        drop_remainder: drop the last, smaller batch (fixed shapes, e.g. for XLA / JAX).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Example:

    >>> train, val, test = ds.split()                                          # doctest: +SKIP
    >>> t = Log1p()
    >>> model.fit(train.batches(64, shower_transform=t), epochs=5)            # doctest: +SKIP
    """

    def __init__(self, dataset, batch_size, shuffle=True, seed=0, balanced=None,
                 shower_transform=None, condition_transform=None, targets=None,
                 drop_remainder=False, preprocess=None, **kwargs):
        super().__init__(**kwargs)
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be an integer >= 1. Received: batch_size={batch_size}"
            )
        if balanced not in (None, "pdg", "energy"):
            raise ValueError(
                f"`balanced` must be None, 'pdg' or 'energy'. Received: balanced={balanced!r}"
            )
        if targets not in _TARGETS:
            raise ValueError(
                f"`targets` must be one of {_TARGETS}. Received: targets={targets!r}"
            )
        if len(dataset) == 0:
            raise ValueError("Cannot batch an empty dataset. Received: len(dataset)=0")
        if drop_remainder and batch_size > len(dataset):
            raise ValueError(
                f"`batch_size` ({batch_size}) exceeds the dataset size ({len(dataset)}) with "
                f"drop_remainder=True, so there would be no batch. Received: "
                f"batch_size={batch_size}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.balanced = balanced
        self.shower_transform = transforms_lib.get(shower_transform)
        self.condition_transform = transforms_lib.get(condition_transform)
        for name, t in (("shower_transform", self.shower_transform),
                        ("condition_transform", self.condition_transform)):
            if t is not None and not t.fitted:
                raise ValueError(
                    f"`{name}` is not fitted: fit it on the training split first. "
                    f"Received: {name}={t!r}"
                )
        if preprocess is not None and not callable(preprocess):
            raise ValueError(f"`preprocess` must be callable or None. Received: {preprocess!r}")
        if preprocess is not None and (shower_transform or condition_transform) is not None:
            raise ValueError(
                "Pass either `preprocess` or the transforms, not both. Received: "
                f"preprocess={preprocess!r}, shower_transform={shower_transform!r}"
            )
        self.preprocess = preprocess
        if balanced is not None:  # fail now, not in the first batch
            dataset.balanced_indices(1, by=balanced, seed=self.seed)
        self.targets = targets
        self.drop_remainder = bool(drop_remainder)
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self):
        n = len(self.dataset)
        seed = self.seed + self.epoch
        if self.balanced is not None:
            return self.dataset.balanced_indices(n, by=self.balanced, seed=seed)
        if self.shuffle:
            return np.random.default_rng(seed).permutation(n)
        return np.arange(n)

    def __len__(self):
        n = len(self._order)
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index out of range [0, {len(self)}). Received: {index}")
        idx = self._order[index * self.batch_size: (index + 1) * self.batch_size]
        showers = self.dataset.read_showers(idx)
        conditions = self.dataset.conditions[idx]
        if self.preprocess is not None:
            showers, conditions = self.preprocess(showers, conditions)
        if self.shower_transform is not None:
            showers = self.shower_transform.forward(showers, conditions=conditions)
        if self.condition_transform is not None:
            conditions = self.condition_transform.forward(conditions)
        showers = np.asarray(showers, dtype=np.float32)
        conditions = np.asarray(conditions, dtype=np.float32)
        if self.targets == "showers":
            return conditions, showers
        if self.targets == "conditions":
            return showers, conditions
        return ((showers, conditions),)

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._make_order()
