"""The CLI keeps framework start-up chatter off stderr unless ``--debug``; the user's
``TF_CPP_MIN_LOG_LEVEL`` wins."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import calozdc.cli.main as cli_main
from calozdc.version import FORMAT_VERSIONS, __version__

#: What TensorFlow prints on a CPU machine when it starts (TF 2.21 and earlier).
CHATTER = ("oneDNN custom operations", "failed call to cuInit", "absl::InitializeLog()",
           "Could not find cuda drivers", "cpu_feature_guard", "remapper failed")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny GAN run directory and a conditions file for it (12 x 12 showers, 1 condition)."""
    from _tiny_models import tiny_model

    from calozdc.data import ShowerDataset, save

    root = tmp_path_factory.mktemp("quiet")
    run = root / "run"
    run.mkdir()
    tiny_model("gan", seed=0).save(str(run / "model.keras"))
    (run / "run.json").write_text(json.dumps({
        "family": "gan", "geometry": None, "condition_dim": 1,
        "calozdc_version": __version__, "format_version": FORMAT_VERSIONS["run"]}))
    conditions = str(root / "conditions.h5")
    save(ShowerDataset(np.ones((3, 12, 12)), np.array([[1500.0], [4000.0], [9000.0]])),
         conditions)
    return str(run), conditions


def _generate(run_dir, extra_env, tmp_path, name):
    """``python -m calozdc generate`` in a clean environment (TensorFlow backend)."""
    run, conditions = run_dir
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(tmp_path)),
           "KERAS_BACKEND": "tensorflow", **extra_env}
    out = str(tmp_path / f"{name}.h5")
    proc = subprocess.run([sys.executable, "-m", "calozdc", "generate", run, "-o", out,
                           "--conditions", conditions, "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(out)
    return proc.stderr


def test_cli_stderr_has_no_framework_chatter(run_dir, tmp_path):
    err = _generate(run_dir, {}, tmp_path, "clean")
    assert not [c for c in CHATTER if c in err], err
    assert not any(cli_main._LOG_RECORD.match(line) for line in err.splitlines()), err


def test_user_log_level_is_respected(run_dir, tmp_path):
    err = _generate(run_dir, {"TF_CPP_MIN_LOG_LEVEL": "0"}, tmp_path, "verbose")
    # TensorFlow's own start-up lines come through: nothing overrode the user's level
    assert any(cli_main._LOG_RECORD.match(line) for line in err.splitlines()), err


@pytest.mark.parametrize("line, level, chatter", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
     3, True),
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
     0, False),
    ("I0000 00:00:1796420933.099979    4565 port.cc:153] oneDNN custom operations are on.", 3,
     True),
    ("I0000 00:00:1796420933.099979    4565 port.cc:153] oneDNN custom operations are on.", 0,
     False),
    ("E0000 00:00:1796421044.668885    4910 cuda_platform.cc:52] failed call to cuInit", 3, True),
    ("E0000 00:00:1796421044.668885    4910 cuda_platform.cc:52] failed call to cuInit", 2,
     False),
    ("W0312 10:11:12.131415  123 loader.cc:9] something", 2, True),
    ("2024-01-01 12:00:00.123456: I tensorflow/core/util/port.cc:113] oneDNN custom", 1, True),
    ("/path/to/module.py:12: UserWarning: a real warning", 3, False),
    ("Traceback (most recent call last):", 3, False),
])
def test_startup_chatter_filter(line, level, chatter):
    assert cli_main.is_startup_chatter(line, level) is chatter


def test_environment_defaults_user_values_and_debug(tmp_path, monkeypatch, capsys):
    from calozdc.data import ShowerDataset, save

    path = str(tmp_path / "x.h5")
    save(ShowerDataset(np.ones((2, 4, 4)), np.ones((2, 1))), path)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("info",))
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli_main.main(["--debug", "info", path]) == 0  # --debug: left alone
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert cli_main.main(["info", path]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == cli_main.QUIET_ENV["TF_CPP_MIN_LOG_LEVEL"]
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert cli_main.main(["info", path]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the user's value wins
    assert not any(isinstance(f, cli_main._QuietFrameworkImport) for f in sys.meta_path)
    capsys.readouterr()


def test_filtered_stderr_keeps_other_lines(monkeypatch, capfd):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    with cli_main._filtered_stderr():
        os.write(2, b"I0000 00:00:1796420933.099979    4565 port.cc:153] chatter\n")
        os.write(2, b"a real message\n")
    assert capfd.readouterr().err == "a real message\n"
