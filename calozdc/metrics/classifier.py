"""Classifier two-sample test: ROC AUC of a classifier separating real from generated."""

import contextlib
import math

import numpy as np

#: Fewest rows a leaf of the boosted trees may hold (scikit-learn's default, set explicitly).
MIN_SAMPLES_LEAF = 20


def classifier_size_problem(n_real, n_gen, n_splits=3, max_samples=20_000):
    """Why :func:`classifier_auc` cannot be computed for these sample sizes, or None.

    A tree split needs ``2 * MIN_SAMPLES_LEAF`` training rows. With fewer rows in the
    smallest cross-validation training fold no tree can split, every prediction is the
    fold's class prior, and the AUC is a constant (0.5 or ~0.46-0.48 for 3 folds) that
    says nothing about the samples: about 30 rows per sample are needed with 3 folds.

    Args:
        n_real, n_gen: rows of the two samples.
        n_splits: cross-validation folds.
        max_samples: the per-sample cap of :func:`classifier_auc`.

    Returns:
        None when the sizes suffice, else a message naming the sizes.
    """
    k = int(n_splits)
    nx, ny = min(int(n_real), max_samples), min(int(n_gen), max_samples)
    received = f"Received: n_real={n_real}, n_gen={n_gen}, n_splits={n_splits}"
    if k < 2 or min(nx, ny) < k:
        return f"The classifier needs n_splits >= 2 and n_splits rows per sample. {received}"
    # stratified folds: a test fold holds at most ceil(n_c / k) rows of each class
    smallest_train = nx - math.ceil(nx / k) + ny - math.ceil(ny / k)
    if smallest_train < 2 * MIN_SAMPLES_LEAF:
        per_sample = math.ceil(2 * MIN_SAMPLES_LEAF * k / (2 * (k - 1)))
        return (f"Too few rows for the classifier AUC: the smallest of {k} training folds "
                f"would hold {smallest_train} rows, fewer than the {2 * MIN_SAMPLES_LEAF} a "
                f"tree split needs (min_samples_leaf={MIN_SAMPLES_LEAF}), so the AUC would be "
                f"a constant whatever the samples; about {per_sample} rows per sample are "
                f"needed. {received}")
    return None


def classifier_auc(
    real_features, gen_features, n_splits=3, max_samples=20_000, seed=0, num_threads=1
):
    """Cross-validated ROC AUC of a gradient-boosted classifier, real vs generated.

    0.5 means the classifier cannot tell the samples apart; 1.0 that it always can
    (CaloChallenge 2022, arXiv:2410.21611; D. Lopez-Paz, M. Oquab, "Revisiting classifier
    two-sample tests", arXiv:1610.06545). Uses scikit-learn's
    ``HistGradientBoostingClassifier`` on the given features with stratified k-fold
    out-of-fold predictions.

    Args:
        real_features: ``(N, F)``.
        gen_features: ``(M, F)``.
        n_splits: number of cross-validation folds (>= 2).
        max_samples: at most this many rows of each sample are used.
        seed: seed for subsampling, folds and the classifier.
        num_threads: OpenMP threads of the classifier (``threadpoolctl``); the small fits are
            fastest single-threaded, and many threads on a busy machine are much slower.
            None keeps the process setting.

    Returns:
        float AUC in [0, 1].

    Raises:
        ValueError: for samples too small for a meaningful AUC (see
            :func:`classifier_size_problem`: about 30 rows per sample with 3 folds).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.asarray(real_features, dtype=np.float64)
    y = np.asarray(gen_features, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"Features must be (N, F) and (M, F). Received: shapes {x.shape}, {y.shape}"
        )
    problem = classifier_size_problem(len(x), len(y), n_splits, max_samples)
    if problem is not None:
        raise ValueError(problem)
    rng = np.random.default_rng(seed)
    if len(x) > max_samples:
        x = x[rng.choice(len(x), max_samples, replace=False)]
    if len(y) > max_samples:
        y = y[rng.choice(len(y), max_samples, replace=False)]
    data = np.concatenate([x, y])
    labels = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    clf = HistGradientBoostingClassifier(
        max_iter=100, min_samples_leaf=MIN_SAMPLES_LEAF, random_state=seed
    )
    folds = StratifiedKFold(n_splits=int(n_splits), shuffle=True, random_state=seed)
    if num_threads is None:
        limits = contextlib.nullcontext()
    else:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=int(num_threads))
    with limits:
        proba = cross_val_predict(clf, data, labels, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, proba))
