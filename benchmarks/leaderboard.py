"""Leaderboard: every model family against Geant4 showers, beside a lookup baseline and the floor.

For each dataset the same rows are measured:

* **floor**: the metrics between the real test showers and an independent real sample of
  the same size and the same condition distribution, the best any generator can score with
  this many showers. For the 80/20 splits the independent sample is a random subset of the
  *training* showers of the test size (drawn ``--splits`` times for its spread); for the
  energy hold-out (whose test energies the training set lacks) it is the other half of the
  test set (:func:`calozdc.metrics.evaluate` in split-halves mode, ``n_splits = --splits``).
* **lookup**: a nearest-neighbour baseline with no training: for each test condition the
  training shower with the nearest conditions in ``(log E, x, y)`` (standardised on the
  training set; for the zn44 mix ``(x, y)`` is the impact point on the calorimeter face and
  showers are looked up among particles of the same mass and charge), scaled by
  ``E_test / E_train`` (a linear response; the ZN's is linear within ~1.4 %).
* **every model family** of :data:`calozdc.names.FAMILIES` (picked up automatically), built,
  preprocessed and fitted as ``calozdc train FAMILY`` does (default transforms, default
  builder options, batch 64), under the same wall-clock budget ``--budget-s`` of training
  on this machine (a callback stops ``fit``), or the same number of optimizer steps
  ``--budget-steps`` (all phases together; fair when the machine is shared), seeded.

Datasets (``--datasets``): ``eminus`` and ``gamma`` (the Geant4 reference files in
``../shared/data``, seeded 80/20 train/test; a missing file is reported and skipped),
``zn44`` (the built-in ALICE-ZN particle mix, ``calozdc.data.simulate("zn44", n)``, 80/20) and
``eminus-holdout`` (the electron file, trained without 40-60 GeV and tested on 40-60 GeV only).

Columns: mean total response generated/real and relative RMS (std/mean) of the total
generated/real per incident-energy bin (10-25, 25-60, 60-200 GeV), the ALICE ZDC channel
Wasserstein-1 distance (arXiv:2407.16704 eq. 4.2) and its ratio to the floor, the Fréchet and
kernel physics distances (FPD, KPD; Kansal et al., arXiv:2211.10295) of the CaloChallenge
high-level features, the classifier AUC (real vs generated features; Krause et al.,
arXiv:2410.21611), and the generation time per shower at batch 1 and 256 (median of a few
timed calls after an untimed one on the same shapes). All metrics come from
:mod:`calozdc.metrics`.

Writes ``OUT/results.json`` (every number, the command line, date, machine, versions),
``OUT/leaderboard.md`` (the tables, also printed) and ``OUT/leaderboard.png`` (fidelity ratio
against time per shower). Examples::

    python benchmarks/leaderboard.py --quick --datasets eminus,eminus-holdout \\
        --families lookup,ddim,gan --out /tmp/lb_quick
    python benchmarks/leaderboard.py --families lookup          # the baseline, all datasets
    python benchmarks/leaderboard.py --budget-s 600 --overwrite  # everything (hours on 2 CPUs)
    python benchmarks/leaderboard.py --datasets eminus --budget-steps 600  # a step budget

The module is importable (``sys.path`` holding ``benchmarks/``): :func:`nearest_neighbour_lookup`,
:class:`NearestNeighbourLookup`, :func:`energy_bin_summary`, :func:`make_split`,
:func:`fit_family`, :func:`run_entrant`, :func:`run_dataset`, :func:`entrant_registry`,
:func:`main`.
"""

import argparse
import dataclasses
import datetime
import gc
import inspect
import math
import os
import re
import shlex
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # the helper module beside this file
    sys.path.insert(0, _HERE)

from _leaderboard_report import environment_info, format_markdown, plot_leaderboard, write_outputs  # noqa: E402

ROOT = os.path.dirname(_HERE)
DEFAULT_DATA_DIR = os.path.join(ROOT, "..", "shared", "data")
DEFAULT_OUT = os.path.join("benchmarks", "leaderboard_out")
#: Geant4 reference files by dataset name (in ``--data-dir``).
GEANT4_FILES = {
    "eminus": "geant4_zn_eminus_10-200GeV.h5",
    "gamma": "geant4_zn_gamma_10-200GeV.h5",
}
DATASETS = ("eminus", "gamma", "zn44", "eminus-holdout")
#: Incident-energy bins of the physics columns, GeV (lower edge included, upper excluded,
#: except the last bin which includes its upper edge).
ENERGY_BINS_GEV = ((10.0, 25.0), (25.0, 60.0), (60.0, 200.0))
#: Energies held out of the training set of ``eminus-holdout`` (and the only test energies).
HOLDOUT_GEV = (40.0, 60.0)
BASELINE = "lookup"
TEST_FRACTION = 0.2

#: Option defaults, and those of ``--quick`` (a smoke run of the whole chain in minutes).
DEFAULTS = {
    "budget_s": 300.0, "zn44_showers": 5000, "max_train": None, "max_test": None, "splits": 3,
    "timing_batches": (1, 256), "timing_repeats": 5, "timing_max_s": 60.0,
    "max_epochs": 10_000, "batch_size": 64, "budget_steps": None,
}
QUICK = {
    "budget_s": 8.0, "zn44_showers": 500, "max_train": 400, "max_test": 32, "splits": 1,
    "timing_batches": (1, 16), "timing_repeats": 1, "timing_max_s": 10.0,
}
_UNIT_TO_GEV = {"gev": 1.0, "mev": 1e-3, "tev": 1e3, "kev": 1e-6}


def log(message):
    """Progress line on stderr (stdout keeps the table)."""
    print(f"[leaderboard {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- conditions
def energy_unit_scale(dataset):
    """Factor that turns the incident energy (conditions column 0) of ``dataset`` into GeV.

    The unit is read from the dataset's metadata (``energy_unit``; Geant4 files: MeV,
    simulated zn44: GeV), else from a ``_MeV``/``_GeV`` suffix of the first condition name,
    else from the geometry.
    """
    unit = (dataset.metadata or {}).get("energy_unit")
    if not unit:
        name = (dataset.condition_names or ("",))[0]
        unit = name.rsplit("_", 1)[-1] if "_" in name else None
    if not unit and dataset.geometry is not None:
        unit = dataset.geometry.energy_unit
    key = str(unit).lower()
    if key not in _UNIT_TO_GEV:
        raise ValueError(f"Unknown incident-energy unit of the dataset. Expected one of "
                         f"{sorted(_UNIT_TO_GEV)}. Received: energy_unit={unit!r}")
    return _UNIT_TO_GEV[key]


def beam_lookup_features(conditions):
    """Lookup features of test-beam conditions ``(E, x_mm, y_mm, ...)``: ``(log E, x, y)``."""
    c = np.asarray(conditions, dtype=np.float64)
    return np.column_stack([np.log(c[:, 0]), c[:, 1], c[:, 2]])


def zn44_impact_point_mm(conditions):
    """Impact point ``(x, y)`` [mm] on the ZN face of zn44 particle-vector conditions.

    zn44 conditions are ``E, vx, vy, vz [cm], px, py, pz [GeV], m, q``: a straight line from
    the vertex, ``x = 10 vx + (px / pz) (L - 10 vz)`` with ``L`` the distance of the ZN face
    from the interaction point (:data:`calozdc.data.simulate.ZN_DISTANCE_MM`), the way the
    simulator places the shower. ``vx, vy`` alone are the vertex at the interaction point
    (~50 µm spread), not the impact point.
    """
    from calozdc.data.simulate import ZN_DISTANCE_MM

    c = np.asarray(conditions, dtype=np.float64)
    vx, vy, vz, px, py, pz = (c[:, k] for k in range(1, 7))
    lever = ZN_DISTANCE_MM - 10.0 * vz
    pz = np.where(np.abs(pz) > 0, pz, 1e-12)
    return np.column_stack([10.0 * vx + px / pz * lever, 10.0 * vy + py / pz * lever])


def zn44_lookup_features(conditions):
    """Lookup features of zn44 conditions: ``(log E, x_impact, y_impact)``."""
    c = np.asarray(conditions, dtype=np.float64)
    return np.column_stack([np.log(c[:, 0]), zn44_impact_point_mm(c)])


def zn44_lookup_groups(conditions):
    """Particle kind of zn44 conditions from their mass and charge columns (string keys).

    The models see the same columns, so grouping by them gives the lookup no extra
    information (the PDG id is not used).
    """
    c = np.asarray(conditions, dtype=np.float64)
    return np.array([f"m={m:.4f},q={q:+.0f}" for m, q in zip(c[:, 7], c[:, 8])])


# ----------------------------------------------------------------------------- lookup
class NearestNeighbourLookup:
    """Nearest-neighbour baseline: the training shower with the nearest conditions, rescaled.

    Features of the conditions (``features(conditions) -> (N, d)``; default
    :func:`beam_lookup_features`, i.e. ``(log E, x, y)``) are standardised with the training
    set's mean and standard deviation and matched by Euclidean distance (k-d tree). With
    ``groups`` (a function of the conditions returning one hashable key per row) a test
    row is matched among the training rows of its own group (all rows when the group has no
    training shower). The shower is scaled by ``E_test / E_train`` (column ``energy_column``)
    when ``scale_energy`` is true. Integer responses (photon counts: ``integer=None`` detects
    them from the training showers) are rounded stochastically after scaling,
    ``floor(x + u)`` with ``u ~ U(0, 1)`` (unbiased); scaled counts that are not integers are
    otherwise recognised at once by a classifier (AUC 0.85 on zn44 vs 0.50 rounded).

    Args:
        train_showers: ``(N, H, W[, 1])`` in physical units.
        train_conditions: ``(N, k)``; column ``energy_column`` is the incident energy (> 0).
        features, groups, energy_column, scale_energy, integer: as above.
    """

    def __init__(self, train_showers, train_conditions, *, features=None, groups=None,
                 energy_column=0, scale_energy=True, integer=None):
        from scipy import spatial

        self.showers = np.asarray(train_showers, dtype=np.float32)
        self.conditions = np.asarray(train_conditions, dtype=np.float64)
        if self.conditions.ndim == 1:
            self.conditions = self.conditions[:, None]
        if len(self.showers) != len(self.conditions) or len(self.showers) == 0:
            raise ValueError(
                "Need one condition row per training shower and at least one shower. Received: "
                f"{len(self.showers)} showers, {len(self.conditions)} condition rows"
            )
        self.features = beam_lookup_features if features is None else features
        self.groups = groups
        self.energy_column = int(energy_column)
        self.scale_energy = bool(scale_energy)
        if integer is None:
            integer = bool(np.all(self.showers == np.round(self.showers)))
        self.integer = bool(integer)
        energy = self.conditions[:, self.energy_column]
        if self.scale_energy and np.any(energy <= 0):
            raise ValueError("The incident energies must be > 0 to rescale showers. Received: "
                             f"min energy={energy.min()}")
        f = np.asarray(self.features(self.conditions), dtype=np.float64)
        self.mean = f.mean(axis=0)
        std = f.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        z = (f - self.mean) / self.std
        self._trees = {None: (spatial.cKDTree(z), np.arange(len(z)))}
        if groups is not None:
            keys = np.asarray(groups(self.conditions))
            for key in np.unique(keys):
                idx = np.flatnonzero(keys == key)
                self._trees[key] = (spatial.cKDTree(z[idx]), idx)

    def query(self, conditions):
        """Index of the nearest training shower for each row of ``conditions``."""
        c = np.asarray(conditions, dtype=np.float64)
        if c.ndim == 1:
            c = c[:, None]
        z = (np.asarray(self.features(c), dtype=np.float64) - self.mean) / self.std
        out = np.empty(len(c), dtype=np.int64)
        if self.groups is None:
            keys = np.full(len(c), None, dtype=object)
        else:
            keys = np.asarray(self.groups(c), dtype=object)
        for key in dict.fromkeys(keys.tolist()):
            rows = np.flatnonzero(keys == key) if key is not None else np.arange(len(c))
            tree, idx = self._trees.get(key, self._trees[None])
            out[rows] = idx[tree.query(z[rows])[1]]
        return out

    def generate(self, conditions, seed=None, batch_size=None):
        """Showers ``(N, H, W, 1)`` for ``conditions`` (``seed``: of the stochastic rounding of
        integer responses; ``batch_size``: unused)."""
        c = np.asarray(conditions, dtype=np.float64)
        if c.ndim == 1:
            c = c[:, None]
        idx = self.query(c)
        showers = self.showers[idx]
        if showers.ndim == 3:
            showers = showers[..., None]
        if self.scale_energy:
            scale = c[:, self.energy_column] / self.conditions[idx, self.energy_column]
            showers = showers * scale.astype(np.float32)[:, None, None, None]
            if self.integer:
                rng = np.random.default_rng(seed)
                showers = np.floor(showers + rng.random(showers.shape, dtype=np.float32))
        return showers


def nearest_neighbour_lookup(train_showers, train_conditions, test_conditions, *, features=None,
                             groups=None, energy_column=0, scale_energy=True, integer=None,
                             seed=None, return_indices=False):
    """One-call :class:`NearestNeighbourLookup`: showers for ``test_conditions``.

    Returns ``(N, H, W, 1)`` showers (and the training indices with ``return_indices``).
    """
    lookup = NearestNeighbourLookup(train_showers, train_conditions, features=features,
                                    groups=groups, energy_column=energy_column,
                                    scale_energy=scale_energy, integer=integer)
    showers = lookup.generate(test_conditions, seed=seed)
    return (showers, lookup.query(test_conditions)) if return_indices else showers


# ----------------------------------------------------------------------------- physics
def _totals(showers):
    x = np.asarray(showers)
    return x.reshape(len(x), -1).astype(np.float64).sum(axis=1)


def _compare(r, g, prefix):
    """Mean and relative RMS of ``g`` vs ``r`` (see :func:`energy_bin_summary`)."""
    keys = ("mean_real", "mean_gen", "mean_ratio", "mean_ratio_err", "rel_rms_real",
            "rel_rms_gen", "rel_rms_ratio", "rel_rms_ratio_err")
    out = dict.fromkeys(keys)
    if len(r) >= 2 and len(g) >= 2 and r.mean() > 0 and g.mean() > 0:
        mu_r, mu_g = r.mean(), g.mean()
        s_r, s_g = r.std(ddof=1), g.std(ddof=1)
        ratio = mu_g / mu_r
        rel_r, rel_g = s_r / mu_r, s_g / mu_g
        out.update({
            "mean_real": mu_r, "mean_gen": mu_g, "mean_ratio": ratio,
            "mean_ratio_err": ratio * math.sqrt(rel_g**2 / len(g) + rel_r**2 / len(r)),
            "rel_rms_real": rel_r, "rel_rms_gen": rel_g,
        })
        if rel_r > 0:
            rel_ratio = rel_g / rel_r
            out["rel_rms_ratio"] = rel_ratio
            out["rel_rms_ratio_err"] = rel_ratio * math.sqrt(
                1.0 / (2 * (len(g) - 1)) + 1.0 / (2 * (len(r) - 1)))
    return {k.replace("mean", f"mean_{prefix}", 1).replace("rel_rms", f"rel_rms_{prefix}", 1):
            (None if v is None else float(v)) for k, v in out.items()}


def energy_bin_summary(real_showers, real_energies_gev, gen_showers, gen_energies_gev=None,
                       bins=ENERGY_BINS_GEV):
    """Mean total and relative RMS of the total, generated vs real, per incident-energy bin.

    The total is the sum of all cells of a shower (MeV for Geant4 files, photons for zn44).
    Per bin ``[lo, hi)`` (the last bin includes ``hi``): the number of showers, the mean total
    of each sample and their ratio gen/real (``mean_total_*``) with its statistical error
    (independent samples: ``sqrt((s_g/mu_g)^2/n_g + (s_r/mu_r)^2/n_r)`` times the ratio), and
    the relative RMS ``std/mean`` of each and their ratio (``rel_rms_total_*``; error from the
    large-sample standard error of a standard deviation, ``s / sqrt(2(n-1))``, combined the
    same way; heavy tails make it an underestimate). The same for the response
    ``total / E [GeV]`` (``*_response_*``), which is free of the energy spread inside the bin
    (it matters when the two samples have different energies, as the 80/20 floor's).
    Bins with fewer than 2 showers on a side give None.

    Args:
        real_showers, gen_showers: ``(N, H, W[, 1])`` and ``(M, H, W[, 1])``.
        real_energies_gev: ``(N,)`` incident energies of the real showers, GeV.
        gen_energies_gev: ``(M,)`` those of the generated showers (default: the real ones,
            for showers generated for the real conditions).
        bins: sequence of ``(lo, hi)`` in GeV.

    Returns:
        list of dicts, one per bin.
    """
    e_r = np.asarray(real_energies_gev, dtype=np.float64).reshape(-1)
    e_g = e_r if gen_energies_gev is None else np.asarray(gen_energies_gev, np.float64).reshape(-1)
    t_r, t_g = _totals(real_showers), _totals(gen_showers)
    if len(t_r) != len(e_r) or len(t_g) != len(e_g):
        raise ValueError(f"One energy per shower. Received: {len(t_r)} real showers, {len(e_r)} "
                         f"energies; {len(t_g)} generated showers, {len(e_g)} energies")
    out = []
    for k, (lo, hi) in enumerate(bins):
        last = k == len(bins) - 1
        in_r = (e_r >= lo) & ((e_r <= hi) if last else (e_r < hi))
        in_g = (e_g >= lo) & ((e_g <= hi) if last else (e_g < hi))
        row = {"bin_gev": [float(lo), float(hi)], "n_real": int(in_r.sum()),
               "n_gen": int(in_g.sum())}
        row.update(_compare(t_r[in_r], t_g[in_g], "total"))
        row.update(_compare(t_r[in_r] / e_r[in_r], t_g[in_g] / e_g[in_g], "response"))
        out.append(row)
    return out


# ----------------------------------------------------------------------------- splits
@dataclasses.dataclass
class Split:
    """A train/test split of one dataset and how its floor is measured.

    ``floor_method`` is ``"reference"`` (``references``: independent real samples of the test
    size, random training subsets) or ``"split_halves"`` (halves of the test set).
    """

    name: str
    train: object
    test: object
    energy_scale: float
    floor_method: str
    floor_text: str
    description: str
    source: str
    references: list = dataclasses.field(default_factory=list)
    lookup_features: object = None
    lookup_groups: object = None

    @property
    def geometry(self):
        return self.test.geometry

    def energies_gev(self, dataset):
        return np.asarray(dataset.conditions[:, 0], dtype=np.float64) * self.energy_scale

    def sizes(self):
        return {"train": len(self.train), "test": len(self.test),
                "reference": [len(r) for r in self.references]}


class DatasetUnavailable(Exception):
    """A dataset's input is missing (the dataset is skipped, with this reason)."""


def _subset(dataset, n, rng):
    if n is None or len(dataset) <= n:
        return dataset
    return dataset[np.sort(rng.choice(len(dataset), size=int(n), replace=False))]


def make_split(name, seed=0, data_dir=DEFAULT_DATA_DIR, zn44_showers=5000, max_train=None,
               max_test=None, n_references=1):
    """The :class:`Split` of dataset ``name`` (one of :data:`DATASETS`).

    ``eminus``/``gamma``: the Geant4 file, ``split((0.8, 0.2), seed)``; ``zn44``:
    ``simulate("zn44", zn44_showers, seed=seed)``, 80/20; ``eminus-holdout``: the electron
    file, test = incident energy in [40, 60] GeV, train = the rest. ``max_train``/``max_test``
    subsample (seeded) after splitting. For the 80/20 splits ``n_references`` random training
    subsets of the test size are drawn (seeds ``seed + 1 + k``) for the floor.

    Raises:
        DatasetUnavailable: the Geant4 file is absent.
        ValueError: unknown name.
    """
    from calozdc.data import load, simulate

    if name not in DATASETS:
        raise ValueError(f"Unknown dataset. Expected one of {list(DATASETS)}. Received: {name!r}")
    rng = np.random.default_rng(seed + 12345)
    if name == "zn44":
        data = simulate("zn44", int(zn44_showers), seed=seed)
        source = f"calozdc.data.simulate('zn44', {int(zn44_showers)}, seed={seed})"
        description = (f"built-in zn44 ALICE-ZN particle mix ({int(zn44_showers)} simulated), "
                       f"seeded 80/20 split")
    else:
        path = os.path.join(data_dir, GEANT4_FILES["gamma" if name == "gamma" else "eminus"])
        if not os.path.isfile(path):
            raise DatasetUnavailable(
                f"file not found: {os.path.abspath(path)} (see ../shared/data/README.md; "
                f"pass --data-dir)")
        data = load(path)
        source = os.path.abspath(path)
        particle = "photon" if name == "gamma" else "electron"
        description = f"Geant4 {particle} showers ({len(data)}), seeded 80/20 split"
    scale = energy_unit_scale(data)
    zn44_mix = name == "zn44"
    features = zn44_lookup_features if zn44_mix else beam_lookup_features
    groups = zn44_lookup_groups if zn44_mix else None
    if name == "eminus-holdout":
        energy = np.asarray(data.conditions[:, 0], dtype=np.float64) * scale
        held = (energy >= HOLDOUT_GEV[0]) & (energy <= HOLDOUT_GEV[1])
        train, test = data[~held], data[held]
        description = (f"Geant4 electron showers ({len(data)}): trained without "
                       f"{HOLDOUT_GEV[0]:g}-{HOLDOUT_GEV[1]:g} GeV, tested on it only")
        floor_method = "split_halves"
        floor_text = ("two random halves of the held-out test showers (no training shower has "
                      "these energies), calozdc.metrics.evaluate split-halves mode: model = half A "
                      "vs the showers generated for half B, floor = A vs B")
    else:
        train, test = data.split((1.0 - TEST_FRACTION, TEST_FRACTION), seed=seed)
        floor_method = "reference"
        floor_text = ("the test showers vs a random subset of the training showers of the test "
                      "size (same condition distribution, independent showers; their conditions "
                      "differ from the test showers', so an entrant given the test conditions, "
                      "such as the lookup, can score below it)")
    train, test = _subset(train, max_train, rng), _subset(test, max_test, rng)
    if len(train) == 0 or len(test) < 4:
        raise ValueError(f"Dataset {name!r} has too few showers after the split. Received: "
                         f"{len(train)} train, {len(test)} test")
    references = []
    if floor_method == "reference":
        if len(train) < len(test):
            raise ValueError(f"The floor needs at least as many training as test showers. "
                             f"Received: {len(train)} train, {len(test)} test ({name!r})")
        for k in range(int(n_references)):
            pick = np.random.default_rng(seed + 1 + k).choice(len(train), len(test), replace=False)
            references.append(train[np.sort(pick)])
    return Split(name=name, train=train, test=test, energy_scale=scale, floor_method=floor_method,
                 floor_text=floor_text, description=description, source=source,
                 references=references, lookup_features=features, lookup_groups=groups)


# ----------------------------------------------------------------------------- entrants
def _budget_callback_class():
    import keras

    class WallClockBudget(keras.callbacks.Callback):
        """Stops ``fit`` once ``budget_s`` seconds of training have passed (or, with
        ``budget_steps``, once that many optimizer steps have run, all phases together: a
        budget that does not depend on how loaded the machine is).

        ``mode``: ``"plain"`` (stop when the time is up); ``"switch"`` (models with
        ``set_phase``: the two-step GAN's phase 2 from a third of the budget on, as its builder
        switches at a third of the epochs); ``"two_fits"`` (the VQ generator's two ``fit`` calls:
        the VQ-VAE phase stops at half of the budget, the prior phase at the end);
        ``"phase_epochs"`` (a first phase that callbacks do not see, run epoch by epoch by
        :func:`fit_family` for half of the budget; this callback stops the second phase).
        """

        def __init__(self, budget_s, mode="plain", max_epochs=None, budget_steps=None):
            super().__init__()
            self.limitteps = None if budget_steps is None else int(budget_steps)
            self.limit = float(budget_s if budget_steps is None else self.limitteps)
            self.extra_steps = 0  # steps of a first phase run outside the callbacks
            self.mode = mode
            self.max_epochs = max_epochs
            self.start = None
            self.epoch = 0
            self.steps = {}
            self.epochs = {}
            self.stopped_by_budget = False
            self.switched_at_s = None
            self.first_step_s = None

        def elapsed(self):
            return time.perf_counter() - self.start

        def used(self):
            """The budget used so far: seconds, or optimizer steps with ``budget_steps``."""
            if self.limitteps is None:
                return self.elapsed()
            return self.extra_steps + sum(self.steps.values())

        def _phase(self):
            if self.mode == "two_fits":
                return "vqvae" if self.epoch < self.max_epochs else "prior"
            if self.mode == "switch":
                return "phase1" if self.switched_at_s is None else "phase2"
            if self.mode == "phase_epochs":
                return "main"
            return "train"

        def on_train_begin(self, logs=None):
            if self.start is None:
                self.start = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            phase = self._phase()
            if phase == "prior" and self.switched_at_s is None:
                self.switched_at_s = self.elapsed()  # the VQ-VAE phase has ended
            self.epochs[phase] = self.epochs.get(phase, 0) + 1

        def on_train_batch_end(self, batch, logs=None):
            phase = self._phase()
            self.steps[phase] = self.steps.get(phase, 0) + 1
            if self.first_step_s is None:
                self.first_step_s = self.elapsed()  # mostly tracing/compilation
            t = self.used()
            if self.mode == "switch" and self.switched_at_s is None and t >= self.limit / 3:
                self.model.set_phase(2)
                self.switched_at_s = t
            if self.mode == "two_fits":
                if phase == "vqvae" and t >= self.limit / 2:
                    self.model.vqvae.stop_training = True  # ends phase 1 only
                elif phase == "prior" and t >= self.limit:
                    self.model.prior.stop_training = True
                    self.model.stop_training = True
                    self.stopped_by_budget = True
            elif t >= self.limit:
                self.model.stop_training = True
                self.stopped_by_budget = True

        def summary(self):
            return {"train_s": None if self.start is None else self.elapsed(),
                    "steps": dict(self.steps), "epochs": dict(self.epochs),
                    "stopped_by_budget": self.stopped_by_budget,
                    "first_step_s": self.first_step_s,
                    "phase_switch_s": self.switched_at_s, "mode": self.mode,
                    "budget": ({"steps": self.limitteps} if self.limitteps is not None
                               else {"seconds": self.limit}),
                    "first_phase_steps": self.extra_steps or None}

    return WallClockBudget


def _cli_default_transforms(family):
    """The shower and condition transforms ``calozdc train`` fits (its own function: the
    family's recommended ones, :func:`calozdc.models.registry.default_transforms`)."""
    from calozdc.cli.train import default_transforms

    if inspect.signature(default_transforms).parameters:  # a per-family version
        return default_transforms(family)
    return default_transforms()


def _round_trip(transform):
    """The transform as a saved model holds it (``calozdc train`` does the same)."""
    import json

    from calozdc.data import transforms

    return transforms.deserialize(json.loads(json.dumps(transforms.serialize(transform))))


def _first_phase_argument(model):
    """The ``fit`` argument setting the epochs of a first phase that ``fit`` runs without the
    callbacks (e.g. the latent flow's ``autoencoder_epochs``), or None."""
    try:
        params = inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return None
    return next((n for n in params if n.endswith("_epochs") and n != "prior_epochs"), None)


def _fit_mode(model):
    if all(hasattr(model, a) for a in ("vqvae", "prior", "fit_prior")):
        return "two_fits"  # VQGenerator: its fit forwards the callbacks to both phases
    if _first_phase_argument(model) is not None:
        return "phase_epochs"
    if callable(getattr(model, "set_phase", None)):
        return "switch"
    return "plain"


def fit_family(family, split, *, seed=0, budget_s=300.0, max_epochs=10_000, batch_size=64,
               verbose=0, budget_steps=None):
    """Build and fit model ``family`` on ``split.train`` as ``calozdc train`` does, within a budget.

    As the CLI: ``keras.utils.set_random_seed(seed)``, the CLI's default transforms of the
    family fitted on the training showers (physical units) and round-tripped through their
    config, ``build_model(family, geometry, condition_dim, shower_transform=...,
    condition_transform=..., seed=seed, epochs=max_epochs)``, for models with
    ``fit_with_preprocess`` (flow) ``model.fit_transforms`` and batches mapped by
    ``model.preprocess``, then ``model.fit`` on the training batches (batch ``batch_size``,
    shuffled per epoch from the seed) with a non-finite guard. Instead of
    a number of epochs, training stops after ``budget_s`` seconds (see the budget callback's
    modes: the two-step GAN switches to its adversarial phase at a third of the budget, the VQ
    generator trains its prior in the second half). With ``budget_steps``, the budget is that
    many optimizer steps instead of seconds (same phase fractions). A family with a total
    model (the energy/shape factorisation) has it fitted first, as ``calozdc train`` does
    (``model.fit_totals``; its time is reported as ``total_fit_s``, outside the budget).
    No validation split (the CLI holds 10 % of the data out for validation logs only).

    Returns:
        ``(model, info)`` with the training summary (time, steps, epochs, status).
    """
    import keras

    from calozdc.callbacks import NonFiniteGuard
    from calozdc.models.registry import build_model, get_builder

    keras.utils.set_random_seed(int(seed))
    train = split.train
    shower_t, cond_t = _cli_default_transforms(family)
    x = np.asarray(train.showers, dtype="float32")
    c = np.asarray(train.conditions, dtype="float32")
    shower_t.fit(x, conditions=c)
    cond_t.fit(c)
    shower_t, cond_t = _round_trip(shower_t), _round_trip(cond_t)
    options = {"shower_transform": shower_t, "condition_transform": cond_t, "seed": int(seed),
               "epochs": int(max_epochs)}
    if "switch_epoch" in inspect.signature(get_builder(family)).parameters:
        options["switch_epoch"] = int(max_epochs)  # never by epoch: by time (budget callback)
    geometry = train.geometry if train.geometry is not None else x.shape[1:]
    model = build_model(family, geometry, c.shape[1], **options)
    if getattr(model, "fit_with_preprocess", False):
        # As the CLI: a model space that depends on more than the transforms (flow: the
        # shower's own total) is fitted by the model, which maps every batch.
        model.fit_transforms(x, c)
        feed = {"preprocess": model.preprocess}
    else:
        feed = {"shower_transform": shower_t, "condition_transform": cond_t}
    total_fit_s = None
    if getattr(model, "total_model", None) is not None:
        t0 = time.perf_counter()
        model.fit_totals(x, c)
        total_fit_s = time.perf_counter() - t0
    mode = _fit_mode(model)
    budget = _budget_callback_class()(budget_s, mode=mode, max_epochs=int(max_epochs),
                                      budget_steps=budget_steps)
    guard = NonFiniteGuard()
    batches = train.batches(int(batch_size), shuffle=True, seed=int(seed), **feed)
    fit_kwargs = {"epochs": int(max_epochs), "callbacks": [guard, budget], "verbose": verbose,
                  "shuffle": False}
    start = time.perf_counter()
    if mode == "phase_epochs":
        # Phase 1 one epoch per call (fit(epochs=0, <phase>_epochs=1): it does not see
        # callbacks) for half of the budget, then phase 2 alone under the budget callback.
        argument = _first_phase_argument(model)
        budget.start, done = start, 0
        steps_per_epoch = -(-len(train) // int(batch_size))
        while budget.used() < budget.limit / 2:
            model.fit(batches, epochs=0, verbose=verbose, shuffle=False, **{argument: 1})
            done += 1
            budget.extra_steps += steps_per_epoch
        budget.epochs[argument[: -len("_epochs")]] = done
        budget.switched_at_s = time.perf_counter() - start
        fit_kwargs[argument] = 0
    model.fit(batches, **fit_kwargs)
    info = budget.summary()
    info.update({"fit_wall_s": time.perf_counter() - start, "fit_mode": mode,
                 "batch_size": int(batch_size), "n_train": len(train),
                 "non_finite": guard.report if guard.tripped else None,
                 "feed": "model.preprocess" if "preprocess" in feed else "transforms",
                 "total_fit_s": total_fit_s,
                 "status": "non-finite loss" if guard.tripped else "ok",
                 "transforms": {"shower": _transform_name(shower_t),
                                "conditions": _transform_name(cond_t)},
                 "parameters": int(model.count_params()) if model.built else None})
    return model, info


def _transform_name(transform):
    """Short description of a transform, e.g. ``Chain[Log1p(scale=1.0), Standardize(...)]``."""
    from calozdc.data import transforms

    def describe(config):
        if not isinstance(config, dict) or "class_name" not in config:
            return str(config)
        inner = config.get("config") or {}
        if "transforms" in inner:
            return f"{config['class_name']}[{', '.join(describe(t) for t in inner['transforms'])}]"
        args = ", ".join(f"{k}={v!r}" for k, v in inner.items()
                         if k not in ("mean", "std", "min", "max")
                         and not (isinstance(v, list) and len(v) > 8))
        return f"{config['class_name']}({args})"

    return describe(transforms.serialize(transform))


class ModelEntrant:
    """A fitted model's ``generate`` with the leaderboard's options (``steps`` where taken)."""

    def __init__(self, model, steps=None):
        self.model = model
        self.steps = steps
        self.params = inspect.signature(model.generate).parameters

    def generate(self, conditions, seed=None, batch_size=256):
        kwargs = {}
        if "steps" in self.params and self.steps is not None:
            kwargs["steps"] = int(self.steps)
        if "batch_size" in self.params:
            kwargs["batch_size"] = int(batch_size)
        out = self.model.generate(conditions, seed=seed, **kwargs)
        if isinstance(out, tuple):
            out = out[0]
        return np.asarray(out, dtype=np.float32)

    def generate_options(self):
        return {"steps": int(self.steps)} if "steps" in self.params and self.steps else {}


def fit_lookup(split, **_):
    """The :class:`NearestNeighbourLookup` of ``split`` (no training) and its info."""
    start = time.perf_counter()
    lookup = NearestNeighbourLookup(split.train.showers, split.train.conditions,
                                    features=split.lookup_features, groups=split.lookup_groups)
    features = "log E, x_impact, y_impact within (mass, charge)" if split.lookup_groups else \
        "log E, x, y"
    return lookup, {"train_s": time.perf_counter() - start, "status": "ok",
                    "n_train": len(split.train), "features": features,
                    "scaled_by": "E_test / E_train",
                    "rounding": "stochastic (integer response)" if lookup.integer else None}


def _fit_model_entrant(family, split, *, seed, budget_s, max_epochs, batch_size, steps,
                       budget_steps=None, **_):
    model, info = fit_family(family, split, seed=seed, budget_s=budget_s, max_epochs=max_epochs,
                             batch_size=batch_size, budget_steps=budget_steps)
    if getattr(model, "zero_threshold", None) is not None and \
            hasattr(model, "calibrate_zero_threshold"):
        # as calozdc train: the flow's zero level set to the training occupancy, for the
        # sampler the leaderboard generates with (512 training showers)
        t0 = time.perf_counter()
        before = model.zero_threshold
        train = split.train
        rows = np.sort(np.random.default_rng(seed).permutation(len(train))[:512])
        model.calibrate_zero_threshold(np.asarray(train.showers)[rows],
                                       np.asarray(train.conditions)[rows], n=len(rows),
                                       steps=int(steps), seed=seed)
        info["zero_threshold"] = {"before": before, "value": model.zero_threshold,
                                  "calibration_s": time.perf_counter() - t0}
    elif getattr(model, "totals_fitted", False):
        # as calozdc train: the generated cells below a fraction of their shower set empty,
        # the fraction set so that the occupancy is the training showers'
        t0 = time.perf_counter()
        train = split.train
        rows = np.sort(np.random.default_rng(seed).permutation(len(train))[:512])
        kwargs = {"steps": int(steps)} if "steps" in inspect.signature(
            model.generate).parameters else {}
        model.calibrate_zero_level(np.asarray(train.showers)[rows],
                                   np.asarray(train.conditions)[rows], n=len(rows), seed=seed,
                                   **kwargs)
        info["zero_fraction"] = {"value": model.zero_fraction,
                                 "calibration_s": time.perf_counter() - t0}
    return ModelEntrant(model, steps), info


def entrant_registry():
    """Entrant name -> factory ``factory(split, **options) -> (generator, info)``.

    ``lookup`` plus every family of :data:`calozdc.names.FAMILIES` at call time (a family
    added there appears here). ``generator.generate(conditions, seed=, batch_size=)`` returns
    showers in physical units.
    """
    import functools

    from calozdc.names import available_families

    registry = {BASELINE: fit_lookup}
    for family in available_families():
        registry[family] = functools.partial(_fit_model_entrant, family)
    return registry


# ----------------------------------------------------------------------------- measuring
def time_generation(generator, conditions, batch, *, seed=0, repeats=5, max_s=60.0, warm=False):
    """Milliseconds per shower of ``generator.generate`` on ``batch`` showers.

    The conditions are repeated to ``batch`` rows. Unless ``warm`` (the same shapes already
    ran), an untimed call comes first (compilation). Then up to ``repeats`` timed calls,
    stopping early once ``max_s`` seconds have been spent timing (at least one call); the
    median is reported.
    """
    c = np.resize(np.asarray(conditions), (int(batch),) + np.shape(conditions)[1:])
    if not warm:
        generator.generate(c, seed=seed, batch_size=int(batch))
    times = []
    spent = time.perf_counter()
    for r in range(int(repeats)):
        t0 = time.perf_counter()
        generator.generate(c, seed=seed + 1 + r, batch_size=int(batch))
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - spent > max_s:
            break
    return {"batch": int(batch), "ms_per_shower": 1e3 * float(np.median(times)) / int(batch),
            "repeats": len(times), "seconds": [float(t) for t in times], "warm_up": not warm}


def _real_sample(dataset):
    """The showers + conditions of ``dataset`` as a metrics Sample, without per-layer sums.

    Generated showers have no layer sums; a real sample with them would add the layer
    features to the floor's comparison only (evaluate compares the features common to each
    pair), so model and floor would use different feature sets.
    """
    from calozdc.metrics import Sample

    return Sample(np.asarray(dataset.showers), np.asarray(dataset.conditions), None,
                  dataset.geometry)


def evaluate_generated(split, gen_showers, *, seed=0, n_splits=1, classifier=True):
    """:func:`calozdc.metrics.evaluate` of showers generated for ``split.test``'s conditions.

    ``reference`` splits: distribution metrics against the first reference sample
    (``real_reference``), paired metrics (channel MAE, pixel RMSE) with the floor of
    nearest-condition *training* partners (:func:`calozdc.metrics.match_conditions`, the
    approximation :func:`calozdc.metrics.data_floor` uses). ``split_halves`` splits:
    ``evaluate(..., n_splits=n_splits)`` (errors from the spread over splits).

    Returns:
        the evaluate dict (``metrics``: value, floor, ratio, error, floor_error, description).
    """
    from calozdc.metrics import Sample, compute_metrics, evaluate, match_conditions

    real = _real_sample(split.test)
    gen = Sample(gen_showers, real.conditions, None, real.geometry)
    if split.floor_method == "split_halves":
        out = evaluate(real, gen, seed=seed, classifier=classifier, paired=True,
                       n_splits=int(n_splits))
        out["info"]["floor_text"] = split.floor_text
        return out
    reference = _real_sample(split.references[0])
    out = evaluate(real, gen, real_reference=reference, seed=seed, classifier=classifier,
                   paired=False)
    partners = match_conditions(split.test.conditions, split.train.conditions)
    partner_sample = Sample(np.asarray(split.train.showers)[partners],
                            np.asarray(split.train.conditions)[partners], None, real.geometry)
    model_paired = compute_metrics(real, gen, paired=True, distribution=False)
    floor_paired = compute_metrics(real, partner_sample, paired=True, distribution=False)
    for name, entry in model_paired.items():
        floor = floor_paired[name]["value"]
        out["metrics"][name] = {
            "value": entry["value"], "floor": floor,
            "ratio": entry["value"] / floor if floor else None, "error": None,
            "floor_error": None, "description": "",
        }
    out["info"]["paired"] = True
    out["info"]["paired_floor"] = "nearest_conditions_in_training_set"
    out["info"]["floor_text"] = split.floor_text
    return out


def floor_row(split, *, seed=0, n_splits=1, classifier=True):
    """The floor's metrics, their spread and its energy-bin physics for ``split``.

    ``reference``: the metrics of each reference sample against the test set
    (:func:`calozdc.metrics.compute_metrics`, seed ``seed``); the first one is the floor every
    entrant is held against, the others give its spread (sample std over the draws).
    ``split_halves``: the floor of ``evaluate`` (errors over ``n_splits`` splits); energy
    physics between the two halves of the first split.
    """
    from calozdc.metrics import compute_metrics, evaluate, split_halves

    real = _real_sample(split.test)
    e_test = split.energies_gev(split.test)
    if split.floor_method == "split_halves":
        result = evaluate(real, real, seed=seed, classifier=classifier, paired=True,
                          n_splits=int(n_splits))
        metrics = {name: {"value": m["floor"], "error": m["floor_error"]}
                   for name, m in result["metrics"].items()}
        a, b = split_halves(len(real), seed)
        bins = energy_bin_summary(real.showers[a], e_test[a], real.showers[b], e_test[b])
        return {"method": "split_halves", "text": split.floor_text, "metrics": metrics,
                "spread": None, "n_splits": int(n_splits), "n_compared": len(a),
                "energy_bins": bins}
    draws = []
    for ref in split.references:
        draws.append(compute_metrics(real, _real_sample(ref), paired=False,
                                     classifier=classifier, seed=seed))
    metrics = draws[0]
    spread = None
    if len(draws) > 1:
        spread = {name: float(np.std([d[name]["value"] for d in draws], ddof=1))
                  for name in metrics}
    ref0 = split.references[0]
    bins = energy_bin_summary(real.showers, e_test, ref0.showers, split.energies_gev(ref0))
    return {"method": "reference", "text": split.floor_text, "metrics": metrics,
            "spread": spread, "n_draws": len(draws), "n_compared": len(real),
            "energy_bins": bins}


def run_entrant(name, factory, split, *, seed=0, budget_s=300.0, steps=10, max_epochs=10_000,
                batch_size=64, timing_batches=(1, 256), timing_repeats=5, timing_max_s=60.0,
                n_splits=1, classifier=True, budget_steps=None):
    """Fit one entrant on ``split``, generate for the test conditions, score and time it.

    Returns:
        dict with ``train`` (fit summary), ``generate_s``, ``energy_bins``
        (:func:`energy_bin_summary`), ``evaluation`` (:func:`evaluate_generated`), ``timing``
        (per batch size, :func:`time_generation`) and ``status`` (``"ok"`` or the error).
    """
    row = {"name": name, "status": "ok"}
    generator = None
    try:
        unit = f"{budget_s:g} s" if budget_steps is None else f"{budget_steps} steps"
        log(f"{split.name}: fitting {name} (budget {unit})")
        generator, info = factory(split, seed=seed, budget_s=budget_s, max_epochs=max_epochs,
                                  batch_size=batch_size, steps=steps, budget_steps=budget_steps)
        row["train"] = info
        if hasattr(generator, "generate_options"):
            row["generate_options"] = generator.generate_options()
        if info.get("status") != "ok":
            raise RuntimeError(f"training failed: {info.get('status')} {info.get('non_finite')}")
        conditions = np.asarray(split.test.conditions)
        eval_batch = int(max(timing_batches))
        log(f"{split.name}: {name} generating {len(conditions)} test showers")
        t0 = time.perf_counter()
        gen = generator.generate(conditions, seed=seed + 1, batch_size=eval_batch)
        row["generate_s"] = time.perf_counter() - t0
        if gen.shape[0] != len(conditions) or not np.all(np.isfinite(gen)):
            bad = int(np.size(gen) - np.isfinite(gen).sum())
            raise RuntimeError(f"generated showers: shape {gen.shape}, {bad} non-finite values")
        e_test = split.energies_gev(split.test)
        row["energy_bins"] = energy_bin_summary(split.test.showers, e_test, gen)
        log(f"{split.name}: {name} evaluating")
        row["evaluation"] = evaluate_generated(split, gen, seed=seed, n_splits=n_splits,
                                               classifier=classifier)
        row["timing"] = {}
        for batch in timing_batches:
            # The test-set generation ran this shape when it filled whole batches of it.
            warm = batch == eval_batch and len(conditions) >= batch
            row["timing"][str(batch)] = time_generation(
                generator, conditions, batch, seed=seed + 100, repeats=timing_repeats,
                max_s=timing_max_s, warm=warm)
        w1 = row["evaluation"]["metrics"]["w1_channels_mean"]
        log(f"{split.name}: {name} done: W1 {w1['value']:.4g} (floor {w1['floor']:.4g}), "
            + ", ".join(f"{v['ms_per_shower']:.3g} ms/shower at batch {b}"
                        for b, v in row["timing"].items()))
    except Exception as err:  # noqa: BLE001 - one entrant's failure is a row, not the end
        import traceback

        first = re.sub(r"\x1b\[[0-9;]*m|\[[0-9;]*m", "", str(err)).strip()
        first = " ".join(first.split())
        row["status"] = f"failed: {type(err).__name__}: {first[:200]}"
        row["error"] = str(err)
        row["traceback"] = traceback.format_exc()
        log(f"{split.name}: {name} FAILED: {type(err).__name__}: {err}")
    finally:
        del generator
        _release()
    return row


def _release():
    gc.collect()
    try:
        import keras

        keras.backend.clear_session()
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def run_dataset(name, entrants, opts):
    """Split dataset ``name``, measure its floor and run every entrant; the dataset's results."""
    log(f"dataset {name}: preparing")
    try:
        split = make_split(name, seed=opts["seed"], data_dir=opts["data_dir"],
                           zn44_showers=opts["zn44_showers"], max_train=opts["max_train"],
                           max_test=opts["max_test"], n_references=opts["splits"])
    except DatasetUnavailable as err:
        log(f"dataset {name}: SKIPPED: {err}")
        print(f"dataset {name}: skipped ({err})", flush=True)
        return {"status": "skipped", "reason": str(err)}
    out = {"status": "ok", "description": split.description, "source": split.source,
           "sizes": split.sizes(), "energy_scale_to_gev": split.energy_scale,
           "geometry": split.geometry.name if split.geometry is not None else None,
           "response_unit": (split.test.metadata or {}).get("response_unit"),
           "test_energy_range_gev": [float(split.energies_gev(split.test).min()),
                                     float(split.energies_gev(split.test).max())],
           "test_showers_per_bin": [b["n_real"] for b in energy_bin_summary(
               split.test.showers, split.energies_gev(split.test), split.test.showers)]}
    log(f"dataset {name}: {split.description}; sizes {out['sizes']}; floor")
    out["floor"] = floor_row(split, seed=opts["seed"], n_splits=opts["splits"])
    registry = entrant_registry()
    out["entrants"] = {}
    for entrant in entrants:
        out["entrants"][entrant] = run_entrant(
            entrant, registry[entrant], split, seed=opts["seed"], budget_s=opts["budget_s"],
            steps=opts["steps"], max_epochs=opts["max_epochs"], batch_size=opts["batch_size"],
            timing_batches=opts["timing_batches"], timing_repeats=opts["timing_repeats"],
            timing_max_s=opts["timing_max_s"], n_splits=opts["splits"],
            budget_steps=opts.get("budget_steps"))
    return out


# ----------------------------------------------------------------------------- command line
def _csv(value):
    return [v.strip() for v in str(value).split(",") if v.strip()]


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Defaults in brackets; --quick changes the defaults of the options not given to "
               + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in QUICK.items()) + ".",
    )
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated subset of {','.join(DATASETS)} [all]")
    p.add_argument("--families", default="all",
                   help="comma-separated entrants: lookup and/or model families of "
                        "calozdc.names.FAMILIES ['all' = lookup + every family]")
    p.add_argument("--budget-s", type=float, default=None,
                   help=f"training wall-clock budget per family and dataset, s [{DEFAULTS['budget_s']:g}]")
    p.add_argument("--budget-steps", type=int, default=None,
                   help="training budget per family and dataset in optimizer steps (all phases "
                        "together), instead of --budget-s: fair on a loaded machine")
    p.add_argument("--seed", type=int, default=0, help="splits, models, generation [0]")
    p.add_argument("--steps", type=int, default=10,
                   help="sampling steps for families whose generate takes `steps` (ddim) [10]")
    p.add_argument("--quick", action="store_true",
                   help="tiny budget and sizes: the whole chain in a few minutes")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory [{DEFAULT_OUT}]")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="directory of the Geant4 files [../shared/data beside the repository]")
    p.add_argument("--zn44-showers", type=int, default=None,
                   help=f"simulated zn44 showers [{DEFAULTS['zn44_showers']}]")
    p.add_argument("--max-train", type=int, default=None,
                   help="subsample the training showers to at most N [all]")
    p.add_argument("--max-test", type=int, default=None,
                   help="subsample the test showers to at most N [all]")
    p.add_argument("--splits", type=int, default=None,
                   help="floor draws: independent training subsets (80/20) or split-halves "
                        f"repeats (hold-out) [{DEFAULTS['splits']}]")
    p.add_argument("--timing-batches", default=None,
                   help="comma-separated generation batch sizes timed "
                        f"[{','.join(map(str, DEFAULTS['timing_batches']))}]")
    p.add_argument("--timing-repeats", type=int, default=None,
                   help=f"timed calls per batch size (median) [{DEFAULTS['timing_repeats']}]")
    p.add_argument("--timing-max-s", type=float, default=None,
                   help=f"stop repeating a timing after this many seconds [{DEFAULTS['timing_max_s']:g}]")
    p.add_argument("--max-epochs", type=int, default=None,
                   help=f"epoch cap of fit (the budget normally stops first) [{DEFAULTS['max_epochs']}]")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"training batch size (as calozdc train) [{DEFAULTS['batch_size']}]")
    return p


def resolve_options(args):
    """Checked options dict from parsed arguments (``--quick`` defaults filled in).

    Raises:
        ValueError: naming the bad value.
    """
    from calozdc.names import available_families

    opts = {}
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        if key == "timing_batches" and given is not None:
            try:
                given = tuple(int(v) for v in _csv(given))
            except ValueError:
                raise ValueError(f"--timing-batches must be comma-separated integers. "
                                 f"Received: {args.timing_batches!r}") from None
            if not given:
                raise ValueError(f"--timing-batches is empty. Received: {args.timing_batches!r}")
        opts[key] = given if given is not None else (QUICK.get(key, default) if args.quick
                                                     else default)
    datasets = _csv(args.datasets)
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown or not datasets:
        raise ValueError(f"--datasets: unknown dataset {unknown[0] if unknown else ''!r}. "
                         f"Expected a comma-separated subset of {list(DATASETS)}. "
                         f"Received: {args.datasets!r}")
    entrants_known = [BASELINE] + list(available_families())
    families = _csv(args.families)
    if families == ["all"]:
        families = entrants_known
    unknown = [f for f in families if f not in entrants_known]
    if unknown or not families:
        raise ValueError(f"--families: unknown entrant {unknown[0] if unknown else ''!r}. "
                         f"Expected a comma-separated subset of {entrants_known} or 'all'. "
                         f"Received: {args.families!r}")
    if not opts["budget_s"] > 0:
        raise ValueError(f"--budget-s must be > 0. Received: {opts['budget_s']}")
    if opts["budget_steps"] is not None and opts["budget_steps"] < 1:
        raise ValueError(f"--budget-steps must be >= 1. Received: {opts['budget_steps']}")
    for key in ("zn44_showers", "splits", "timing_repeats", "max_epochs", "batch_size"):
        if opts[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1. Received: {opts[key]}")
    if opts["zn44_showers"] < 20:
        raise ValueError(f"--zn44-showers must be >= 20. Received: {opts['zn44_showers']}")
    for key in ("max_train", "max_test"):
        if opts[key] is not None and opts[key] < 4:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 4. Received: {opts[key]}")
    if min(opts["timing_batches"]) < 1:
        raise ValueError(f"--timing-batches must be >= 1. Received: {args.timing_batches!r}")
    if not opts["timing_max_s"] > 0:
        raise ValueError(f"--timing-max-s must be > 0. Received: {opts['timing_max_s']}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1. Received: {args.steps}")
    opts.update({"datasets": list(dict.fromkeys(datasets)),
                 "families": list(dict.fromkeys(families)), "seed": int(args.seed),
                 "steps": int(args.steps), "quick": bool(args.quick), "out": args.out,
                 "overwrite": bool(args.overwrite), "data_dir": os.path.abspath(args.data_dir)})
    return opts


OUTPUT_FILES = ("results.json", "leaderboard.md", "leaderboard.png")


def _check_out(out, overwrite):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out must be a directory, not a file. Received: {out!r}")
    if not overwrite:
        for name in OUTPUT_FILES:
            path = os.path.join(out, name)
            if os.path.exists(path):
                raise ValueError(f"Output exists; pass --overwrite to replace it. Received: "
                                 f"{path!r}")


def main(argv=None):
    """Run the leaderboard; returns the results dict (also written to ``--out``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    opts = resolve_options(args)
    _check_out(opts["out"], opts["overwrite"])
    started = time.time()
    results = {
        "command": shlex.join([sys.executable, sys.argv[0] if sys.argv else "leaderboard.py"]
                              + argv),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        "energy_bins_gev": [list(b) for b in ENERGY_BINS_GEV],
        "environment": environment_info(),
        "datasets": {},
    }
    log(f"datasets {opts['datasets']}, entrants {opts['families']}, budget {opts['budget_s']:g} s"
        + (" (quick)" if opts["quick"] else ""))
    for name in opts["datasets"]:
        results["datasets"][name] = run_dataset(name, opts["families"], opts)
    results["wall_s"] = time.time() - started
    results["environment"]["load_average_end"] = list(os.getloadavg())
    table = format_markdown(results)
    print(table)
    paths = write_outputs(results, table, opts["out"], overwrite=opts["overwrite"],
                          plot=plot_leaderboard)
    print("wrote " + ", ".join(paths))
    return results


if __name__ == "__main__":
    try:
        main()
    except ValueError as err:
        print(f"leaderboard.py: error: {err}", file=sys.stderr)
        sys.exit(2)
