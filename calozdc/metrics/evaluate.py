"""Evaluate generated showers against real ones, always beside the data-vs-data floor.

Every metric is computed twice: model vs real, and real vs real (the *floor*: two
independent real samples of the same size, the best any generator can score with this
many showers; ALICE ZDC Table 4.7 lists GEANT vs GEANT as 0.53 for the channel W1). The
report gives value, floor and ratio = value / floor for each.
"""

import math
import warnings

import numpy as np
from scipy import spatial

from calozdc.metrics.classifier import classifier_auc, classifier_size_problem
from calozdc.metrics.distances import fpd, frechet_distance_1d, kpd, normalise_features
from calozdc.metrics.features import common_features, high_level_features
from calozdc.metrics.histograms import histogram_separation
from calozdc.metrics.sample import as_sample
from calozdc.metrics.zdc import channel_mae, channel_sums, pixel_rmse, wasserstein_per_channel
from calozdc.utils.progress import progress

#: Human-readable meaning of each metric (shown by ``calozdc evaluate --help``).
METRIC_DESCRIPTIONS = {
    "w1_channels_mean": "mean over readout channels of the Wasserstein-1 distance between real "
    "and generated channel-sum distributions (ALICE ZDC figure of merit, arXiv:2407.16704 "
    "eq. 4.2), in response units (photons for zn44); lower is better",
    "w1_channel_<c>": "Wasserstein-1 distance of the channel-<c> sums; lower is better",
    "channel_mae": "mean absolute error of the channel sums of paired showers (same "
    "conditions; eq. 4.3); lower is better",
    "pixel_rmse": "pixel-wise RMSE of paired showers (eq. 4.4); lower is better",
    "chi2_<feature>": "chi^2 separation power 1/2 sum (h1-h2)^2/(h1+h2) of the normalised "
    "histograms of a high-level feature, in [0, 1] (CaloChallenge); lower is better",
    "chi2_mean": "mean chi^2 separation power over the features; lower is better",
    "fd_<feature>": "1-D Frechet distance (mean and width) of one high-level feature, scaled as "
    "for the FPD: the feature's own term of the FPD without correlations, to see which "
    "feature a large FPD comes from; lower is better",
    "fpd": "Frechet physics distance of the high-level features, extrapolated to infinite "
    "sample size (jetnet 0.2.5, arXiv:2211.10295), with fit error; lower is better",
    "kpd": "kernel physics distance: unbiased MMD^2 with a degree-4 polynomial kernel, median "
    "over batches with error (jetnet 0.2.5); ~0 for identical distributions",
    "classifier_auc": "ROC AUC of a boosted-tree classifier separating real from generated "
    "features, 3-fold cross-validated; 0.5 = indistinguishable (n/a: too few showers)",
}

#: Seed offset between repeated draws (split-halves splits, reference-mode FPD/KPD/AUC).
_SEED_STEP = 7919


def describe(name):
    """Description of metric ``name`` from :data:`METRIC_DESCRIPTIONS`."""
    if name in METRIC_DESCRIPTIONS:
        return METRIC_DESCRIPTIONS[name]
    for pattern in ("w1_channel_", "chi2_", "fd_"):
        if name.startswith(pattern):
            key = pattern + ("<c>" if pattern == "w1_channel_" else "<feature>")
            return METRIC_DESCRIPTIONS[key]
    return ""


def split_halves(n, seed=0):
    """Two disjoint random index sets of size ``n // 2`` each (an odd one out is dropped)."""
    if int(n) < 2:
        raise ValueError(f"Need at least 2 real showers to split. Received: n={n}")
    perm = np.random.default_rng(seed).permutation(int(n))
    half = int(n) // 2
    return np.sort(perm[:half]), np.sort(perm[half : 2 * half])


def match_conditions(query, pool):
    """For each row of ``query`` the index of the row of ``pool`` with the nearest conditions.

    Conditions are standardised with the pool's mean and standard deviation (constant
    columns are ignored) and matched by Euclidean distance (k-d tree).
    """
    q = np.asarray(query, dtype=np.float64)
    p = np.asarray(pool, dtype=np.float64)
    std = p.std(axis=0)
    use = std > 0
    if not use.any():
        return np.arange(len(q)) % len(p)
    mean = p.mean(axis=0)
    tree = spatial.cKDTree((p[:, use] - mean[use]) / std[use])
    return tree.query((q[:, use] - mean[use]) / std[use])[1]


def compute_metrics(
    real,
    generated,
    geometry=None,
    paired=None,
    classifier=False,
    seed=0,
    bins=50,
    distribution=True,
    fpd_kwargs=None,
    kpd_kwargs=None,
    num_threads=1,
    features=None,
):
    """All metrics of ``generated`` against ``real`` (no floor; see :func:`evaluate`).

    Args:
        real, generated: anything :func:`calozdc.metrics.as_sample` accepts.
        geometry: geometry name/object; inferred from the grid.
        paired: compute the paired metrics (MAE, RMSE: shower k of ``generated`` has the
            conditions of shower k of ``real``); default: when the sizes are equal.
        classifier: also compute the classifier AUC.
        seed: seed of FPD/KPD batches and the classifier.
        bins: histogram bins for the chi^2 separation power.
        distribution: compute the distribution metrics (W1, chi^2, FPD, KPD, AUC).
        fpd_kwargs, kpd_kwargs: overrides for :func:`fpd` / :func:`kpd`.
        num_threads: BLAS/OpenMP thread limit for FPD, KPD and the classifier. The default 1
            is fastest for these many small linear-algebra calls (and immune to thread
            oversubscription on shared machines); None keeps the process setting.
        features: names of the high-level features (:func:`high_level_features`) for
            chi^2, FPD, KPD and the classifier; default: all those both samples have
            (:func:`calozdc.metrics.common_features`). Pass the same list to every comparison
            whose values are to be compared.

    Returns:
        dict ``name -> {"value": float, "error": float or None}``.

    Raises:
        ValueError: for a feature one sample lacks, or (``classifier=True``) samples too
            small for the classifier (see :func:`calozdc.metrics.classifier_auc`).
    """
    r = as_sample(real, geometry)
    g = as_sample(generated, r.geometry)
    if paired is None:
        paired = len(r) == len(g)
    out = {}
    if distribution:
        w1 = wasserstein_per_channel(channel_sums(r.showers, r.geometry),
                                     channel_sums(g.showers, r.geometry))
        out["w1_channels_mean"] = _entry(w1.mean())
        if len(w1) > 1:
            for c, v in enumerate(w1):
                out[f"w1_channel_{c + 1}"] = _entry(v)
    if paired:
        out["channel_mae"] = _entry(channel_mae(r.showers, g.showers, r.geometry))
        out["pixel_rmse"] = _entry(pixel_rmse(r.showers, g.showers))
    if not distribution:
        return out
    if features is None:
        features = common_features(r, g)[0]
    f_r, f_g = feature_table(r, features), feature_table(g, features)
    chi2 = []
    for j, name in enumerate(features):
        sep = histogram_separation(f_r[:, j], f_g[:, j], bins=bins)
        out[f"chi2_{name}"] = _entry(sep)
        chi2.append(sep)
    out["chi2_mean"] = _entry(np.mean(chi2))
    if min(len(f_r), len(f_g)) >= 2:
        scaled_r, scaled_g = normalise_features(f_r, f_g)
        for j, name in enumerate(features):
            out[f"fd_{name}"] = _entry(frechet_distance_1d(scaled_r[:, j], scaled_g[:, j]))
    out.update(_draw_metrics(f_r, f_g, seed, classifier, num_threads, fpd_kwargs, kpd_kwargs))
    return out


def feature_table(sample, names):
    """The columns ``names`` of :func:`high_level_features` of ``sample``, ``(N, len(names))``."""
    all_names, values = high_level_features(sample)
    missing = [n for n in names if n not in all_names]
    if missing or not len(names):
        raise ValueError(
            f"Features must be a non-empty list of names the sample has ({', '.join(all_names)})."
            f" Received: missing={missing}, features={list(names)}"
        )
    return values[:, [all_names.index(n) for n in names]]


def _draw_metrics(f_r, f_g, seed, classifier, num_threads, fpd_kwargs=None, kpd_kwargs=None):
    """The metrics that depend on random draws (FPD, KPD batches; classifier folds)."""
    out = {}
    n = min(len(f_r), len(f_g))
    if n >= 4:
        max_samples = min(50_000, n)
        fk = {"min_samples": max(2, min(20_000, int(0.4 * max_samples))),
              "max_samples": max_samples, "seed": seed, "num_threads": num_threads}
        fk.update(fpd_kwargs or {})
        kk = {"batch_size": min(5_000, n), "seed": seed, "num_threads": num_threads}
        kk.update(kpd_kwargs or {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["fpd"] = _entry(*fpd(f_r, f_g, **fk))
        out["kpd"] = _entry(*kpd(f_r, f_g, **kk))
    if classifier:
        out["classifier_auc"] = _entry(classifier_auc(f_r, f_g, seed=seed,
                                                      num_threads=num_threads))
    return out


def data_floor(real, geometry=None, seed=0, classifier=False, bins=50, num_threads=1,
               features=None):
    """The same metrics between two disjoint random halves of the real sample.

    Distribution metrics compare half A with half B. Paired metrics need two real showers
    with the same conditions: each shower of B is paired with the shower of A with the
    nearest (standardised) conditions, an approximation that slightly overestimates the
    floor when conditions are continuous (pass an independent ``real_reference`` with the
    same conditions to :func:`evaluate` for an exact one). Without conditions the paired
    floors are omitted.

    Args:
        features: high-level features for chi^2, FPD, KPD and the classifier (default: all
            the real sample has). :func:`evaluate` passes the features the generated sample
            has too, so that model and floor are computed on the same features.

    Returns:
        dict ``name -> {"value", "error"}`` as :func:`compute_metrics`.
    """
    r = as_sample(real, geometry)
    a, b = split_halves(len(r), seed)
    out = compute_metrics(r.take(a), r.take(b), paired=False, classifier=classifier,
                          seed=seed, bins=bins, num_threads=num_threads, features=features)
    if r.conditions is not None:
        partner = a[match_conditions(r.conditions[b], r.conditions[a])]
        out.update(compute_metrics(r.take(b), r.take(partner), paired=True, distribution=False))
    return out


def _paired_partners(query, pool):
    """The shower of ``pool`` paired with each shower of ``query``, and how it was chosen.

    Returns:
        ``(index, method)``: ``method`` is ``"exact"`` when every partner has exactly the
        conditions of its query shower (identical condition arrays pair shower k with
        shower k), ``"nearest_conditions"`` when partners are the nearest in standardised
        conditions (:func:`match_conditions`), ``"unavailable"`` (``index`` None) when a
        sample has no conditions to pair by.
    """
    if query.conditions is None or pool.conditions is None:
        return None, "unavailable"
    qc, pc = query.conditions, pool.conditions
    if qc.shape[1] != pc.shape[1]:
        raise ValueError(
            "The real sample and the reference must have the same condition columns to pair "
            f"their showers. Received: conditions shapes {qc.shape} and {pc.shape}"
        )
    if qc.shape == pc.shape and np.array_equal(qc, pc):
        return np.arange(len(qc)), "exact"
    partner = match_conditions(qc, pc)
    return partner, "exact" if np.array_equal(pc[partner], qc) else "nearest_conditions"


def evaluate(
    real,
    generated,
    geometry=None,
    real_reference=None,
    seed=0,
    classifier=False,
    paired=None,
    bins=50,
    num_threads=1,
    n_splits=1,
    verbose=False,
):
    """Metrics of ``generated`` vs ``real`` with the data-vs-data floor beside each.

    Without ``real_reference`` the real sample is split into two random halves A and B
    (``seed``); distribution metrics compare A with the generated showers of B's
    conditions (or a random subset of the same size), the floor compares A with B, so both
    use samples of the same size. Paired metrics (MAE, RMSE) use all pairs; their floor
    is from nearest-condition real pairs (see :func:`data_floor`). With
    ``real_reference`` (a second, independent real sample) the model compares
    ``generated`` with ``real`` and the floor ``real_reference`` with ``real``; the paired
    floor pairs each real shower with the reference shower of the same conditions (shower k
    with shower k when the condition arrays are identical), else of the nearest conditions
    (``info["paired_floor"]`` says which).

    Model and floor always use the same high-level features: those every input has
    (:func:`calozdc.metrics.common_features`; e.g. the layer features are dropped when the
    generated showers come without per-layer sums), listed in ``info["features"]``, the
    unused ones in ``info["features_dropped"]``.

    ``ratio = value / max(|floor|, floor_error)``: about 1 for a generator as good as the
    data allow, > 1 worse (for KPD/FPD, whose floor is ~0, the floor's error sets the scale).

    Args:
        real: real showers (anything :func:`calozdc.metrics.as_sample` accepts; a
            ``ShowerDataset``, an array, a mapping with ``showers``/``conditions``/``layers``).
        generated: generated showers, ideally one per real shower for the same conditions.
        geometry: geometry name/object; inferred from the real sample or the grid.
        real_reference: optional independent real sample for the floor.
        seed: seed of the split and of the FPD/KPD/classifier draws.
        classifier: also compute the classifier AUC (slower). With too few showers for its
            cross-validation (about 30 per compared sample) it is skipped: value, floor and
            ratio None, the reason in the metric's ``note`` and in ``info["classifier"]``.
        paired: force/skip the paired metrics (default: when sizes are equal).
        bins: histogram bins for the chi^2 separation power.
        num_threads: thread limit for FPD/KPD/classifier (see :func:`compute_metrics`).
        n_splits: repeat the comparison (model and floor) this many times and average.
            Split-halves mode: over random splits (single-split ratios of one W1 fluctuate
            by tens of percent for ~1000 showers); the spread over splits (std/sqrt(n)) is
            reported as ``error`` and ``floor_error`` for metrics without an error of their
            own. ``real_reference`` mode: the samples are fixed, so only the random draws
            (FPD/KPD batches, classifier folds) are repeated with seeds
            ``seed + 7919 k``; FPD/KPD keep their mean own error, the classifier AUC gets
            the spread over draws as error.
        verbose: show a progress bar of the comparisons (model and floor, per split) on
            stderr (default quiet).

    Returns:
        JSON-serialisable dict: ``{"metrics": {name: {"value", "floor", "ratio", "error",
        "floor_error", "description"}}, "info": {...}}``.

    Example:

    >>> results = evaluate(test_set, model.generate(test_set.conditions))  # doctest: +SKIP
    >>> results["metrics"]["w1_channels_mean"]  # doctest: +SKIP
    {'value': 3.1, 'floor': 0.6, 'ratio': 5.2, ...}
    """
    r = as_sample(real, geometry)
    g = as_sample(generated, r.geometry)
    if int(n_splits) < 1:
        raise ValueError(f"`n_splits` must be >= 1. Received: n_splits={n_splits}")
    n_splits = int(n_splits)
    if paired is None:
        paired = len(r) == len(g)
    elif paired and len(r) != len(g):
        raise ValueError(
            "Paired metrics need one generated shower per real shower. Received: "
            f"{len(r)} real, {len(g)} generated"
        )
    ref = None if real_reference is None else as_sample(real_reference, r.geometry)
    features, dropped = common_features(*(s for s in (r, g, ref) if s is not None))
    seeds = [int(seed) + _SEED_STEP * k for k in range(n_splits)]
    if ref is not None:
        sizes = [(len(r), len(g)), (len(r), len(ref))]
    else:
        half = len(r) // 2
        sizes = [(half, half if len(g) == len(r) else min(half, len(g))), (half, half)]
    classifier_note = None
    if classifier:
        problems = [classifier_size_problem(*s) for s in sizes]
        classifier_note = next((p for p in problems if p is not None), None)
    kw = {"classifier": bool(classifier) and classifier_note is None, "bins": bins,
          "num_threads": num_threads, "features": features}
    paired_floor = "not_paired"
    if ref is not None:
        with progress(2 * n_splits, "evaluate", verbose, unit="comparison") as bar:
            model = compute_metrics(r, g, paired=paired, seed=seeds[0], **kw)
            bar.update(1)
            floor = compute_metrics(r, ref, paired=False, seed=seeds[0], **kw)
            bar.update(1)
            if n_splits > 1:
                f_r, f_g, f_ref = (feature_table(s, features) for s in (r, g, ref))
                model_draws, floor_draws = [model], [floor]
                for s in seeds[1:]:
                    model_draws.append(_draw_metrics(f_r, f_g, s, kw["classifier"], num_threads))
                    bar.update(1)
                    floor_draws.append(_draw_metrics(f_r, f_ref, s, kw["classifier"],
                                                     num_threads))
                    bar.update(1)
                model.update(_average(model_draws))
                floor.update(_average(floor_draws))
        if paired:
            partner, paired_floor = _paired_partners(r, ref)
            if partner is not None:
                floor.update(compute_metrics(r, ref.take(partner), paired=True,
                                             distribution=False))
        method, n_compared = "reference", min(len(r), len(g), len(ref))
    else:
        with progress(2 * n_splits + int(bool(paired)), "evaluate", verbose,
                      unit="comparison") as bar:
            models, floors = [], []
            for split_seed in seeds:
                a, b = split_halves(len(r), split_seed)
                if len(g) == len(r):
                    g_half = g.take(b)
                else:
                    rng = np.random.default_rng(split_seed + 1)
                    g_half = g.take(np.sort(rng.choice(len(g), size=min(len(b), len(g)),
                                                       replace=False)))
                models.append(compute_metrics(r.take(a), g_half, paired=False, seed=split_seed,
                                              **kw))
                bar.update(1)
                floors.append(data_floor(r, seed=split_seed, **kw))
                bar.update(1)
            model, floor = _average(models), _average(floors)
            if paired:
                model.update(compute_metrics(r, g, paired=True, distribution=False))
                bar.update(1)
                paired_floor = "nearest_conditions" if r.conditions is not None else (
                    "unavailable")
        method, n_compared = "split_halves", len(a)
    metrics = {}
    for name, entry in model.items():
        f = floor.get(name)
        fv = None if f is None else f["value"]
        fe = None if f is None else f["error"]
        metrics[name] = {
            "value": entry["value"],
            "floor": fv,
            "ratio": _ratio(entry["value"], fv, fe),
            "error": entry["error"],
            "floor_error": fe,
            "description": describe(name),
        }
    if classifier_note is not None:
        metrics["classifier_auc"] = {
            "value": None, "floor": None, "ratio": None, "error": None, "floor_error": None,
            "description": describe("classifier_auc"), "note": classifier_note,
        }
    info = {
        "geometry": r.geometry.name,
        "n_real": len(r),
        "n_generated": len(g),
        "n_compared": int(n_compared),
        "floor_method": method,
        "paired": bool(paired),
        "paired_floor": paired_floor,
        "seed": int(seed),
        "n_splits": n_splits,
        "features": list(features),
        "features_dropped": list(dropped),
        "classifier": ("not requested" if not classifier else
                       "computed" if classifier_note is None else f"skipped: {classifier_note}"),
    }
    return _json_clean({"metrics": metrics, "info": info})

def _average(runs):
    """Mean over repeated splits; error = own error averaged, else std / sqrt(n)."""
    if len(runs) == 1:
        return runs[0]
    out = {}
    for name in [n for n in runs[0] if all(n in run for run in runs[1:])]:
        vals = np.array([run[name]["value"] for run in runs])
        errs = [run[name]["error"] for run in runs]
        if errs[0] is not None:
            err = float(np.mean(errs))
        else:
            err = float(vals.std(ddof=1) / np.sqrt(len(vals)))
        out[name] = _entry(vals.mean(), err)
    return out


def _entry(value, error=None):
    return {"value": float(value), "error": None if error is None else float(error)}


def _ratio(value, floor, floor_error):
    if value is None or floor is None:
        return None
    denom = max(abs(floor), floor_error or 0.0)
    return float(value / denom) if denom > 0 else None


def _json_clean(obj):
    """Replace numpy scalars by Python ones and non-finite floats by None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
