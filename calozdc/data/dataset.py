"""``ShowerDataset``: showers, their conditions and labels, in physical units."""

import os

import numpy as np

from calozdc.data.geometry import get_geometry

#: Target size of one read from a lazily loaded file (rows are read in chunks of this size).
_CHUNK_BYTES = 64 * 2**20


class ShowerDataset:
    """Calorimeter showers with their conditions, in physical units.

    Holds ``N`` showers as images ``(N, H, W, 1)`` (depth summed; zn44: photon counts, ecal20:
    MeV), their conditions ``(N, k)`` (zn44: E [GeV], vx, vy, vz, px, py, pz, m, q; ecal20:
    incident energy [MeV]; column 0 is always the incident energy), and optionally the PDG id
    of each particle and per-layer energy sums. Models receive it through :meth:`batches`.

    A dataset returned by ``calozdc.data.load(path, lazy=True)`` keeps its showers in the
    HDF5 file and reads them in chunks when needed (:meth:`batches` reads one batch at a time),
    so a file larger than memory can be fitted. Conditions, PDG ids and layers are always in
    memory. Indexing and :meth:`split` of a lazy dataset stay lazy; :attr:`showers` reads them
    all.

    Args:
        showers: array ``(N, H, W)`` or ``(N, H, W, 1)``, finite and non-negative.
        conditions: array ``(N, k)`` (a 1-D array is taken as ``(N, 1)``), finite.
        pdg: optional integer PDG ids ``(N,)``.
        layers: optional per-layer sums ``(N, L)``.
        condition_names: names of the ``k`` condition columns; default: the geometry's names
            when they fit, ``("energy",)`` for ``k = 1``, else ``condition_0`` ...
        geometry: optional :class:`~calozdc.data.Geometry` or name (``"zn44"``,
            ``"ecal20"``); its grid must match the showers and its ``n_layers`` the layers.
        metadata: optional JSON-serialisable dict saved with the data (units, provenance).

    Example:

    >>> ds = ShowerDataset(np.zeros((10, 44, 44)), np.ones((10, 9)), geometry="zn44")
    >>> train, val, test = ds.split((0.7, 0.1, 0.2), seed=0)
    >>> len(train), train.showers.shape
    (7, (7, 44, 44, 1))
    """

    def __init__(self, showers, conditions, pdg=None, layers=None, condition_names=None,
                 geometry=None, metadata=None):
        lazy = isinstance(showers, _H5ShowerSource)
        if lazy:
            shape = showers.shape
        else:
            showers = np.asarray(showers)
            if showers.ndim == 3:
                showers = showers[..., None]
            if showers.ndim != 4 or showers.shape[-1] != 1:
                raise ValueError(
                    "`showers` must have shape (N, H, W) or (N, H, W, 1). "
                    f"Received: showers.shape={showers.shape}"
                )
            if not (np.issubdtype(showers.dtype, np.number) or showers.dtype == bool):
                raise ValueError(f"`showers` must be numeric. Received: dtype={showers.dtype}")
            showers = np.ascontiguousarray(showers, dtype=np.float32)
            _check_values(showers, "showers", non_negative=True)
            shape = showers.shape
        n = shape[0]

        conditions = np.asarray(conditions)
        if conditions.ndim == 1:
            conditions = conditions[:, None]
        if conditions.ndim != 2:
            raise ValueError(
                f"`conditions` must have shape (N, k). Received: conditions.shape="
                f"{conditions.shape}"
            )
        conditions = np.ascontiguousarray(conditions, dtype=np.float32)
        _check_n(conditions, n, "conditions")
        _check_values(conditions, "conditions")

        if pdg is not None:
            pdg_arr = np.asarray(pdg)
            if pdg_arr.ndim == 2 and pdg_arr.shape[1] == 1:
                pdg_arr = pdg_arr[:, 0]
            if pdg_arr.ndim != 1:
                raise ValueError(f"`pdg` must have shape (N,). Received: pdg.shape={pdg_arr.shape}")
            _check_n(pdg_arr, n, "pdg")
            _check_values(pdg_arr, "pdg")
            if not np.all(np.asarray(pdg_arr) == np.round(pdg_arr)):
                bad = pdg_arr[pdg_arr != np.round(pdg_arr)][0]
                raise ValueError(f"`pdg` must hold integer PDG ids. Received: pdg={bad}")
            pdg = pdg_arr.astype(np.int64)

        if geometry is not None:
            geometry = get_geometry(geometry)
            if tuple(shape[1:3]) != tuple(geometry.shape):
                raise ValueError(
                    f"Showers of shape {tuple(shape[1:3])} do not match geometry "
                    f"'{geometry.name}' with grid {geometry.shape}. Received: "
                    f"showers.shape={tuple(shape)}"
                )

        if layers is not None:
            layers = np.asarray(layers)
            if layers.ndim != 2:
                raise ValueError(f"`layers` must have shape (N, L). Received: layers.shape="
                                 f"{layers.shape}")
            layers = np.ascontiguousarray(layers, dtype=np.float32)
            _check_n(layers, n, "layers")
            _check_values(layers, "layers")
            if geometry is not None and layers.shape[1] != geometry.n_layers:
                raise ValueError(
                    f"Geometry '{geometry.name}' has n_layers={geometry.n_layers} but the "
                    f"layers have {layers.shape[1]} columns. Received: layers.shape="
                    f"{layers.shape}"
                )

        k = conditions.shape[1]
        if condition_names is None:
            if geometry is not None and geometry.n_conditions == k:
                condition_names = geometry.condition_names
            elif k == 1:
                condition_names = ("energy",)
            else:
                condition_names = tuple(f"condition_{i}" for i in range(k))
        if isinstance(condition_names, str):
            condition_names = (condition_names,)
        condition_names = tuple(str(c) for c in condition_names)
        if len(condition_names) != k:
            raise ValueError(
                f"`condition_names` must name the {k} condition columns. Received: "
                f"condition_names={condition_names}"
            )
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise ValueError(f"`metadata` must be a dict. Received: metadata={metadata!r}")

        self._showers = showers
        self._conditions = conditions
        self._pdg = pdg
        self._layers = layers
        self._condition_names = condition_names
        self._geometry = geometry
        self._metadata = dict(metadata)

    # -- properties ------------------------------------------------------------------------
    @property
    def showers(self):
        """float32 array ``(N, H, W, 1)`` (for a lazy dataset: read from the file now)."""
        if self.is_lazy:
            return self._showers.read(np.arange(len(self)))
        return self._showers

    @property
    def conditions(self):
        """float32 array ``(N, k)``; column 0 is the incident energy."""
        return self._conditions

    @property
    def pdg(self):
        """int64 array ``(N,)`` of PDG ids, or ``None``."""
        return self._pdg

    @property
    def layers(self):
        """float32 array ``(N, L)`` of per-layer sums, or ``None``."""
        return self._layers

    @property
    def condition_names(self):
        return self._condition_names

    @property
    def geometry(self):
        return self._geometry

    @property
    def metadata(self):
        return self._metadata

    @property
    def energies(self):
        """Incident energies ``(N,)``: the first condition column (its unit: see metadata)."""
        return self._conditions[:, 0]

    @property
    def shower_shape(self):
        """``(H, W, 1)``."""
        return tuple(self._showers.shape[1:])

    @property
    def is_lazy(self):
        """Whether the showers are read from an HDF5 file on demand."""
        return isinstance(self._showers, _H5ShowerSource)

    def __len__(self):
        return self._conditions.shape[0]

    def __repr__(self):
        geometry = self._geometry.name if self._geometry is not None else None
        return (
            f"ShowerDataset(n={len(self)}, shower_shape={self.shower_shape}, "
            f"conditions={self._conditions.shape[1]}, geometry={geometry!r}, "
            f"pdg={self._pdg is not None}, layers={self._layers is not None}, "
            f"lazy={self.is_lazy})"
        )

    # -- selection -------------------------------------------------------------------------
    def _indices(self, index):
        n = len(self)
        if isinstance(index, slice):
            return np.arange(n)[index]
        if isinstance(index, (int, np.integer)):
            index = [index]
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (n,):
                raise ValueError(
                    f"A boolean index must have shape ({n},). Received: shape={index.shape}"
                )
            return np.flatnonzero(index)
        if index.size == 0:
            return np.zeros(0, dtype=np.int64)
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(
                f"Index with a slice, an integer, or a 1-D integer or boolean array. "
                f"Received: index={index!r}"
            )
        if index.min() < -n or index.max() >= n:
            raise IndexError(
                f"Index out of range for a dataset of {n} showers. Received: "
                f"index range=[{index.min()}, {index.max()}]"
            )
        return np.where(index < 0, index + n, index).astype(np.int64)

    def __getitem__(self, index):
        """Select showers with a slice, an int (a dataset of one), or an index/boolean array."""
        idx = self._indices(index)
        return self._take(idx)

    def _take(self, idx):
        new = object.__new__(ShowerDataset)
        new._showers = self._showers.take(idx) if self.is_lazy else self._showers[idx]
        new._conditions = self._conditions[idx]
        new._pdg = None if self._pdg is None else self._pdg[idx]
        new._layers = None if self._layers is None else self._layers[idx]
        new._condition_names = self._condition_names
        new._geometry = self._geometry
        new._metadata = dict(self._metadata)
        return new

    def read_showers(self, indices):
        """Showers at ``indices`` as float32 ``(n, H, W, 1)``; for lazy datasets a chunked read."""
        idx = self._indices(indices)
        if self.is_lazy:
            return self._showers.read(idx)
        return self._showers[idx]

    def iter_chunks(self, chunk_size=None):
        """Yield ``(start, stop, showers)`` over the dataset in order, ``chunk_size`` rows each.

        The default size keeps each chunk near 64 MiB.
        """
        n = len(self)
        if chunk_size is None:
            row_bytes = 4 * int(np.prod(self.shower_shape))
            chunk_size = max(1, _CHUNK_BYTES // row_bytes)
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            yield start, stop, self.read_showers(slice(start, stop))

    def split(self, fractions=(0.7, 0.1, 0.2), seed=0):
        """Split into disjoint random parts (seed 002: 70/10/20 with a fixed seed).

        Args:
            fractions: non-negative fractions summing to 1 (any number of parts).
            seed: seed of the permutation; the same seed gives the same split.

        Returns:
            A tuple of datasets, one per fraction, sizes ``round(cumsum(fractions) * N)``
            apart. Each part keeps the original order (sorted indices), which also makes lazy
            reads sequential; shuffle when batching.
        """
        fractions = np.asarray(fractions, dtype=np.float64)
        if (fractions.ndim != 1 or fractions.size == 0 or np.any(fractions < 0)
                or abs(fractions.sum() - 1.0) > 1e-6):
            raise ValueError(
                "`fractions` must be non-negative and sum to 1. Received: "
                f"fractions={fractions.tolist()}"
            )
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        bounds = np.round(np.cumsum(fractions) * n).astype(np.int64)
        bounds[-1] = n
        starts = np.concatenate([[0], bounds[:-1]])
        return tuple(self._take(np.sort(perm[a:b])) for a, b in zip(starts, bounds))

    def concatenate(self, *others):
        """Return a new dataset with the showers of ``self`` followed by those of ``others``.

        Condition names, geometry, grid and the presence of ``pdg`` / ``layers`` must agree.
        Lazy datasets are read into memory. Metadata is taken from ``self``.
        """
        parts = (self,) + others
        for other in others:
            if not isinstance(other, ShowerDataset):
                raise ValueError(f"Can only concatenate ShowerDatasets. Received: {other!r}")
            for what, a, b in (
                ("condition_names", self.condition_names, other.condition_names),
                ("geometry", self.geometry, other.geometry),
                ("shower_shape", self.shower_shape, other.shower_shape),
                ("pdg presence", self.pdg is None, other.pdg is None),
                ("layers presence", self.layers is None, other.layers is None),
                ("layers shape", None if self.layers is None else self.layers.shape[1:],
                 None if other.layers is None else other.layers.shape[1:]),
            ):
                if a != b:
                    raise ValueError(
                        f"Cannot concatenate datasets with different {what}. Received: "
                        f"{a!r} and {b!r}"
                    )
        return ShowerDataset(
            np.concatenate([p.showers for p in parts]),
            np.concatenate([p.conditions for p in parts]),
            pdg=None if self.pdg is None else np.concatenate([p.pdg for p in parts]),
            layers=None if self.layers is None else np.concatenate([p.layers for p in parts]),
            condition_names=self.condition_names,
            geometry=self.geometry,
            metadata=self.metadata,
        )

    # -- sampling --------------------------------------------------------------------------
    def balanced_indices(self, n, by="pdg", n_bins=10, seed=0):
        """Indices that represent every class equally (sampling with replacement).

        Seeds 001 and 004 train on "balanced samples": each particle type (``by="pdg"``) or
        each of ``n_bins`` equal-width incident-energy bins (``by="energy"``) contributes the
        same number of showers (``n // groups``, the remainder spread at random over groups;
        empty bins are skipped). Rare classes are repeated, common ones subsampled.

        Args:
            n: number of indices to return.
            by: ``"pdg"`` or ``"energy"``.
            n_bins: number of energy bins (``by="energy"``).
            seed: random seed.

        Returns:
            int64 array ``(n,)`` of indices into this dataset, shuffled.
        """
        if int(n) != n or n < 0:
            raise ValueError(f"`n` must be a non-negative integer. Received: n={n}")
        if len(self) == 0:
            raise ValueError("Cannot sample from an empty dataset. Received: len(dataset)=0")
        if by == "pdg":
            if self._pdg is None:
                raise ValueError("balanced_indices(by='pdg') needs PDG ids; this dataset has "
                                 "none. Received: pdg=None")
            labels = self._pdg
        elif by == "energy":
            if int(n_bins) != n_bins or n_bins < 1:
                raise ValueError(f"`n_bins` must be an integer >= 1. Received: n_bins={n_bins}")
            energy = self.energies.astype(np.float64)
            edges = np.linspace(energy.min(), energy.max(), int(n_bins) + 1)
            labels = np.clip(np.searchsorted(edges, energy, side="right") - 1, 0, n_bins - 1)
        else:
            raise ValueError(f"`by` must be 'pdg' or 'energy'. Received: by={by!r}")
        rng = np.random.default_rng(seed)
        groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
        counts = np.full(len(groups), int(n) // len(groups))
        counts[rng.permutation(len(groups))[: int(n) % len(groups)]] += 1
        picks = [rng.choice(members, size=c, replace=True) for members, c in zip(groups, counts)]
        return rng.permutation(np.concatenate(picks)).astype(np.int64)

    def batches(self, batch_size, shuffle=True, seed=0, balanced=None, shower_transform=None,
                condition_transform=None, targets=None, drop_remainder=False, **kwargs):
        """Return a Keras ``PyDataset`` of batches for ``model.fit``.

        Each batch is ``((showers, conditions),)``: Keras sees ``x = (showers, conditions)``
        and no ``y`` (``targets=None``, for generative models whose ``train_step`` unpacks
        ``x``). ``targets="showers"`` gives ``(conditions, showers)`` (x = conditions,
        y = showers, e.g. a regression pretraining); ``targets="conditions"`` gives
        ``(showers, conditions)``. Arrays are float32 numpy, transformed when transforms are
        given (fit them on the training split first). See
        :class:`calozdc.data.shower_batches.ShowerBatches` for the arguments.
        """
        # Keras is imported here only: the rest of calozdc.data is numpy + h5py.
        from calozdc.data.shower_batches import ShowerBatches

        return ShowerBatches(
            self, batch_size, shuffle=shuffle, seed=seed, balanced=balanced,
            shower_transform=shower_transform, condition_transform=condition_transform,
            targets=targets, drop_remainder=drop_remainder, **kwargs,
        )


def _check_n(array, n, name):
    if array.shape[0] != n:
        raise ValueError(
            f"`{name}` must have one row per shower ({n}). Received: {name}.shape={array.shape}"
        )


def _check_values(array, name, non_negative=False):
    if array.size == 0:
        return
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            where = np.argwhere(~finite)[0]
            raise ValueError(
                f"`{name}` must be finite. Received: {name}[{', '.join(map(str, where))}]="
                f"{array[tuple(where)]}"
            )
    if non_negative:
        low = array.min()
        if low < 0:
            where = np.unravel_index(np.argmin(array), array.shape)
            raise ValueError(
                f"`{name}` must be non-negative. Received: {name}"
                f"[{', '.join(map(str, where))}]={low}"
            )


class _H5ShowerSource:
    """Showers kept in an HDF5 dataset, read on demand (the storage of lazy ShowerDatasets).

    Args:
        path: HDF5 file.
        key: dataset name; its rows are showers, of any shape that reshapes to ``grid``.
        grid: ``(H, W)`` or ``(L, H, W)`` (summed over ``L``).
        rows: file rows of this view (``None``: all).
    """

    def __init__(self, path, key, grid, n_rows, rows=None):
        self.path = os.fspath(path)
        self.key = key
        self.grid = tuple(int(g) for g in grid)
        self.n_rows = int(n_rows)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self._handle = None
        self._pid = None

    @property
    def shape(self):
        n = self.n_rows if self.rows is None else len(self.rows)
        return (n,) + self.grid[-2:] + (1,)

    def take(self, idx):
        rows = idx if self.rows is None else self.rows[idx]
        return _H5ShowerSource(self.path, self.key, self.grid, self.n_rows, rows)

    def _dataset(self):
        import h5py

        if self._handle is None or self._pid != os.getpid():
            try:
                self._handle = h5py.File(self.path, "r")
            except OSError as err:
                raise OSError(f"Cannot reopen {self.path!r} for lazy reading: {err}") from None
            self._pid = os.getpid()
        return self._handle[self.key]

    def read(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        rows = idx if self.rows is None else self.rows[idx]
        out = np.empty((len(rows),) + self.grid[-2:] + (1,), dtype=np.float32)
        if len(rows) == 0:
            return out
        unique, inverse = np.unique(rows, return_inverse=True)
        data = self._dataset()
        lo, hi = int(unique[0]), int(unique[-1]) + 1
        try:
            if hi - lo <= 4 * len(unique) + 64:
                # Dense: one contiguous read, then select in memory.
                block = data[lo:hi][unique - lo]
            else:
                # Sparse: one slice per run of consecutive rows. (h5py's fancy indexing is
                # ~10x slower than this for scattered rows; the cost is then dominated by
                # decompressing the chunks the rows live in.)
                starts = np.flatnonzero(np.diff(unique, prepend=unique[0] - 2) != 1)
                stops = np.append(starts[1:], len(unique))
                block = np.concatenate(
                    [data[int(unique[a]):int(unique[b - 1]) + 1] for a, b in zip(starts, stops)]
                )
        except (OSError, ValueError) as err:
            raise OSError(f"Cannot read showers from {self.path!r}: {err}") from None
        block = np.asarray(block, dtype=np.float32).reshape((len(unique),) + self.grid)
        if len(self.grid) == 3:
            block = block.sum(axis=1)
        try:
            _check_values(block, f"showers in {self.path}", non_negative=True)
        except ValueError as err:
            raise ValueError(f"{err} (file rows {lo}..{hi - 1})") from None
        out[..., 0] = block[inverse.reshape(-1)]
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = None
        state["_pid"] = None
        return state

    def close(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None
