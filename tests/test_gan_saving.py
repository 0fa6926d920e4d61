import os

import keras
import numpy as np
import pytest
from _gan_helpers import LATENT, data, dense_networks, weights

from calozdc.models.gan import ConditionalGAN, TwoStepGAN
from calozdc.schedules import CyclicLR


def _opt_values(opt):
    return [keras.ops.convert_to_numpy(v).copy() for v in opt.variables]


def _build(cls=ConditionalGAN, **kwargs):
    g, d = dense_networks()
    model = cls(g, d, LATENT, real_label=0.73, fake_label=0.27, training_ratio=(1, 3),
                seed=5, **kwargs)
    model.compile(keras.optimizers.Adam(CyclicLR(1e-4, 1e-3, 3, mode="triangular2")),
                  keras.optimizers.RMSprop(5e-4))
    return model


@pytest.mark.parametrize("cls, extra", [(ConditionalGAN, {}),
                                        (TwoStepGAN, {"l2_weight": 2.0, "switch_step": 1})])
def test_save_load_restores_everything_and_resumes(tmp_path, cls, extra):
    x, p = data(16)
    model = _build(cls, **extra)
    model.fit(x, p, batch_size=8, epochs=2, verbose=0)
    path = os.path.join(tmp_path, "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls
    # sub-network configs differ only in auto-generated layer names
    skip = ("generator", "discriminator", "name")
    assert ({k: v for k, v in loaded.get_config().items() if k not in skip}
            == {k: v for k, v in model.get_config().items() if k not in skip})
    assert loaded.generator.count_params() == model.generator.count_params()
    # same weights, same generation for a seed
    for a, b in zip(weights(model), weights(loaded)):
        np.testing.assert_array_equal(a, b)
    cond = np.linspace(-1, 1, 4)[:, None]
    np.testing.assert_allclose(loaded.generate(cond, seed=1), model.generate(cond, seed=1),
                               rtol=1e-6, atol=1e-6)
    # both optimizers restored: iterations, moments, schedules
    for name in ("g_optimizer", "d_optimizer"):
        a, b = getattr(model, name), getattr(loaded, name)
        assert type(a) is type(b) and a.get_config() == b.get_config()
        for va, vb in zip(_opt_values(a), _opt_values(b)):
            np.testing.assert_array_equal(va, vb)
    if cls is ConditionalGAN:  # ratio 1:3 over 4 steps: D on steps 0 and 3, G on all
        assert int(keras.ops.convert_to_numpy(loaded.d_optimizer.iterations)) == 2
        assert int(keras.ops.convert_to_numpy(loaded.g_optimizer.iterations)) == 4
    # resuming: one more step on the same batch gives the same result as the original
    model.train_on_batch(x[:8], p[:8])
    loaded.train_on_batch(x[:8], p[:8])
    for a, b in zip(weights(model) + _opt_values(model.g_optimizer),
                    weights(loaded) + _opt_values(loaded.g_optimizer)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_transforms_saved_with_model(tmp_path):
    from calozdc.data import transforms

    rng = np.random.default_rng(0)
    showers = rng.poisson(3.0, size=(16, 20, 20, 1)).astype("float32")
    energies = rng.uniform(10, 100, size=(16, 1)).astype("float32")
    st = transforms.Chain([transforms.Log1p(), transforms.Standardize()]).fit(showers)
    ct = transforms.Standardize().fit(energies)
    g, d = dense_networks()
    model = ConditionalGAN(g, d, LATENT, shower_transform=st, condition_transform=ct, seed=1)
    model.compile("adam", "adam")
    model.fit(st.forward(showers), ct.forward(energies), batch_size=8, epochs=1, verbose=0)
    out = model.generate(energies[:3], seed=0)
    assert out.shape == (3, 20, 20, 1) and out.min() >= 0.0
    # physical units: undo the chain by hand
    z = np.random.default_rng(0).standard_normal((3, LATENT)).astype("float32")
    u = keras.ops.convert_to_numpy(model([z, ct.forward(energies[:3]).astype("float32")]))
    np.testing.assert_allclose(out, np.clip(st.inverse(u), 0, None), rtol=1e-5, atol=1e-5)
    path = os.path.join(tmp_path, "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert transforms.serialize(loaded.shower_transform) == transforms.serialize(st)
    assert transforms.serialize(loaded.condition_transform) == transforms.serialize(ct)
    np.testing.assert_allclose(loaded.generate(energies[:3], seed=0), out, rtol=1e-5, atol=1e-5)
