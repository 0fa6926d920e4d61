"""calozdc.metrics.evaluate: model and floor compare like with like.

* both comparisons of a metric use the same high-level features (a real sample with
  per-layer sums against generated showers without them);
* the paired floor of ``real_reference`` pairs showers by their conditions, and
  ``n_splits`` repeats the random draws there;
* the classifier AUC is not reported for samples too small for its cross-validation.
"""

import json

import numpy as np
import pytest

from calozdc import metrics as M

DISTRIBUTION = ("w1_channels_mean", "chi2_mean", "fpd", "kpd")
LAYER_FEATURES = ("layer_energy_0", "centroid_depth", "width_depth")


def toy_ecal(n, seed, conditions=None, scale=1.0, n_layers=6):
    """20x20 toy showers (Poisson spot on a flat floor) with per-layer sums and energies."""
    rng = np.random.default_rng(seed)
    if conditions is None:
        conditions = rng.uniform(1e4, 2e4, (n, 1)).astype(np.float32)
    lam = np.full((len(conditions), 20, 20), 1e-4) * conditions[:, :1, None] * scale
    lam[:, 8:12, 8:12] *= 20
    showers = rng.poisson(lam).astype(np.float32)
    depth = rng.dirichlet(np.full(n_layers, 4.0), size=len(conditions))
    layers = (showers.sum(axis=(1, 2))[:, None] * depth).astype(np.float32)
    return {"showers": showers, "conditions": conditions, "layers": layers}


def toy_zn44(n, seed, conditions=None, scale=1.0):
    """Toy ZDC showers for conditions (E, vx, vy); the same conditions give paired samples."""
    rng = np.random.default_rng(seed)
    if conditions is None:
        conditions = np.stack([rng.uniform(10, 100, n), rng.normal(0, 3, n),
                               rng.normal(0, 3, n)], 1).astype(np.float32)
    e, vx, vy = (conditions[:, i].astype(np.float64) for i in range(3))
    c = (np.arange(44) - 21.5) * 1.6
    r2 = (c[None, None, :] - vx[:, None, None]) ** 2 + (c[None, :, None] - vy[:, None, None]) ** 2
    rho = 4 / (r2 + 4) ** 2
    rho /= rho.sum(axis=(1, 2), keepdims=True)
    showers = rng.poisson(rho * (5.0 * scale * e)[:, None, None]).astype(np.float32)
    return {"showers": showers, "conditions": conditions}


def _without(sample, *keys):
    return {k: v for k, v in sample.items() if k not in keys}


# ---------------------------------------------------------------- same features


@pytest.mark.parametrize("generated_lacks", [("layers",), ("layers", "conditions")])
def test_split_halves_floor_uses_the_features_of_the_generated_sample(generated_lacks):
    real = toy_ecal(400, 0)
    # the real showers themselves, without layer sums (and conditions): in split-halves mode
    # model (half A vs generated of half B) and floor (A vs B) compare the very same showers
    gen = _without(real, *generated_lacks)
    res = M.evaluate(real, gen, seed=0)
    json.dumps(res, allow_nan=False)
    for name in DISTRIBUTION:
        m = res["metrics"][name]
        assert m["value"] == pytest.approx(m["floor"], rel=1e-9), (name, m)
    assert res["metrics"]["chi2_mean"]["ratio"] == pytest.approx(1.0)
    info = res["info"]
    for name in LAYER_FEATURES:
        assert name not in info["features"] and name in info["features_dropped"]
        assert f"chi2_{name}" not in res["metrics"]
    assert ("energy_ratio" in info["features"]) == ("conditions" not in generated_lacks)
    assert {f"chi2_{n}" for n in info["features"]} <= set(res["metrics"])
    # the floor alone (data_floor) still uses every real feature unless told otherwise
    floor_all = M.data_floor(real, seed=0)
    assert "chi2_layer_energy_0" in floor_all
    floor_same = M.data_floor(real, seed=0, features=info["features"])
    assert floor_same["fpd"]["value"] == pytest.approx(res["metrics"]["fpd"]["floor"])


def test_reference_floor_uses_the_features_of_the_generated_sample():
    real, ref = toy_ecal(300, 0), toy_ecal(300, 1)
    gen = _without(ref, "layers")  # the reference showers, as a generator would give them
    res = M.evaluate(real, gen, real_reference=ref, paired=False, seed=0)
    for name in DISTRIBUTION:
        m = res["metrics"][name]
        assert m["value"] == pytest.approx(m["floor"], rel=1e-9), (name, m)
    assert "layer_energy_0" in res["info"]["features_dropped"]
    # all three with layer sums: the layer features are used
    full = M.evaluate(real, ref, real_reference=ref, paired=False, seed=0)
    assert "layer_energy_0" in full["info"]["features"] and not full["info"]["features_dropped"]
    assert "chi2_layer_energy_0" in full["metrics"]


def test_common_features_and_mismatched_layers():
    real, gen = toy_ecal(10, 0), toy_ecal(10, 1)
    common, dropped = M.common_features(real, _without(gen, "layers"))
    assert "layer_energy_5" in dropped and "centroid_depth" in dropped
    assert common == tuple(n for n in M.feature_names(real) if n not in dropped)
    assert M.common_features(real, gen) == (M.feature_names(real), ())
    with pytest.raises(ValueError, match=r"different depth.*\[6, 4\]"):
        M.evaluate(real, toy_ecal(10, 1, n_layers=4))
    with pytest.raises(ValueError, match="missing=\\['layer_energy_0'\\]"):
        M.compute_metrics(real, _without(gen, "layers"), features=["energy_total",
                                                                  "layer_energy_0"])


# ---------------------------------------------------------------- reference mode


@pytest.fixture(scope="module")
def zn():
    real = toy_zn44(300, 0)
    same = toy_zn44(300, 1, real["conditions"])  # independent showers, same conditions
    wrong = toy_zn44(300, 2, real["conditions"], scale=1.3)
    other = toy_zn44(300, 3)  # independent showers, other conditions
    return real, same, wrong, other


def _paired_floors(res):
    return {n: res["metrics"][n]["floor"] for n in ("channel_mae", "pixel_rmse")}


def test_reference_paired_floor_pairs_showers_by_conditions(zn):
    real, same, wrong, other = zn
    exact = M.evaluate(real, wrong, real_reference=same)
    assert exact["info"]["paired_floor"] == "exact"
    # the same reference in another order: still shower of the same conditions, same floor
    perm = np.random.default_rng(0).permutation(300)
    shuffled = M.evaluate(real, wrong, real_reference={k: v[perm] for k, v in same.items()})
    assert shuffled["info"]["paired_floor"] == "exact"
    for name, floor in _paired_floors(exact).items():
        assert _paired_floors(shuffled)[name] == pytest.approx(floor), name
    # a reference of other conditions: nearest-condition partners, said so in info
    near = M.evaluate(real, wrong, real_reference=other)
    assert near["info"]["paired_floor"] == "nearest_conditions"
    partner = M.match_conditions(real["conditions"], other["conditions"])
    direct = M.compute_metrics(real, {k: v[partner] for k, v in other.items()}, paired=True,
                               distribution=False)
    by_index = M.compute_metrics(real, other, paired=True, distribution=False)
    for name, floor in _paired_floors(near).items():
        assert floor == pytest.approx(direct[name]["value"]), name
        # above the exact floor (partners differ a little), far below shower k with shower k
        assert _paired_floors(exact)[name] < floor < 0.5 * by_index[name]["value"], name
    # a reference without conditions cannot be paired: no paired floor, no ratio
    bare = M.evaluate(real, wrong, real_reference=other["showers"])
    assert bare["info"]["paired_floor"] == "unavailable"
    assert bare["metrics"]["channel_mae"]["floor"] is None
    assert bare["metrics"]["channel_mae"]["ratio"] is None
    assert bare["metrics"]["w1_channels_mean"]["floor"] is not None
    with pytest.raises(ValueError, match="condition columns"):
        M.evaluate(real, wrong, real_reference={"showers": other["showers"],
                                                "conditions": other["conditions"][:, :2]})


def test_reference_n_splits_repeats_the_random_draws(zn):
    real, same, wrong, _ = zn
    one = M.evaluate(real, wrong, real_reference=same, seed=4)
    three = M.evaluate(real, wrong, real_reference=same, seed=4, n_splits=3)
    assert one["info"]["n_splits"] == 1 and three["info"]["n_splits"] == 3
    draws = [M.evaluate(real, wrong, real_reference=same, seed=4 + 7919 * k)["metrics"]
             for k in range(3)]
    for name in ("fpd", "kpd"):
        for key in ("value", "floor"):
            assert three["metrics"][name][key] == pytest.approx(
                np.mean([d[name][key] for d in draws])), (name, key)
    assert len({d["fpd"]["value"] for d in draws}) == 3  # the draws differ
    # metrics without random draws are computed once, with no error
    for name in ("w1_channels_mean", "chi2_mean", "channel_mae"):
        assert three["metrics"][name] == one["metrics"][name], name
    with pytest.raises(ValueError, match="n_splits=0"):
        M.evaluate(real, wrong, real_reference=same, n_splits=0)


def test_reference_n_splits_gives_the_classifier_an_error(zn):
    real, same, wrong, _ = zn
    sub = [{k: v[:60] for k, v in s.items()} for s in (real, same, wrong)]
    res = M.evaluate(sub[0], sub[2], real_reference=sub[1], classifier=True, n_splits=2)
    auc = res["metrics"]["classifier_auc"]
    assert auc["value"] > 0.7 and auc["error"] is not None and auc["floor_error"] is not None
    assert res["info"]["classifier"] == "computed"


# ---------------------------------------------------------------- classifier sizes


def test_classifier_auc_refuses_samples_too_small_to_split():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(29, 3)), rng.normal(size=(29, 3))
    with pytest.raises(ValueError, match="n_real=29, n_gen=29"):
        M.classifier_auc(a, b + 5.0)  # was 0.477 whatever the samples
    assert "Too few rows" in M.classifier_size_problem(20, 20)
    assert M.classifier_size_problem(30, 30) is None
    assert M.classifier_size_problem(200, 10) is None  # the majority class fills the folds
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    assert M.classifier_auc(a, b + 5.0) > 0.9
    assert M.classifier_auc(a, b) < 0.8


def test_evaluate_skips_the_classifier_on_small_samples_with_a_reason(zn):
    real, _, wrong, _ = zn
    small = [{k: v[:40] for k, v in s.items()} for s in (real, wrong)]
    res = M.evaluate(*small, classifier=True)  # halves of 20 showers
    json.dumps(res, allow_nan=False)
    auc = res["metrics"]["classifier_auc"]
    assert auc["value"] is None and auc["floor"] is None and auc["ratio"] is None
    assert "Too few rows" in auc["note"] and "n_real=20" in auc["note"]
    assert res["info"]["classifier"].startswith("skipped: Too few rows")
    assert res["metrics"]["w1_channels_mean"]["value"] > 0
    assert "classifier_auc n/a" in M.format_table(res)
    assert M.evaluate(*small)["info"]["classifier"] == "not requested"


def test_cli_evaluate_classifier_on_a_small_file(tmp_path, capsys):
    from calozdc.cli import main as cli_main

    real, gen = toy_ecal(40, 0), toy_ecal(40, 1)
    paths = []
    for name, s in (("real", real), ("gen", gen)):
        paths.append(str(tmp_path / f"{name}.npz"))
        np.savez(paths[-1], showers=s["showers"], conditions=real["conditions"])
    out = tmp_path / "out"
    assert cli_main.main(["evaluate", paths[1], "--data", paths[0], "-o", str(out),
                          "--classifier", "-q"]) == 0
    assert "classifier_auc n/a" in capsys.readouterr().out
    results = json.load(open(out / "metrics.json"))
    assert results["metrics"]["classifier_auc"]["value"] is None
    assert results["info"]["classifier"].startswith("skipped")
