"""`calozdc simulate` end to end: output file, reproducibility, refusal to overwrite, errors."""

import numpy as np

from calozdc.cli.main import main
from calozdc.data import load


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
