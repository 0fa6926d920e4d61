"""No data lost: writers are atomic and never replace an output without ``--overwrite``.

An interrupted write (the writer raising half-way, or Ctrl-C) must leave neither a partial
file under the final name nor a damaged existing file, nor temporary files behind.
"""

import json
import os

import numpy as np
import pytest

from calozdc.cli import main as cli_main
from calozdc.data import ShowerDataset, io, load, save


def _ds(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return ShowerDataset(rng.gamma(0.5, 2.0, (n, 20, 20)), rng.uniform(1e3, 1e4, n),
                         geometry="ecal20")


def _listing(directory):
    return sorted(os.listdir(directory))


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _crash_half_way(monkeypatch, exc):
    """Make the HDF5 writers fail after the showers dataset is made, before the conditions.

    (Every writer, the in-memory and the streamed ``save_simulation``, creates them there.)
    """
    def fail(*args, **kwargs):
        raise exc
    monkeypatch.setattr(io, "_create_extras", fail)


@pytest.mark.parametrize("fmt", ["calozdc", "calochallenge"])
@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
def test_interrupted_save_leaves_nothing_and_keeps_the_old_file(tmp_path, monkeypatch, fmt, exc):
    new, old = str(tmp_path / "new.h5"), str(tmp_path / "old.h5")
    save(_ds(seed=1), old, format=fmt)
    before = _bytes(old)
    _crash_half_way(monkeypatch, exc)
    for path, overwrite in ((new, False), (old, True)):
        with pytest.raises(type(exc)):
            save(_ds(seed=2), path, format=fmt, overwrite=overwrite)
    assert _listing(tmp_path) == ["old.h5"]  # no new.h5, no *.tmp-*
    assert _bytes(old) == before
    monkeypatch.undo()
    assert len(load(old)) == 5


def test_interrupted_alice_save_writes_neither_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    ds = ShowerDataset(rng.poisson(2.0, (3, 44, 44)), np.c_[rng.uniform(10, 100, 3),
                                                             np.zeros((3, 8))],
                       pdg=[2112, 22, 2212], geometry="zn44")
    calls, original = [], np.savez_compressed

    def savez_then_fail(fh, **arrays):  # the responses go through, the particles fail
        calls.append(1)
        if len(calls) == 2:
            raise OSError("no space left on device (simulated)")
        original(fh, **arrays)

    monkeypatch.setattr(np, "savez_compressed", savez_then_fail)
    with pytest.raises(OSError, match="simulated"):
        save(ds, str(tmp_path), format="alice")
    assert _listing(tmp_path) == []


def test_existing_outputs_need_overwrite(tmp_path):
    path = str(tmp_path / "a.h5")
    save(_ds(seed=1), path)
    before = _bytes(path)
    with pytest.raises(FileExistsError, match="a.h5"):
        save(_ds(seed=2), path)
    assert _bytes(path) == before
    save(_ds(seed=2), path, overwrite=True)
    np.testing.assert_array_equal(load(path).showers, _ds(seed=2).showers)


def _cli(argv, capsys):
    code = cli_main.main(argv)
    return code, capsys.readouterr().err


def test_interrupted_cli_simulate_and_convert_leave_no_file(tmp_path, monkeypatch, capsys):
    data = str(tmp_path / "in.h5")
    save(_ds(), data)
    _crash_half_way(monkeypatch, KeyboardInterrupt())
    out = str(tmp_path / "sim.h5")
    argv = ["simulate", "ecal20", "-n", "3", "-o", out, "-q", "--workers", "1"]
    assert _cli(argv, capsys)[0] == 130
    assert _cli(["convert", data, str(tmp_path / "conv.h5"), "-q"], capsys)[0] == 130
    assert _listing(tmp_path) == ["in.h5"]


def test_cli_outputs_are_not_replaced_without_overwrite(tmp_path, capsys):
    data = str(tmp_path / "in.h5")
    save(_ds(), data)
    target = str(tmp_path / "target.h5")
    save(_ds(seed=3), target)
    before = _bytes(target)
    for argv in (["simulate", "ecal20", "-n", "3", "-o", target, "-q", "--workers", "1"],
                 ["convert", data, target, "-q"]):
        code, err = _cli(argv, capsys)
        assert code == 2 and "target.h5" in err and "--overwrite" in err
        assert _bytes(target) == before
    assert _cli(["convert", data, target, "-q", "--overwrite"], capsys)[0] == 0
    np.testing.assert_array_equal(load(target).showers, load(data).showers)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from _tiny_models import tiny_model

    from calozdc.version import FORMAT_VERSIONS, __version__

    run = tmp_path_factory.mktemp("run")
    tiny_model("gan", seed=0).save(str(run / "model.keras"))
    (run / "run.json").write_text(json.dumps({
        "family": "gan", "geometry": None, "condition_dim": 1, "calozdc_version": __version__,
        "format_version": FORMAT_VERSIONS["run"]}))
    return str(run)


def test_interrupted_generate_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch,
                                                                    capsys, run_dir):
    conditions = str(tmp_path / "cond.h5")
    save(ShowerDataset(np.zeros((4, 12, 12)), [1e3, 2e3, 3e3, 4e3]), conditions)
    out = str(tmp_path / "gen.h5")
    argv = ["generate", run_dir, "-o", out, "--conditions", conditions, "-q"]
    assert _cli(argv, capsys)[0] == 0
    before = _bytes(out)
    _crash_half_way(monkeypatch, KeyboardInterrupt())
    assert _cli(argv + ["--overwrite", "--seed", "9"], capsys)[0] == 130
    assert _cli(argv[:3] + [str(tmp_path / "new.h5")] + argv[4:], capsys)[0] == 130
    assert _listing(tmp_path) == ["cond.h5", "gen.h5"]
    assert _bytes(out) == before


def test_interrupted_evaluate_report_keeps_old_outputs(tmp_path, monkeypatch, capsys):
    from calozdc.metrics import report

    real, gen = str(tmp_path / "real.h5"), str(tmp_path / "gen.h5")
    save(_ds(40, seed=1), real)
    save(_ds(40, seed=2), gen)
    out = tmp_path / "ev"
    argv = ["evaluate", gen, "--data", real, "-o", str(out), "-q"]
    assert _cli(argv, capsys)[0] == 0
    before = {name: _bytes(out / name) for name in _listing(out)}
    assert sorted(before) == ["metrics.json", "report.png"]

    def fail_savefig(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "_figure", lambda *a: type("F", (), {"savefig": fail_savefig})())
    assert _cli(argv + ["--overwrite"], capsys)[0] == 130
    assert {name: _bytes(out / name) for name in _listing(out)} == before
    code, err = _cli(argv, capsys)  # without --overwrite: refused before any work
    assert code == 2 and "metrics.json" in err
