"""CaloChallenge-style high-level shower features (numpy, vectorised)."""

import numpy as np

from calozdc.metrics.sample import as_sample
from calozdc.metrics.zdc import channel_sums

_CHUNK = 8192


def high_level_features(data, geometry=None, include_layers=True, include_channels=True):
    """High-level features of each shower, as used by CaloChallenge and the FPD/KPD metrics.

    Features (in this order; a column only where its inputs exist):

    * ``energy_total``: ``Σ_cells E``;
    * ``energy_ratio``: ``Σ E / E_inc`` (needs conditions; column 0 is E_inc);
    * ``layer_energy_<l>``: per-layer energies (needs layers);
    * ``centroid_x``, ``centroid_y``: energy-weighted cell-centre mean in mm (origin at the
      grid centre), ``centroid_depth``: energy-weighted mean layer index (needs layers);
    * ``width_x``, ``width_y``: energy-weighted standard deviations in mm,
      ``width_depth`` in layers (needs layers);
    * ``sparsity``: fraction of cells with a nonzero value;
    * ``max_cell_fraction``: largest cell over the total;
    * ``channel_<c>``: readout-channel sums (zn44: 1-5; only where there is more than one).

    Empty showers get 0 for the ratios, centroids and widths.

    Args:
        data: anything :func:`calozdc.metrics.as_sample` accepts (a ShowerDataset, an array
            of showers, a mapping with ``showers``/``conditions``/``layers``).
        geometry: geometry name or object (cell size, channels); inferred from the grid.
        include_layers: add the per-layer energies.
        include_channels: add the channel sums.

    Returns:
        ``(names, values)``: tuple of str and float64 array ``(N, F)``.

    References:
        CaloChallenge 2022, arXiv:2410.21611; M. Paganini et al., CaloGAN, arXiv:1712.10321
        (shower-shape variables).
    """
    s = as_sample(data, geometry)
    geo = s.geometry
    n = len(s)
    xs, ys = geo.cell_centres_mm()
    cols = {}
    total, cx, cy, vx, vy, nonzero, cmax = (np.zeros(n) for _ in range(7))
    for start in range(0, n, _CHUNK):
        part = s.showers[start : start + _CHUNK].astype(np.float64)
        sl = slice(start, start + len(part))
        per_row = part.sum(axis=2)  # (n, H): energy per row (y)
        per_col = part.sum(axis=1)  # (n, W): energy per column (x)
        tot = per_row.sum(axis=1)
        safe = np.where(tot > 0, tot, 1.0)
        total[sl] = tot
        cx[sl], cy[sl] = per_col @ xs / safe, per_row @ ys / safe
        # second moments about the centroid (no E[x²] − E[x]² cancellation)
        vx[sl] = np.einsum("nw,nw->n", per_col, (xs[None] - cx[sl, None]) ** 2) / safe
        vy[sl] = np.einsum("nh,nh->n", per_row, (ys[None] - cy[sl, None]) ** 2) / safe
        flat = part.reshape(len(part), -1)
        nonzero[sl] = np.count_nonzero(flat, axis=1) / flat.shape[1]
        cmax[sl] = flat.max(axis=1)
    safe = np.where(total > 0, total, 1.0)
    has = total > 0
    cols["energy_total"] = total
    if s.conditions is not None:
        e_inc = s.incident_energy
        cols["energy_ratio"] = np.where(e_inc != 0, total / np.where(e_inc != 0, e_inc, 1.0), 0.0)
    if s.layers is not None and include_layers:
        for i in range(s.layers.shape[1]):
            cols[f"layer_energy_{i}"] = s.layers[:, i].astype(np.float64)
    cols["centroid_x"], cols["centroid_y"] = cx, cy
    if s.layers is not None:
        lay = s.layers.astype(np.float64)
        ltot = lay.sum(axis=1)
        lsafe = np.where(ltot > 0, ltot, 1.0)
        depth = np.arange(lay.shape[1], dtype=np.float64)
        cz = np.where(ltot > 0, lay @ depth / lsafe, 0.0)
        cols["centroid_depth"] = cz
    cols["width_x"], cols["width_y"] = np.sqrt(vx), np.sqrt(vy)
    if s.layers is not None:
        wz = np.einsum("nl,nl->n", lay, (depth[None] - cz[:, None]) ** 2) / lsafe
        cols["width_depth"] = np.sqrt(wz)
    cols["sparsity"] = nonzero
    cols["max_cell_fraction"] = np.where(has, cmax / safe, 0.0)
    if include_channels and geo.n_channels > 1:
        sums = channel_sums(s.showers, geo)
        for c in range(sums.shape[1]):
            cols[f"channel_{c + 1}"] = sums[:, c]
    names = tuple(cols)
    return names, np.stack([cols[k] for k in names], axis=1)


def feature_names(data, geometry=None, include_layers=True, include_channels=True):
    """Names :func:`high_level_features` gives for ``data`` (computed on one shower)."""
    s = as_sample(data, geometry)
    return high_level_features(s.take(np.arange(1)), s.geometry, include_layers,
                               include_channels)[0]


def common_features(*data, geometry=None):
    """The high-level features every sample of ``data`` has, and those some sample lacks.

    Which features exist depends on the inputs a sample carries: ``energy_ratio`` needs
    conditions, ``layer_energy_<l>``, ``centroid_depth`` and ``width_depth`` need per-layer
    sums (real datasets carry them, generated showers usually do not). Two comparisons of
    one metric (model vs real, real vs real) must use the same features, or their values
    are not comparable: FPD/KPD/chi^2/AUC grow with the number of features.

    Args:
        *data: two or more samples (anything :func:`calozdc.metrics.as_sample` accepts).
        geometry: geometry name or object; inferred from the grid.

    Returns:
        ``(common, dropped)``: tuples of names, ``common`` in the order of
        :func:`high_level_features`, ``dropped`` the names only some samples have.

    Raises:
        ValueError: when samples carry layer sums of different depth (their depth features
            would measure different things).
    """
    samples = [as_sample(d, geometry) for d in data]
    depths = [None if s_.layers is None else s_.layers.shape[1] for s_ in samples]
    if len({d for d in depths if d is not None}) > 1:
        raise ValueError(
            "The samples carry per-layer sums of different depth, so their layer features "
            f"cannot be compared. Received: layers per shower {depths}"
        )
    names = [feature_names(s_) for s_ in samples]
    common = tuple(n for n in names[0] if all(n in other for other in names[1:]))
    seen = []
    for group in names:
        seen += [n for n in group if n not in common and n not in seen]
    return common, tuple(seen)


def radial_profile(data, geometry=None, bin_edges_mm=None):
    """Mean fraction of the shower energy in radial bins about each shower's centroid.

    Args:
        data: showers (anything :func:`calozdc.metrics.as_sample` accepts).
        geometry: geometry (cell size); inferred from the grid.
        bin_edges_mm: radial bin edges in mm; default one cell wide out to half the grid.

    Returns:
        ``(edges, mean_fractions)``: arrays ``(K+1,)`` and ``(K,)``.
    """
    s = as_sample(data, geometry)
    geo = s.geometry
    h, w = geo.shape
    if bin_edges_mm is None:
        bin_edges_mm = np.arange(max(h, w) // 2 + 1) * geo.cell_size_mm
    edges = np.asarray(bin_edges_mm, dtype=np.float64)
    xs, ys = geo.cell_centres_mm()
    xx, yy = np.meshgrid(xs, ys)
    acc = np.zeros(len(edges) - 1)
    n_used = 0
    for start in range(0, len(s), _CHUNK):
        part = s.showers[start : start + _CHUNK].astype(np.float64).reshape(-1, h * w)
        tot = part.sum(axis=1)
        part, tot = part[tot > 0], tot[tot > 0]
        cx = part @ xx.reshape(-1) / tot
        cy = part @ yy.reshape(-1) / tot
        r = np.hypot(xx.reshape(1, -1) - cx[:, None], yy.reshape(1, -1) - cy[:, None])
        k = np.digitize(r, edges) - 1  # bin index, -1 / K outside
        valid = (k >= 0) & (k < len(acc))
        frac = part / tot[:, None]
        acc += np.bincount(k[valid], weights=frac[valid], minlength=len(acc))[: len(acc)]
        n_used += len(part)
    return edges, acc / max(n_used, 1)
