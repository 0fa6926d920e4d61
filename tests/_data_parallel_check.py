"""Data parallel vs one device: run by tests/test_data_parallel.py in a fresh process.

    KERAS_BACKEND=jax python tests/_data_parallel_check.py OUT.json [DEVICES]

The host CPU is split into ``DEVICES`` (default 8) devices before the backend starts (JAX:
``--xla_force_host_platform_device_count``; TensorFlow: logical CPU devices). For a
ConditionalGAN (R1 penalty, ratio 1:2 so the D update runs under ``cond``), a DDIM (EMA,
condition dropout) and a VQ-VAE (EMA codebook with dead-code restarts), the same initial
weights and seeds are trained for two steps of one global batch each, once on one device
and once data-parallel over all devices. OUT.json gets, per model: the worst tolerance
violation of the weights after training, ``max(|a - b| - (atol + rtol |b|))`` (<= 0: equal
within tolerance), how far training moved the weights, the logs of both runs and the number
of devices/replicas used.
"""

import json
import os
import sys

ATOL, RTOL = 1e-5, 1e-4
BATCH, STEPS = 16, 2


def _setup(devices):
    backend = os.environ.get("KERAS_BACKEND", "")
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={devices}"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from calozdc.backend import distribution

    if backend == "tensorflow":
        distribution.configure_cpu_devices(devices)
    return distribution


def _numpy(variables):
    import numpy as np

    return [np.asarray(v.numpy(), dtype="float64") for v in variables]


def _compare(single, parallel, initial, paths):
    """Worst violation, largest move of the weights, and ``{path: max |a - b|}`` of the
    variables outside the tolerance (to see what differs when the test fails)."""
    import numpy as np

    violations = [float(np.max(np.abs(a - b) - (ATOL + RTOL * np.abs(b))))
                  for a, b in zip(parallel, single)]
    outside = {path: float(np.max(np.abs(a - b)))
               for path, a, b, v in zip(paths, parallel, single, violations) if v > 0}
    # The last tracked variable is a counter; the others are weights.
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single[:-1], initial[:-1]))
    return max(violations), moved, outside


def _gan(kind, devices, distribution, initial=None):
    import keras
    from _gan_helpers import data, dense_networks

    from calozdc.models.gan import ConditionalGAN

    x, p = data(BATCH * STEPS, seed=1)
    with distribution.distribution_scope(kind, devices if kind != "none" else None) as scope:
        g, d = dense_networks(dropout=0.0)
        model = ConditionalGAN(g, d, latent_dim=4, real_label=0.9, fake_label=0.1,
                               training_ratio=(1, 2), gradient_penalty_weight=1.0, seed=3)
        # SGD for G (a wrong gradient scale shows; Adam would hide it), Adam for D (moments).
        model.compile(keras.optimizers.SGD(0.05, momentum=0.5), keras.optimizers.Adam(1e-3))
        tracked = model.generator.weights + model.discriminator.weights + [model.step_counter]
        result = _fit_tracked(model, tracked, (x, p), initial)
    return (*result, _replicas(scope))


def _tiny_denoiser(condition_dim=2):
    """A dense denoiser with the DDIM dict inputs (the U-Net is slow to compile 4 times)."""
    import keras

    inputs = {
        "noisy_showers": keras.Input((8, 8, 1), name="noisy_showers"),
        "timesteps": keras.Input((1,), name="timesteps"),
        "conditions": keras.Input((condition_dim,), name="conditions"),
        "condition_mask": keras.Input((1,), name="condition_mask"),
    }
    masked = keras.layers.Multiply()([inputs["conditions"], inputs["condition_mask"]])
    t = keras.layers.Rescaling(0.01)(inputs["timesteps"])
    h = keras.layers.Concatenate()([keras.layers.Flatten()(inputs["noisy_showers"]), t, masked])
    h = keras.layers.Dense(16, activation="silu")(h)
    out = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(h))
    return keras.Model(inputs, out, name="tiny_denoiser")


def _ddim(kind, devices, distribution, initial=None):
    import keras
    import numpy as np

    from calozdc.models.ddim import DDIM, NoiseSchedule

    rng = np.random.default_rng(2)
    x = rng.normal(size=(BATCH * STEPS, 8, 8, 1)).astype("float32")
    c = rng.normal(size=(BATCH * STEPS, 2)).astype("float32")
    with distribution.distribution_scope(kind, devices if kind != "none" else None) as scope:
        model = DDIM(_tiny_denoiser(), schedule=NoiseSchedule(num_timesteps=100), p_uncond=0.25,
                     ema_decay=0.9, seed=5)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
        tracked = model.denoiser.weights + model.ema_denoiser.weights + [model.ema_updates]
        result = _fit_tracked(model, tracked, (x, c), initial)
    return (*result, _replicas(scope))


def _flow(kind, devices, distribution, initial=None):
    import keras
    import numpy as np

    from calozdc.models.flow import ConditionalMLP, FlowMatching

    rng = np.random.default_rng(3)
    x = rng.normal(size=(BATCH * STEPS, 8, 8, 1)).astype("float32")
    c = rng.normal(size=(BATCH * STEPS, 3)).astype("float32")  # 2 conditions + log total
    with distribution.distribution_scope(kind, devices if kind != "none" else None) as scope:
        model = FlowMatching(_tiny_denoiser(3), ConditionalMLP(1, 2, width=8, blocks=1),
                             p_uncond=0.25, ema_decay=0.9, total_repeats=4, seed=7)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
        tracked = (model.velocity_network.weights + model.total_network.weights
                   + model.ema_velocity_network.weights + [model.ema_updates])
        result = _fit_tracked(model, tracked, (x, c), initial)
    return (*result, _replicas(scope))


def _vqvae(kind, devices, distribution, initial=None):
    import keras
    import numpy as np

    from calozdc.layers import VectorQuantizerEMA
    from calozdc.models.vqvae import VQVAE, conv_decoder, conv_encoder

    rng = np.random.default_rng(4)
    x = rng.normal(size=(BATCH * STEPS, 8, 8, 1)).astype("float32")
    c = rng.normal(size=(BATCH * STEPS, 2)).astype("float32")
    with distribution.distribution_scope(kind, devices if kind != "none" else None) as scope:
        # restart_after=1: codes unused in step 1 restart in step 2 (random picks of inputs).
        quantizer = VectorQuantizerEMA(8, 3, decay=0.9, restart_after=1, seed=6)
        model = VQVAE(conv_encoder((8, 8, 1), 3, (4,)), conv_decoder((8, 8, 1), 3, 2, (4,)),
                      quantizer=quantizer)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
        tracked = model.encoder.weights + model.decoder.weights + model.quantizer.weights
        result = _fit_tracked(model, tracked, ((x, c),), initial)
    return (*result, _replicas(scope))


def _fit_tracked(model, tracked, inputs, initial):
    """Loads ``initial`` weights (if given) and fits one epoch on ``inputs``.

    Returns ``(start weights, tracked values before, tracked values after, history, paths)``.
    """
    if initial is not None:
        model.set_weights(initial)
    start, before = model.get_weights(), _numpy(tracked)
    history = model.fit(*inputs, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return start, before, _numpy(tracked), history.history, [v.path for v in tracked]


def _replicas(scope):
    if scope is None:
        return 1
    if hasattr(scope, "num_replicas_in_sync"):
        return int(scope.num_replicas_in_sync)
    return int(scope.device_mesh.devices.size)


def main(out_path, devices=8):
    distribution = _setup(devices)
    import keras

    keras.utils.set_random_seed(0)  # the same initial weights on every run of the test
    results = {"devices": distribution.available_devices(), "atol": ATOL, "rtol": RTOL}
    for name, run in (("gan", _gan), ("ddim", _ddim), ("flow", _flow), ("vqvae", _vqvae)):
        initial, before, single, logs_single, paths, _ = run("none", None, distribution)
        _, _, parallel, logs_parallel, _, replicas = run("data-parallel", devices, distribution, initial)
        worst, moved, outside = _compare(single, parallel, before, paths)
        results[name] = {
            "worst_violation": worst,
            "outside_tolerance": outside,
            "max_weight_change": moved,
            "logs_single": logs_single,
            "logs_parallel": logs_parallel,
            "replicas": replicas,
        }
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8)
