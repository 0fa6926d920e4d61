"""``calozdc evaluate``: generated file or run directory vs real data -> metrics.json + PNG."""

import json
import os

import keras
import numpy as np
import pytest

from calozdc import metrics as M
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
    # the three largest per-feature FPD terms, named, in the order metrics.json ranks them
    line = next(x for x in printed.splitlines() if x.startswith("largest FPD terms"))
    for name, _, _ in M.largest_feature_terms(results, k=3):
        assert f" {name} " in line
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


# -- RUN_DIR without --data: the run's own test split ---------------------------------------
@pytest.fixture
def tiny_runs(monkeypatch):
    """``calozdc train`` builds the tiny models of ``_tiny_models`` (eager off JAX: seconds)."""
    from _tiny_models import TINY_OPTIONS

    from calozdc.cli import train as train_cli
    from calozdc.models import registry

    original = registry.build_model
    eager = keras.backend.backend() != "jax"

    def build(family, geometry, condition_dim, **options):
        model = original(family, geometry, condition_dim, **{**TINY_OPTIONS[family], **options})
        model.compile(g_optimizer=model.g_optimizer, d_optimizer=model.d_optimizer,
                      run_eagerly=eager)
        return model

    monkeypatch.setattr(registry, "build_model", build)
    if "train" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "train"))
    return train_cli


def _evaluate_info(out):
    return json.load(open(os.path.join(out, "metrics.json")))["info"]


def test_run_dir_without_data_evaluates_its_own_test_split(cli, tiny_runs, tmp_path, capsys):
    from calozdc.cli.run_dir import run_data_split
    from calozdc.data import load, simulate

    data = str(tmp_path / "ecal.h5")
    save(simulate("ecal20", 40, seed=1), data)
    run = str(tmp_path / "run")
    assert cli(["train", "gan", "--data", data, "--epochs", "1", "--batch-size", "32",
                "--val-split", "0.15", "--run-dir", run, "-q"]) == 0
    split = json.load(open(os.path.join(run, "run.json")))["split"]
    assert split["sizes"] == [26, 6, 8]

    out = str(tmp_path / "eval")
    assert cli(["evaluate", run, "-o", out, "-q"]) == 0
    info = _evaluate_info(out)
    assert info["n_real"] == info["n_generated"] == split["sizes"][2]
    assert info["real_file"] == os.path.abspath(data) and info["real_split"] == "test"
    # exactly the showers the run held out
    test, source = run_data_split(run)
    expected = load(data).split(tuple(split["fractions"]), seed=split["seed"])[2]
    np.testing.assert_array_equal(test.conditions, expected.conditions)
    np.testing.assert_array_equal(test.showers, expected.showers)
    assert source == os.path.abspath(data)
    # --split all: every shower of the run's data
    assert len(run_data_split(run, part="all")[0]) == 40
    capsys.readouterr()

    # --split-seed belongs to --data
    assert cli(["evaluate", run, "-o", str(tmp_path / "e2"), "--split-seed", "3"]) == 2
    assert "--split-seed=3" in capsys.readouterr().err
    # the data file changed or is gone: one error naming --data
    save(simulate("ecal20", 30, seed=2), data, overwrite=True)
    assert cli(["evaluate", run, "-o", str(tmp_path / "e3")]) == 2
    err = capsys.readouterr().err
    assert "holds 30 showers, but the run split 40" in err and "--data" in err
    os.remove(data)
    assert cli(["evaluate", run, "-o", str(tmp_path / "e3")]) == 2
    err = capsys.readouterr().err
    assert "is gone" in err and "--data" in err and "Traceback" not in err
    # a run directory of an older calozdc (no data/split in run.json)
    with open(os.path.join(run, "run.json")) as f:
        old = json.load(f)
    for key in ("split", "options"):
        old.pop(key)
    with open(os.path.join(run, "run.json"), "w") as f:
        json.dump(old, f)
    assert cli(["evaluate", run, "-o", str(tmp_path / "e3")]) == 2
    err = capsys.readouterr().err
    assert "does not record the data and split" in err and "--data" in err
    assert not os.path.exists(tmp_path / "e3")


def test_run_dir_without_data_on_builtin_showers(cli, tiny_runs, tmp_path, monkeypatch, capsys):
    from calozdc.cli.run_dir import run_data_split
    from calozdc.data import simulate

    monkeypatch.setenv("CALOZDC_CACHE", str(tmp_path / "cache"))
    run = str(tmp_path / "run")
    assert cli(["train", "gan", "--builtin-showers", "20", "--epochs", "1", "--batch-size", "32",
                "--run-dir", run, "-q"]) == 0
    run_info = json.load(open(os.path.join(run, "run.json")))
    assert run_info["data"].startswith("builtin:")
    expected = simulate("zn44", 20, seed=0).split(tuple(run_info["split"]["fractions"]),
                                                 seed=run_info["split"]["seed"])[2]
    test, source = run_data_split(run)  # from the cache file the run trained on
    assert source == run_info["data"] and len(test) == run_info["split"]["sizes"][2] == 4
    assert test.geometry.name == "zn44"
    np.testing.assert_array_equal(test.showers, expected.showers)
    # the cache is gone: the same built-in showers are simulated again
    os.remove(run_info["data"][len("builtin:"):])
    test, _ = run_data_split(run)
    np.testing.assert_array_equal(test.showers, expected.showers)
    # ... unless another calozdc version made them
    run_info["data"] = run_info["data"].replace("-v", "-v0.0.0-was-")
    with open(os.path.join(run, "run.json"), "w") as f:
        json.dump(run_info, f)
    assert cli(["evaluate", run, "-o", str(tmp_path / "e2")]) == 2
    err = capsys.readouterr().err
    assert "built-in showers" in err and "--data" in err
