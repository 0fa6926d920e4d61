import json
import os

import keras
import keras_tuner
import numpy as np
import pytest

from calozdc.callbacks import physics_metrics
from calozdc.tuning import (
    DDIMHyperModel,
    GANHyperModel,
    make_tuner,
    register_hyperparameter,
)

SHAPE = (12, 12, 1)
TINY_GAN = {"latent_dim": 4, "hidden_dim": [4, 8], "generator_variant": "default",
            "discriminator_variant": "simplified", "d_steps": [1, 2]}


@pytest.fixture(scope="module")
def data():
    from calozdc.cli.train import default_transforms
    from calozdc.data import ShowerDataset

    rng = np.random.default_rng(1)
    energy = rng.uniform(1.0, 10.0, size=(40, 1)).astype("float32")
    showers = (energy[:, :, None, None] * rng.exponential(1.0, size=(40, *SHAPE))).astype(
        "float32")
    train, valid, _ = ShowerDataset(showers, energy).split((0.6, 0.4, 0.0), seed=0)
    st, ct = default_transforms()
    st.fit(train.showers, conditions=train.conditions)
    ct.fit(train.conditions)
    x = st.forward(train.showers, conditions=train.conditions).astype("float32")
    c = ct.forward(train.conditions).astype("float32")
    return x, c, valid, st, ct


def _hypermodel(data, **kwargs):
    _, _, valid, st, ct = data
    return GANHyperModel(SHAPE, 1, valid.showers, valid.conditions, shower_transform=st,
                         condition_transform=ct, space=TINY_GAN, metric_seed=3, **kwargs)


@pytest.mark.large  # ~45 s on TensorFlow, several minutes on JAX (jit of 3 trials' GANs)
def test_random_search_objective_is_the_physics_metric_and_resumes(data, tmp_path):
    x, c, valid, _, _ = data
    directory = str(tmp_path)
    tuner = make_tuner("random", _hypermodel(data), directory, "gan", max_trials=2, seed=1)
    tuner.search(x, c, epochs=1, batch_size=8, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for t in trials:
        # KerasTuner keeps the best epoch's value of the objective
        logged = np.ravel([o.value for o in t.metrics.get_history("val_channel_w1")])
        assert len(logged) == 1 and np.isfinite(logged[0]) and logged[0] > 0
        assert t.score == pytest.approx(logged[0])
        assert t.hyperparameters.get("latent_dim") == 4
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == min(t.score for t in trials)
    # the best model (weights of its best epoch) reproduces the objective for the same seed
    model = tuner.load_model(best)
    generated = model.generate(valid.conditions, seed=3)
    w1 = physics_metrics((valid.showers, valid.conditions), generated)["channel_w1"]
    assert w1 == pytest.approx(best.score, rel=1e-5)
    path = os.path.join(directory, "best.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.generate(valid.conditions, seed=3), generated,
                               rtol=1e-5, atol=1e-4)

    # resume: the same project with one more trial keeps the finished ones
    ids = sorted(t.trial_id for t in trials)
    again = make_tuner("random", _hypermodel(data), directory, "gan", max_trials=3, seed=1)
    assert sorted(again.oracle.trials) == ids
    again.search(x, c, epochs=1, batch_size=8, verbose=0)
    assert len(again.oracle.trials) == 3
    assert sorted(again.oracle.trials)[:2] == ids
    for trial_id in ids:
        assert again.oracle.trials[trial_id].score == tuner.oracle.trials[trial_id].score


def test_search_space_registration():
    hp = keras_tuner.HyperParameters()
    assert register_hyperparameter(hp, "a", [3, 1]) == 3
    assert register_hyperparameter(hp, "b", {"min": 1e-4, "max": 1e-2, "sampling": "log"}) \
        == pytest.approx(1e-4)
    assert register_hyperparameter(hp, "n", {"min": 1, "max": 4}) == 1
    assert register_hyperparameter(hp, "f", "x") == "x"
    assert type(hp._hps["n"][0]).__name__ == "Int"
    assert type(hp._hps["b"][0]).__name__ == "Float"
    with pytest.raises(ValueError, match="'min' and 'max'"):
        register_hyperparameter(hp, "bad", {"min": 1})


def test_ddim_hypermodel_maps_widths_and_sampling_steps(data):
    _, _, valid, st, ct = data
    hm = DDIMHyperModel(SHAPE, 1, valid.showers, valid.conditions, shower_transform=st,
                        condition_transform=ct,
                        space={"base_width": [4], "levels": [2], "sampling_steps": [3]})
    hp = keras_tuner.HyperParameters()
    options = hm.options(hm.values(hp))
    assert options["widths"] == (4, 8) and "sampling_steps" not in options
    assert hm.metrics_callback(hp).generate_kwargs == {"steps": 3}


def test_invalid_arguments_name_the_value(data, tmp_path):
    _, _, valid, _, _ = data
    with pytest.raises(ValueError, match="condition_dim=0"):
        GANHyperModel(SHAPE, 0, valid.showers, valid.conditions)
    with pytest.raises(ValueError, match="tuner='grid'"):
        make_tuner("grid", _hypermodel(data), str(tmp_path), "gan")


@pytest.mark.parametrize("kind, cls", [("random", "RandomSearch"), ("bayesian", "BayesianOptimization"),
                                       ("hyperband", "Hyperband")])
def test_make_tuner_kinds(data, tmp_path, kind, cls):
    tuner = make_tuner(kind, _hypermodel(data), str(tmp_path), "gan", max_trials=3, max_epochs=4,
                       seed=2)
    assert type(tuner).__name__ == cls
    assert tuner.oracle.objective.name == "val_channel_w1" and tuner.oracle.objective.direction == "min"
    assert tuner.oracle.max_trials == 3 and tuner.oracle.seed == 2
    if kind == "hyperband":
        assert tuner.oracle.max_epochs == 4


# Hyperband through the CLI (its epochs come from the tuner's schedule, not --epochs per fit);
# random and Bayesian search share the rest of the code path.
@pytest.mark.large
@pytest.mark.parametrize("kind", ["hyperband"])
def test_cli_tune_writes_best_model_and_summary(kind, tmp_path):
    from calozdc.cli import main as cli_main
    from calozdc.data import save, simulate

    data_file = str(tmp_path / "ecal.h5")
    save(simulate("ecal20", 40, seed=1), data_file)
    directory = str(tmp_path / "tuning")
    space = str(tmp_path / "space.json")
    with open(space, "w") as f:
        json.dump({**TINY_GAN, "hidden_dim": 4}, f)
    argv = ["tune", "gan", "--data", data_file, "--max-trials", "2", "--tuner", kind,
            "--directory", directory, "--epochs", "2", "--batch-size", "8", "-q",
            "--space", space]
    assert cli_main.main(argv) == 0
    summary = json.load(open(os.path.join(directory, "best_gan.json")))
    scores = [s for s in summary["trials"].values() if s is not None]
    assert len(summary["trials"]) == 2 and summary["best_score"] == min(scores)
    model = keras.saving.load_model(os.path.join(directory, "best_gan.keras"))
    out = model.generate(np.array([[1000.0], [5000.0]], dtype="float32"), seed=0)
    assert out.shape == (2, 20, 20, 1) and np.all(out >= 0)
    # the --space overrides reached the trials (tiny networks, d_steps from [1, 2])
    assert summary["hyperparameters"]["hidden_dim"] == 4
    assert summary["hyperparameters"]["generator_variant"] == "default"
    assert summary["hyperparameters"]["d_steps"] in (1, 2)
    # rerun: resumes (no new trials), same best
    assert cli_main.main(argv) == 0
    again = json.load(open(os.path.join(directory, "best_gan.json")))
    assert again["trials"] == summary["trials"]


@pytest.mark.parametrize("space, message", [
    ("{not json", "must be a JSON object or a JSON file"),
    ("[4, 8]", "must be a JSON object"),
    ('{"hidden_dims": [4, 8]}', "hidden_dims"),
    ('{"hidden_dim": [4, -8]}', "hidden_dim=-8"),
    ('{"dropout": {"min": 0.0, "max": 2.0}}', "dropout=2.0"),
    ('{"hidden_dim": []}', "Empty choice list"),
])
def test_cli_tune_rejects_bad_space(space, message, tmp_path, capsys):
    from calozdc.cli import main as cli_main
    from calozdc.data import save, simulate

    data_file = str(tmp_path / "ecal.h5")
    save(simulate("ecal20", 20, seed=1), data_file)
    argv = ["tune", "gan", "--data", data_file, "--directory", str(tmp_path / "t"), "--space", space]
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not os.path.exists(str(tmp_path / "t"))


def test_cli_tune_flow_shares_the_fitted_model_space(tmp_path):
    """``calozdc tune flow``: one trial on tiny nets; the best model carries the log-total
    statistics of the training split and generates showers whose sums are its totals."""
    from calozdc.cli import main as cli_main
    from calozdc.data import save, simulate

    data_file = str(tmp_path / "ecal.h5")
    save(simulate("ecal20", 60, seed=1), data_file)
    directory = str(tmp_path / "tuning")
    space = json.dumps({"base_width": 8, "levels": 2, "blocks_per_level": 1,
                        "embedding_dim": 8, "attention": False, "sampling_steps": 2,
                        "solver": ["heun"]})
    argv = ["tune", "flow", "--data", data_file, "--max-trials", "1", "--directory", directory,
            "--epochs", "1", "--batch-size", "16", "-q", "--space", space]
    assert cli_main.main(argv) == 0
    summary = json.load(open(os.path.join(directory, "best_flow.json")))
    assert summary["hyperparameters"]["solver"] == "heun" and np.isfinite(summary["best_score"])
    model = keras.saving.load_model(os.path.join(directory, "best_flow.keras"))
    assert model.factorised and len(model.total_stats) == 3
    conditions = np.array([[1000.0], [5000.0]], dtype="float32")
    out = model.generate(conditions, steps=2, seed=0)
    assert out.shape == (2, 20, 20, 1) and np.all(out >= 0)
    np.testing.assert_allclose(out.reshape(2, -1).sum(1),
                               model.generate_totals(conditions, seed=0), rtol=1e-4)


def test_latent_flow_hypermodel_maps_the_autoencoder_and_builds(data):
    from calozdc.tuning import LatentFlowHyperModel

    _, _, valid, st, ct = data
    hm = LatentFlowHyperModel(SHAPE, 1, valid.showers, valid.conditions, shower_transform=st,
                              condition_transform=ct, total_stats=[0.0, 1.0, 1e-6],
                              space={"base_width": 8, "levels": 1, "embedding_dim": 8,
                                     "latent_channels": 2, "autoencoder_width": 4})
    hp = keras_tuner.HyperParameters()
    options = hm.options(hm.values(hp))
    assert options["autoencoder_widths"] == (4, 4) and options["widths"] == (8,)
    assert "sampling_steps" not in options and "solver" not in options
    model = hm.build(hp)
    assert model.state_shape == (3, 3, 2) and model.total_stats == [0.0, 1.0, 1e-6]
    assert hm.metric_generate_kwargs(hp) == {"steps": 10, "solver": "euler"}
