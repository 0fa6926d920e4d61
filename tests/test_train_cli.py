import json
import os

import keras
import numpy as np
import pytest

from calozdc.cli import main as cli_main
from calozdc.cli import train as train_cli


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


# Small networks, run eagerly on TensorFlow and torch (no tracing for 2-4 steps per fit), so
# that the tests stay fast; the CLI passes its options through. Not on JAX: eager JAX compiles
# every primitive for every new shape (~1,100 XLA compilations, 190 s, in the logdir test), one
# jit of the whole step is far cheaper. (Exact resume under tf.function and jax.jit was checked
# too: same assertions with run_eagerly=False pass on all backends.)
EAGER = keras.backend.backend() != "jax"
SMALL = {
    "gan": {"latent_dim": 4, "hidden_dim": 4},
    "ddim": {"widths": (8, 16), "blocks_per_level": 1, "embedding_dim": 16, "attention": False,
             "num_timesteps": 50, "dropout": 0.1},
}


@pytest.fixture
def small_models(monkeypatch):
    from calozdc.models import registry

    original = registry.build_model

    def build(family, geometry, condition_dim, **options):
        model = original(family, geometry, condition_dim, **{**SMALL.get(family, {}), **options})
        if family == "gan":  # same optimizers, not stepped yet; saved models reload eager too
            model.compile(g_optimizer=model.g_optimizer, d_optimizer=model.d_optimizer,
                          run_eagerly=EAGER)
        else:
            model.compile(optimizer=model.optimizer, run_eagerly=EAGER)
        return model

    monkeypatch.setattr(registry, "build_model", build)


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C would) at a batch of an epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


@pytest.fixture
def poisoned_batch(monkeypatch):
    """Training batch 1 of epoch 1 (0-based) holds a NaN shower (a deterministic NaN)."""
    make = train_cli._batches_class

    def batches_class():
        base = make()

        class Poisoned(base):
            def __getitem__(self, index):
                batch = super().__getitem__(index)
                if self.shuffle and self.epoch == 1 and index == 1:
                    batch[0][0][0, 0, 0, 0] = np.nan
                return batch

        return Poisoned

    monkeypatch.setattr(train_cli, "_batches_class", batches_class)


def _weights(path):
    model = keras.saving.load_model(path)
    values = [keras.ops.convert_to_numpy(v.value) for v in model.weights]
    optimizer = [keras.ops.convert_to_numpy(v.value) for v in model.optimizer.variables]
    return model, values, optimizer


@pytest.mark.large
def test_train_then_generate(cli, data_file, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    argv = ["train", "gan", "--data", data_file, "--epochs", "2", "--batch-size", "8",
            "--run-dir", run_dir, "--seed", "3", "-q"]
    assert cli(argv) == 0
    assert sorted(os.listdir(run_dir)) == ["checkpoint", "history.json", "model.keras",
                                           "run.json"]
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoint"))) == [
        "checkpoint.json", "model-epoch00002.keras"]
    info = json.load(open(os.path.join(run_dir, "run.json")))
    assert info["family"] == "gan" and info["geometry"] == "ecal20"
    assert info["status"] == "finished" and info["epochs_completed"] == 2
    assert info["split"]["sizes"] == [28, 4, 8] and info["split"]["seed"] == 0
    assert info["args"]["epochs"] == 2 and info["condition_dim"] == 1
    assert info["dtype_policy"] == "float32"
    history = json.load(open(os.path.join(run_dir, "history.json")))
    assert len(history["g_loss"]) == 2 and all(np.isfinite(history["g_loss"]))
    assert all(np.isfinite(history["d_loss"])) and min(history["d_loss"]) > 0
    assert "val_g_loss" in history
    # learning rates from the schedules at each optimizer's step, without --logdir too
    assert len(history["g_lr"]) == 2 and all(0 < lr < 1e-3 for lr in history["g_lr"] + history["d_lr"])
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


@pytest.mark.parametrize("family", ["gan", "ddim"])
def test_resume_reproduces_uninterrupted_run(cli, data_file, tmp_path, small_models, family,
                                             monkeypatch, capsys):
    # 28 training showers in 2 batches of 14 per epoch; 4 validation showers.
    common = ["--data", data_file, "--batch-size", "14", "--seed", "5", "-q"]
    full = str(tmp_path / "full")
    assert cli(["train", family, "--epochs", "2", "--run-dir", full] + common) == 0

    # Ctrl-C after the first batch of the second epoch: the checkpoint of epoch 1 survives.
    part = str(tmp_path / "part")
    monkeypatch.setattr(train_cli, "extra_callbacks", [lambda: _Interrupt(1, 0)])
    assert cli(["train", family, "--epochs", "2", "--run-dir", part] + common) == 130
    assert "interrupted" in capsys.readouterr().err
    info = json.load(open(os.path.join(part, "run.json")))
    assert info["status"] == "interrupted" and info["checkpoint_epoch"] == 1
    assert not os.path.exists(os.path.join(part, "model.keras"))
    ckpt = json.load(open(os.path.join(part, "checkpoint", "checkpoint.json")))
    assert ckpt["epoch"] == 1 and ckpt["metadata"]["seed"] == 5
    assert len(ckpt["history"]["val_loss" if family == "ddim" else "val_g_loss"]) == 1

    monkeypatch.setattr(train_cli, "extra_callbacks", [])
    assert cli(["train", "--resume", part, "-q"]) == 0
    info = json.load(open(os.path.join(part, "run.json")))
    assert info["status"] == "finished" and info["resumed"][0]["epoch"] == 1

    model_a, weights_a, opt_a = _weights(os.path.join(full, "model.keras"))
    model_b, weights_b, opt_b = _weights(os.path.join(part, "model.keras"))
    assert len(weights_a) == len(weights_b) and len(opt_a) == len(opt_b)
    for a, b in zip(weights_a + opt_a, weights_b + opt_b):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    if family == "ddim":  # the EMA copy is part of the compared weights, and it moved
        ema = [keras.ops.convert_to_numpy(v.value) for v in model_b.ema_denoiser.weights]
        raw = [keras.ops.convert_to_numpy(v.value) for v in model_b.denoiser.weights]
        assert any(not np.allclose(e, r) for e, r in zip(ema, raw))
        assert float(keras.ops.convert_to_numpy(model_b.ema_updates.value)) == 4.0
    hist_a = json.load(open(os.path.join(full, "history.json")))
    hist_b = json.load(open(os.path.join(part, "history.json")))
    assert sorted(hist_a) == sorted(hist_b)
    for key in hist_a:
        np.testing.assert_allclose(hist_a[key], hist_b[key], rtol=1e-5, atol=1e-6)

    # a finished run resumes only with more epochs
    assert cli(["train", "--resume", part, "-q"]) == 2
    assert "--epochs > 2" in capsys.readouterr().err
    if family == "gan":  # and then trains on
        assert cli(["train", family, "--resume", part, "--epochs", "3", "-q"]) == 0
        hist_c = json.load(open(os.path.join(part, "history.json")))
        assert all(len(v) == 3 for v in hist_c.values())
        ckpt = json.load(open(os.path.join(part, "checkpoint", "checkpoint.json")))
        assert ckpt["epoch"] == 3


def test_non_finite_loss_stops_and_keeps_checkpoint(cli, data_file, tmp_path, small_models,
                                                    poisoned_batch, capsys):
    run_dir = str(tmp_path / "nan")
    argv = ["train", "gan", "--data", data_file, "--epochs", "3", "--batch-size", "14",
            "--val-split", "0", "--run-dir", run_dir, "-q"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "epoch 2, batch 2" in err and "d_loss" in err
    assert "epoch 1" in err and "checkpoint" in err
    info = json.load(open(os.path.join(run_dir, "run.json")))
    assert info["status"] == "failed" and info["checkpoint_epoch"] == 1
    assert info["non_finite"]["epoch"] == 1 and info["non_finite"]["step"] == 1
    assert "d_loss" in info["non_finite"]["terms"]
    ckpt_dir = os.path.join(run_dir, "checkpoint")
    ckpt = json.load(open(os.path.join(ckpt_dir, "checkpoint.json")))
    assert ckpt["epoch"] == 1 and sorted(os.listdir(ckpt_dir)) == ["checkpoint.json",
                                                                   "model-epoch00001.keras"]
    model = keras.saving.load_model(os.path.join(ckpt_dir, ckpt["model"]))
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(v.value))) for v in model.weights)
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))


def test_logdir_mixed_precision_and_builtin_data(cli, tmp_path, small_models, monkeypatch):
    monkeypatch.setenv("CALOZDC_CACHE", str(tmp_path / "cache"))
    run_dir = str(tmp_path / "run")
    logdir = str(tmp_path / "logs")
    assert cli(["train", "gan", "--builtin-showers", "30", "--epochs", "2", "--batch-size", "16",
                "--run-dir", run_dir, "--logdir", logdir, "--metrics-every", "1",
                "--mixed-precision", "bfloat16", "--distribution", "none", "-q"]) == 0
    from calozdc.data import builtin_dataset, simulate
    from calozdc.data.builtin import builtin_path

    cached = builtin_path(30, cache_dir=str(tmp_path / "cache"))
    assert os.path.isfile(cached) and "zn44" in cached and "n30" in cached
    ds = builtin_dataset(30, cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(np.asarray(ds.showers), simulate("zn44", 30, seed=0).showers)
    info = json.load(open(os.path.join(run_dir, "run.json")))
    assert info["geometry"] == "zn44" and info["data"].startswith("builtin:")
    assert info["dtype_policy"] == "mixed_bfloat16"
    assert info["options"]["mixed_precision"] == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    history = json.load(open(os.path.join(run_dir, "history.json")))
    for key in ("g_lr", "d_lr", "val_channel_w1", "val_total_energy_w1"):
        assert len(history[key]) == 2 and all(np.isfinite(history[key])), key
    events = [f for root, _, files in os.walk(logdir) for f in files if "tfevents" in f]
    assert len(events) >= 2  # Keras' TensorBoard (train/validation) + calozdc's writers
    from calozdc.callbacks import load_checkpoint

    model, ckpt = load_checkpoint(os.path.join(run_dir, "checkpoint"))
    assert ckpt["epoch"] == 2 and model.dtype_policy.name == "mixed_bfloat16"


def test_builtin_dataset_arguments(tmp_path, monkeypatch):
    from calozdc.data import builtin

    monkeypatch.setenv("CALOZDC_CACHE", str(tmp_path / "c1"))
    assert builtin.cache_directory() == str(tmp_path / "c1")
    monkeypatch.delenv("CALOZDC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert builtin.cache_directory() == str(tmp_path / "xdg" / "calozdc")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert builtin.cache_directory() == str(tmp_path / "home" / ".cache" / "calozdc")
    path = builtin.builtin_path(100, seed=2, cache_dir="/c")
    assert os.path.basename(path).startswith("builtin-zn44-n100-seed2-v")
    # a recalibrated simulator (another hash of its calibration files) gets its own cache file
    tag = builtin._calibration_tag()
    assert path.endswith(f"-{tag}.h5") and len(tag) == 8 and int(tag, 16) >= 0
    for bad in ({"n": 0}, {"n": 2.5}, {"seed": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            builtin.builtin_path(**bad)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="file"):
        builtin.builtin_dataset(10, cache_dir=str(tmp_path / "file"))


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
    assert cli(base + ["--checkpoint-every", "0"]) == 2
    assert "--checkpoint-every" in capsys.readouterr().err
    assert cli(base + ["--metrics-every", "-1"]) == 2
    assert "--metrics-every" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert cli(base + ["--logdir", str(tmp_path / "afile")]) == 2
    assert "--logdir" in capsys.readouterr().err
    assert cli(base + ["--builtin-showers", "100"]) == 2
    assert "--builtin-showers" in capsys.readouterr().err
    assert cli(["train", "--data", data_file]) == 2
    assert "family" in capsys.readouterr().err
    # --overwrite never deletes a directory that is not a run directory
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert cli(["train", "gan", "--data", data_file, "--run-dir", str(other), "--overwrite"]) == 2
    assert "run.json" in capsys.readouterr().err and (other / "notes.txt").exists()
    # --resume errors
    assert cli(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert cli(["train", "--resume", str(other)]) == 2
    assert "run.json" in capsys.readouterr().err
    run_dir = tmp_path / "ddim_run"
    (run_dir / "checkpoint").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"family": "ddim", "status": "running",
                                                  "options": {}}))
    assert cli(["train", "gan", "--resume", str(run_dir)]) == 2
    assert "'ddim' family" in capsys.readouterr().err
    assert cli(["train", "--resume", str(run_dir)]) == 2
    assert "No checkpoint" in capsys.readouterr().err
    assert cli(["train", "--resume", str(run_dir), "--seed", "3"]) == 2
    assert "--seed cannot change" in capsys.readouterr().err


def test_global_rng_state_round_trip():
    from calozdc.backend.rng_state import global_rng_state, set_global_rng_state

    state = json.loads(json.dumps(global_rng_state()))
    if keras.backend.backend() != "torch":
        assert state == {}  # stateless Keras random ops: the seed generators hold the state
        set_global_rng_state(state)
        return
    def unseeded_dropout():  # torch's fast path draws from torch's global generator
        return keras.ops.convert_to_numpy(keras.random.dropout(keras.ops.ones((64,)), 0.5))

    first = unseeded_dropout()
    assert 0 < np.count_nonzero(first) < 64
    set_global_rng_state(state)
    np.testing.assert_array_equal(unseeded_dropout(), first)
    with pytest.raises(ValueError, match="dict"):
        set_global_rng_state("nope")
