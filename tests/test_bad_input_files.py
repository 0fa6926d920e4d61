"""Bad shower files: one ValueError naming the path and the bad value, never a crash.

Covers calozdc HDF5, CaloChallenge HDF5 and ALICE npz inputs of ``calozdc.data.load`` (and
so of every CLI command that reads files), plus property-based round trips and corruptions.
"""

import os

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calozdc.data import ShowerDataset, load, save
from calozdc.version import FORMAT_VERSIONS


def _ecal(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return ShowerDataset(rng.gamma(0.5, 2.0, (n, 20, 20)).astype("float32"),
                         rng.uniform(1e3, 1e4, (n, 1)), geometry="ecal20")


@pytest.fixture
def good(tmp_path):
    path = str(tmp_path / "good.h5")
    save(_ecal(), path)
    return path


def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def _replace(f, key, value):
    attrs = dict(f[key].attrs)
    del f[key]
    f[key] = value
    f[key].attrs.update(attrs)


def _calochallenge(path, energies, showers, **attrs):
    with h5py.File(path, "w") as f:
        f["incident_energies"] = energies
        f["showers"] = showers
        f.attrs.update(attrs)
    return path


# Each case: (name, edit of a valid calozdc file or a writer of a new file, text the message
# must contain). The text is the bad value (or the key/shape that is wrong).
CALOZDC_EDITS = [
    ("missing conditions", lambda f: f.__delitem__("conditions"), "['conditions']"),
    ("missing showers", lambda f: f.__delitem__("showers"), "['showers']"),
    ("showers flat", lambda f: _replace(f, "showers", np.zeros((4, 400), "f4")), "(4, 400)"),
    ("conditions 1-D", lambda f: _replace(f, "conditions", np.ones(4, "f4")), "shape=(4,)"),
    ("conditions rows", lambda f: _replace(f, "conditions", np.ones((3, 1), "f4")), "(3, 1)"),
    ("NaN energy", lambda f: _replace(f, "conditions", np.array([[1e3], [np.nan], [1e3], [1e3]])),
     "nan"),
    ("inf energy", lambda f: _replace(f, "conditions", np.array([[1e3], [1e3], [np.inf], [1e3]])),
     "inf"),
    ("negative energy", lambda f: _replace(f, "conditions", np.array([[1e3], [-5.0], [1], [1]])),
     "-5.0"),
    ("zero energy", lambda f: _replace(f, "conditions", np.array([[1e3], [1e3], [1e3], [0.0]])),
     "[3]=0.0"),
    ("NaN shower", lambda f: f["showers"].__setitem__((1, 2, 3), np.nan), "nan"),
    ("inf shower", lambda f: f["showers"].__setitem__((2, 0, 0), np.inf), "inf"),
    ("negative shower", lambda f: f["showers"].__setitem__((0, 5, 5), -7.5), "-7.5"),
    ("string showers", lambda f: _replace(f, "showers", np.full((4, 20, 20), b"x")), "|S1"),
    ("string conditions", lambda f: _replace(f, "conditions", np.full((4, 1), b"ab")), "|S2"),
    ("no showers", lambda f: (_replace(f, "showers", np.zeros((0, 20, 20), "f4")),
                              _replace(f, "conditions", np.zeros((0, 1), "f4"))), "N = 0"),
    ("bad geometry JSON", lambda f: f.attrs.__setitem__("geometry", "{oops"), "{oops"),
    ("unknown geometry", lambda f: f.attrs.__setitem__("geometry", '"zn99"'), "zn99"),
    ("columns mismatch", lambda f: f["conditions"].attrs.__setitem__("columns", '["E", "x"]'),
     "['E', 'x']"),
    ("pdg not integer", lambda f: f.__setitem__("pdg", np.array([11, 11.5, 22, 22])), "11.5"),
    ("pdg rows", lambda f: f.__setitem__("pdg", np.array([11, 22])), "(2,)"),
    ("layers rows", lambda f: f.__setitem__("layers", np.ones((5, 18))), "(5, 18)"),
    ("future format", lambda f: f.attrs.__setitem__("format_version", FORMAT_VERSIONS["hdf5"] + 1),
     f"format_version={FORMAT_VERSIONS['hdf5'] + 1}"),
    ("unreadable format", lambda f: f.attrs.__setitem__("format_version", "two"), "'two'"),
    ("future major", lambda f: f.attrs.__setitem__("calozdc_version", "99.0.0"), "'99.0.0'"),
    ("unreadable version", lambda f: f.attrs.__setitem__("calozdc_version", "banana"), "'banana'"),
]


@pytest.mark.parametrize("name, edit, text", CALOZDC_EDITS, ids=[c[0] for c in CALOZDC_EDITS])
@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_bad_calozdc_file(good, name, edit, text, lazy):
    _edit(good, edit)
    with pytest.raises(ValueError) as err:
        ds = load(good, lazy=lazy)
        _ = ds.showers  # a lazy dataset checks the showers when it reads them
    assert text in str(err.value), str(err.value)
    assert good in str(err.value) or "showers" in str(err.value)


def test_older_format_version_still_loads(good):
    _edit(good, lambda f: (f.attrs.__delitem__("format_version"),
                           f.attrs.__setitem__("calozdc_version", "0.0.1")))
    assert len(load(good)) == 4


def test_files_record_version_and_geometry(good, tmp_path):
    from calozdc.version import __version__

    cc = str(tmp_path / "cc.h5")
    save(_ecal(), cc, format="calochallenge")
    for path in (good, cc):
        with h5py.File(path) as f:
            assert f.attrs["calozdc_version"] == __version__
            assert int(f.attrs["format_version"]) == FORMAT_VERSIONS["hdf5"]
            assert '"name": "ecal20"' in f.attrs["geometry"]


CORRUPT = [
    ("empty", lambda p, good: open(p, "wb").close(), "empty (0 bytes)"),
    ("random bytes", lambda p, good: open(p, "wb").write(os.urandom(300)), "not an HDF5"),
    ("truncated", lambda p, good: open(p, "wb").write(open(good, "rb").read()[:3000]),
     "corrupt or truncated"),
    ("text", lambda p, good: open(p, "w").write("energy,showers\n1,2\n"), "not an HDF5"),
    ("foreign HDF5", lambda p, good: _calochallenge(p, [[1.0]], [[1.0]]) and _edit(
        p, lambda f: (f.__delitem__("incident_energies"), f.__setitem__("x", [1]))),
     "['showers', 'x']"),
]


@pytest.mark.parametrize("name, write, text", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_files(good, tmp_path, name, write, text):
    path = str(tmp_path / "bad.h5")
    write(path, good)
    with pytest.raises(ValueError) as err:
        load(path)
    assert text in str(err.value) and path in str(err.value), str(err.value)


CALOCHALLENGE = [
    ("energies two columns", np.ones((3, 2)) * 1e3, np.ones((3, 400)), "(3, 2)"),
    ("energies rows", np.ones((2, 1)) * 1e3, np.ones((3, 400)), "(2, 1)"),
    ("energy zero", np.array([[1e3], [0.0], [1e3]]), np.ones((3, 400)), "[1]=0.0"),
    ("energy NaN", np.array([[1e3], [1e3], [np.nan]]), np.ones((3, 400)), "nan"),
    ("voxels not square", np.ones((3, 1)) * 1e3, np.ones((3, 401)), "401 voxels"),
    ("showers 1-D", np.ones((3, 1)) * 1e3, np.ones(3), "shape=(3,)"),
    ("grid mismatch", np.ones((3, 1)) * 1e3, np.ones((3, 400)), "grid_shape=(10, 10)"),
]


@pytest.mark.parametrize("name, energies, showers, text", CALOCHALLENGE,
                         ids=[c[0] for c in CALOCHALLENGE])
def test_bad_calochallenge_file(tmp_path, name, energies, showers, text):
    path = _calochallenge(str(tmp_path / "cc.h5"), energies, showers)
    grid = (10, 10) if name == "grid mismatch" else None
    with pytest.raises(ValueError) as err:
        load(path, grid_shape=grid)
    assert text in str(err.value), str(err.value)


ALICE = [
    ("particles 9 columns", np.ones((3, 44, 44)), np.ones((3, 9)), "(3, 9)"),
    ("rows differ", np.ones((3, 44, 44)), np.ones((4, 10)), "4 particles"),
    ("responses 2-D", np.ones((3, 1936)), np.ones((3, 10)), "(3, 1936)"),
    ("negative energy", np.ones((2, 44, 44)), np.c_[[-3.0, 10.0], np.ones((2, 9))], "-3.0"),
]


@pytest.mark.parametrize("name, responses, particles, text", ALICE, ids=[c[0] for c in ALICE])
def test_bad_alice_pair(tmp_path, name, responses, particles, text):
    r = str(tmp_path / "data_nonrandom_responses.npz")
    np.savez(r, arr_0=responses)
    np.savez(str(tmp_path / "data_nonrandom_particles.npz"), arr_0=particles)
    with pytest.raises(ValueError) as err:
        load(r)
    assert text in str(err.value), str(err.value)


def test_bad_format_argument(good):
    with pytest.raises(ValueError, match="format='hdf6'"):
        load(good, format="hdf6")
    with pytest.raises(ValueError, match="format='alice'"):
        load(good, format="alice")


# -- property-based ---------------------------------------------------------------------------
_SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def datasets(draw):
    n = draw(st.integers(1, 6))
    h = draw(st.integers(1, 5))
    w = draw(st.integers(1, 5))
    k = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    integer = draw(st.booleans())
    showers = rng.poisson(3.0, (n, h, w)) if integer else rng.gamma(0.3, 10.0, (n, h, w))
    conditions = np.c_[rng.uniform(0.1, 1e5, n), rng.normal(size=(n, k - 1))]
    pdg = rng.choice([11, 22, 2112], n) if draw(st.booleans()) else None
    layers = rng.random((n, draw(st.integers(1, 3)))) if draw(st.booleans()) else None
    return ShowerDataset(showers, conditions, pdg=pdg, layers=layers,
                         metadata={"seed": seed, "note": draw(st.text(max_size=8))})


@_SETTINGS
@given(ds=datasets(), fmt=st.sampled_from(["calozdc", "calochallenge"]))
def test_random_datasets_round_trip(tmp_path, ds, fmt):
    path = str(tmp_path / f"rt-{fmt}.h5")
    save(ds, path, format=fmt, overwrite=True)
    h, w = ds.shower_shape[:2]
    back = load(path, grid_shape=(h, w) if fmt == "calochallenge" else None)
    np.testing.assert_array_equal(back.showers, ds.showers)
    np.testing.assert_allclose(back.conditions, ds.conditions, rtol=1e-6)
    assert back.condition_names == ds.condition_names
    assert (back.pdg is None) == (ds.pdg is None)
    if ds.pdg is not None:
        np.testing.assert_array_equal(back.pdg, ds.pdg)
    if ds.layers is not None:
        np.testing.assert_array_equal(back.layers, ds.layers)
    assert back.metadata == ds.metadata


@_SETTINGS
@given(data=st.data())
def test_random_corruptions_give_value_error(tmp_path, data):
    """Flipped bytes or a cut anywhere: ValueError (or an intact read), never another crash."""
    path = str(tmp_path / "c.h5")
    save(_ecal(3), path, overwrite=True)
    raw = bytearray(open(path, "rb").read())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="cut")]
    else:
        for _ in range(data.draw(st.integers(1, 20), label="n_flips")):
            i = data.draw(st.integers(0, len(raw) - 1), label="offset")
            raw[i] = data.draw(st.integers(0, 255), label="byte")
    open(path, "wb").write(bytes(raw))
    try:
        ds = load(path)
    except ValueError as err:
        assert path in str(err) or "Received" in str(err), str(err)
    else:  # the flips hit padding or free space: the data must still be a valid dataset
        assert np.isfinite(ds.showers).all() and (ds.showers >= 0).all()
