"""Data-parallel training (calozdc.backend.distribution): same step on 8 devices as on one.

The JAX and TensorFlow comparisons need 8 simulated CPU devices, which must be configured before
the backend starts, so they run ``tests/_data_parallel_check.py`` in a fresh process. Each runs
only in its own backend's CI environment (backend selection, not a skip of a failure); on torch
the test checks that data parallel is refused with a clear error.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from calozdc.backend import available_devices, distribution, distribution_scope

BACKEND = keras.backend.backend()
CHECK = pathlib.Path(__file__).with_name("_data_parallel_check.py")
DEVICES = 8


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("data_parallel") / "result.json"
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES}")
    proc = subprocess.run([sys.executable, str(CHECK), str(out), str(DEVICES)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


multi_device = pytest.mark.skipif(
    BACKEND not in ("jax", "tensorflow"),
    reason="data parallel runs on JAX and TensorFlow; torch is checked to refuse it",
)


def _assert_same_training(result):
    assert result["replicas"] == DEVICES
    # Training moved the weights (else equality would be empty) ...
    assert result["max_weight_change"] > 1e-3
    # ... by the same amount on 8 devices as on one (allclose: |a-b| <= atol + rtol|b|).
    assert result["worst_violation"] <= 0.0, (result["worst_violation"], result["outside_tolerance"])
    single, parallel = result["logs_single"], result["logs_parallel"]
    assert sorted(single) == sorted(parallel)
    for name in single:
        np.testing.assert_allclose(parallel[name], single[name], rtol=1e-4, atol=1e-5, err_msg=name)


@multi_device
def test_gan_steps_on_eight_devices_equal_one_device(comparison):
    assert comparison["devices"] == [f"cpu:{i}" for i in range(DEVICES)]
    # Weights after two steps (D skipped on the second, ratio 1:2) and the epoch's metrics.
    _assert_same_training(comparison["gan"])


@multi_device
def test_ddim_steps_with_ema_on_eight_devices_equal_one_device(comparison):
    _assert_same_training(comparison["ddim"])
    assert comparison["ddim"]["logs_single"]["loss"][0] > 0


@multi_device
def test_flow_steps_with_total_network_and_ema_on_eight_devices_equal_one_device(comparison):
    _assert_same_training(comparison["flow"])
    assert comparison["flow"]["logs_single"]["loss"][0] > 0


@multi_device
def test_vqvae_steps_with_ema_codebook_on_eight_devices_equal_one_device(comparison):
    # The codebook (EMA statistics, dead-code restarts) is among the compared weights.
    _assert_same_training(comparison["vqvae"])


@pytest.mark.skipif(BACKEND != "torch", reason="the torch backend has no distribution API")
def test_torch_refuses_data_parallel_with_advice():
    with pytest.raises(ValueError, match=r"not supported by calozdc on the torch backend.*"
                                         r"KERAS_BACKEND=jax.*kind='data-parallel'"):
        with distribution_scope("data-parallel"):
            pass


def test_unknown_kind_and_bad_devices_name_the_value():
    with pytest.raises(ValueError, match="kind='model-parallel'"):
        with distribution_scope("model-parallel"):
            pass
    with pytest.raises(ValueError, match="devices=2"):
        with distribution_scope("none", devices=2):
            pass
    if BACKEND != "torch":
        with pytest.raises(ValueError, match="devices=99"):
            with distribution_scope("data-parallel", devices=99):
                pass
        with pytest.raises(ValueError, match="gpu:42"):
            with distribution_scope("data-parallel", devices=["gpu:42"]):
                pass


def test_available_devices_lists_named_devices():
    devices = available_devices()
    assert devices and all(isinstance(d, str) for d in devices)
    assert all(d.split(":")[0] in ("cpu", "gpu", "tpu") and d.split(":")[1].isdigit() for d in devices)
    assert available_devices("cpu")[0].startswith("cpu:")
    with pytest.raises(ValueError, match="device_type='npu'"):
        available_devices("npu")


def test_none_scope_and_helpers_are_identities_on_one_device():
    with distribution_scope("none") as scope:
        assert scope is None
        assert distribution.replica_count() == 1
        loss = keras.ops.convert_to_tensor(2.5)
        assert float(distribution.scale_loss_for_replicas(loss)) == 2.5
        rows = distribution.replica_rows(lambda n: keras.ops.arange(n), 3)
        assert keras.ops.convert_to_numpy(rows).tolist() == [0, 1, 2]
        x = keras.ops.ones((2, 3))
        assert distribution.gather_replicas(x) is x


@pytest.mark.skipif(BACKEND == "torch", reason="no distribution on torch (tested above)")
def test_data_parallel_scope_is_entered_and_restored_on_one_device():
    previous = keras.distribution.distribution() if BACKEND == "jax" else None
    with distribution_scope("data-parallel", devices=1) as scope:
        if BACKEND == "jax":
            assert keras.distribution.distribution() is scope
            assert scope.device_mesh.devices.size == 1
        else:
            assert scope.num_replicas_in_sync == 1
            layer = keras.layers.Dense(2)
            layer.build((None, 3))
            assert type(layer.kernel.value).__name__ == "MirroredVariable"
    if BACKEND == "jax":
        assert keras.distribution.distribution() is previous
