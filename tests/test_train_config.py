"""``calozdc train FAMILY --preset/--config/--set``: resolution order, presets, the run.json
round trip (same weights), generation settings, and one clear error per bad option."""

import functools
import json
import os

import keras
import numpy as np
import pytest
from _tiny_models import IMAGE_SHAPE, TINY_OPTIONS, tiny_data

from calozdc.cli import main as cli_main
from calozdc.cli import train_config
from calozdc.cli.run_dir import FAMILY_CLASSES
from calozdc.names import available_families
from calozdc.presets import PRESETS, describe, family_presets, preset_names

# Built eagerly on TensorFlow and torch (no tracing for the few steps of a 1-epoch fit).
EAGER = keras.backend.backend() != "jax"
TINY_SET = {"gan": ["--set", "latent_dim=4", "--set", "hidden_dim=4"],
            "flow": ["--set", "widths=[8,16]", "--set", "blocks_per_level=1",
                     "--set", "embedding_dim=8", "--set", "total_width=8",
                     "--set", "total_blocks=1"]}


@pytest.fixture
def cli(monkeypatch):
    modules = tuple(cli_main.COMMAND_MODULES)
    for name in ("train", "presets", "generate"):
        if name not in modules:
            modules += (name,)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", modules)
    return cli_main.main


@pytest.fixture
def eager_models(monkeypatch):
    """The registry's models, compiled to run eagerly on TensorFlow and torch."""
    from calozdc.models import registry

    original = registry.build_model

    def build(family, geometry, condition_dim, **options):
        model = original(family, geometry, condition_dim, **options)
        if hasattr(model, "g_optimizer"):
            model.compile(g_optimizer=model.g_optimizer, d_optimizer=model.d_optimizer,
                          run_eagerly=EAGER)
        else:
            model.compile(optimizer=model.optimizer, run_eagerly=EAGER)
        return model

    monkeypatch.setattr(registry, "build_model", build)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    from calozdc.data import save, simulate

    path = str(tmp_path_factory.mktemp("data") / "ecal.h5")
    save(simulate("ecal20", 40, seed=1), path)
    return path


def _weights(path):
    model = keras.saving.load_model(path)
    return [keras.ops.convert_to_numpy(v.value) for v in model.weights], model


def test_set_values_parse_as_json_else_strings():
    pairs = train_config.parse_set(["a=1", "b=[2, 1]", "c=euler", 'd="3"', "e=true", "f=null",
                                    "g=x=y", "h=1e-4", 'i={"k": 1}'])
    assert pairs == [("a", 1), ("b", [2, 1]), ("c", "euler"), ("d", "3"), ("e", True),
                     ("f", None), ("g", "x=y"), ("h", 1e-4), ("i", {"k": 1})]


def test_resolution_order_preset_config_flags_set():
    config = {"family": "gan", "preset": "seed001",
              "model": {"real_label": 0.8, "fake_label": 0.2}, "latent_dim": 8,
              "train": {"epochs": 3, "batch_size": 16}}
    sets = train_config.parse_set(["real_label=0.9", "dropout=0", "output_activation=softplus",
                                   "training_ratio=[2, 1]", "model.hidden_dim=4"])
    got = train_config.resolve(None, "seed000", config, flags={"epochs": 4}, sets=sets)
    model, train = got["model"], got["train"]
    assert got["family"] == "gan" and got["preset"] == "seed000"  # --preset beats the file's
    assert model["heads"] == "single" and model["g_max_lr"] == 1e-4  # seed000, not seed001
    assert model["real_label"] == 0.9 and model["fake_label"] == 0.2 and model["latent_dim"] == 8
    assert model["dropout"] == 0.0 and isinstance(model["dropout"], float)
    assert model["training_ratio"] == [2, 1] and model["hidden_dim"] == 4
    assert model["output_activation"] == "softplus"
    assert train["epochs"] == 4 and train["batch_size"] == 16 and train["seed"] == 0
    assert got["transforms"]["shower_transform"]["class_name"] == "Chain"
    # only the options that differ from the builder's defaults are passed to it
    assert train_config.builder_options(got)["training_ratio"] == (2, 1)
    assert "gradient_penalty_weight" not in train_config.builder_options(got)
    # --data over a config with built-in showers (and the reverse) replaces the source
    over = train_config.resolve("gan", config={"train": {"builtin_showers": 50}},
                                flags={"data": "x.h5"})
    assert over["train"]["data"] == "x.h5" and over["train"]["builtin_showers"] is None


@pytest.mark.parametrize("family", sorted(set(TINY_OPTIONS) & set(available_families())))
def test_every_preset_builds_at_tiny_size(family):
    x, c = tiny_data()
    built = {}
    for name in preset_names(family):
        sets = list(TINY_OPTIONS[family].items()) + [("epochs", 2)]
        config = train_config.resolve(family, name, sets=sets)
        shower_t, cond_t = train_config.transforms_of(config)
        shower_t.fit(x, conditions=c)
        cond_t.fit(c)
        model = train_config.build_model(config, IMAGE_SHAPE, 1, shower_t, cond_t)
        assert type(model).__name__ == FAMILY_CLASSES[family], name
        for key, value in family_presets(family)[name]["options"].items():
            section, option = key.split(".") if "." in key else (None, key)
            if option in TINY_OPTIONS[family]:
                continue
            where = section or ("generation" if option in config["generation"] else "model")
            assert config[where][option] == value, (name, key)
        # run.json's form resolves to the same configuration and builder arguments
        again = train_config.resolve(config=json.loads(json.dumps(config)))
        assert again == config and json.loads(json.dumps(again)) == again, name
        assert train_config.builder_options(again) == train_config.builder_options(config)
        built[name] = model, config
    # the presets reach the models
    if family == "gan":
        model = built["seed001"][0]
        assert model.real_label == 0.7 and model.training_ratio == (1, 1)
        assert any(type(t).__name__ == "MaskValueLoss" for t, _ in model.generator_loss_terms)
    if family == "flow":
        assert built["heun"][1]["generation"] == {"steps": 25, "solver": "heun",
                                                  "guidance": 0.0}
        assert built["zdc"][1]["model"]["preset"] == "zdc"


def test_presets_command_lists_one_line_each(cli, capsys):
    assert cli(["presets", "flow"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["flow default", "flow heun", "flow zdc"]
    assert 'model.preset="zdc"' in lines[2] and "ZDC" in lines[2]
    assert cli(["presets"]) == 0
    assert capsys.readouterr().out.splitlines() == describe()
    assert len(describe()) == sum(len(family_presets(f)) for f in available_families())
    assert set(PRESETS) <= set(TINY_OPTIONS)  # every named preset is built below


def test_run_json_config_reproduces_the_run(cli, data_file, tmp_path, eager_models, capsys):
    loss = '[{"loss": "EnergyConservationLoss", "config": {"relative": false}, "weight": 0.01}]'
    first = str(tmp_path / "first")
    argv = ["train", "gan", "--preset", "seed000", "--data", data_file, "--epochs", "1",
            "--batch-size", "14", "--seed", "3", "--run-dir", first, "-q",
            "--set", "training_ratio=[2,1]", "--set", f"generator_loss_terms={loss}",
            "--set", 'shower_transform=["log1p", "standardize"]'] + TINY_SET["gan"]
    assert cli(argv) == 0
    info = json.load(open(os.path.join(first, "run.json")))
    config = info["config"]
    assert config["family"] == "gan" and config["preset"] == "seed000"
    assert config["model"]["training_ratio"] == [2, 1] and config["model"]["hidden_dim"] == 4
    term, = config["model"]["generator_loss_terms"]
    assert term["loss"] == "EnergyConservationLoss" and term["weight"] == 0.01
    assert term["config"]["relative"] is False
    assert config["train"]["seed"] == 3 and config["train"]["data"] == os.path.abspath(data_file)
    assert config["transforms"]["shower_transform"]["config"]["transforms"][0]["class_name"] \
        == "Log1p"
    assert info["options"]["seed"] == 3  # the run's arguments, as before

    second = str(tmp_path / "second")
    assert cli(["train", "--config", os.path.join(first, "run.json"), "--run-dir", second,
                "-q"]) == 0
    again = json.load(open(os.path.join(second, "run.json")))["config"]
    assert again == config
    weights_a, model_a = _weights(os.path.join(first, "model.keras"))
    weights_b, model_b = _weights(os.path.join(second, "model.keras"))
    assert model_b.training_ratio == (2, 1) and len(model_b.generator_loss_terms) == 1
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore:Skipping variable loading")  # an unfitted model's optimizer
def test_generate_uses_the_runs_generation_settings(cli, tmp_path, monkeypatch):
    from _tiny_models import tiny_model

    from calozdc.models.flow.flow_matching import FlowMatching
    from calozdc.version import FORMAT_VERSIONS, __version__

    run_dir = tmp_path / "flow"
    run_dir.mkdir()
    tiny_model("flow").save(str(run_dir / "model.keras"))
    (run_dir / "run.json").write_text(json.dumps({
        "family": "flow", "geometry": None, "condition_dim": 1, "calozdc_version": __version__,
        "format_version": FORMAT_VERSIONS["run"],
        "config": {"generation": {"steps": 2, "solver": "heun", "guidance": 0.0}}}))
    seen = []

    @functools.wraps(FlowMatching.generate)
    def spy(self, conditions, **kwargs):  # records the settings, skips the sampling
        seen.append({k: kwargs.get(k) for k in ("steps", "solver")})
        return np.zeros((len(conditions),) + IMAGE_SHAPE, "float32")

    monkeypatch.setattr(FlowMatching, "generate", spy)
    conditions = str(tmp_path / "cond.h5")
    from calozdc.data import ShowerDataset, save

    save(ShowerDataset(np.zeros((2,) + IMAGE_SHAPE), np.array([[1e3], [2e3]])), conditions)
    out = str(tmp_path / "gen.h5")
    assert cli(["generate", str(run_dir), "-o", out, "--conditions", conditions, "-q"]) == 0
    assert cli(["generate", str(run_dir), "-o", out, "--conditions", conditions, "-q",
                "--overwrite", "--set", "solver=euler"]) == 0
    assert seen == [{"steps": 2, "solver": "heun"}, {"steps": 2, "solver": "euler"}]
    assert cli(["generate", str(run_dir), "-o", out, "--conditions", conditions, "-q",
                "--overwrite", "--set", "temperature=2"]) == 2
    assert len(seen) == 2


def _bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"hidden_dim": 4,')
    return str(path)


@pytest.mark.parametrize("args, expected", [
    (["gan", "--set", "hidden_dims=4"], ["hidden_dims=4", "hidden_dim,", "Valid options"]),
    (["gan", "--preset", "fancy"], ["preset='fancy'", "'seed000'"]),
    (["gan", "--config", "BAD_JSON"], ["not valid JSON", "bad.json"]),
    (["gan", "--set", "hidden_dim=wide"], ["hidden_dim='wide'", "integer"]),
    (["gan", "--set", "steps=5"], ["steps=5", "Unknown option"]),
    (["gan", "--set", "hidden_dim"], ["KEY=VALUE", "'hidden_dim'"]),
    (["gan", "--set", "preset=zdc"], ["--preset", "preset='zdc'"]),
    (["gan", "--set", "shower_transform=log2"], ["shower_transform='log2'", "Log1p"]),
    (["gan", "--set", 'generator_loss_terms=[{"loss": "Nope"}]'], ["loss='Nope'",
                                                                    "EnergyConservationLoss"]),
    (["gan", "--set", "mixed_precision=float8"], ["mixed_precision='float8'", "bfloat16"]),
    (["gan", "--set", "hidden_dim=-3"], ["Cannot build the gan model", "hidden_dim=-3"]),
    (["flow", "--set", "solver=rk4"], ["solver='rk4'", "heun"]),
])
def test_bad_options_give_one_error_and_exit_2(cli, data_file, tmp_path, capsys, args,
                                               expected):
    run_dir = tmp_path / "run"
    args = [_bad_json(tmp_path) if a == "BAD_JSON" else a for a in args]
    argv = ["train", *args, "--data", data_file, "--epochs", "1", "--run-dir", str(run_dir),
            "-q"]
    if args[0] == "flow":
        argv += TINY_SET["flow"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("calozdc train: error: ") and err.count("\n") == 1, err
    for part in expected:
        assert part in err, (part, err)
    assert not run_dir.exists()


def test_config_files_and_resume_are_checked(cli, data_file, tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"family": "ddim", "model": {"widths": 8}}))
    assert cli(["train", "gan", "--config", str(config)]) == 2
    assert "'ddim' family" in capsys.readouterr().err
    assert cli(["train", "--config", str(config), "--data", data_file]) == 2
    err = capsys.readouterr().err
    assert "widths=8" in err and "a list" in err
    config.write_text(json.dumps({"calozdc_version": "0.1", "family": "gan"}))
    assert cli(["train", "--config", str(config)]) == 2
    assert "without a 'config' entry" in capsys.readouterr().err
    assert cli(["train", "--resume", str(tmp_path), "--set", "hidden_dim=4"]) == 2
    assert "--set cannot be combined with --resume" in capsys.readouterr().err


def test_tune_best_trial_is_a_train_config(tmp_path):
    """``calozdc tune``'s summary ``config`` (builder options of the best trial) loads as a
    ``calozdc train --config`` file."""
    config = train_config.config_from_options(
        "ddim", {"widths": (8, 16), "num_timesteps": 20, "not_a_builder_option": 1},
        generation={"steps": 3}, train={"epochs": 2, "seed": 1})
    path = tmp_path / "best_ddim.json"
    path.write_text(json.dumps({"family": "ddim", "best_trial": "00", "config": config}))
    got = train_config.resolve(None, config=train_config.read_config_file(str(path)))
    assert got["family"] == "ddim" and got["model"]["widths"] == [8, 16]
    assert got["generation"] == {"steps": 3} and got["train"]["epochs"] == 2
    assert "not_a_builder_option" not in got["model"]
