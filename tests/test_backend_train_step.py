import keras
import numpy as np
from _gan_helpers import LATENT, data, dense_networks

from calozdc.backend.gradients import input_value_and_grad
from calozdc.models.gan import ConditionalGAN


def test_input_gradient_of_linear_function_is_its_weights():
    w = np.arange(1, 7, dtype="float32").reshape(2, 3) / 10.0
    x = np.random.default_rng(0).normal(size=(4, 2, 3)).astype("float32")
    wt = keras.ops.convert_to_tensor(w)

    def fn(t):
        return keras.ops.sum(t * wt, axis=(1, 2)) + 2.0

    y, grad = input_value_and_grad(fn, keras.ops.convert_to_tensor(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), (x * w).sum((1, 2)) + 2, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(grad), np.broadcast_to(w, x.shape),
                               rtol=1e-6)


def test_input_gradient_matches_finite_differences():
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float64")

    def f_np(v):
        return np.tanh(v).sum(1) * np.sin(v[:, :1]).sum(1)

    def fn(t):
        return keras.ops.sum(keras.ops.tanh(t), axis=1) * keras.ops.sin(t[:, 0])

    _, grad = input_value_and_grad(fn, keras.ops.convert_to_tensor(x.astype("float32")))
    grad = keras.ops.convert_to_numpy(grad)
    eps = 1e-6
    fd = np.zeros_like(x)
    for j in range(x.shape[1]):
        step = np.zeros_like(x)
        step[:, j] = eps
        fd[:, j] = (f_np(x + step) - f_np(x - step)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-5)


def test_validation_data_uses_test_step_without_updates():
    x, p = data(16)
    gan = ConditionalGAN(*dense_networks(), LATENT, seed=0)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    history = gan.fit(x, p, batch_size=8, epochs=1, validation_data=(x[:8], p[:8]), verbose=0)
    for key in ("val_d_loss", "val_g_loss", "val_d_real", "val_d_fake"):
        assert np.isfinite(history.history[key][0])
    before = [keras.ops.convert_to_numpy(v).copy() for v in gan.trainable_variables]
    iters = int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations))
    logs = gan.evaluate(x, p, batch_size=8, return_dict=True, verbose=0)
    assert logs["d_loss"] > 0
    after = [keras.ops.convert_to_numpy(v) for v in gan.trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations)) == iters


def test_mixed_float16_scales_both_losses():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        g, d = dense_networks()
        gan = ConditionalGAN(g, d, LATENT, seed=0)
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    finally:
        keras.config.set_dtype_policy(policy)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    x, p = data(8)
    before = [keras.ops.convert_to_numpy(v).copy() for v in gan.generator.trainable_variables]
    logs = gan.train_on_batch(x, p, return_dict=True)
    assert np.isfinite(logs["g_loss"]) and np.isfinite(logs["d_loss"])
    after = [keras.ops.convert_to_numpy(v) for v in gan.generator.trainable_variables]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations)) == 1
