"""The energy/shape factorisation shared by the GAN, two-step GAN, VQ generator and DDIM."""

import os

import keras
import numpy as np
import pytest

from calozdc.models.gan.builders import build_conditional_gan
from calozdc.models.gan.builders import default_transforms as gan_transforms
from calozdc.models.total_energy import TotalEnergyMixin, build_total_model

IMAGE = (12, 12, 1)


def _response_data(n=600, seed=0):
    """Showers whose total is 6 E with a log-normal spread of 0.2 (wider at low E: 0.1 +
    0.3 * (1 - u) with u the energy's position in [10, 200]), spread over a random shape."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(10.0, 200.0, n).astype("float32")
    u = (energy - 10.0) / 190.0
    totals = 6.0 * energy * np.exp((0.1 + 0.3 * (1 - u)) * rng.standard_normal(n))
    shape = rng.random((n,) + IMAGE) ** 4
    shape /= shape.reshape(n, -1).sum(axis=1)[:, None, None, None]
    conditions = np.stack([energy, rng.normal(size=n)], axis=1).astype("float32")
    return (shape * totals[:, None, None, None]).astype("float32"), conditions, totals


def _gan(x, c, seed=0, **kwargs):
    shower_t, cond_t = gan_transforms()
    shower_t.fit(x, conditions=c)
    cond_t.fit(c)
    return build_conditional_gan(IMAGE, c.shape[1], latent_dim=4, hidden_dim=4,
                                 shower_transform=shower_t, condition_transform=cond_t,
                                 seed=seed, **kwargs)


class _Owner(TotalEnergyMixin):
    """The mixin alone (conditions already in model space)."""

    condition_transform = None

    def __init__(self, condition_dim, seed=0):
        self._set_total_model(build_total_model(condition_dim, seed=seed))


def test_total_model_learns_response_and_resolution_per_energy():
    # 3,000 showers: ~1,000 per bin, so the means of the real and generated samples each
    # carry ~1.5 % statistical error and a 6 % tolerance is ~3 sigma
    x, c, totals = _response_data(n=3000)
    conditions = np.stack([np.log(c[:, 0]), c[:, 1]], axis=1)  # the model space it sees
    keras.utils.set_random_seed(0)
    owner = _Owner(2)
    assert not owner.totals_fitted
    owner.fit_totals(x, conditions, steps=1200)
    assert owner.totals_fitted
    generated = owner.generate_totals(conditions, seed=0)
    assert generated.shape == (len(x),) and np.all(generated > 0)
    energy = c[:, 0]
    for lo, hi in ((10, 60), (60, 130), (130, 200)):
        sel = (energy >= lo) & (energy < hi)
        real_r, gen_r = totals[sel] / energy[sel], generated[sel] / energy[sel]
        assert gen_r.mean() == pytest.approx(real_r.mean(), rel=0.06), (lo, hi)
        # the resolution falls with energy in the data; the model must follow it per bin
        assert gen_r.std() / gen_r.mean() == pytest.approx(real_r.std() / real_r.mean(),
                                                           rel=0.25), (lo, hi)


def test_generated_showers_are_scaled_to_generated_totals_and_keep_their_shape():
    x, c, _ = _response_data(n=64)
    keras.utils.set_random_seed(0)
    gan = _gan(x, c)
    before = gan.generate(c[:16], seed=3)  # total model not fitted: the image's own totals
    gan.fit_totals(x, c, steps=30, batch_size=64)
    after = gan.generate(c[:16], seed=3)
    totals = gan.generate_totals(c[:16], seed=4)  # generate draws the totals from seed + 1
    np.testing.assert_allclose(after.reshape(16, -1).sum(axis=1), totals, rtol=1e-4)
    # the shape (each image over its sum) is the generator's, untouched
    norm = lambda s: s / s.reshape(len(s), -1).sum(axis=1)[:, None, None, None]  # noqa: E731
    np.testing.assert_allclose(norm(after), norm(before), rtol=1e-4, atol=1e-7)


def test_unfitted_or_absent_total_model_leaves_generate_unchanged():
    x, c, _ = _response_data(n=32)
    keras.utils.set_random_seed(1)
    with_model = _gan(x, c, seed=1)
    keras.utils.set_random_seed(1)
    without = _gan(x, c, seed=1, total_energy=False)
    assert without.total_model is None and with_model.total_model is not None
    np.testing.assert_array_equal(with_model.generate(c[:8], seed=2),
                                  without.generate(c[:8], seed=2))
    with pytest.raises(ValueError, match="not fitted"):
        with_model.generate_totals(c[:8])
    with pytest.raises(ValueError, match="total_model=None"):
        without.fit_totals(x, c)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"steps": 2.5}, {"batch_size": 0}])
def test_fit_totals_rejects_bad_options(bad):
    x, c, _ = _response_data(n=16)
    with pytest.raises(ValueError, match=next(iter(bad))):
        _gan(x, c).fit_totals(x, c, **bad)


def test_fit_totals_rejects_empty_showers_and_length_mismatch():
    x, c, _ = _response_data(n=16)
    gan = _gan(x, c)
    with pytest.raises(ValueError, match="positive total"):
        gan.fit_totals(np.zeros_like(x), c)
    with pytest.raises(ValueError, match="same length"):
        gan.fit_totals(x, c[:5])


def test_fitted_total_model_survives_saving(tmp_path):
    x, c, _ = _response_data(n=64)
    gan = _gan(x, c, seed=2)
    gan.fit_totals(x, c, steps=20, batch_size=64)
    path = os.path.join(tmp_path, "gan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.totals_fitted
    np.testing.assert_allclose(loaded.generate(c[:8], seed=5), gan.generate(c[:8], seed=5),
                               rtol=1e-5, atol=1e-6)


def test_zero_level_calibrated_to_the_real_occupancy(tmp_path):
    x, c, _ = _response_data(n=64)
    x[:, 6:] = 0.0  # half the cells empty, as in a calorimeter; a softplus GAN fills them all
    gan = _gan(x, c, seed=3)
    with pytest.raises(ValueError, match="fit_totals"):
        gan.calibrate_zero_level(x, c)
    gan.fit_totals(x, c, steps=20, batch_size=64)
    assert np.mean(gan.generate(c, seed=1) > 0) > 0.9
    fraction = gan.calibrate_zero_level(x, c, n=32, seed=1)
    assert 0.0 < fraction < 1.0 and gan.zero_fraction == fraction
    rows = np.sort(np.random.default_rng(1).permutation(len(x))[:32])
    generated = gan.generate(c[rows], seed=1)
    assert np.mean(generated > 0) == pytest.approx(np.mean(x[rows] > 0), abs=0.02)
    # the cut cells' energy goes to the others: the totals are still the total model's
    np.testing.assert_allclose(generated.reshape(32, -1).sum(axis=1),
                               gan.generate_totals(c[rows], seed=2), rtol=1e-4)
    path = os.path.join(tmp_path, "gan.keras")
    gan.save(path)
    assert keras.saving.load_model(path).zero_fraction == fraction
    with pytest.raises(ValueError, match="zero_fraction"):
        _gan(x, c).__class__.from_config({**gan.get_config(), "zero_fraction": 1.5})


def test_image_model_training_leaves_the_fitted_total_model_alone():
    x, c, _ = _response_data(n=32)
    gan = _gan(x, c)
    gan.fit_totals(x, c, steps=3, batch_size=32)
    before = [np.array(v) for v in gan.total_model.weights]
    shower_t, cond_t = gan.shower_transform, gan.condition_transform
    gan.fit(shower_t.forward(x, c), cond_t.forward(c), batch_size=16, epochs=1, verbose=0)
    after = [np.array(v) for v in gan.total_model.weights]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_zero_level_never_empties_a_shower():
    owner = _Owner(2)
    owner.zero_fraction = 0.5
    flat = np.full((2, 4, 4, 1), 1.0)  # every cell 1/16 of the sum: all below 0.5
    peaked = flat.copy()
    peaked[1, 0, 0, 0] = 100.0  # one cell above half of the sum
    out = owner._cut_zero_level(peaked)
    np.testing.assert_array_equal(out[0], flat[0])  # kept whole, not emptied
    assert np.count_nonzero(out[1]) == 1 and out[1, 0, 0, 0] == 100.0
