"""`calozdc simulate` end to end: output file, reproducibility, refusal to overwrite, errors."""

import importlib
import subprocess
import sys
import tracemalloc

import h5py
import numpy as np
import pytest

import calozdc.data
from calozdc.cli.main import main
from calozdc.data import get_geometry, load, save, save_simulation, simulate


def test_simulate_writes_a_loadable_file_and_keeps_existing(tmp_path, capsys):
    out = tmp_path / "zn.h5"
    assert main(["simulate", "zn44", "-n", "64", "-o", str(out), "--seed", "3", "-q"]) == 0
    ds = load(out)
    assert ds.showers.shape == (64, 44, 44, 1) and ds.layers.shape == (64, 50)
    assert ds.geometry.name == "zn44" and ds.pdg.shape == (64,)
    before = out.read_bytes()
    assert main(["simulate", "zn44", "-n", "8", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and str(out) in err and "Traceback" not in err
    assert out.read_bytes() == before  # kept
    assert main(["simulate", "zn44", "-n", "8", "-o", str(out), "-q", "--overwrite"]) == 0
    assert len(load(out)) == 8


def test_same_seed_same_file_contents(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path in (a, b):
        assert main(["simulate", "ecal20", "-n", "50", "-o", str(path), "--seed", "9", "-q",
                     "--particles", "e-,gamma", "--energy-range", "1000", "50000"]) == 0
    da, db = load(a), load(b)
    np.testing.assert_array_equal(da.showers, db.showers)
    assert set(np.unique(da.pdg)) <= {11, 22}
    assert da.conditions.min() >= 1000 and da.conditions.max() <= 50000


def test_reference_setup_options(tmp_path):
    out = tmp_path / "e.h5"
    assert main(["simulate", "zn44", "-n", "40", "-o", str(out), "-q", "--particles", "e-",
                 "--energy-range", "10", "200", "--impact-halfwidth-mm", "5",
                 "--angle-halfwidth-mrad", "2", "--response", "energy"]) == 0
    ds = load(out)
    vx, vy = ds.conditions[:, 1] * 10, ds.conditions[:, 2] * 10  # cm -> mm
    assert np.all(np.abs(vx) <= 5) and np.all(np.abs(vy) <= 5)
    assert np.all(ds.pdg == 11)
    # visible energy in MeV, not integer photon counts
    assert not np.all(ds.showers == np.round(ds.showers))


def test_bad_values_exit_2_naming_the_value(tmp_path, capsys):
    out = str(tmp_path / "x.h5")
    cases = [
        (["simulate", "zn44", "-n", "0", "-o", out], "n=0"),
        (["simulate", "zn44", "-n", "5", "-o", out, "--particles", "muon"], "muon"),
        (["simulate", "zn44", "-n", "5", "-o", out, "--energy-range", "50", "5"], "energy_range"),
        (["simulate", "zn44", "-n", "5", "-o", out, "--impact-halfwidth-mm", "99"], "99"),
    ]
    for argv, needle in cases:
        assert main(argv + ["-q"]) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, err
    assert not (tmp_path / "x.h5").exists()


# -- streaming: `calozdc simulate` writes chunk by chunk (io.save_simulation) ------------------
sim = importlib.import_module("calozdc.data.simulate")  # (calozdc.data.simulate is the function)


def _attrs(attrs):
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in attrs.items()}


def _layout(path):
    """Root attributes and, per dataset, its storage settings, attributes and values."""
    with h5py.File(path, "r") as f:
        datasets = {
            key: ((d.shape, d.dtype.str, d.chunks, d.compression, d.compression_opts, d.shuffle),
                  _attrs(d.attrs), d[()])
            for key, d in f.items()
        }
        return _attrs(f.attrs), datasets


def _assert_same_file(streamed, saved):
    attrs_a, sets_a = _layout(streamed)
    attrs_b, sets_b = _layout(saved)
    assert attrs_a == attrs_b and sorted(sets_a) == sorted(sets_b)
    for key in sets_b:
        assert sets_a[key][:2] == sets_b[key][:2], key
        np.testing.assert_array_equal(sets_a[key][2], sets_b[key][2])
        assert sets_a[key][2].dtype == sets_b[key][2].dtype, key


def _assert_same_dataset(a, b):
    for key in ("showers", "conditions", "pdg", "layers"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.metadata == b.metadata and a.condition_names == b.condition_names
    assert a.geometry.get_config() == b.geometry.get_config()


def test_cli_streams_the_same_file_as_save_of_simulate_zn44(tmp_path, monkeypatch):
    n = sim.CHUNK_SIZE + 40  # two chunks
    saved, streamed = str(tmp_path / "saved.h5"), str(tmp_path / "streamed.h5")
    ref = simulate("zn44", n, seed=5, workers=1)
    save(ref, saved)

    def no_in_memory(*args, **kwargs):
        raise AssertionError("the CLI must not hold all showers (simulate() was called)")
    monkeypatch.setattr(sim, "simulate", no_in_memory)
    monkeypatch.setattr(calozdc.data, "simulate", no_in_memory)
    assert main(["simulate", "zn44", "-n", str(n), "-o", streamed, "--seed", "5", "-q",
                 "--workers", "1"]) == 0
    _assert_same_file(streamed, saved)
    with h5py.File(streamed, "r") as f:
        assert f["showers"].dtype == np.int32  # photon counts
    _assert_same_dataset(load(streamed), ref)


@pytest.mark.parametrize("geometry, n, kwargs", [
    ("ecal20", 2 * sim.CHUNK_SIZE + 3,  # three chunks, float MeV
     {"seed": 9, "particles": "e-,gamma", "energy_range": (1e3, 5e4)}),
    (get_geometry("zn44", n_layers=7), 30,  # visible energy (float) and a custom geometry
     {"seed": 2, "response": "energy", "particles": "e-", "impact_halfwidth_mm": 3.0,
      "angle_halfwidth_mrad": 1.0}),
], ids=["ecal20", "zn44-energy"])
def test_save_simulation_equals_save_of_simulate_float_responses(tmp_path, geometry, n, kwargs):
    saved, streamed = str(tmp_path / "saved.h5"), str(tmp_path / "streamed.h5")
    ref = simulate(geometry, n, workers=1, **kwargs)
    save(ref, saved)
    assert save_simulation(streamed, geometry, n, workers=1, **kwargs) == streamed
    _assert_same_file(streamed, saved)
    with h5py.File(streamed, "r") as f:
        assert f["showers"].dtype == np.float32
    _assert_same_dataset(load(streamed), ref)


def test_save_simulation_memory_is_flat_in_n(tmp_path, monkeypatch):
    # small chunks so that 64 of them are cheap; held in memory, 64 chunks of zn44 showers
    # would take 16 MB (the in-memory path peaks at ~52 MB here, streaming at ~2.5 MB)
    monkeypatch.setattr(sim, "CHUNK_SIZE", 32)
    path = str(tmp_path / "zn.h5")

    def peak(n):
        tracemalloc.start()
        try:
            save_simulation(path, "zn44", n, seed=0, workers=1, overwrite=True)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(32)  # warm up (imports, caches)
    one, many = peak(32), peak(64 * 32)
    all_showers = 64 * 32 * 44 * 44 * 4
    assert many - one < 0.1 * all_showers, (one, many)
    assert len(load(path)) == 64 * 32


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("failure", ["error", "non-integer counts"])
def test_save_simulation_failure_mid_way_leaves_no_file(tmp_path, monkeypatch, failure):
    real = sim.iter_simulate

    def broken(*args, **kwargs):
        chunks = real(*args, **kwargs)
        yield next(chunks)  # the first chunk is written, then:
        if failure == "error":
            raise _Boom("disk full")
        chunk = next(chunks)
        yield dict(chunk, showers=chunk["showers"] + 0.5)

    old = tmp_path / "old.h5"
    assert main(["simulate", "zn44", "-n", "5", "-o", str(old), "-q", "--workers", "1"]) == 0
    before = old.read_bytes()
    monkeypatch.setattr(sim, "iter_simulate", broken)
    for path, overwrite in ((tmp_path / "new.h5", False), (old, True)):
        with pytest.raises(_Boom if failure == "error" else ValueError,
                           match="disk full" if failure == "error" else "not integer counts"):
            save_simulation(path, "zn44", sim.CHUNK_SIZE + 1, seed=1, workers=1,
                            overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]  # no new.h5, no *.tmp-*
    assert old.read_bytes() == before


def test_save_simulation_without_seed_records_a_reproducing_seed(tmp_path):
    path = save_simulation(tmp_path / "a.h5", "ecal20", 50)
    first = load(path)
    seed = first.metadata["seed"]
    assert isinstance(seed, int) and seed >= 0
    np.testing.assert_array_equal(simulate("ecal20", 50, seed=seed).showers, first.showers)


def test_help_and_simulate_start_without_loading_a_framework(tmp_path):
    # A fresh interpreter: the test session itself has Keras loaded.
    code = (
        "import sys\n"
        "from calozdc.cli.main import main\n"
        f"main(['simulate', 'ecal20', '-n', '20', '-o', {str(tmp_path / 'e.h5')!r}, '-q'])\n"
        "print(sorted(m for m in ('keras', 'keras_tuner', 'jax', 'tensorflow', 'torch')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert len(load(tmp_path / "e.h5")) == 20


def test_cli_family_and_tuner_names_match_the_registries():
    from calozdc.cli.main import build_parser
    from calozdc.models.registry import get_builder
    from calozdc.names import TUNERS, available_families
    from calozdc.tuning import HYPERMODELS

    assert sorted(HYPERMODELS) == available_families()
    assert all(callable(get_builder(family)) for family in available_families())
    parser = build_parser()
    for family in available_families():
        assert parser.parse_args(["train", family]).family == family
        for tuner in TUNERS:
            args = parser.parse_args(["tune", family, "--data", "x.h5", "--tuner", tuner])
            assert (args.family, args.tuner) == (family, tuner)
    with pytest.raises(SystemExit):
        parser.parse_args(["tune", "gan", "--data", "x.h5", "--tuner", "grid"])
