"""Progress bars on stderr for simulate, evaluate and generate; quiet by default and with -q.

The non-model loops (simulate, evaluate, the helper) do not depend on the Keras backend and
run only on TensorFlow's CI leg; ``generate`` runs on every backend.
"""

import json
import re

import keras
import numpy as np
import pytest
from _gan_helpers import LATENT, dense_networks

from calozdc.cli.main import main
from calozdc.data import iter_simulate, load, simulate
from calozdc.data.simulate import CHUNK_SIZE
from calozdc.metrics import evaluate
from calozdc.models import VQVAE, CodePrior, VQGenerator
from calozdc.models.ddim import DDIM, ConditionalUNet, NoiseSchedule
from calozdc.models.gan import ConditionalGAN
from calozdc.models.vqvae import conv_decoder, conv_encoder
from calozdc.utils import batch_ranges, progress

numpy_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent numpy loop: checked on the TensorFlow leg only",
)


def _bar(err, desc, total):
    """The final state of the tqdm bar ``desc`` in ``err``: ``"desc: 100%|...| total/total"``."""
    return re.search(rf"{re.escape(desc)}: 100%\|[^|]*\| {total}/{total} ", err) is not None


# -- the helper --------------------------------------------------------------------------------
@numpy_only
def test_helper_bar_goes_to_stderr_with_its_total_and_is_silent_when_quiet(capsys):
    with progress(7, "work", verbose=True, unit="shower") as bar:
        for _ in range(7):
            bar.update(1)
    out, err = capsys.readouterr()
    assert out == "" and _bar(err, "work", 7) and "shower/s" in err
    assert list(progress([3, 4, 5], "items", verbose=True)) == [3, 4, 5]
    assert _bar(capsys.readouterr().err, "items", 3)
    assert list(progress([3, 4], "items", verbose=False)) == [3, 4]
    with progress(5, "quiet") as bar:  # default: quiet
        bar.update(5)
    assert list(batch_ranges(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert capsys.readouterr() == ("", "")
    assert list(batch_ranges(10, 4, "batches", verbose=2)) == [(0, 4), (4, 8), (8, 10)]
    assert _bar(capsys.readouterr().err, "batches", 10)
    assert list(batch_ranges(0, 4, verbose=True)) == []
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="total"):
            progress(total=bad, iterable_or_total=[1])
    with pytest.raises(ValueError, match="batch_size"):
        list(batch_ranges(3, 0))


# -- simulate ----------------------------------------------------------------------------------
@numpy_only
def test_simulate_and_iter_simulate_bars(capsys):
    n = CHUNK_SIZE + 6  # two chunks
    quiet = simulate("ecal20", n, seed=1)
    assert capsys.readouterr() == ("", "")
    loud = simulate("ecal20", n, seed=1, verbose=True)
    out, err = capsys.readouterr()
    assert out == "" and _bar(err, "simulate ecal20", n)
    np.testing.assert_array_equal(loud.showers, quiet.showers)  # the bar changes nothing
    sizes = [len(c["pdg"]) for c in iter_simulate("ecal20", 9, seed=2, verbose=True)]
    assert sizes == [9] and _bar(capsys.readouterr().err, "simulate ecal20", 9)
    simulate("ecal20", 5, seed=1, progress=True)  # the older keyword still works
    assert _bar(capsys.readouterr().err, "simulate ecal20", 5)


@numpy_only
def test_simulate_cli_bar_and_quiet(tmp_path, capsys):
    path = str(tmp_path / "a.h5")
    assert main(["simulate", "ecal20", "-n", "12", "-o", path, "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert _bar(err, "simulate ecal20", 12) and "wrote 12" in out and "100%" not in out
    assert main(["simulate", "ecal20", "-n", "12", "-o", path, "--workers", "1", "-q",
                 "--overwrite"]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(load(path)) == 12


# -- evaluate ----------------------------------------------------------------------------------
def _toy(n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    conditions = np.random.default_rng(0).uniform(1e4, 2e4, (n, 1)).astype(np.float32)
    lam = np.full((n, 20, 20), 1e-4) * conditions[:, :1, None] * scale
    lam[:, 8:12, 8:12] *= 20
    return rng.poisson(lam).astype(np.float32), conditions


@numpy_only
def test_evaluate_counts_its_comparisons(capsys):
    real, cond = _toy(60, 0)
    gen, _ = _toy(60, 1, 1.2)
    quiet = evaluate((real, cond), (gen, cond))
    assert capsys.readouterr() == ("", "")
    loud = evaluate((real, cond), (gen, cond), verbose=True)
    out, err = capsys.readouterr()
    # split halves: model + floor, then the paired metrics
    assert out == "" and _bar(err, "evaluate", 3)
    assert json.dumps(loud) == json.dumps(quiet)
    evaluate((real, cond), (gen, cond), n_splits=2, paired=False, verbose=True)
    assert _bar(capsys.readouterr().err, "evaluate", 4)
    evaluate((real, cond), (gen, cond), real_reference=_toy(60, 2), verbose=True)
    assert _bar(capsys.readouterr().err, "evaluate", 2)


@numpy_only
def test_evaluate_cli_bar_and_quiet(tmp_path, capsys):
    real, cond = _toy(60, 0)
    gen, _ = _toy(60, 1, 1.2)
    np.savez(tmp_path / "real.npz", showers=real, conditions=cond)
    np.savez(tmp_path / "gen.npz", showers=gen, conditions=cond)
    args = ["evaluate", str(tmp_path / "gen.npz"), "--data", str(tmp_path / "real.npz"),
            "-o", str(tmp_path / "out")]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert _bar(err, "evaluate", 3) and "w1_channels_mean" in out and "100%" not in out
    assert main(args + ["--overwrite", "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "w1_channels_mean" in out  # -q: no bars, the table still printed


# -- generate (every backend) -------------------------------------------------------------------
def _gan():
    g, d = dense_networks(dropout=0.0)
    return ConditionalGAN(g, d, LATENT, seed=0)


def _ddim():
    unet = ConditionalUNet((4, 4, 1), 2, widths=(4,), blocks_per_level=1, embedding_dim=4,
                           groups=2, attention=False)
    return DDIM(unet, schedule=NoiseSchedule("cosine", num_timesteps=20), seed=3)


def _vq():
    vqvae = VQVAE(conv_encoder((4, 4, 1), 3, (2,)), conv_decoder((4, 4, 1), 3, 2, (2,)),
                  num_codes=8)  # 2x2 codes: 4 prior steps per batch
    return VQGenerator(vqvae, CodePrior(8, 4, 2, embed_dim=4, num_heads=1, num_layers=1))


@pytest.mark.parametrize("family", ["gan", "ddim", "vq"])
def test_generate_bar_has_the_number_of_showers(family, capsys):
    model = {"gan": _gan, "ddim": _ddim, "vq": _vq}[family]()
    k = 1 if family == "gan" else 2
    conditions = np.random.default_rng(0).uniform(0.5, 1.5, (3, k)).astype("float32")
    kwargs = {"steps": 2} if family == "ddim" else {}
    quiet = model.generate(conditions, seed=4, batch_size=2, **kwargs)
    assert capsys.readouterr() == ("", "")
    loud = model.generate(conditions, seed=4, batch_size=2, verbose=True, **kwargs)
    out, err = capsys.readouterr()
    assert out == "" and _bar(err, "generate", 3)
    np.testing.assert_allclose(loud, quiet, atol=1e-6)  # the bar changes nothing


def test_generate_cli_bar_and_quiet(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _gan().save(run_dir / "model.keras")
    (run_dir / "run.json").write_text(json.dumps({"family": "gan", "geometry": "ecal20",
                                                  "condition_dim": 1}))
    args = ["generate", str(run_dir), "-n", "6", "-o", str(tmp_path / "g.h5"),
            "--batch-size", "4"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    # the condition sampler (the simulator) and the generator each show a bar
    assert _bar(err, "simulate ecal20", 6) and _bar(err, "generate", 6)
    assert "wrote 6 showers" in out
    assert main(args + ["--overwrite", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert load(str(tmp_path / "g.h5")).showers.shape == (6, 20, 20, 1)
