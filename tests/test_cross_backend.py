"""Cross-backend models: each family saved under one backend loads and generates under the others.

One subprocess per backend builds, briefly fits (TensorFlow and PyTorch; compiling the JAX
steps would take minutes) and saves a tiny model of every family
(``tests/_tiny_models.py save``) with its outputs on fixed inputs; then one subprocess per
backend loads all 12 files and recomputes them (``... compare``): the 3 x 3 matrix per family.

Compared: the network forward pass on fixed inputs (GAN generator, DDIM denoiser, VQ prior
logits and decoder, VQ-GAN discriminator), and ``generate(conditions, seed=5)`` for the families whose noise is
drawn with numpy (GANs, DDIM with ``eta = 0``): the same weights and noise give the same
showers on every backend. The VQ prior samples its codes with ``keras.random`` (backend RNG
streams differ), so its ``generate`` is compared only on the backend that saved it, and
elsewhere must give finite, non-negative showers.

Backend-independent, so CI runs it once: marked ``crossbackend`` (``pytest -m crossbackend``).
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.crossbackend

BACKENDS = ("tensorflow", "jax", "torch")
FAMILIES = ("gan", "twostep", "vqvae", "ddim", "flow", "latent-flow", "vqgan")
HELPER = os.path.join(os.path.dirname(__file__), "_tiny_models.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: max |difference| / max(1, max |reference|).
FORWARD_TOLERANCE = 1e-4
GENERATE_TOLERANCE = 1e-3


def _start(backend, mode, directory):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, HELPER, mode, directory], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(processes, timeout=1500):
    outputs = {}
    for backend, proc in processes.items():
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"{backend} failed:\n{err[-3000:]}"
        outputs[backend] = out
    return outputs


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("cross_backend"))
    _finish({b: _start(b, "save", directory) for b in BACKENDS})
    assert sorted(os.listdir(directory)) == sorted(BACKENDS)
    outputs = _finish({b: _start(b, "compare", directory) for b in BACKENDS})
    rows = {}
    for text in outputs.values():
        for line in text.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                rows[row["source"], row["target"], row["family"]] = row
    return rows


def test_matrix_is_complete(matrix):
    assert sorted(matrix) == sorted(
        (s, t, f) for s in BACKENDS for t in BACKENDS for f in FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("target", BACKENDS)
@pytest.mark.parametrize("source", BACKENDS)
def test_saved_model_loads_and_agrees(matrix, source, target, family):
    row = matrix[source, target, family]
    expected_class = {"gan": "ConditionalGAN", "twostep": "TwoStepGAN", "vqvae": "VQGenerator",
                      "ddim": "DDIM", "flow": "FlowMatching",
                      "latent-flow": "LatentFlowMatching", "vqgan": "VQGenerator"}[family]
    assert row["class"] == expected_class
    assert row["generate_ok"], row
    for name, diff in row["diffs"].items():
        assert diff["shape_ok"], (name, row)
        if name != "generate":
            assert diff["max_rel"] < FORWARD_TOLERANCE, (name, row)
        elif family not in ("vqvae", "vqgan") or source == target:
            assert diff["max_rel"] < GENERATE_TOLERANCE, (name, row)
