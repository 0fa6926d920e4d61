"""Write an evaluation as ``metrics.json`` and a one-page ``report.png``."""

import json
import os

import numpy as np

from calozdc.data.atomic import atomic_path
from calozdc.metrics.features import high_level_features, radial_profile
from calozdc.metrics.histograms import histogram_edges
from calozdc.metrics.sample import as_sample
from calozdc.metrics.zdc import channel_sums

#: Metrics listed in the report's table, in this order (when present).
_TABLE = ("w1_channels_mean", "channel_mae", "pixel_rmse", "fpd", "kpd", "chi2_mean",
          "classifier_auc")
_MAX_FEATURE_PANELS = 15
_NCOLS = 5


def write_report(results, real, generated, out_dir, overwrite=False, dpi=80):
    """Write ``metrics.json`` and ``report.png`` for the output of :func:`evaluate`.

    The PNG holds a table of the headline metrics (value, data-vs-data floor, ratio), the
    mean shower real vs generated (log colour scale), the channel-sum and total-energy
    histograms, the radial and (with layers) longitudinal profiles, response and resolution
    vs incident energy (with conditions) and the high-level feature histograms with their
    chi^2 separation power beside its floor. Both files are written atomically.

    Args:
        results: dict returned by :func:`calozdc.metrics.evaluate`.
        real: the real sample given to ``evaluate``.
        generated: the generated sample given to ``evaluate``.
        out_dir: output directory (created if needed).
        overwrite: replace existing ``metrics.json`` / ``report.png``; otherwise an existing
            file raises ``FileExistsError`` before anything is written.
        dpi: resolution of the PNG.

    Returns:
        dict with the paths ``{"metrics": ..., "report": ...}``.
    """
    if not isinstance(results, dict) or "metrics" not in results:
        raise ValueError(
            "`results` must be the dict returned by calozdc.metrics.evaluate. "
            f"Received: type={type(results).__name__}"
        )
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"Output path is not a directory. Received: out_dir={out_dir!r}")
    paths = {"metrics": os.path.join(out_dir, "metrics.json"),
             "report": os.path.join(out_dir, "report.png")}
    if not overwrite:
        existing = [p for p in paths.values() if os.path.exists(p)]
        if existing:
            raise FileExistsError(
                f"Output exists: {', '.join(existing)}; pass overwrite=True (CLI: --overwrite). "
                f"Received: out_dir={out_dir!r}"
            )
    text = json.dumps(results, indent=2, allow_nan=False, sort_keys=False)
    fig = _figure(results, as_sample(real), as_sample(generated))
    os.makedirs(out_dir, exist_ok=True)
    with atomic_path(paths["report"], overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    with atomic_path(paths["metrics"], overwrite=overwrite) as tmp:
        with open(tmp, "w") as f:
            f.write(text + "\n")
    return paths


def format_table(results, names=None):
    """Plain-text table ``metric | value | floor | ratio`` of ``results["metrics"]``."""
    metrics = results["metrics"]
    if names is None:
        names = [n for n in _TABLE if n in metrics] + sorted(
            n for n in metrics if n.startswith("w1_channel_")
        )
    lines = [f"{'metric':<18}{'value':>11}{'floor':>11}{'ratio':>10}"]
    for n in names:
        m = metrics[n]
        lines.append(f"{n:<18}{_fmt(m['value'], m.get('error'))}{_fmt(m['floor'])}"
                     f"{_fmt(m['ratio'], width=10, ratio=True)}")
    for n in names:  # why a requested metric is n/a (full reason in metrics.json)
        if metrics[n].get("note"):
            lines.append(f"{n} n/a: {metrics[n]['note'].split(':')[0]}")
    return "\n".join(lines)


def largest_feature_terms(results, k=3):
    """The ``k`` high-level features with the largest 1-D Fréchet terms (``fd_<feature>``),
    as ``[(feature, value, ratio to the floor)]``, largest value first: where an FPD far
    above its floor comes from."""
    metrics = results["metrics"]
    terms = [(n[3:], m["value"], m["ratio"]) for n, m in metrics.items()
             if n.startswith("fd_") and m["value"] is not None]
    return sorted(terms, key=lambda t: -t[1])[:k]


def _fmt(v, err=None, width=11, ratio=False):
    if v is None:
        return f"{'n/a':>{width}}"
    s = (f"{v:.2f}" if abs(v) < 1e4 else f"{v:.3g}") if ratio else f"{v:.4g}"
    return f" {s:>{width - 1}}"


def _figure(results, real, gen):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    metrics = results["metrics"]
    panels = []

    def add(fn):
        panels.append(fn)

    add(lambda ax: _table_panel(ax, results))
    mean_r = real.showers.mean(axis=0, dtype=np.float64)
    mean_g = gen.showers.mean(axis=0, dtype=np.float64)
    positive = np.concatenate([mean_r[mean_r > 0], mean_g[mean_g > 0]])
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-6), vmax=positive.max()) if (
        positive.size) else None
    for title, img in (("mean shower: real", mean_r), ("mean shower: generated", mean_g)):
        def image(ax, img=img, title=title):
            im = ax.imshow(np.where(img > 0, img, np.nan), norm=norm, cmap="viridis",
                           origin="lower")
            ax.set_title(title, fontsize=9)
            ax.figure.colorbar(im, ax=ax, fraction=0.046)
        add(image)

    geo = real.geometry
    sums_r, sums_g = channel_sums(real.showers, geo), channel_sums(gen.showers, geo)
    for c in range(sums_r.shape[1]):
        key = f"w1_channel_{c + 1}" if sums_r.shape[1] > 1 else "w1_channels_mean"
        label = f"channel {c + 1} sum" if sums_r.shape[1] > 1 else "total energy"
        add(lambda ax, c=c, key=key, label=label: _hist_panel(
            ax, sums_r[:, c], sums_g[:, c], label, metrics.get(key), "W1"))
    add(lambda ax: _radial_panel(ax, real, gen))
    if real.layers is not None and gen.layers is not None:
        add(lambda ax: _longitudinal_panel(ax, real, gen))
    if real.conditions is not None and gen.conditions is not None:
        add(lambda ax: _response_panel(ax, real, gen, sums_r.sum(1), sums_g.sum(1), "mean"))
        add(lambda ax: _response_panel(ax, real, gen, sums_r.sum(1), sums_g.sum(1), "sigma"))
    names_r, f_r = high_level_features(real, include_layers=False, include_channels=False)
    names_g, f_g = high_level_features(gen, include_layers=False, include_channels=False)
    shown = [n for n in names_r if n in names_g][:_MAX_FEATURE_PANELS]
    for name in shown:
        add(lambda ax, name=name: _hist_panel(
            ax, f_r[:, names_r.index(name)], f_g[:, names_g.index(name)], name,
            metrics.get(f"chi2_{name}"), "chi2"))

    nrows = -(-len(panels) // _NCOLS)
    fig = Figure(figsize=(4.0 * _NCOLS, 3.4 * nrows))
    FigureCanvasAgg(fig)
    info = results.get("info", {})
    fig.suptitle(
        f"calozdc evaluation - geometry {info.get('geometry', '?')}, "
        f"{info.get('n_real', '?')} real / {info.get('n_generated', '?')} generated; "
        f"floor = real vs real ({info.get('floor_method', '?')})", fontsize=11)
    for i, fn in enumerate(panels):
        ax = fig.add_subplot(nrows, _NCOLS, i + 1)
        fn(ax)
    # fixed margins: constrained layout doubles the drawing time
    fig.subplots_adjust(left=0.04, right=0.98, bottom=0.05, top=1 - 0.35 / nrows,
                        wspace=0.3, hspace=0.55)
    return fig


def _table_panel(ax, results):
    ax.axis("off")
    ax.text(0.0, 1.0, format_table(results), family="monospace", fontsize=7.5, va="top",
            transform=ax.transAxes)
    ax.set_title("metric vs data-vs-data floor (ratio = value / floor)", fontsize=9)


def _hist_panel(ax, real, gen, label, metric, short):
    edges = histogram_edges(real, 40)
    lo, hi = edges[0], edges[-1]
    ax.hist(np.clip(real, lo, hi), bins=edges, histtype="stepfilled", alpha=0.35,
            density=True, label="real", color="tab:blue")
    ax.hist(np.clip(gen, lo, hi), bins=edges, histtype="step", density=True,
            label="generated", color="tab:red")
    title = label
    if metric is not None and metric.get("value") is not None:
        floor = metric.get("floor")
        title += f"\n{short}={metric['value']:.3g} (floor {floor:.3g})" if floor is not None \
            else f"\n{short}={metric['value']:.3g}"
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def _radial_panel(ax, real, gen):
    edges, pr = radial_profile(real)
    _, pg = radial_profile(gen, bin_edges_mm=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax.step(centres, np.where(pr > 0, pr, np.nan), where="mid", label="real")
    ax.step(centres, np.where(pg > 0, pg, np.nan), where="mid", label="generated")
    ax.set_yscale("log")
    ax.set_xlabel("r from centroid [mm]", fontsize=7)
    ax.set_title("radial profile (energy fraction)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def _longitudinal_panel(ax, real, gen):
    for s, label in ((real, "real"), (gen, "generated")):
        lay = s.layers.astype(np.float64)
        tot = lay.sum(axis=1, keepdims=True)
        frac = (lay[tot[:, 0] > 0] / tot[tot[:, 0] > 0]).mean(axis=0)
        ax.step(np.arange(len(frac)), frac, where="mid", label=label)
    ax.set_xlabel("layer", fontsize=7)
    ax.set_title("longitudinal profile (energy fraction)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def _response_panel(ax, real, gen, tot_r, tot_g, kind):
    e_r, e_g = real.incident_energy, gen.incident_energy
    edges = np.quantile(e_r, np.linspace(0, 1, 9))
    edges = np.unique(edges)
    if len(edges) < 2:
        edges = np.array([e_r.min() - 0.5, e_r.max() + 0.5])
    for e, tot, label in ((e_r, tot_r, "real"), (e_g, tot_g, "generated")):
        idx = np.clip(np.digitize(e, edges) - 1, 0, len(edges) - 2)
        xs, ys = [], []
        for k in range(len(edges) - 1):
            sel = (idx == k) & (e != 0)
            if sel.sum() < 2:
                continue
            resp = tot[sel] / e[sel]
            xs.append(e[sel].mean())
            m = resp.mean()
            ys.append(m if kind == "mean" else (resp.std() / m if m else np.nan))
        ax.plot(xs, ys, "o-", ms=3, label=label)
    if e_r.min() > 0 and e_r.max() > 20 * e_r.min():
        ax.set_xscale("log")
    ax.set_xlabel("incident energy", fontsize=7)
    ax.set_title("response <E/E_inc>" if kind == "mean" else "resolution sigma/<E/E_inc>",
                 fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
