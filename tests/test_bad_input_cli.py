"""Bad command-line input: exit code 2, one line naming the value, no traceback (--debug: raise)."""

import json
import os
import shutil

import numpy as np
import pytest

from calozdc.cli import main as cli_main
from calozdc.version import FORMAT_VERSIONS, __version__


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small ecal20 file, a zn44 file, an empty file and a tiny GAN run directory."""
    from _tiny_models import tiny_model

    from calozdc.data import ShowerDataset, save, simulate

    root = tmp_path_factory.mktemp("cli")
    ecal = str(root / "ecal.h5")
    save(simulate("ecal20", 12, seed=1), ecal)
    rng = np.random.default_rng(0)
    zn = str(root / "zn.h5")
    save(ShowerDataset(rng.poisson(2.0, (3, 44, 44)), np.c_[rng.uniform(10, 100, 3),
                                                             np.zeros((3, 8))],
                       geometry="zn44"), zn)
    empty = str(root / "empty.h5")
    open(empty, "wb").close()
    run = str(root / "run")
    os.makedirs(run)
    tiny_model("gan", seed=0).save(os.path.join(run, "model.keras"))
    with open(os.path.join(run, "run.json"), "w") as f:
        json.dump({"family": "gan", "geometry": None, "condition_dim": 1,
                   "calozdc_version": __version__, "format_version": FORMAT_VERSIONS["run"]}, f)
    return {"ecal": ecal, "zn": zn, "empty": empty, "run": run, "root": str(root)}


def _variant(files, name, edit):
    """A copy of the run directory with ``edit(run_info)`` applied (or raw text written)."""
    path = os.path.join(files["root"], name)
    if not os.path.exists(path):
        shutil.copytree(files["run"], path)
        with open(os.path.join(files["run"], "run.json")) as f:
            info = json.load(f)
        with open(os.path.join(path, "run.json"), "w") as f:
            if callable(edit):
                edit(info)
                json.dump(info, f)
            else:
                f.write(edit)
    return path


def _cli(argv, capsys):
    try:
        code = cli_main.main(argv)
    except SystemExit as exc:  # argparse errors (wrong type, unknown choice)
        code = exc.code
    return code, capsys.readouterr().err


def _out(files, name="out.h5"):
    return os.path.join(files["root"], "outputs", name)


CASES = [
    # simulate
    ("simulate n=0", lambda F: ["simulate", "ecal20", "-n", "0", "-o", _out(F)], "n=0"),
    ("simulate n<0", lambda F: ["simulate", "ecal20", "-n", "-3", "-o", _out(F)], "n=-3"),
    ("simulate n text", lambda F: ["simulate", "ecal20", "-n", "abc", "-o", _out(F)], "'abc'"),
    ("simulate geometry", lambda F: ["simulate", "zn45", "-n", "5", "-o", _out(F)], "'zn45'"),
    ("simulate energy range", lambda F: ["simulate", "ecal20", "-n", "5", "-o", _out(F),
                                         "--energy-range", "10", "1"], "(10.0, 1.0)"),
    ("simulate particle", lambda F: ["simulate", "zn44", "-n", "5", "-o", _out(F),
                                     "--particles", "muon"], "muon"),
    ("simulate workers", lambda F: ["simulate", "zn44", "-n", "5", "-o", _out(F),
                                    "--workers", "0"], "workers=0"),
    ("simulate impact", lambda F: ["simulate", "zn44", "-n", "5", "-o", _out(F),
                                   "--impact-halfwidth-mm", "500"], "impact_halfwidth_mm=500"),
    ("simulate response", lambda F: ["simulate", "ecal20", "-n", "5", "-o", _out(F),
                                     "--response", "photons"], "response='photons'"),
    ("simulate layers", lambda F: ["simulate", "ecal20", "-n", "5", "-o", _out(F),
                                   "--n-layers", "0"], "n_layers=0"),
    ("simulate exists", lambda F: ["simulate", "ecal20", "-n", "5", "-o", F["ecal"]], "ecal.h5"),
    # info
    ("info missing", lambda F: ["info", _out(F, "nothing.h5")], "nothing.h5"),
    ("info empty", lambda F: ["info", F["empty"]], "empty (0 bytes)"),
    ("info format", lambda F: ["info", F["ecal"], "--format", "hdf6"], "format='hdf6'"),
    ("info grid", lambda F: ["info", F["ecal"], "--grid-shape", "7", "7"], "grid_shape=[7, 7]"),
    # convert
    ("convert format", lambda F: ["convert", F["ecal"], _out(F, "c.h5"), "--format", "xyz"],
     "--format=xyz"),
    ("convert exists", lambda F: ["convert", F["ecal"], F["zn"]], "zn.h5"),
    ("convert alice", lambda F: ["convert", F["ecal"], _out(F, "x_responses.npz")],
     "1 condition columns"),
    ("convert geometry", lambda F: ["convert", F["ecal"], _out(F, "g.h5"), "--geometry", "zn44"],
     "showers.shape=(12, 20, 20, 1)"),
    ("convert input missing", lambda F: ["convert", _out(F, "nope.h5"), _out(F, "n.h5")],
     "nope.h5"),
    # generate
    ("generate no run", lambda F: ["generate", F["root"], "-n", "2", "-o", _out(F)],
     "Not a run directory"),
    ("generate bad JSON", lambda F: ["generate", _variant(F, "badjson", "{family: gan"), "-n",
                                     "2", "-o", _out(F)], "not valid JSON"),
    ("generate future format", lambda F: ["generate", _variant(
        F, "future", lambda i: i.update(format_version=FORMAT_VERSIONS["run"] + 1)),
        "-n", "2", "-o", _out(F)], f"format_version={FORMAT_VERSIONS['run'] + 1}"),
    ("generate future major", lambda F: ["generate", _variant(
        F, "major", lambda i: i.update(calozdc_version="9.0.0")), "-n", "2", "-o", _out(F)],
     "calozdc_version='9.0.0'"),
    ("generate unknown family", lambda F: ["generate", _variant(
        F, "nice", lambda i: i.update(family="nice")), "-n", "2", "-o", _out(F),
        "--conditions", F["ecal"]], "family='nice'"),
    ("generate other family", lambda F: ["generate", _variant(
        F, "other", lambda i: i.update(family="ddim")), "-o", _out(F),
        "--conditions", F["ecal"]], "family='ddim'"),
    ("generate n=0", lambda F: ["generate", F["run"], "-n", "0", "-o", _out(F),
                                "--conditions", F["ecal"]], "n=0"),
    ("generate batch 0", lambda F: ["generate", F["run"], "-o", _out(F), "--conditions",
                                    F["ecal"], "--batch-size", "0"], "Received: 0"),
    ("generate columns", lambda F: ["generate", F["run"], "-o", _out(F), "--conditions", F["zn"]],
     "9 columns"),
    ("generate no geometry", lambda F: ["generate", F["run"], "-n", "2", "-o", _out(F)],
     "--conditions"),
    ("generate exists", lambda F: ["generate", F["run"], "-o", F["zn"], "--conditions", F["ecal"]],
     "zn.h5"),
    ("generate conditions empty", lambda F: ["generate", F["run"], "-o", _out(F),
                                             "--conditions", F["empty"]], "empty (0 bytes)"),
    # evaluate
    ("evaluate no data", lambda F: ["evaluate", F["ecal"], "-o", _out(F, "ev")], "--data"),
    ("evaluate max samples", lambda F: ["evaluate", F["ecal"], "--data", F["ecal"], "-o",
                                        _out(F, "ev"), "--max-samples", "1"], "Received: 1"),
    ("evaluate data missing", lambda F: ["evaluate", F["ecal"], "--data", _out(F, "real.h5"),
                                         "-o", _out(F, "ev")], "real.h5"),
    ("evaluate future run", lambda F: ["evaluate", _variant(
        F, "future", lambda i: i.update(format_version=FORMAT_VERSIONS["run"] + 1)),
        "--data", F["ecal"], "-o", _out(F, "ev")], f"format_version={FORMAT_VERSIONS['run'] + 1}"),
    ("evaluate other family", lambda F: ["evaluate", _variant(
        F, "other", lambda i: i.update(family="ddim")), "--data", F["ecal"], "-o",
        _out(F, "ev"), "--split", "all"], "family='ddim'"),
    ("evaluate shapes", lambda F: ["evaluate", F["zn"], "--data", F["ecal"], "-o", _out(F, "ev")],
     "(3, 44, 44"),
    ("evaluate old run no data", lambda F: ["evaluate", F["run"], "-o", _out(F, "ev")],
     "give the real showers with --data FILE. Received: run_dir="),
    ("evaluate split seed no data", lambda F: ["evaluate", F["run"], "-o", _out(F, "ev"),
                                               "--split-seed", "4"], "--split-seed=4"),
    # tune
    ("tune trials", lambda F: ["tune", "gan", "--data", F["ecal"], "--max-trials", "0"],
     "max_trials=0"),
    ("tune val split", lambda F: ["tune", "gan", "--data", F["ecal"], "--val-split", "0.9"],
     "0.9"),
    ("tune epochs", lambda F: ["tune", "gan", "--data", F["ecal"], "--epochs", "-1"],
     "epochs=-1"),
    ("tune data", lambda F: ["tune", "gan", "--data", _out(F, "none.h5")], "none.h5"),
    ("tune family", lambda F: ["tune", "nice", "--data", F["ecal"]], "'nice'"),
]


@pytest.mark.parametrize("argv, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cli_input_exits_2_naming_the_value(files, capsys, argv, text):
    code, err = _cli(argv(files), capsys)
    assert code == 2, err
    assert text in err, err
    assert "Traceback" not in err
    assert not os.path.exists(_out(files)), "no output may be written"


def test_debug_shows_the_traceback(files, capsys):
    argv = ["simulate", "ecal20", "-n", "0", "-o", _out(files)]
    with pytest.raises(ValueError, match="n=0"):
        cli_main.main(["--debug", *argv])
    assert _cli(argv, capsys)[0] == 2
