"""calozdc.metrics: physics metrics (numpy/scipy), always reported beside the data floor.

* ALICE ZDC (arXiv:2407.16704 eqs. 4.2-4.4): :func:`channel_sums`,
  :func:`wasserstein_per_channel`, :func:`wasserstein_channels`, :func:`channel_mae`,
  :func:`pixel_rmse`.
* CaloChallenge: :func:`high_level_features`, :func:`separation_power`,
  :func:`histogram_separation`, :func:`fpd`, :func:`kpd` (jetnet 0.2.5 definitions),
  :func:`classifier_auc`; :func:`common_features` (the features every sample has, so that
  model and floor compare the same ones).
* :func:`evaluate` (model vs real with the real-vs-real floor), :func:`data_floor`,
  :func:`write_report` (``metrics.json`` + ``report.png``).
"""

from calozdc.metrics.classifier import classifier_auc, classifier_size_problem
from calozdc.metrics.distances import (
    fpd,
    frechet_distance,
    frechet_distance_1d,
    kpd,
    mmd_poly_unbiased,
    normalise_features,
)
from calozdc.metrics.evaluate import (
    METRIC_DESCRIPTIONS,
    compute_metrics,
    data_floor,
    describe,
    evaluate,
    match_conditions,
    split_halves,
)
from calozdc.metrics.features import (
    common_features,
    feature_names,
    high_level_features,
    radial_profile,
)
from calozdc.metrics.histograms import (
    histogram_edges,
    histogram_separation,
    normalized_histogram,
    separation_power,
)
from calozdc.metrics.report import format_table, largest_feature_terms, write_report
from calozdc.metrics.sample import Sample, as_sample
from calozdc.metrics.zdc import (
    channel_mae,
    channel_sums,
    pixel_rmse,
    wasserstein_channels,
    wasserstein_per_channel,
)

__all__ = [
    "METRIC_DESCRIPTIONS",
    "Sample",
    "as_sample",
    "channel_mae",
    "channel_sums",
    "classifier_auc",
    "classifier_size_problem",
    "common_features",
    "compute_metrics",
    "data_floor",
    "describe",
    "evaluate",
    "feature_names",
    "format_table",
    "fpd",
    "frechet_distance",
    "frechet_distance_1d",
    "high_level_features",
    "histogram_edges",
    "histogram_separation",
    "kpd",
    "largest_feature_terms",
    "match_conditions",
    "mmd_poly_unbiased",
    "normalise_features",
    "normalized_histogram",
    "pixel_rmse",
    "radial_profile",
    "separation_power",
    "split_halves",
    "wasserstein_channels",
    "wasserstein_per_channel",
    "write_report",
]
