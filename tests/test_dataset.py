"""ShowerDataset: validation, selection, splits, balanced sampling and Keras batches."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.data import ShowerDataset, load, save
from calozdc.data import transforms as T
from calozdc.data.shower_batches import ShowerBatches


def _zn44(n=20, seed=0, pdg=None):
    rng = np.random.default_rng(seed)
    showers = rng.poisson(2.0, size=(n, 44, 44)).astype(np.float32)
    conditions = rng.uniform(0.1, 1.0, size=(n, 9)).astype(np.float32)
    conditions[:, 0] = np.arange(1, n + 1)  # energies double as row ids
    if pdg is None:
        pdg = np.where(np.arange(n) % 5 == 0, 2112, 22)
    return ShowerDataset(showers, conditions, pdg=pdg, geometry="zn44")


def _small(n=40, seed=0, k=2):
    """Tiny 4x4 showers, no geometry; conditions[:, 0] = energy = row id + 1."""
    rng = np.random.default_rng(seed)
    showers = rng.gamma(0.5, 10.0, size=(n, 4, 4, 1)).astype(np.float32)
    conditions = np.c_[np.arange(1, n + 1), rng.normal(size=(n, k - 1))].astype(np.float32)
    return ShowerDataset(showers, conditions, pdg=np.arange(n) % 2, layers=rng.random((n, 3)))


# -- construction and validation ------------------------------------------------------------
def test_construction_adds_channel_and_casts():
    ds = _zn44(6)
    assert ds.showers.shape == (6, 44, 44, 1) and ds.showers.dtype == np.float32
    assert ds.conditions.dtype == np.float32 and ds.conditions.shape == (6, 9)
    assert ds.condition_names[0] == "energy" and len(ds.condition_names) == 9
    assert ds.geometry.name == "zn44" and ds.pdg.dtype == np.int64
    np.testing.assert_array_equal(ds.energies, np.arange(1, 7))
    assert len(ds) == 6 and ds.metadata == {} and not ds.is_lazy
    one = ShowerDataset(np.ones((3, 20, 20, 1)), np.ones(3))
    assert one.condition_names == ("energy",) and one.conditions.shape == (3, 1)
    assert ShowerDataset(np.ones((2, 2, 2)), np.ones((2, 3))).condition_names == (
        "condition_0", "condition_1", "condition_2")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"showers": np.ones((4, 5))}, r"showers.shape=\(4, 5\)"),
        ({"showers": np.ones((4, 5, 5, 2))}, r"showers.shape=\(4, 5, 5, 2\)"),
        ({"conditions": np.ones((3, 2))}, r"conditions.shape=\(3, 2\)"),
        ({"conditions": np.ones((4, 2, 1))}, r"conditions.shape=\(4, 2, 1\)"),
        ({"showers": np.full((4, 5, 5), np.nan)}, r"finite.*nan"),
        ({"conditions": np.array([[1.0, np.inf]] * 4)}, r"finite.*inf"),
        ({"showers": -np.ones((4, 5, 5))}, r"non-negative.*-1"),
        ({"pdg": np.ones(3)}, r"pdg.shape=\(3,\)"),
        ({"pdg": np.full(4, 22.5)}, r"pdg=22.5"),
        ({"layers": np.ones((3, 2))}, r"layers.shape=\(3, 2\)"),
        ({"condition_names": ("a",)}, r"condition_names=\('a',\)"),
        ({"geometry": "zn44"}, r"geometry 'zn44'.*\(44, 44\)"),
        ({"geometry": "nope"}, r"geometry='nope'"),
        ({"metadata": [1]}, r"metadata=\[1\]"),
    ],
)
def test_bad_input_raises_one_clear_error(kwargs, match):
    args = {"showers": np.ones((4, 5, 5)), "conditions": np.ones((4, 2))}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ShowerDataset(**args)


def test_geometry_checks_layers():
    with pytest.raises(ValueError, match="n_layers=18"):
        ShowerDataset(np.ones((2, 20, 20)), np.ones((2, 1)), layers=np.ones((2, 5)),
                      geometry="ecal20")
    ds = ShowerDataset(np.ones((2, 20, 20)), np.ones((2, 1)), layers=np.ones((2, 18)),
                       geometry="ecal20")
    assert ds.layers.shape == (2, 18) and ds.condition_names == ("energy",)


# -- selection ------------------------------------------------------------------------------
def test_getitem_slices_arrays_masks_and_ints():
    ds = _small(10)
    sub = ds[[7, 2, 2, -1]]
    assert isinstance(sub, ShowerDataset) and len(sub) == 4
    np.testing.assert_array_equal(sub.energies, [8, 3, 3, 10])
    np.testing.assert_array_equal(sub.showers, ds.showers[[7, 2, 2, 9]])
    np.testing.assert_array_equal(sub.layers, ds.layers[[7, 2, 2, 9]])
    np.testing.assert_array_equal(ds[2:5].energies, [3, 4, 5])
    np.testing.assert_array_equal(ds[ds.energies > 8].energies, [9, 10])
    np.testing.assert_array_equal(ds[3].energies, [4])
    assert len(ds[[]]) == 0
    with pytest.raises(IndexError, match=r"\[0, 10\]"):
        ds[[0, 10]]
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        ds[np.ones(3, dtype=bool)]


def test_split_fractions_disjoint_and_reproducible():
    ds = _small(100)
    parts = ds.split((0.7, 0.1, 0.2), seed=3)
    assert [len(p) for p in parts] == [70, 10, 20]
    ids = [set(p.energies.astype(int)) for p in parts]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set.union(*ids) == set(range(1, 101))
    again = ds.split((0.7, 0.1, 0.2), seed=3)
    for a, b in zip(parts, again):
        np.testing.assert_array_equal(a.energies, b.energies)
        np.testing.assert_array_equal(a.showers, b.showers)
    other = ds.split((0.7, 0.1, 0.2), seed=4)
    assert not np.array_equal(parts[0].energies, other[0].energies)
    assert [len(p) for p in ds.split((0.5, 0.5))] == [50, 50]
    for bad in [(0.7, 0.2), (0.5, 0.6, -0.1), ()]:
        with pytest.raises(ValueError, match="fractions="):
            ds.split(bad)


def test_concatenate_keeps_order_and_checks_compatibility():
    a, b = _small(5, seed=1), _small(3, seed=2)
    c = a.concatenate(b)
    assert len(c) == 8
    np.testing.assert_array_equal(c.showers, np.concatenate([a.showers, b.showers]))
    np.testing.assert_array_equal(c.pdg, np.concatenate([a.pdg, b.pdg]))
    with pytest.raises(ValueError, match="condition_names"):
        a.concatenate(_small(3, k=3))
    with pytest.raises(ValueError, match="pdg presence"):
        a.concatenate(ShowerDataset(np.ones((2, 4, 4)), np.ones((2, 2))))


# -- balanced sampling ----------------------------------------------------------------------
def test_balanced_indices_by_pdg_equalises_classes():
    pdg = np.array([22] * 90 + [2112] * 9 + [2212] * 1)
    ds = ShowerDataset(np.ones((100, 2, 2)), np.ones((100, 1)), pdg=pdg)
    idx = ds.balanced_indices(3000, by="pdg", seed=0)
    assert idx.shape == (3000,) and idx.dtype == np.int64
    counts = np.array([np.sum(pdg[idx] == p) for p in (22, 2112, 2212)])
    np.testing.assert_array_equal(counts, [1000, 1000, 1000])
    # the rare class is resampled from its only member; the common one draws from all its own
    assert set(idx[pdg[idx] == 2212]) == {99}
    assert set(idx[pdg[idx] == 22]) == set(range(90))
    small = ds.balanced_indices(30, by="pdg", seed=0)  # common class subsampled: 10 of 90
    assert np.sum(pdg[small] == 22) == 10
    np.testing.assert_array_equal(idx, ds.balanced_indices(3000, by="pdg", seed=0))
    assert not np.array_equal(idx, ds.balanced_indices(3000, by="pdg", seed=1))


def test_balanced_indices_by_energy_flattens_the_spectrum():
    rng = np.random.default_rng(0)
    energy = rng.exponential(10.0, size=2000) + 1.0  # steeply falling spectrum
    ds = ShowerDataset(np.ones((2000, 2, 2)), energy[:, None])
    idx = ds.balanced_indices(4000, by="energy", n_bins=5, seed=0)
    edges = np.linspace(energy.min(), energy.max(), 6)
    before = np.histogram(energy, edges)[0]
    after = np.histogram(energy[idx], edges)[0]
    assert before.max() / before.min() > 20
    occupied = after[before > 0]
    assert occupied.max() - occupied.min() <= 1  # equal shares of the occupied bins


def test_balanced_indices_errors():
    ds = ShowerDataset(np.ones((4, 2, 2)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="pdg=None"):
        ds.balanced_indices(10, by="pdg")
    with pytest.raises(ValueError, match="by='mass'"):
        ds.balanced_indices(10, by="mass")
    with pytest.raises(ValueError, match="n_bins=0"):
        ds.balanced_indices(10, by="energy", n_bins=0)


# -- batches --------------------------------------------------------------------------------
def test_batches_structure_and_epoch_coverage():
    ds = _small(10)
    batches = ds.batches(4, seed=1)
    assert isinstance(batches, ShowerBatches) and isinstance(batches, keras.utils.PyDataset)
    assert len(batches) == 3
    first = batches[0]
    assert isinstance(first, tuple) and len(first) == 1  # x only, no y
    showers, conditions = first[0]
    assert showers.shape == (4, 4, 4, 1) and conditions.shape == (4, 2)
    assert showers.dtype == np.float32 and conditions.dtype == np.float32
    epoch0 = np.concatenate([batches[i][0][1][:, 0] for i in range(len(batches))])
    assert sorted(epoch0) == list(range(1, 11))  # every shower exactly once
    # showers travel with their own conditions
    for i in range(len(batches)):
        s, c = batches[i][0]
        np.testing.assert_array_equal(s, ds.showers[c[:, 0].astype(int) - 1])
    batches.on_epoch_end()
    epoch1 = np.concatenate([batches[i][0][1][:, 0] for i in range(len(batches))])
    assert sorted(epoch1) == list(range(1, 11)) and not np.array_equal(epoch0, epoch1)
    again = ds.batches(4, seed=1)
    np.testing.assert_array_equal(again[0][0][1], first[0][1])
    ordered = ds.batches(4, shuffle=False)
    np.testing.assert_array_equal(ordered[2][0][1][:, 0], [9, 10])
    assert len(ds.batches(4, drop_remainder=True)) == 2


def test_batches_targets_transforms_and_balance():
    ds = _small(12)
    c_t = T.Standardize(axis="feature").fit(ds.conditions)
    s_t = T.Log1p()
    b = ds.batches(12, shuffle=False, shower_transform=s_t, condition_transform=c_t)
    showers, conditions = b[0][0]
    np.testing.assert_allclose(showers, np.log1p(ds.showers), rtol=1e-6)
    np.testing.assert_allclose(conditions, c_t.forward(ds.conditions), rtol=1e-6)
    x, y = ds.batches(5, shuffle=False, targets="showers")[0]
    assert x.shape == (5, 2) and y.shape == (5, 4, 4, 1)
    x, y = ds.batches(5, shuffle=False, targets="conditions")[0]
    assert x.shape == (5, 4, 4, 1) and y.shape == (5, 2)
    # a shower transform that needs the incident energy gets the batch's physical conditions
    frac = ds.batches(12, shuffle=False, shower_transform=T.DivideByIncidentEnergy())[0][0][0]
    np.testing.assert_allclose(frac, ds.showers / ds.energies[:, None, None, None], rtol=1e-6)
    pdg = ds.batches(4, balanced="pdg")
    labels = np.concatenate([pdg[i][0][1][:, 0] for i in range(len(pdg))]).astype(int) - 1
    assert np.sum(ds.pdg[labels] == 0) == np.sum(ds.pdg[labels] == 1) == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 4, "targets": "y"}, "targets='y'"),
        ({"batch_size": 4, "balanced": "x"}, "balanced='x'"),
        ({"batch_size": 4, "shower_transform": T.Standardize()}, "not fitted"),
        ({"batch_size": 50, "drop_remainder": True}, "batch_size=50"),
    ],
)
def test_batches_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _small(10).batches(**kwargs)
    with pytest.raises(ValueError, match="pdg=None"):
        ShowerDataset(np.ones((4, 2, 2)), np.ones((4, 1))).batches(2, balanced="pdg")


class TinyGenerator(keras.Model):
    """x = (showers, conditions) -> shower prediction; loss computed from x alone."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(16)
        self.reshape = keras.layers.Reshape((4, 4, 1))

    def build(self, input_shape):
        self.dense.build(input_shape[1])

    def call(self, inputs):
        showers, conditions = inputs
        return self.reshape(self.dense(conditions)) + 0.0 * showers

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        showers, _ = x
        return ops.mean(ops.square(y_pred - showers))


def test_model_fit_consumes_batches_on_this_backend(tmp_path):
    """model.fit gets x = (showers, conditions) and no y; run under each KERAS_BACKEND."""
    ds = _small(64)
    train, val = ds.split((0.75, 0.25), seed=0)
    s_t = T.Chain([T.Log1p(), T.Standardize()]).fit(train.showers)
    c_t = T.Standardize(axis="feature").fit(train.conditions)
    keras.utils.set_random_seed(0)
    model = TinyGenerator(name="tiny_generator")
    model(train.batches(16)[0][0])  # build
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(
        train.batches(16, shower_transform=s_t, condition_transform=c_t),
        validation_data=val.batches(16, shuffle=False, shower_transform=s_t,
                                    condition_transform=c_t),
        epochs=4, verbose=0,
    )
    loss = history.history["loss"]
    assert len(loss) == 4 and np.all(np.isfinite(loss)) and loss[-1] < loss[0]
    assert np.isfinite(history.history["val_loss"][-1])
    # the same from a lazily loaded file
    save(train, tmp_path / "train.h5")
    lazy = load(tmp_path / "train.h5", lazy=True)
    more = model.fit(lazy.batches(16, shower_transform=s_t, condition_transform=c_t),
                     epochs=1, verbose=0)
    assert np.isfinite(more.history["loss"][-1])


def test_lazy_dataset_selection_and_batches_match_eager(tmp_path):
    ds = _zn44(30)
    save(ds, tmp_path / "zn.h5")
    lazy = load(tmp_path / "zn.h5", lazy=True)
    assert lazy.is_lazy and "lazy=True" in repr(lazy)
    np.testing.assert_array_equal(lazy.showers, ds.showers)
    idx = [29, 0, 5, 5, 17]
    np.testing.assert_array_equal(lazy[idx].showers, ds.showers[idx])
    for a, b in zip(lazy.split(seed=2), ds.split(seed=2)):
        assert a.is_lazy
        np.testing.assert_array_equal(a.showers, b.showers)
        np.testing.assert_array_equal(a.pdg, b.pdg)
    eager_b, lazy_b = ds.batches(7, seed=5), lazy.batches(7, seed=5)
    for i in range(len(eager_b)):
        np.testing.assert_array_equal(lazy_b[i][0][0], eager_b[i][0][0])
    chunks = list(lazy.iter_chunks(chunk_size=8))
    assert [c[:2] for c in chunks] == [(0, 8), (8, 16), (16, 24), (24, 30)]
    np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks]), ds.showers)


def test_lazy_scattered_reads_with_duplicates_match_eager(tmp_path):
    ds = _small(400, seed=3)
    save(ds, tmp_path / "s.h5")
    lazy = load(tmp_path / "s.h5", lazy=True)
    idx = [399, 0, 1, 2, 200, 201, 2, 399, 57]  # sparse runs, duplicates, unsorted
    np.testing.assert_array_equal(lazy.read_showers(idx), ds.showers[idx])
    np.testing.assert_array_equal(lazy[idx][[8, 0]].showers, ds.showers[[57, 399]])
    balanced = lazy.batches(64, balanced="pdg", seed=1)
    eager = ds.batches(64, balanced="pdg", seed=1)
    np.testing.assert_array_equal(balanced[3][0][0], eager[3][0][0])
