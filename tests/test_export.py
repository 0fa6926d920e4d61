"""``calozdc export`` / ``calozdc.export``: the whole generator in one ONNX graph or SavedModel.

onnxruntime's output for the noise ``generate(seed=s)`` draws equals ``generate``'s showers
(max relative error <= 1e-4 on the totals and on the cells above 1 % of the maximum) for
every family the current backend's converter handles; the others get one clear error naming
TensorFlow. Tiny models (tests/_tiny_models.py), few sampler steps.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import onnxruntime as ort
import pytest
from _tiny_models import GENERATE_OPTIONS, IMAGE_SHAPE, tiny_data, tiny_model

from calozdc.cli.main import main
from calozdc.export import (
    ONNX_KINDS,
    card_path,
    export_generator,
    exportable,
    generation_noise,
    generator_graph,
    scales_path,
)
from calozdc.export.generator_graph import _kind
from calozdc.metrics.zdc import channel_sums

BACKEND = keras.backend.backend()
CONDITIONS = np.array([[1500.0], [4000.0], [9000.0]], "float32")
#: torch's exporter needs a fixed batch size; the others export a dynamic one.
BATCH = 3 if BACKEND == "torch" else None
FAMILIES = ("gan", "twostep", "ddim", "flow", "latent-flow")


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.fixture(scope="module")
def tiny(data):
    """``tiny(family)``: one tiny model per family for the module (building one costs
    seconds)."""
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = tiny_model(family, seed=1, data=data)
        return cache[family]

    return get


def _run_onnx(path, feeds):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session, session.run(None, feeds)[0]


def assert_same_showers(got, expected, tol=1e-4):
    """Max relative error <= tol on each shower's total and on the cells above 1 % of the
    shower's maximum."""
    got, expected = np.asarray(got, "float64"), np.asarray(expected, "float64")
    assert got.shape == expected.shape
    n = len(expected)
    totals_g, totals_e = got.reshape(n, -1).sum(1), expected.reshape(n, -1).sum(1)
    assert np.all(totals_e > 0)
    np.testing.assert_allclose(totals_g, totals_e, rtol=tol)
    peak = expected.reshape(n, -1).max(1).reshape((-1,) + (1,) * (expected.ndim - 1))
    big = expected > 0.01 * peak
    assert big.any()
    rel = np.abs(got - expected)[big] / expected[big]
    assert rel.max() <= tol, rel.max()


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_matches_generate(family, tiny, tmp_path):
    """onnxruntime == generate for the same conditions and noise where the backend's converter
    handles the family; elsewhere one clear error naming TensorFlow, nothing written."""
    model = tiny(family)
    opts = GENERATE_OPTIONS[family]
    path = str(tmp_path / "model.onnx")
    if not exportable(model):
        assert BACKEND != "tensorflow"  # tf2onnx converts every family
        with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
            export_generator(model, path, steps=opts.get("steps"))
        assert os.listdir(tmp_path) == []
        return
    expected = model.generate(CONDITIONS, seed=5, **opts)
    card = export_generator(model, path, steps=opts.get("steps"), batch_size=BATCH)
    noise = generation_noise(model, len(CONDITIONS), seed=5)
    session, got = _run_onnx(path, {"conditions": CONDITIONS, "noise": noise})
    assert_same_showers(got, expected)
    # the file's interface is the card's
    assert [i.name for i in session.get_inputs()] == ["conditions", "noise"]
    assert [o.name for o in session.get_outputs()] == ["showers"]
    assert session.get_inputs()[1].shape == [card["inputs"][1]["shape"][0], noise.shape[1]]
    with open(card_path(path)) as f:
        assert json.load(f) == card
    assert card["noise_size"] == noise.shape[1]
    assert sum(s["size"] for s in card["inputs"][1]["segments"]) == noise.shape[1]
    assert card["outputs"][0]["shape"] == [BATCH or "batch", *IMAGE_SHAPE]
    if "steps" in opts:
        assert card["sampler"]["steps"] == opts["steps"]
    if BATCH is None:  # one shower at batch 1, as the C++ callers run it, is the same shower
        _, one = _run_onnx(path, {"conditions": CONDITIONS[1:2], "noise": noise[1:2]})
        assert_same_showers(one, expected[1:2])


def test_tensorflow_converts_every_family():
    assert ONNX_KINDS["tensorflow"] == {"gan", "ddim", "flow", "vq"}


def test_vq_generator_exports_its_decoder(tiny, tmp_path):
    model = tiny("vqvae")
    with pytest.raises(ValueError, match="part='decoder'"):
        export_generator(model, tmp_path / "whole.onnx")
    assert os.listdir(tmp_path) == []
    path = str(tmp_path / "decoder.onnx")
    card = export_generator(model, path, part="decoder", batch_size=BATCH)
    h, w = model.vqvae.latent_shape[:-1]
    codes = np.random.default_rng(0).integers(0, model.vqvae.num_codes, (3, h * w))
    expected = model.vqvae.decode(codes.reshape(3, h, w), CONDITIONS)
    session, got = _run_onnx(path, {"conditions": CONDITIONS, "codes": codes.astype("int32")})
    assert_same_showers(got, expected)
    assert card["part"] == "decoder" and card["inputs"][1]["name"] == "codes"


def test_saved_model_reloads_with_tensorflow_alone(data, tmp_path):
    model = plain_gan(data)
    path = str(tmp_path / "saved")
    if BACKEND == "torch":
        with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
            export_generator(model, path, format="saved_model")
        assert os.listdir(tmp_path) == []
        return
    export_generator(model, path, format="saved_model")
    noise = generation_noise(model, 3, seed=5)
    np.save(tmp_path / "c.npy", CONDITIONS)
    np.save(tmp_path / "z.npy", noise)
    # a fresh process with TensorFlow and numpy only (no calozdc; TensorFlow may load its
    # own Keras module, and a jax2tf SavedModel jax, but nothing of ours runs)
    code = (
        "import sys, numpy as np, tensorflow as tf; d = sys.argv[1]; "
        "m = tf.saved_model.load(d + '/saved'); "
        "out = m.serve(tf.constant(np.load(d + '/c.npy')), tf.constant(np.load(d + '/z.npy')))"
        "['showers'].numpy(); np.save(d + '/out.npy', out); "
        "print([k for k in sys.modules if k.split('.')[0] == 'calozdc'])"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, env=env, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert_same_showers(np.load(tmp_path / "out.npy"), model.generate(CONDITIONS, seed=5))


# -- ALICE O2 layout -------------------------------------------------------------------------
def o2_parse_block(lines, option):
    """O2's ``parse_block`` (Detectors/ZDC/fastsimulation/src/Utils.cxx) in Python."""
    it = iter(lines)
    for line in it:
        if line == option:
            break
    data = []
    for line in it:
        if not line:
            break
        data.append(float(line))
    return data


def o2_channels(flat_image):
    """O2's channel loop (src/FastSimulations.cxx ``calculateChannels``): ``expm1`` of the
    flat output at ``i + 44 j``, channels by quadrant of (i, j) and the parity i % 2 == j % 2."""
    channels = np.zeros(5)
    for i in range(44):
        for j in range(44):
            value = np.expm1(np.float64(flat_image[i + j * 44]))
            if i % 2 == j % 2:
                if i < 22 and j < 22:
                    channels[0] += value
                elif i >= 22 and j < 22:
                    channels[1] += value
                elif i < 22 and j >= 22:
                    channels[2] += value
                else:
                    channels[3] += value
            else:
                channels[4] += value
    return channels


def zn44_gan():
    from calozdc.data import transforms
    from calozdc.models.registry import build_model

    rng = np.random.default_rng(0)
    conditions = np.concatenate([rng.uniform(100, 2000, (32, 1)),
                                 rng.normal(size=(32, 8))], axis=1).astype("float32")
    showers = rng.poisson(3.0, (32, 44, 44, 1)).astype("float32")
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()]).fit(showers)
    cond_t = transforms.Standardize(axis="feature").fit(conditions)
    model = build_model("gan", (44, 44, 1), 9, shower_transform=shower_t,
                        condition_transform=cond_t, seed=0, latent_dim=10, hidden_dim=4)
    return model, conditions[:2], cond_t


def test_alice_o2_layout_gives_o2_the_channel_sums(tmp_path):
    model, conditions, cond_t = zn44_gan()
    path = str(tmp_path / "zdc.onnx")
    export_generator(model, path, layout="alice-o2", batch_size=1)  # O2 runs batch 1
    with open(scales_path(path)) as f:
        lines = f.read().splitlines()
    means, scales = o2_parse_block(lines, "#means"), o2_parse_block(lines, "#scales")
    assert len(means) == len(scales) == 9
    np.testing.assert_allclose(means, cond_t.mean, rtol=1e-12)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["noise", "conditions"]
    assert [i.shape for i in session.get_inputs()] == [[1, 10], [1, 9]]
    noise = generation_noise(model, len(conditions), seed=3)
    expected = channel_sums(model.generate(conditions, seed=3), "zn44")
    for row in range(len(conditions)):  # O2 runs one particle at a time
        standardised = ((conditions[row] - np.array(means)) / np.array(scales))[None]
        out = session.run(None, {"noise": noise[row:row + 1],
                                 "conditions": standardised.astype("float32")})[0]
        assert out.shape == (1, 44, 44)
        np.testing.assert_allclose(o2_channels(out.reshape(-1)), expected[row], rtol=1e-4)


def test_alice_o2_layout_refuses_other_models(tiny, tmp_path):
    model = tiny("gan")
    with pytest.raises(ValueError, match="alice-o2 does not fit.*10 noise numbers"):
        export_generator(model, tmp_path / "zdc.onnx", layout="alice-o2")
    assert os.listdir(tmp_path) == []


# -- options and the command line ------------------------------------------------------------
def test_bad_options_raise_one_clear_error(tiny, tmp_path):
    model = tiny("gan")
    target = tmp_path / "m.onnx"
    for kwargs, match in [({"format": "tflite"}, "format"), ({"layout": "o3"}, "layout"),
                          ({"batch_size": 0}, "batch_size"), ({"steps": 0}, "steps"),
                          ({"solver": "heun"}, "solver"), ({"part": "decoder"}, "part")]:
        with pytest.raises(ValueError, match=match):
            export_generator(model, target, **kwargs)
    assert os.listdir(tmp_path) == []
    assert _kind(model) == "gan"
    assert generator_graph(model).noise_size == generation_noise(model, 2, seed=0).shape[1]


def plain_gan(data):
    """A tiny GAN whose ``generate`` uses no total model (every backend exports it)."""
    from calozdc.cli.train import default_transforms
    from calozdc.models.registry import build_model

    x, c = data
    shower_t, cond_t = default_transforms("gan")
    shower_t.fit(x, conditions=c)
    cond_t.fit(c)
    model = build_model("gan", IMAGE_SHAPE, 1, shower_transform=shower_t,
                        condition_transform=cond_t, seed=0, latent_dim=4, hidden_dim=4)
    assert not getattr(model, "totals_fitted", False)
    return model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data):
    run = tmp_path_factory.mktemp("run")
    plain_gan(data).save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({"family": "gan", "condition_dim": 1,
                                              "condition_names": ["energy"]}))
    return run


def test_cli_exports_a_run(run_dir, tmp_path, capsys):
    out = tmp_path / "gan.onnx"
    assert main(["export", str(run_dir), "-o", str(out), "--batch-size", "1", "-q"]) == 0
    card = json.loads((tmp_path / "gan.onnx.json").read_text())
    assert card["family"] == "gan" and card["condition_columns"] == ["energy"]
    assert card["run_dir"] == os.path.abspath(run_dir)
    assert card["inputs"][0]["shape"] == [1, 1]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[1].shape == [1, card["noise_size"]]
    model = keras.saving.load_model(run_dir / "model.keras")
    noise = generation_noise(model, 1, seed=2)
    got = session.run(None, {"conditions": CONDITIONS[:1], "noise": noise})[0]
    assert_same_showers(got, model.generate(CONDITIONS[:1], seed=2))
    # the example runs it with onnxruntime and numpy only
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "onnx_inference.py")
    code = ("import runpy, sys; sys.argv = [sys.argv[1], sys.argv[2], '-n', '1']\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(k for k in ('keras', 'tensorflow', 'jax', 'torch', 'calozdc') "
            "if k in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, example, str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "totals:" in lines and lines[-2].startswith("  shower 0:")
    assert lines[-1] == "[]"  # no framework (nor Keras, nor calozdc) imported
    # an existing output is kept without --overwrite
    before = out.read_bytes()
    assert main(["export", str(run_dir), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["--format", "tflite"], "--format"),
    (["--steps", "0"], "--steps"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--layout", "geant"], "--layout"),
])
def test_cli_bad_input_writes_nothing(run_dir, tmp_path, capsys, argv, message):
    out = tmp_path / "m.onnx"
    assert main(["export", str(run_dir), "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert os.listdir(tmp_path) == []


def test_cli_run_dir_without_model(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"family": "gan"}))
    assert main(["export", str(run), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "model.keras" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["run"]
