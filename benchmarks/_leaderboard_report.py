"""Tables, figure, environment record and atomic writes of ``benchmarks/leaderboard.py``."""

import json
import math
import os
import platform
import subprocess
import sys

import numpy as np

DASH = "—"


def environment_info():
    """Machine and software of this run: platform, CPUs, load, Keras backend and versions."""
    import keras
    import scipy

    import calozdc

    backend = keras.backend.backend()
    try:
        backend_version = __import__(backend).__version__
    except Exception:  # noqa: BLE001 - informational only
        backend_version = None
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "keras_backend": backend,
        "keras": keras.__version__,
        backend: backend_version,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "calozdc": getattr(calozdc, "__version__", None),
    }
    try:
        import sklearn

        info["scikit-learn"] = sklearn.__version__
    except ImportError:
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["git_commit"] = commit or None
        info["git_dirty"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


# ----------------------------------------------------------------------------- table
def _g(value, digits=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    value = float(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _pm(value, error, digits=3):
    if value is None:
        return DASH
    if error is None or error == 0:
        return _g(value, digits)
    return f"{_g(value, digits)} ± {_g(error, 2)}"


def _bins_cells(bins, key):
    return [_g(b.get(key)) for b in bins] if bins else [DASH] * 3


def _train_cell(train):
    if not train:
        return DASH
    steps = sum((train.get("steps") or {}).values())
    seconds = train.get("train_s")
    if "steps" not in train:  # the lookup: building the k-d trees
        return f"{_g(seconds, 2)} s (k-d tree)"
    if seconds is None:
        return DASH
    first = train.get("first_step_s")
    return f"{seconds:.0f} s, {steps} steps" + (f" (1st {first:.0f} s)" if first else "")


def _timing_cells(timing, batches):
    return [_g((timing or {}).get(str(b), {}).get("ms_per_shower")) for b in batches]


def format_markdown(results):
    """The leaderboard as markdown: one table per dataset (rows floor, lookup, families)."""
    opts = results["options"]
    batches = list(opts["timing_batches"])
    bins = results["energy_bins_gev"]
    bin_names = [f"{lo:g}–{hi:g}" for lo, hi in bins]
    header = (["entrant"] + [f"⟨E⟩ g/r {b}" for b in bin_names]
              + [f"RMS g/r {b}" for b in bin_names]
              + ["W1", "W1/floor", "FPD", "FPD/floor", "KPD", "AUC"]
              + [f"ms/shower b{b}" for b in batches] + ["training"])
    env = results["environment"]
    lines = [
        "# calozdc leaderboard",
        "",
        f"`{results['command']}`",
        "",
        f"{results['date']}; {env['platform']}, {env['cpu_count']} CPUs (load "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_start'])} at start); Keras "
        f"{env['keras']} on {env['keras_backend']} {env.get(env['keras_backend']) or ''}; "
        + (f"training budget {opts['budget_steps']} optimizer steps" if opts.get("budget_steps")
           else f"training budget {opts['budget_s']:g} s")
        + f" per entrant and dataset; seed {opts['seed']}; "
        f"sampling steps {opts['steps']} (families whose generate takes them)"
        + ("; **--quick** (tiny sizes: not a measurement)" if opts.get("quick") else "") + ".",
        "",
        "⟨E⟩ g/r: mean total response generated / real per incident-energy bin (GeV); RMS g/r: "
        "relative RMS (std/mean) of the total, generated / real. W1: ALICE ZDC channel "
        "Wasserstein-1 (mean over the 5 channels; MeV for Geant4, photons for zn44). FPD/KPD: "
        "Fréchet / kernel physics distance of the high-level features; AUC: classifier real vs "
        "generated (0.5 = indistinguishable). X/floor = value / max(|floor|, floor error). "
        "ms/shower at generation batch b (median after a warm-up call).",
    ]
    for name, ds in results["datasets"].items():
        lines += ["", f"## {name}", ""]
        if ds.get("status") != "ok":
            lines.append(f"Skipped: {ds.get('reason')}")
            continue
        sizes = ds["sizes"]
        floor = ds["floor"]
        n_bins = "/".join(str(n) for n in ds["test_showers_per_bin"])
        lines += [
            f"{ds['description']}; {sizes['train']} train, {sizes['test']} test showers "
            f"(per energy bin {n_bins}); source `{ds['source']}`.",
            "",
            f"Floor: {floor['text']}"
            + (f"; {floor.get('n_draws')} draw(s)" if floor["method"] == "reference"
               else f"; {floor.get('n_splits')} split(s)")
            + "; ± = the metric's own error (FPD, KPD) or the spread over the draws/splits"
            + f"; compared samples of {floor['n_compared']} showers.",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines.append(_floor_line(floor, batches))
        for entrant, row in ds["entrants"].items():
            lines.append(_entrant_line(entrant, row, batches))
    return "\n".join(lines) + "\n"


def _floor_line(floor, batches):
    m = floor["metrics"]
    spread = floor.get("spread") or {}

    def err(name):  # the metric's own error (FPD, KPD; split-halves spread), else the draws'
        own = m.get(name, {}).get("error")
        return own if own is not None else spread.get(name)

    def val(name):
        return m.get(name, {}).get("value")

    cells = (["**floor** (real/real)"] + _bins_cells(floor["energy_bins"], "mean_total_ratio")
             + _bins_cells(floor["energy_bins"], "rel_rms_total_ratio")
             + [_pm(val("w1_channels_mean"), err("w1_channels_mean")), "1",
                _pm(val("fpd"), err("fpd")), "1", _pm(val("kpd"), err("kpd")),
                _pm(val("classifier_auc"), err("classifier_auc"))]
             + [DASH] * len(batches) + [DASH])
    return "| " + " | ".join(cells) + " |"


def _entrant_line(entrant, row, batches):
    label = f"**{entrant}**" if entrant == "lookup" else entrant
    if row.get("status") != "ok":
        cells = [f"{label}: {row.get('status')}"] + [DASH] * (6 + 6 + len(batches)) \
            + [_train_cell(row.get("train"))]
        return "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"
    m = row["evaluation"]["metrics"]

    def cell(name, key="value", error_key="error"):
        entry = m.get(name) or {}
        return _pm(entry.get(key), entry.get(error_key) if error_key else None)

    cells = ([label] + _bins_cells(row["energy_bins"], "mean_total_ratio")
             + _bins_cells(row["energy_bins"], "rel_rms_total_ratio")
             + [cell("w1_channels_mean"), _g((m.get("w1_channels_mean") or {}).get("ratio")),
                cell("fpd"), _g((m.get("fpd") or {}).get("ratio")), cell("kpd"),
                cell("classifier_auc")]
             + _timing_cells(row.get("timing"), batches) + [_train_cell(row.get("train"))])
    return "| " + " | ".join(cells) + " |"


# ----------------------------------------------------------------------------- figure
def plot_leaderboard(results, path, dpi=100):
    """Fidelity ratio (channel W1 / floor; FPD / floor) vs ms per shower, one row per dataset.

    x: ms per shower at the largest timed batch (log); y: ratio to the floor (log; 1 = the
    floor). Ratios <= 0 (an extrapolated FPD can be negative) are drawn at 0.01 with a
    down-pointing marker.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [(n, d) for n, d in results["datasets"].items() if d.get("status") == "ok"]
    batch = str(max(results["options"]["timing_batches"]))
    rows = max(1, len(datasets))
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.6 * rows), squeeze=False)
    if not datasets:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no dataset ran", ha="center", va="center")
            ax.set_axis_off()
    for r, (name, ds) in enumerate(datasets):
        for c, (metric, label) in enumerate((("w1_channels_mean", "channel W1 / floor"),
                                             ("fpd", "FPD / floor"))):
            ax = axes[r][c]
            points = 0
            for entrant, row in ds["entrants"].items():
                if row.get("status") != "ok":
                    continue
                ratio = (row["evaluation"]["metrics"].get(metric) or {}).get("ratio")
                ms = (row.get("timing") or {}).get(batch, {}).get("ms_per_shower")
                if ratio is None or ms is None or not ms > 0:
                    continue
                clipped = ratio <= 0
                y = 0.01 if clipped else ratio
                ax.scatter([ms], [y], marker="v" if clipped else "o", s=40,
                           color="black" if entrant == "lookup" else None, zorder=3)
                ax.annotate(entrant + (" (≤0)" if clipped else ""), (ms, y),
                            textcoords="offset points", xytext=(5, 4), fontsize=9)
                points += 1
            ax.axhline(1.0, color="grey", ls="--", lw=1)
            ax.text(0.01, 1.0, " floor", transform=ax.get_yaxis_transform(), va="bottom",
                    color="grey", fontsize=8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.margins(0.2)  # room for the labels
            ax.set_xlabel(f"ms per shower (generation batch {batch})")
            ax.set_ylabel(label)
            ax.set_title(f"{name}: {label}" + ("" if points else " (no entrant)"), fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("calozdc leaderboard: fidelity vs speed"
                 + (" (--quick: not a measurement)" if results["options"].get("quick") else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- writing
def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    return obj


def write_outputs(results, table, out_dir, overwrite=False, plot=plot_leaderboard):
    """Write ``results.json``, ``leaderboard.md`` and ``leaderboard.png`` into ``out_dir``.

    Each file is written to a temporary name and renamed (``calozdc.data.atomic_path``); an
    existing file is replaced only with ``overwrite``. Returns the paths.
    """
    from calozdc.data import atomic_path

    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, n) for n in ("results.json", "leaderboard.md",
                                                 "leaderboard.png")]
    with atomic_path(paths[0], overwrite=overwrite) as tmp:
        with open(tmp, "w") as f:
            json.dump(_clean(results), f, indent=1, allow_nan=False)
            f.write("\n")
    with atomic_path(paths[1], overwrite=overwrite) as tmp:
        with open(tmp, "w") as f:
            f.write(table)
    with atomic_path(paths[2], overwrite=overwrite) as tmp:
        plot(results, tmp)
    return paths
