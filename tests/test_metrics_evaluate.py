"""calozdc.metrics.evaluate / data_floor / write_report: floors, ratios, files."""

import json
import os

import numpy as np
import pytest

from calozdc import metrics as M
from calozdc.data import ShowerDataset, simulate


def toy_zn44(n, seed, conditions=None, scale=1.0):
    """Toy ZDC showers for given conditions (E, vx, vy): Poisson photons of a core+tail spot.

    Calling it twice with the same conditions gives two independent "real" samples of the
    same physics, paired shower by shower.
    """
    rng = np.random.default_rng(seed)
    if conditions is None:
        conditions = np.stack([rng.uniform(10, 100, n), rng.normal(0, 3, n),
                               rng.normal(0, 3, n)], 1).astype(np.float32)
    e, vx, vy = (conditions[:, i].astype(np.float64) for i in range(3))
    c = (np.arange(44) - 21.5) * 1.6
    r2 = (c[None, None, :] - vx[:, None, None]) ** 2 + (c[None, :, None] - vy[:, None, None]) ** 2
    rho = 0.8 * 4 / (r2 + 4) ** 2 + 0.2 * 64 / (r2 + 64) ** 2
    rho /= rho.sum(axis=(1, 2), keepdims=True)
    showers = rng.poisson(rho * (5.0 * scale * e)[:, None, None]).astype(np.float32)
    return {"showers": showers, "conditions": conditions}


@pytest.fixture(scope="module")
def toy():
    real = toy_zn44(1200, 0)
    same = toy_zn44(1200, 1, real["conditions"])
    wrong = toy_zn44(1200, 2, real["conditions"], scale=1.2)
    return real, same, wrong, {
        "same": M.evaluate(real, same, seed=0),
        "wrong": M.evaluate(real, wrong, seed=0),
    }


HEADLINE = ("w1_channels_mean", "channel_mae", "pixel_rmse", "chi2_mean", "fpd", "kpd")


def test_every_metric_has_a_floor_and_a_ratio(toy):
    results = toy[3]["same"]
    json.dumps(results, allow_nan=False)  # strict JSON
    assert set(HEADLINE) <= set(results["metrics"])
    assert {f"w1_channel_{c}" for c in range(1, 6)} <= set(results["metrics"])
    for name, m in results["metrics"].items():
        assert m["floor"] is not None, name
        assert m["ratio"] is not None, name
        assert m["description"], name
    info = results["info"]
    assert info["floor_method"] == "split_halves" and info["n_compared"] == 600
    assert info["paired"] and info["paired_floor"] == "nearest_conditions"
    assert info["geometry"] == "zn44"


def test_second_real_sample_scores_like_the_floor(toy):
    m = toy[3]["same"]["metrics"]
    for name in ("w1_channels_mean", "chi2_mean", "channel_mae", "pixel_rmse"):
        assert 0.6 < m[name]["ratio"] < 1.5, (name, m[name])
    for name in ("fpd", "kpd"):  # floors ~0: ratio in units of the floor's error
        assert m[name]["ratio"] < 4.0, (name, m[name])


def test_wrong_generator_scores_clearly_above_the_floor(toy):
    same, wrong = toy[3]["same"]["metrics"], toy[3]["wrong"]["metrics"]
    assert wrong["w1_channels_mean"]["ratio"] > 3.0
    assert wrong["chi2_mean"]["ratio"] > 2.0
    assert wrong["fpd"]["ratio"] > 10.0 and wrong["kpd"]["ratio"] > 10.0
    assert wrong["channel_mae"]["ratio"] > 1.2
    for name in HEADLINE:
        assert wrong[name]["value"] > same[name]["value"], name
    # the floor does not depend on the generator
    assert wrong["fpd"]["floor"] == same["fpd"]["floor"]


def test_reference_sample_gives_the_exact_floor(toy):
    real, same, wrong, _ = toy
    res = M.evaluate(real, wrong, real_reference=same, seed=1)
    assert res["info"]["floor_method"] == "reference" and res["info"]["paired_floor"] == "exact"
    direct = M.compute_metrics(real, same, seed=1)
    for name, m in res["metrics"].items():
        assert m["floor"] == pytest.approx(direct[name]["value"]), name
    assert res["metrics"]["w1_channels_mean"]["value"] == pytest.approx(
        M.wasserstein_channels(real["showers"], wrong["showers"])[0])


def test_per_feature_frechet_terms_point_at_the_feature_that_differs(toy):
    """``fd_<feature>``: the 1-D Fréchet term of each FPD feature, with its floor; a
    generator right in everything but one feature has its largest term on that feature."""
    real, same, wrong, results = toy
    features = results["same"]["info"]["features"]
    m = results["same"]["metrics"]
    assert {f"fd_{n}" for n in features} <= set(m)
    # the formula, by hand, on the FPD's scaling (max |real| of each feature)
    from calozdc.metrics.evaluate import feature_table

    f_r = feature_table(M.as_sample(real), features)
    f_s = feature_table(M.as_sample(same), features)
    j = features.index("energy_total")
    scale = np.abs(f_r[:, j]).max()
    x, y = f_r[:, j] / scale, f_s[:, j] / scale
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    direct = M.compute_metrics(real, same, seed=0)
    assert direct["fd_energy_total"]["value"] == pytest.approx(expected, rel=1e-9)
    assert M.frechet_distance_1d(x, x) == 0.0
    # the wrong generator (energy x1.2, same shapes): its largest term is an energy feature,
    # far above its floor; the second real sample stays near the floor
    top = M.largest_feature_terms(results["wrong"], k=1)[0]
    assert "energy" in top[0] or "channel" in top[0], top
    assert top[2] > 10.0
    assert results["wrong"]["metrics"]["fd_energy_total"]["ratio"] > 10.0
    assert m["fd_energy_total"]["ratio"] < 5.0
    with pytest.raises(ValueError, match="at least 2"):
        M.frechet_distance_1d([1.0], [1.0, 2.0])


def test_data_floor_is_computed_between_disjoint_halves(toy):
    real = toy[0]
    floor = M.data_floor(real, seed=3)
    a, b = M.split_halves(len(real["showers"]), seed=3)
    assert len(np.intersect1d(a, b)) == 0 and len(a) == len(b) == 600
    w1, _ = M.wasserstein_channels(real["showers"][a], real["showers"][b])
    assert floor["w1_channels_mean"]["value"] == pytest.approx(w1)
    assert "channel_mae" in floor and "pixel_rmse" in floor
    no_cond = M.data_floor(real["showers"][:200], seed=3)  # no conditions: no paired floor
    assert "channel_mae" not in no_cond and "w1_channels_mean" in no_cond


def test_built_in_ecal20_second_sample_vs_scaled_energies():
    kw = {"particles": "e-", "energy_range": (2e4, 4e4)}
    real = simulate("ecal20", 2000, seed=1, **kw)
    other = simulate("ecal20", 2000, seed=2, **kw)
    scaled = ShowerDataset(other.showers * 1.2, other.conditions, layers=other.layers * 1.2,
                           geometry="ecal20")
    good = M.evaluate(real, other, paired=False)["metrics"]
    bad = M.evaluate(real, scaled, paired=False)["metrics"]
    assert "channel_mae" not in good  # different conditions: no paired metrics
    assert "chi2_layer_energy_0" in good and "chi2_centroid_depth" in good
    # one W1 of 1000 vs 1000 showers fluctuates by tens of %; the mean chi^2 much less
    assert 0.3 < good["w1_channels_mean"]["ratio"] < 2.5
    assert 0.8 < good["chi2_mean"]["ratio"] < 1.25
    assert good["fpd"]["ratio"] < 4.0 and abs(good["kpd"]["ratio"]) < 5.0
    assert bad["w1_channels_mean"]["ratio"] > 5.0 and bad["chi2_mean"]["ratio"] > 2.0
    assert bad["fpd"]["ratio"] > 10.0 and bad["kpd"]["ratio"] > 10.0
    # averaging over several half-splits steadies the ratios and gives W1 an error
    steady = M.evaluate(real, other, paired=False, n_splits=3)
    w1 = steady["metrics"]["w1_channels_mean"]
    assert steady["info"]["n_splits"] == 3
    assert 0.6 < w1["ratio"] < 1.6 and 0 < w1["error"] < w1["value"]
    assert 0 < w1["floor_error"] < w1["floor"]
    with pytest.raises(ValueError, match="n_splits"):
        M.evaluate(real, other, paired=False, n_splits=0)


def test_classifier_auc_optional(toy):
    real, same, wrong, _ = toy
    sub = {k: v[:400] for k, v in real.items()}
    res = M.evaluate(sub, {k: v[:400] for k, v in wrong.items()}, classifier=True)
    auc = res["metrics"]["classifier_auc"]
    assert auc["value"] > 0.8 and abs(auc["floor"] - 0.5) < 0.15


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="shape"):
        M.evaluate(np.zeros((10, 44)), np.zeros((10, 44)))
    with pytest.raises(ValueError, match="Paired"):
        M.evaluate(np.ones((10, 20, 20)), np.ones((8, 20, 20)), paired=True)
    with pytest.raises(ValueError, match="geometry"):
        M.evaluate(np.ones((10, 20, 20)), np.ones((10, 20, 20)), geometry="zn44")
    with pytest.raises(ValueError, match="conditions"):
        M.as_sample((np.ones((10, 20, 20)), np.ones((9, 1))))


def test_write_report_files_atomic_and_no_silent_overwrite(toy, tmp_path):
    real, same, _, results = toy
    sub_r = {k: v[:300] for k, v in real.items()}
    sub_g = {k: v[:300] for k, v in same.items()}
    res = M.evaluate(sub_r, sub_g)
    out = tmp_path / "report"
    paths = M.write_report(res, sub_r, sub_g, out)
    assert sorted(os.listdir(out)) == ["metrics.json", "report.png"]
    with open(paths["report"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    saved = json.load(open(paths["metrics"]))
    assert saved == res
    assert all("floor" in m for m in saved["metrics"].values())
    before = open(paths["metrics"]).read()
    with pytest.raises(FileExistsError, match="overwrite"):
        M.write_report(results["same"], sub_r, sub_g, out)
    assert open(paths["metrics"]).read() == before
    M.write_report(results["same"], sub_r, sub_g, out, overwrite=True)
    assert json.load(open(paths["metrics"])) == results["same"]
    assert sorted(os.listdir(out)) == ["metrics.json", "report.png"]  # no temp files left
    table = M.format_table(res)
    assert "floor" in table and "w1_channels_mean" in table
