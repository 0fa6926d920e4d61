"""``calozdc evaluate``: generated file or run directory vs real data -> metrics.json + PNG."""

import json
import os

import keras
import numpy as np
import pytest

from calozdc.cli import evaluate as evaluate_cli
from calozdc.cli import main as cli_main
from calozdc.data import ShowerDataset, save


@pytest.fixture
def cli(monkeypatch):
    """``calozdc`` with the evaluate sub-command registered (until main wires it)."""
    if "evaluate" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "evaluate"))
    return cli_main.main


def _toy(n, seed, conditions=None, scale=1.0):
    rng = np.random.default_rng(seed)
    if conditions is None:
        conditions = rng.uniform(1e4, 2e4, (n, 1)).astype(np.float32)
    lam = np.full((n, 20, 20), 1e-4) * conditions[:, :1, None] * scale
    lam[:, 8:12, 8:12] *= 20
    return rng.poisson(lam).astype(np.float32), conditions


def _npz(path, showers, conditions):
    np.savez(path, showers=showers, conditions=conditions)
    return str(path)


def test_generated_vs_real_npz(cli, tmp_path, capsys):
    showers, cond = _toy(300, 0)
    gen, _ = _toy(300, 1, cond)
    real_f = _npz(tmp_path / "real.npz", showers, cond)
    gen_f = _npz(tmp_path / "gen.npz", gen, cond)
    out = tmp_path / "out"
    assert cli(["evaluate", gen_f, "--data", real_f, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "floor" in printed and "w1_channels_mean" in printed
    results = json.load(open(out / "metrics.json"))
    assert results["info"]["geometry"] == "ecal20" and results["info"]["paired"]
    for m in results["metrics"].values():
        assert m["floor"] is not None and "ratio" in m
    assert os.path.getsize(out / "report.png") > 10_000
    # existing outputs are kept unless --overwrite
    before = open(out / "metrics.json").read()
    assert cli(["evaluate", "--generated", gen_f, "--real", real_f, "-o", str(out)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert open(out / "metrics.json").read() == before
    assert cli(["evaluate", "--generated", gen_f, "--real", real_f, "-o", str(out),
                "--overwrite", "--seed", "3", "--max-samples", "200"]) == 0
    again = json.load(open(out / "metrics.json"))
    assert again["info"]["n_real"] == 200 and again["info"]["seed"] == 3


def test_hdf5_inputs_and_reference(cli, tmp_path):
    showers, cond = _toy(200, 0)
    gen, _ = _toy(200, 1, cond, scale=1.3)
    ref, _ = _toy(200, 2, cond)
    paths = {}
    for name, x in (("real", showers), ("gen", gen), ("ref", ref)):
        paths[name] = str(tmp_path / f"{name}.h5")
        save(ShowerDataset(x, cond, geometry="ecal20"), paths[name])
    out = tmp_path / "out"
    assert cli(["evaluate", paths["gen"], "--data", paths["real"], "--reference", paths["ref"],
                "-o", str(out)]) == 0
    results = json.load(open(out / "metrics.json"))
    assert results["info"]["floor_method"] == "reference"
    assert results["metrics"]["w1_channels_mean"]["ratio"] > 3


def test_user_errors_exit_2(cli, tmp_path, capsys):
    showers, cond = _toy(20, 0)
    real_f = _npz(tmp_path / "real.npz", showers, cond)
    assert cli(["evaluate", real_f, "-o", str(tmp_path / "o")]) == 2
    assert "--data" in capsys.readouterr().err
    assert cli(["evaluate", str(tmp_path / "missing.npz"), "--data", real_f,
                "-o", str(tmp_path / "o")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert cli(["evaluate", str(tmp_path), "--data", real_f, "-o", str(tmp_path / "o")]) == 2
    assert "model.keras" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o" / "metrics.json")


def test_help_explains_every_number(cli, capsys):
    with pytest.raises(SystemExit):
        cli(["evaluate", "--help"])
    text = capsys.readouterr().out
    for word in ("floor", "ratio", "w1_channels_mean", "fpd", "kpd", "chi2", "RUN_DIR"):
        assert word in text or word.lower() in text.lower(), word


@keras.saving.register_keras_serializable(package="calozdc_test")
class _ConstantShowerModel(keras.Model):
    """Minimal model with the calozdc ``generate`` interface (deterministic test stand-in)."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.dense = keras.layers.Dense(400, kernel_initializer="zeros", bias_initializer="ones")

    def call(self, conditions):
        return self.dense(conditions)

    def generate(self, conditions, seed=None):
        e = keras.ops.convert_to_tensor(np.asarray(conditions, "float32")[:, :1])
        base = keras.ops.reshape(self(e * 0.0), (-1, 20, 20, 1))  # ones
        return base * keras.ops.reshape(e, (-1, 1, 1, 1)) * (self.scale / 400.0)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def test_run_dir_generates_for_the_test_split(cli, tmp_path):
    showers, cond = _toy(200, 0)
    data = str(tmp_path / "real.h5")
    save(ShowerDataset(showers, cond, geometry="ecal20"), data)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = _ConstantShowerModel(scale=0.05)
    model(np.zeros((1, 1), "float32"))
    model.save(run_dir / evaluate_cli.MODEL_FILE)
    out = tmp_path / "out"
    assert cli(["evaluate", str(run_dir), "--data", data, "-o", str(out)]) == 0
    results = json.load(open(out / "metrics.json"))
    assert results["info"]["n_real"] == results["info"]["n_generated"] == 40  # 20 % of 200
    assert results["metrics"]["w1_channels_mean"]["ratio"] > 1.0
    direct = evaluate_cli.generate_from_run(str(run_dir), cond[:3], batch_size=2)
    np.testing.assert_allclose(direct.sum(axis=(1, 2, 3)), cond[:3, 0] * 0.05, rtol=1e-5)
