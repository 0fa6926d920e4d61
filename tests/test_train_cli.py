import json
import os

import numpy as np
import pytest

from calozdc.cli import main as cli_main


@pytest.fixture
def cli(monkeypatch):
    modules = tuple(cli_main.COMMAND_MODULES)
    for name in ("train", "generate"):
        if name not in modules:
            modules += (name,)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", modules)
    return cli_main.main


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    from calozdc.data import save, simulate

    path = str(tmp_path_factory.mktemp("data") / "ecal.h5")
    save(simulate("ecal20", 40, seed=1), path)
    return path


@pytest.mark.large
def test_train_then_generate(cli, data_file, tmp_path, capsys):
    import keras

    run_dir = str(tmp_path / "run")
    argv = ["train", "gan", "--data", data_file, "--epochs", "2", "--batch-size", "8",
            "--run-dir", run_dir, "--seed", "3", "-q"]
    assert cli(argv) == 0
    assert sorted(os.listdir(run_dir)) == ["history.json", "model.keras", "run.json"]
    info = json.load(open(os.path.join(run_dir, "run.json")))
    assert info["family"] == "gan" and info["geometry"] == "ecal20"
    assert info["split"]["sizes"] == [28, 4, 8] and info["split"]["seed"] == 0
    assert info["args"]["epochs"] == 2 and info["condition_dim"] == 1
    history = json.load(open(os.path.join(run_dir, "history.json")))
    assert len(history["g_loss"]) == 2 and all(np.isfinite(history["g_loss"]))
    assert all(np.isfinite(history["d_loss"])) and min(history["d_loss"]) > 0
    assert "val_g_loss" in history
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    assert model.shower_transform is not None and model.condition_transform is not None

    # refuses an existing run directory without --overwrite
    assert cli(argv) == 2
    assert "exists" in capsys.readouterr().err

    from calozdc.data import load

    out = str(tmp_path / "gen.h5")
    assert cli(["generate", run_dir, "-n", "5", "-o", out, "--seed", "1",
                "--energy-range", "1000", "2000"]) == 0
    gen = load(out)
    assert len(gen) == 5 and gen.showers.shape[1:3] == (20, 20)
    assert np.all(np.asarray(gen.showers) >= 0)
    assert np.all((gen.conditions[:, 0] >= 1000) & (gen.conditions[:, 0] <= 2000))
    assert cli(["generate", run_dir, "-n", "5", "-o", out]) == 2  # exists
    out2 = str(tmp_path / "gen2.h5")
    assert cli(["generate", run_dir, "-o", out2, "--conditions", data_file]) == 0
    gen2 = load(out2)
    real = load(data_file)
    np.testing.assert_allclose(gen2.conditions, real.conditions, rtol=1e-6)


def test_train_rejects_bad_arguments(cli, data_file, tmp_path, capsys):
    base = ["train", "gan", "--data", data_file, "--run-dir", str(tmp_path / "r")]
    assert cli(base + ["--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert cli(base + ["--val-split", "0.9"]) == 2
    assert "--val-split" in capsys.readouterr().err
    assert cli(["train", "gan", "--data", str(tmp_path / "missing.h5")]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli(["generate", str(tmp_path), "-n", "2", "-o", str(tmp_path / "x.h5")]) == 2
    assert "run directory" in capsys.readouterr().err
