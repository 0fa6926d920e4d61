"""Readers/writers (calozdc, CaloChallenge, ALICE npz), atomic writes and the info/convert CLI."""

import json
import os

import h5py
import numpy as np
import pytest

import calozdc.cli.main as cli_main
from calozdc.data import ShowerDataset, atomic_path, detect_format, info, load, save
from calozdc.version import __version__

REAL_FILE = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "geant4_zn_eminus_10-200GeV.h5"
)


def _zn44(n=12, seed=0):
    rng = np.random.default_rng(seed)
    showers = rng.poisson(3.0, size=(n, 44, 44)).astype(np.float32)
    conditions = np.c_[rng.uniform(10, 200, n), rng.normal(size=(n, 6)), rng.uniform(0, 1, n),
                       rng.choice([-1, 0, 1], n)].astype(np.float32)
    pdg = rng.choice([22, 2112, 2212], size=n)
    layers = rng.random((n, 50)).astype(np.float32)
    return ShowerDataset(showers, conditions, pdg=pdg, layers=layers, geometry="zn44",
                         metadata={"seed": 0, "note": "test"})


def _ecal20(n=9, seed=1):
    rng = np.random.default_rng(seed)
    showers = rng.gamma(0.2, 5.0, size=(n, 20, 20)).astype(np.float32)
    return ShowerDataset(showers, rng.uniform(1e3, 1e5, (n, 1)), layers=rng.random((n, 18)),
                         geometry="ecal20")


def _assert_same(a, b):
    np.testing.assert_array_equal(a.showers, b.showers)
    np.testing.assert_array_equal(a.conditions, b.conditions)
    assert a.condition_names == b.condition_names
    assert a.geometry == b.geometry
    for x, y in ((a.pdg, b.pdg), (a.layers, b.layers)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


def _write_alice(directory, responses, particles, names=("responses", "particles"), key="arr_0"):
    r = os.path.join(directory, f"data_nonrandom_{names[0]}.npz")
    p = os.path.join(directory, f"data_nonrandom_{names[1]}.npz")
    np.savez_compressed(r, **{key: responses})
    np.savez_compressed(p, **{key: particles})
    return r, p


def _write_calochallenge(path, energies_mev, showers, grid_shape=None, **extra):
    with h5py.File(path, "w") as f:
        f["incident_energies"] = energies_mev
        f["showers"] = showers
        if grid_shape is not None:
            f["showers"].attrs["grid_shape"] = np.asarray(grid_shape)
        for key, value in extra.items():
            f[key] = value


# -- atomic writes --------------------------------------------------------------------------
def test_atomic_path_replaces_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub") and tmp != str(target)
        with open(tmp, "wb") as fh:
            fh.write(b"one")
    assert target.read_bytes() == b"one"
    with pytest.raises(FileExistsError, match=r"overwrite=True \(CLI: --overwrite\).*path="):
        with atomic_path(target):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target, overwrite=True) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"one"  # untouched
    assert os.listdir(tmp_path / "sub") == ["out.bin"]  # no temporary left behind
    with atomic_path(target, overwrite=True) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"two")
    assert target.read_bytes() == b"two" and os.listdir(tmp_path / "sub") == ["out.bin"]
    with pytest.raises(IsADirectoryError, match="path="):
        with atomic_path(tmp_path, overwrite=True):
            pass


# -- calozdc format -------------------------------------------------------------------------
def test_calozdc_round_trip_zn44_counts_stored_as_int32(tmp_path):
    ds = _zn44()
    path = tmp_path / "zn.h5"
    assert save(ds, path) == str(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "calozdc" and f.attrs["calozdc_version"] == __version__
        assert json.loads(f.attrs["geometry"])["name"] == "zn44"
        assert f["showers"].dtype == np.int32 and f["showers"].shape == (12, 44, 44)
        assert f["showers"].compression == "gzip"
        assert json.loads(f["conditions"].attrs["columns"])[0] == "energy"
    back = load(path)
    _assert_same(back, ds)
    assert back.metadata == {"seed": 0, "note": "test"}
    assert detect_format(path) == "calozdc"


def test_calozdc_round_trip_float_showers_and_lazy_equals_eager(tmp_path):
    ds = _ecal20()
    save(ds, tmp_path / "e.h5")
    with h5py.File(tmp_path / "e.h5", "r") as f:
        assert f["showers"].dtype == np.float32
    eager, lazy = load(tmp_path / "e.h5"), load(tmp_path / "e.h5", lazy=True)
    _assert_same(eager, ds)
    _assert_same(lazy, ds)
    assert lazy.is_lazy and not eager.is_lazy
    np.testing.assert_array_equal(lazy[[8, 1, 1]].showers, ds.showers[[8, 1, 1]])
    # a lazy dataset is streamed to a new file, in every format
    save(lazy, tmp_path / "copy.h5")
    save(lazy, tmp_path / "copy_cc.h5", format="calochallenge")
    _assert_same(load(tmp_path / "copy.h5"), ds)
    _assert_same(load(tmp_path / "copy_cc.h5"), ds)


def test_save_refuses_to_overwrite_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "zn.h5"
    save(_zn44(4), path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(_zn44(6), path)
    assert path.read_bytes() == before
    save(_zn44(6), path, overwrite=True)
    assert len(load(path)) == 6
    assert sorted(os.listdir(tmp_path)) == ["zn.h5"]


def test_future_major_version_is_refused(tmp_path):
    path = tmp_path / "future.h5"
    save(_zn44(3), path)
    major = int(__version__.split(".")[0]) + 1
    with h5py.File(path, "a") as f:
        f.attrs["calozdc_version"] = f"{major}.0.0"
    with pytest.raises(ValueError, match=rf"newer major version.*calozdc_version='{major}\.0\.0'"):
        load(path)


# -- CaloChallenge format -------------------------------------------------------------------
def test_calochallenge_round_trip_converts_energies_to_mev(tmp_path):
    ds = _zn44()
    path = tmp_path / "cc.h5"
    save(ds, path, format="calochallenge")
    with h5py.File(path, "r") as f:
        assert f["incident_energies"].shape == (12, 1)
        np.testing.assert_allclose(f["incident_energies"][:, 0], ds.energies * 1000.0, rtol=1e-6)
        assert f["showers"].shape == (12, 44 * 44)
        assert list(f["showers"].attrs["grid_shape"]) == [44, 44]
        assert f["showers"].attrs["unit"] == "photons"
    assert detect_format(path) == "calochallenge"
    back = load(path)
    _assert_same(back, ds)
    assert back.metadata == ds.metadata


def test_foreign_calochallenge_file_loads_in_mev(tmp_path):
    rng = np.random.default_rng(0)
    e = rng.uniform(1e3, 1e5, size=(7, 1))
    showers = rng.gamma(0.3, 10.0, size=(7, 400)).astype(np.float32)
    path = tmp_path / "foreign.h5"
    _write_calochallenge(path, e, showers, grid_shape=(20, 20))
    ds = load(path)
    assert ds.showers.shape == (7, 20, 20, 1) and ds.conditions.shape == (7, 1)
    np.testing.assert_allclose(ds.energies, e[:, 0].astype(np.float32))
    np.testing.assert_array_equal(ds.showers[..., 0], showers.reshape(7, 20, 20))  # row-major
    assert ds.metadata["energy_unit"] == "MeV" and ds.metadata["response_unit"] == "MeV"
    assert ds.geometry.name == "ecal20" and ds.pdg is None and ds.layers is None
    lazy = load(path, lazy=True)
    np.testing.assert_array_equal(lazy.showers, ds.showers)
    summary = info(path)
    assert summary["format"] == "calochallenge" and summary["calozdc_version"] is None
    assert summary["energy_unit"] == "MeV" and summary["n_showers"] == 7


def test_calochallenge_grid_from_argument_3d_grid_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    showers = rng.random((5, 3 * 4 * 6)).astype(np.float32)
    path = tmp_path / "nogrid.h5"
    _write_calochallenge(path, np.full((5, 1), 100.0), showers)
    with pytest.raises(ValueError, match=r"72 voxels.*grid_shape"):
        load(path)
    with pytest.raises(ValueError, match=r"72 voxels to grid \(5, 5\)"):
        load(path, grid_shape=(5, 5))
    flat = load(path, grid_shape=(8, 9))
    assert flat.showers.shape == (5, 8, 9, 1) and flat.geometry is None
    deep = load(path, grid_shape=(3, 4, 6))  # (L, H, W): depth-summed image + layer sums
    cube = showers.reshape(5, 3, 4, 6)
    np.testing.assert_allclose(deep.showers[..., 0], cube.sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(deep.layers, cube.sum(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_allclose(load(path, grid_shape=(3, 4, 6), lazy=True).showers,
                               deep.showers, rtol=1e-6)
    square = tmp_path / "square.h5"
    _write_calochallenge(square, np.full((2, 1), 5.0), np.ones((2, 16)))
    assert load(square).showers.shape == (2, 4, 4, 1)


# -- ALICE ZDC npz --------------------------------------------------------------------------
def test_alice_npz_pair_loads_from_file_directory_or_explicit_particles(tmp_path):
    rng = np.random.default_rng(0)
    responses = rng.poisson(5.0, size=(6, 44, 44)).astype(np.float64)
    particles = np.c_[rng.uniform(100, 2000, 6), rng.normal(size=(6, 8)), [22, 2112] * 3]
    r, p = _write_alice(tmp_path, responses, particles)
    for ds in (load(r), load(tmp_path), load(p), load(r, particles_path=p)):
        assert ds.showers.shape == (6, 44, 44, 1) and ds.conditions.shape == (6, 9)
        np.testing.assert_array_equal(ds.showers[..., 0], responses)  # photon counts
        np.testing.assert_allclose(ds.energies, particles[:, 0].astype(np.float32))  # GeV
        np.testing.assert_array_equal(ds.pdg, [22, 2112] * 3)
        assert ds.geometry.name == "zn44" and ds.condition_names[0] == "energy"
        assert ds.metadata["energy_unit"] == "GeV"
    assert detect_format(r) == "alice" and detect_format(tmp_path) == "alice"
    summary = info(tmp_path)
    assert summary["particles"] == [{"pdg": 22, "name": "gamma", "count": 3},
                                    {"pdg": 2112, "name": "n", "count": 3}]


def test_alice_round_trip_and_format_requirements(tmp_path):
    ds = _zn44()
    out = tmp_path / "data_nonrandom_responses.npz"
    written = save(ds, out, format="alice")
    assert written == (str(out), str(tmp_path / "data_nonrandom_particles.npz"))
    with np.load(out) as npz:
        assert npz.files == ["arr_0"] and npz["arr_0"].shape == (12, 44, 44)
    with np.load(written[1]) as npz:
        assert npz["arr_0"].shape == (12, 10)
        np.testing.assert_array_equal(npz["arr_0"][:, 9], ds.pdg)
    back = load(out)
    np.testing.assert_array_equal(back.showers, ds.showers)
    np.testing.assert_array_equal(back.conditions, ds.conditions)
    np.testing.assert_array_equal(back.pdg, ds.pdg)
    assert back.geometry == ds.geometry
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(ds, out, format="alice")
    (tmp_path / "d").mkdir()
    save(ds, tmp_path / "d", format="alice")
    assert sorted(os.listdir(tmp_path / "d")) == ["data_nonrandom_particles.npz",
                                                 "data_nonrandom_responses.npz"]
    with pytest.raises(ValueError, match="9 particle features.*1 condition columns"):
        save(_ecal20(), tmp_path / "x_responses.npz", format="alice")
    with pytest.raises(ValueError, match=r"path=.*out\.npz"):
        save(ds, tmp_path / "out.npz", format="alice")


# -- bad input ------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load(tmp_path / "nope.h5")


def test_corrupt_truncated_and_foreign_files_give_one_error_naming_the_path(tmp_path):
    good = tmp_path / "good.h5"
    save(_zn44(40), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.h5") as err:
        load(truncated)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    damaged = tmp_path / "damaged.h5"
    raw = bytearray(data)
    for offset in range(2000, len(raw) - 200, 5000):
        raw[offset:offset + 50] = bytes(50)
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"damaged\.h5.*corrupt"):
        load(damaged)
    with pytest.raises((ValueError, OSError), match=r"damaged\.h5"):
        load(damaged, lazy=True).read_showers(slice(None))
    text = tmp_path / "text.h5"
    text.write_text("not a shower file\n")
    with pytest.raises(ValueError, match=r"text\.h5.*not an HDF5 file"):
        load(text)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.h5.*empty \(0 bytes\)"):
        load(empty)
    bad_zip = tmp_path / "data_nonrandom_responses.npz"
    np.savez(bad_zip, arr_0=np.ones((2, 44, 44)))
    bad_zip.write_bytes(bad_zip.read_bytes()[:-40])
    np.savez(tmp_path / "data_nonrandom_particles.npz", arr_0=np.ones((2, 10)))
    with pytest.raises(ValueError, match="data_nonrandom_responses.npz"):
        load(bad_zip)


def test_missing_or_misnamed_keys_name_the_keys_found(tmp_path):
    path = tmp_path / "misnamed.h5"
    with h5py.File(path, "w") as f:
        f["energies"] = np.ones((3, 1))
        f["showers"] = np.ones((3, 16))
    with pytest.raises(ValueError, match=r"incident_energies.*Found datasets: \['energies', "):
        load(path)
    calozdc = tmp_path / "nocond.h5"
    with h5py.File(calozdc, "w") as f:
        f.attrs["format"] = "calozdc"
        f["showers"] = np.ones((3, 4, 4))
    with pytest.raises(ValueError, match=r"missing datasets \['conditions'\].*\['showers'\]"):
        load(calozdc)
    (tmp_path / "a").mkdir()
    _write_alice(tmp_path / "a", np.ones((2, 44, 44)), np.ones((2, 10)), key="responses")
    with pytest.raises(ValueError, match=r"no array 'arr_0'.*Found keys: \['responses'\]"):
        load(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="data_nonrandom_responses.npz"):
        load(tmp_path)  # a directory without the pair
    lonely = tmp_path / "lonely.npz"
    np.savez(lonely, arr_0=np.ones((2, 44, 44)))
    with pytest.raises(ValueError, match="particles_path"):
        load(lonely)


@pytest.mark.parametrize(
    "responses, particles, match",
    [
        (np.ones((3, 44)), np.ones((3, 10)), r"must be \(N, H, W\).*\(3, 44\)"),
        (np.ones((3, 44, 44)), np.ones((3, 9)), r"must be \(N, 10\).*\(3, 9\)"),
        (np.ones((3, 44, 44)), np.ones((4, 10)), r"3 responses.*4 particles"),
        (np.full((3, 44, 44), np.nan), np.ones((3, 10)), r"finite.*nan"),
        (-np.ones((3, 44, 44)), np.ones((3, 10)), r"non-negative"),
        (np.ones((3, 44, 44)), np.c_[-np.ones(3), np.ones((3, 9))], r"energies.*=-1"),
        (np.ones((0, 44, 44)), np.ones((0, 10)), r"no showers"),
    ],
)
def test_bad_alice_contents(tmp_path, responses, particles, match):
    r, _ = _write_alice(tmp_path, responses, particles)
    with pytest.raises(ValueError, match=match) as err:
        load(r)
    assert "data_nonrandom" in str(err.value)  # the message names the file


@pytest.mark.parametrize(
    "energies, showers, match",
    [
        (np.ones((3, 1)), np.ones((4, 16)), r"shape \(3, 1\) but there are 4 showers"),
        (np.array([[1.0], [np.inf], [1.0]]), np.ones((3, 16)), r"incident_energies\[1\]=inf"),
        (np.array([[1.0], [-5.0], [1.0]]), np.ones((3, 16)), r"incident_energies\[1\]=-5"),
        (np.ones((3, 2)), np.ones((3, 16)), r"must be \(N, 1\)"),
        (np.ones((3, 1)), np.full((3, 16), np.nan), r"finite"),
        (np.ones((0, 1)), np.ones((0, 16)), r"no showers"),
    ],
)
def test_bad_calochallenge_contents(tmp_path, energies, showers, match):
    path = tmp_path / "bad.h5"
    _write_calochallenge(path, energies, showers)
    with pytest.raises(ValueError, match=match) as err:
        load(path)
    assert "bad.h5" in str(err.value)


def test_format_argument_checks(tmp_path):
    path = tmp_path / "zn.h5"
    save(_zn44(3), path)
    with pytest.raises(ValueError, match="format='hdf'"):
        load(path, format="hdf")
    with pytest.raises(ValueError, match="format='alice'"):
        load(path, format="alice")
    with pytest.raises(ValueError, match="format='csv'"):
        save(_zn44(3), tmp_path / "x.h5", format="csv")
    with pytest.raises(ValueError, match="len\\(dataset\\)=0"):
        save(_zn44(3)[[]], tmp_path / "x.h5")


def test_info_summary(tmp_path):
    path = tmp_path / "zn.h5"
    ds = _zn44()
    save(ds, path)
    summary = info(path)
    json.dumps(summary)  # JSON-serialisable
    assert summary["format"] == "calozdc" and summary["calozdc_version"] == __version__
    assert summary["n_showers"] == 12 and summary["shower_shape"] == [44, 44]
    assert summary["geometry"] == "zn44" and summary["n_conditions"] == 9
    assert summary["energy_unit"] == "GeV" and summary["n_layers"] == 50
    np.testing.assert_allclose(summary["energy_range"], [ds.energies.min(), ds.energies.max()])
    counts = {p["pdg"]: p["count"] for p in summary["particles"]}
    assert counts == {int(k): int(v) for k, v in zip(*np.unique(ds.pdg, return_counts=True))}


# -- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("info", "convert"))
    return cli_main.main


def test_cli_info(tmp_path, cli, capsys):
    path = tmp_path / "zn.h5"
    save(_zn44(), path)
    assert cli(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "calozdc" in out and "12 x 44 x 44" in out and "zn44" in out and "GeV" in out
    assert cli(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_showers"] == 12
    assert cli(["info", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5" in capsys.readouterr().err


def test_cli_convert_between_formats_and_keeps_existing_outputs(tmp_path, cli, capsys):
    src = tmp_path / "zn.h5"
    ds = _zn44()
    save(ds, src)
    cc = tmp_path / "cc.h5"
    assert cli(["convert", str(src), str(cc), "--format", "calochallenge"]) == 0
    assert detect_format(cc) == "calochallenge"
    alice = tmp_path / "data_nonrandom_responses.npz"
    assert cli(["convert", str(cc), str(alice)]) == 0  # .npz output -> alice
    back = tmp_path / "back.h5"
    assert cli(["convert", str(alice), str(back), "-q"]) == 0
    loaded = load(back)
    np.testing.assert_array_equal(loaded.showers, ds.showers)
    np.testing.assert_array_equal(loaded.conditions, ds.conditions)
    capsys.readouterr()
    before = cc.read_bytes()
    assert cli(["convert", str(src), str(cc), "--format", "calochallenge"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cc.read_bytes() == before
    assert cli(["convert", str(src), str(cc), "--format", "calochallenge", "--overwrite"]) == 0


def test_cli_bad_values_exit_2_naming_the_value(tmp_path, cli, capsys):
    src = tmp_path / "zn.h5"
    save(_zn44(3), src)
    assert cli(["convert", str(src), str(tmp_path / "o.h5"), "--format", "root"]) == 2
    assert "--format=root" in capsys.readouterr().err
    cc = tmp_path / "cc.h5"
    _write_calochallenge(cc, np.ones((2, 1)), np.ones((2, 1936)))
    assert cli(["convert", str(cc), str(tmp_path / "o.h5"), "--grid-shape", "40", "40"]) == 2
    err = capsys.readouterr().err
    assert "1936 voxels" in err and "(40, 40)" in err
    assert cli(["convert", str(tmp_path / "nope.h5"), str(tmp_path / "o.h5")]) == 2
    assert "nope.h5" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o.h5")


# -- the real Geant4 reference file (only in the project's workspace) -----------------------
@pytest.mark.skipif(
    not os.path.exists(REAL_FILE),
    reason="the Geant4 reference file lives in the project's ../shared/data, absent from a "
           "user's checkout; the other tests write their own CaloChallenge files",
)
def test_real_geant4_calochallenge_file():
    ds = load(REAL_FILE)
    assert ds.showers.shape == (1550, 44, 44, 1) and ds.geometry.name == "zn44"
    assert ds.condition_names[0] == "energy_MeV" and ds.metadata["energy_unit"] == "MeV"
    assert 1e4 <= ds.energies.min() and ds.energies.max() <= 2e5  # 10-200 GeV in MeV
    assert ds.layers.shape == (1550, 50) and set(ds.pdg) == {11}
    # visible energy per event is a small fraction of the incident energy (sampling ~0.7 %)
    fraction = ds.showers.sum(axis=(1, 2, 3)) / ds.energies
    assert 0.001 < np.median(fraction) < 0.02
    lazy = load(REAL_FILE, lazy=True)
    np.testing.assert_array_equal(lazy[[3, 1000]].showers, ds.showers[[3, 1000]])
