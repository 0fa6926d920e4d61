"""Histogram comparisons: χ² separation power (CaloChallenge)."""

import numpy as np


def histogram_edges(reference, bins=50):
    """Bin edges spanning the finite range of ``reference`` (the real sample)."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    ref = ref[np.isfinite(ref)]
    if int(bins) < 1:
        raise ValueError(f"`bins` must be >= 1. Received: bins={bins}")
    if ref.size == 0:
        return np.array([-0.5, 0.5])
    lo, hi = float(ref.min()), float(ref.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(bins) + 1)


def normalized_histogram(values, edges):
    """Histogram of ``values`` in ``edges``, normalised to sum 1.

    Values outside the range are put in the first/last bin (so mass a generator puts outside
    the real range still counts against it); NaNs are dropped.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = np.clip(v[np.isfinite(v)], edges[0], edges[-1])
    h, _ = np.histogram(v, bins=edges)
    total = h.sum()
    return h / total if total > 0 else h.astype(np.float64)


def separation_power(h1, h2):
    """χ² separation power of two histograms, ``½ Σ_i (h1_i − h2_i)² / (h1_i + h2_i)``.

    Both histograms are normalised to unit sum first; the result is 0 for identical and 1 for
    non-overlapping histograms (CaloFlow, arXiv:2106.05285; CaloChallenge 2022,
    arXiv:2410.21611).

    Args:
        h1, h2: bin contents, same length.

    Returns:
        float in [0, 1].
    """
    a = np.asarray(h1, dtype=np.float64)
    b = np.asarray(h2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"Histograms must be 1-D with the same length. Received: shapes {a.shape}, {b.shape}"
        )
    if np.any(a < 0) or np.any(b < 0):
        raise ValueError("Histogram contents must be >= 0.")
    sa, sb = a.sum(), b.sum()
    if sa <= 0 or sb <= 0:
        raise ValueError(f"Histograms must not be empty. Received: sums {sa}, {sb}")
    a, b = a / sa, b / sb
    s = a + b
    keep = s > 0
    return float(0.5 * np.sum((a[keep] - b[keep]) ** 2 / s[keep]))


def histogram_separation(real, generated, bins=50):
    """χ² separation power of ``generated`` vs ``real`` with bins from the real sample.

    Args:
        real: 1-D values of the reference sample (sets the binning).
        generated: 1-D values to compare.
        bins: number of equal-width bins over the real range.

    Returns:
        float in [0, 1].
    """
    edges = histogram_edges(real, bins)
    h_real = normalized_histogram(real, edges)
    return separation_power(h_real, normalized_histogram(generated, edges))
