"""calozdc.metrics: ZDC metrics, histograms, features, FPD/KPD, classifier AUC (numpy)."""

import warnings

import numpy as np
import pytest
from scipy import linalg, optimize, stats

from calozdc import metrics as M
from calozdc.data import ZN44


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- ZDC channels


def _hand_channel_sums(image):
    """The ALICE ZN readout written out: ch5 (i+j) odd; ch1-4 (i+j) even by quadrant."""
    sums = [0.0] * 5
    for i in range(44):
        for j in range(44):
            if (i + j) % 2:
                sums[4] += image[i, j]
            else:
                sums[(2 if i >= 22 else 0) + (1 if j >= 22 else 0)] += image[i, j]
    return sums


def test_channel_sums_of_hand_made_images():
    ones = np.ones((1, 44, 44))
    np.testing.assert_array_equal(M.channel_sums(ones)[0], [242, 242, 242, 242, 968])
    np.testing.assert_array_equal(M.channel_sums(ones)[0], ZN44().channel_masks().sum((1, 2)))
    img = np.arange(44 * 44, dtype=np.float64).reshape(44, 44)
    img[3, 30] = 1e6  # (3+30) odd -> channel 5
    img[40, 2] = 5e5  # even, bottom-left -> channel 3
    got = M.channel_sums(img[None, ..., None])[0]
    np.testing.assert_allclose(got, _hand_channel_sums(img))
    np.testing.assert_allclose(M.channel_sums(img[None], "zn44").sum(), img.sum())
    assert M.channel_sums(np.ones((2, 20, 20)), "ecal20").shape == (2, 1)
    with pytest.raises(ValueError, match="masks"):
        M.channel_sums(np.ones((2, 20, 20)), "zn44")


def test_wasserstein_identical_zero_shift_equals_c_and_matches_scipy():
    rng = _rng(1)
    sums = rng.gamma(2.0, 50.0, (500, 5))
    np.testing.assert_array_equal(M.wasserstein_per_channel(sums, sums), 0.0)
    shift = np.array([1.0, 2.5, 0.0, 7.0, 3.0])
    np.testing.assert_allclose(M.wasserstein_per_channel(sums, sums + shift), shift, atol=1e-9)
    other = rng.gamma(2.2, 50.0, (300, 5))
    np.testing.assert_allclose(
        M.wasserstein_per_channel(sums, other),
        [stats.wasserstein_distance(sums[:, c], other[:, c]) for c in range(5)])
    # on showers: adding c to every fibre shifts channel i by c * |mask_i|
    showers = rng.poisson(1.0, (50, 44, 44)).astype(np.float32)
    mean, per = M.wasserstein_channels(showers, showers + 0.5)
    np.testing.assert_allclose(per, 0.5 * ZN44().channel_masks().sum((1, 2)), rtol=1e-6)
    assert mean == pytest.approx(per.mean())


def test_channel_mae_and_pixel_rmse_follow_eqs_4_3_and_4_4():
    rng = _rng(2)
    x = rng.poisson(2.0, (7, 44, 44)).astype(np.float32)
    y = rng.poisson(2.0, (7, 44, 44, 1)).astype(np.float32)
    w, w_hat = M.channel_sums(x), M.channel_sums(y)
    mae = np.mean([np.mean(np.abs(w[k] - w_hat[k])) for k in range(7)])
    assert M.channel_mae(x, y) == pytest.approx(mae)
    rmse = np.sqrt(np.mean([np.mean((x[k] - y[k, ..., 0]) ** 2.0) for k in range(7)]))
    assert M.pixel_rmse(x, y) == pytest.approx(rmse)
    assert M.channel_mae(x, x) == 0.0 and M.pixel_rmse(x, x) == 0.0
    with pytest.raises(ValueError, match="Paired"):
        M.pixel_rmse(x, y[:3])


# ---------------------------------------------------------------- histograms


def test_separation_power_bounds_and_values():
    assert M.separation_power([1, 2, 3], [2, 4, 6]) == 0.0  # normalised first
    assert M.separation_power([1, 0, 0], [0, 0, 5]) == pytest.approx(1.0)
    assert M.separation_power([1, 1], [1, 0]) == pytest.approx(0.5 * (0.5**2 / 1.5 + 0.5**2 / 0.5))
    rng = _rng(3)
    for _ in range(50):
        a, b = rng.integers(0, 10, (2, 12))
        a[0] += 1
        b[1] += 1
        assert 0.0 <= M.separation_power(a, b) <= 1.0
    x = rng.normal(size=5000)
    assert M.histogram_separation(x, x) == 0.0
    # all generated values clipped into the last bin, which holds ~1/5000 of the real ones
    assert M.histogram_separation(x, x + 100.0) > 0.999
    near, far = M.histogram_separation(x, x + 0.1), M.histogram_separation(x, x + 1.0)
    assert 0 < near < far < 1
    with pytest.raises(ValueError, match="empty"):
        M.separation_power([0, 0], [1, 1])


# ---------------------------------------------------------------- features


def test_high_level_features_of_hand_made_showers():
    geo = ZN44(n_layers=4)
    s = np.zeros((3, 44, 44), np.float32)
    s[0, 10, 30] = 5.0  # one hot cell
    s[1, 22, 22] = 1.0  # two equal cells two columns apart
    s[1, 22, 24] = 1.0
    layers = np.array([[0, 5, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], np.float32)
    cond = np.array([[10.0], [4.0], [1.0]])
    names, f = M.high_level_features((s, cond, layers), geometry=geo)
    col = {n: f[:, i] for i, n in enumerate(names)}
    xs, ys = geo.cell_centres_mm()
    np.testing.assert_allclose(col["energy_total"], [5, 2, 0])
    np.testing.assert_allclose(col["energy_ratio"], [0.5, 0.5, 0.0])
    assert (col["centroid_x"][0], col["centroid_y"][0]) == pytest.approx((xs[30], ys[10]))
    assert col["width_x"][0] == pytest.approx(0, abs=1e-12)
    assert col["width_y"][0] == pytest.approx(0, abs=1e-12)
    assert col["centroid_x"][1] == pytest.approx(xs[23])
    assert col["width_x"][1] == pytest.approx(1.6)
    assert col["width_y"][1] == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(col["sparsity"], [1 / 1936, 2 / 1936, 0])
    np.testing.assert_allclose(col["max_cell_fraction"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(col["centroid_depth"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(col["width_depth"], [0.0, 0.5, 0.0])
    np.testing.assert_allclose(col["layer_energy_1"], [5, 1, 0])
    # (10, 30): row + col even, top-right quadrant -> channel 2
    np.testing.assert_allclose(col["channel_2"], [5, 0, 0])
    np.testing.assert_allclose(col["channel_4"], [0, 2, 0])  # (22, 22), (22, 24)
    assert np.isfinite(f).all()


def test_radial_profile_sums_to_one_and_is_centred():
    s = np.zeros((2, 20, 20), np.float32)
    s[0, 5, 5] = 3.0
    s[1, 10, 10] = 1.0
    s[1, 10, 11] = 1.0
    edges, prof = M.radial_profile(s, geometry="ecal20", bin_edges_mm=[0, 1, 5, 1000])
    np.testing.assert_allclose(prof, [0.5, 0.5, 0.0])  # both cells 4.5 mm from centroid


# ---------------------------------------------------------------- FPD / KPD


def _jetnet_fpd(x, y, min_samples, max_samples, num_batches, num_points, seed):
    """jetnet 0.2.5's FPD loop written out (np.cov + scipy sqrtm) as the reference."""
    scale = np.max(np.abs(x), axis=0)
    scale[scale == 0] = 1
    x, y = x / scale, y / scale
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for size in sizes:
        batch = []
        for _ in range(num_batches):
            a, b = x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)]
            s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
            covmean = linalg.sqrtm(s1 @ s2).real
            d = a.mean(0) - b.mean(0)
            batch.append(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
        vals.append(np.mean(batch))
    p, c = optimize.curve_fit(lambda t, i, s: i + s * t, 1 / sizes, vals,
                              bounds=([0, 0], [np.inf, np.inf]))
    return p[0], np.sqrt(c[0, 0])


def _direct_mmd(x, y, degree):
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** degree, (y @ y.T / d + 1) ** degree,
                     (x @ y.T / d + 1) ** degree)
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def test_frechet_distance_analytic():
    assert M.frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + (2 - 1) ** 2)
    rng = _rng(4)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T
    assert M.frechet_distance(np.ones(4), cov, np.ones(4), cov) == pytest.approx(0.0, abs=1e-9)
    # commuting diagonal covariances: sum (s1 - s2)^2
    got = M.frechet_distance(np.zeros(3), np.diag([1, 4, 9.0]), np.ones(3), np.diag([4, 4, 1.0]))
    assert got == pytest.approx(3 + 1 + 0 + 4)


def test_fpd_matches_jetnet_definition_and_analytic_gaussians():
    rng = _rng(5)
    x = rng.gamma(2.0, size=(1500, 4))
    y = rng.gamma(2.3, size=(1200, 4)) * 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = M.fpd(x, y, min_samples=300, max_samples=1000, num_batches=4, num_points=5, seed=7)
    ref = _jetnet_fpd(x, y, 300, 1000, 4, 5, seed=7)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    # Gaussians: FPD (no normalisation) -> analytic |mu|^2 + sum (1 - s)^2
    mu, s = np.array([0.3, -0.2, 0.0]), np.array([1.0, 1.5, 0.7])
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * s + mu
    analytic = mu @ mu + np.sum((1 - s) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, err = M.fpd(a, b, min_samples=4000, max_samples=20000, num_batches=5,
                           normalise=False)
        same, same_err = M.fpd(a, rng.normal(size=(20000, 3)), min_samples=4000,
                               max_samples=20000, num_batches=5, normalise=False)
    assert value == pytest.approx(analytic, rel=0.05)
    assert same < 0.01 * analytic and same < 3 * same_err + 1e-3


def test_mmd_and_kpd():
    rng = _rng(6)
    x, y = rng.normal(size=(120, 5)), rng.normal(size=(90, 5)) + 0.2
    for degree in (1, 2, 3, 4, 5):
        assert M.mmd_poly_unbiased(x, y, degree) == pytest.approx(_direct_mmd(x, y, degree),
                                                                 rel=1e-9)
    wide = rng.normal(size=(40, 30))  # d large: the Gram-matrix route
    assert M.mmd_poly_unbiased(wide, wide[::-1] + 0.1) == pytest.approx(
        _direct_mmd(wide, wide[::-1] + 0.1, 4), rel=1e-9)
    # KPD: unbiased -> ~0 within its error for one distribution, large for a shifted one
    a, b = rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4))
    same, same_err = M.kpd(a, b, batch_size=1000)
    shifted, _ = M.kpd(a, b + 0.3, batch_size=1000)
    assert abs(same) < 3 * same_err + 1e-6
    assert shifted > 20 * max(abs(same), same_err)
    # same draws as jetnet: median of the per-batch direct estimates
    an, bn = M.normalise_features(a, b + 0.3)
    vals = []
    for i in range(10):
        r = np.random.default_rng(42 + 1000 * i)
        vals.append(_direct_mmd(an[r.choice(4000, 1000)], bn[r.choice(4000, 1000)], 4))
    assert shifted == pytest.approx(np.median(vals), rel=1e-8)
    with pytest.raises(ValueError, match="Feature counts"):
        M.kpd(a, b[:, :3])


# ---------------------------------------------------------------- classifier


def test_classifier_auc_half_for_same_and_one_for_separated():
    rng = _rng(7)
    a, b = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    assert abs(M.classifier_auc(a, b) - 0.5) < 0.1
    assert M.classifier_auc(a, b + 3.0) > 0.98
