"""``calozdc info`` says what is wrong with the values of a file; ``--check`` exits 2 on it."""

import json

import h5py
import numpy as np
import pytest

import calozdc.cli.main as cli_main
from calozdc.data import ShowerDataset, info, load, save
from calozdc.data import io as io_module


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("info",))
    return cli_main.main


def _zn44(n=12, seed=0):
    rng = np.random.default_rng(seed)
    showers = rng.poisson(3.0, size=(n, 44, 44)).astype(np.float32) + 1.0  # none empty
    conditions = np.c_[rng.uniform(10, 200, n), rng.normal(size=(n, 8))].astype(np.float32)
    return ShowerDataset(showers, conditions, pdg=rng.choice([22, 2112], n), geometry="zn44")


def _spoil(path, showers=None, conditions=None, **datasets):
    """Overwrite values in a saved calozdc file (bypassing save's checks)."""
    with h5py.File(path, "r+") as f:
        for key, edit in (("showers", showers), ("conditions", conditions), *datasets.items()):
            if edit is not None:
                values = f[key][()].astype(np.float32 if key != "pdg" else np.float64)
                edit(values)
                del f[key]
                f.create_dataset(key, data=values)
                if key == "conditions":
                    f[key].attrs["columns"] = json.dumps(["E", *[f"c{i}" for i in range(1, 9)]])


def _bad_file(tmp_path):
    path = str(tmp_path / "bad.h5")
    save(_zn44(), path)

    def showers(x):
        x[3, 1, 1] = np.nan
        x[5, 2, 2], x[5, 3, 3] = np.inf, np.nan
        x[7, 4, 4] = -2.5
        x[9] = 0
        x[11] = 0

    def conditions(c):
        c[4, 2] = np.nan
        c[6, 0] = np.inf
        c[8, 0] = -1.0

    _spoil(path, showers, conditions)
    return path


def _by_kind(summary):
    return {(p["dataset"], p["kind"]): p for p in summary["problems"]}


def test_info_reports_each_problem_with_count_and_first_index(tmp_path, monkeypatch):
    path = _bad_file(tmp_path)
    with pytest.raises(ValueError):  # load refuses the file ...
        load(path)
    monkeypatch.setattr(io_module._scan_showers, "__defaults__", (3 * 44 * 44 * 4,))
    summary = info(path)  # ... info describes it, scanning 3 showers at a time
    json.dumps(summary, allow_nan=False)
    assert summary["n_showers"] == 12 and summary["shower_shape"] == [44, 44]
    problems = _by_kind(summary)
    assert sorted(problems) == [("conditions", "non_finite"), ("conditions", "non_positive"),
                                ("showers", "empty"), ("showers", "negative"),
                                ("showers", "non_finite")]
    assert problems["showers", "non_finite"] == {"dataset": "showers", "kind": "non_finite",
                                                 "count": 2, "values": 3, "first_index": 3}
    neg = problems["showers", "negative"]
    assert (neg["count"], neg["first_index"], neg["min_value"]) == (1, 7, -2.5)
    empty = problems["showers", "empty"]
    assert (empty["count"], empty["first_index"]) == (2, 9)
    bad_c = problems["conditions", "non_finite"]
    assert (bad_c["count"], bad_c["first_index"], bad_c["first_column"]) == (2, 4, "c2")
    low = problems["conditions", "non_positive"]
    assert (low["count"], low["first_index"], low["first_value"]) == (1, 8, -1.0)
    # the energy range is over the finite energies
    assert summary["energy_range"][0] == -1.0 and np.isfinite(summary["energy_range"][1])
    # without the scan only the in-memory arrays are checked
    quick = info(path, scan=False)
    assert not quick["showers_scanned"]
    assert {p["dataset"] for p in quick["problems"]} == {"conditions"}


def test_clean_file_has_no_problems_and_check_exits_0(tmp_path, cli, capsys):
    path = str(tmp_path / "clean.h5")
    save(_zn44(), path)
    assert info(path)["problems"] == []
    assert cli(["info", "--check", path]) == 0
    captured = capsys.readouterr()
    assert "problems:    none" in captured.out and captured.err == ""


def test_cli_describes_bad_file_and_check_exits_2(tmp_path, cli, capsys):
    path = _bad_file(tmp_path)
    assert cli(["info", path]) == 0  # described, not refused
    out = capsys.readouterr().out
    assert "12 x 44 x 44" in out
    assert "showers: 2 with NaN/inf cells (3 cells), first: shower 3" in out
    assert "showers: 1 with negative cells (1 cell, min -2.5), first: shower 7" in out
    assert "showers: 2 empty (all cells 0), first: shower 9" in out
    assert "conditions: 2 rows with NaN/inf values, first: row 4, column 'c2'" in out
    assert "energies (conditions column 0): 1 row <= 0, first: row 8 (-1)" in out
    assert cli(["info", "--check", path]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "check failed" in err[0] and "5 problems" in err[0]
    assert "Traceback" not in captured.err and "showers:" in captured.out
    assert cli(["info", "--check", "--json", path]) == 2
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["problems"]) == 5


def test_calochallenge_and_alice_problems(tmp_path, cli, capsys):
    cc = str(tmp_path / "cc.h5")
    with h5py.File(cc, "w") as f:
        f["incident_energies"] = np.array([[1e3], [0.0], [2e3], [np.nan]])
        f["showers"] = np.ones((4, 48), np.float32) * np.array([[1], [1], [0], [1]])
        f["showers"].attrs["grid_shape"] = [3, 4, 4]  # (L, H, W) voxels
    summary = info(cc)
    assert summary["n_layers"] == 3 and summary["shower_shape"] == [4, 4]
    problems = _by_kind(summary)
    assert problems["conditions", "non_positive"]["first_index"] == 1
    assert problems["conditions", "non_finite"]["first_index"] == 3
    assert problems["showers", "empty"]["first_index"] == 2
    # ALICE npz: integer photon counts (no NaN possible), a negative count, a NaN energy
    rng = np.random.default_rng(0)
    responses = rng.poisson(2.0, (5, 44, 44)).astype(np.int32) + 1
    responses[2, 0, 0] = -1
    particles = np.c_[rng.uniform(10, 100, 5), np.zeros((5, 8)), np.full(5, 2112.0)]
    particles[1, 0] = np.nan
    particles[3, 9] = 2112.5
    np.savez(tmp_path / "data_nonrandom_responses.npz", arr_0=responses)
    np.savez(tmp_path / "data_nonrandom_particles.npz", arr_0=particles)
    assert cli(["info", "--check", str(tmp_path / "data_nonrandom_responses.npz")]) == 2
    out = capsys.readouterr().out
    assert "showers: 1 with negative cells (1 cell, min -1), first: shower 2" in out
    assert "conditions: 1 row with NaN/inf values, first: row 1, column 'energy'" in out
    assert "pdg: 1 row with non-integer values, first: row 3" in out


def test_structural_errors_still_refused(tmp_path, cli, capsys):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "calozdc"
        f["showers"] = np.ones((3, 4, 4))
    assert cli(["info", "--check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "missing datasets ['conditions']" in err and "Traceback" not in err
