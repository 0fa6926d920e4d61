"""Classifier two-sample test: ROC AUC of a classifier separating real from generated."""

import contextlib

import numpy as np


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
    if int(n_splits) < 2 or min(len(x), len(y)) < int(n_splits):
        raise ValueError(
            f"Need n_splits >= 2 and at least n_splits rows per sample. Received: "
            f"n_splits={n_splits}, sizes {len(x)}, {len(y)}"
        )
    rng = np.random.default_rng(seed)
    if len(x) > max_samples:
        x = x[rng.choice(len(x), max_samples, replace=False)]
    if len(y) > max_samples:
        y = y[rng.choice(len(y), max_samples, replace=False)]
    data = np.concatenate([x, y])
    labels = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    folds = StratifiedKFold(n_splits=int(n_splits), shuffle=True, random_state=seed)
    if num_threads is None:
        limits = contextlib.nullcontext()
    else:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=int(num_threads))
    with limits:
        proba = cross_val_predict(clf, data, labels, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, proba))
