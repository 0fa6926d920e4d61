"""``calozdc evaluate``: physics metrics of generated showers beside the data-vs-data floor.

Three ways to call it::

    calozdc evaluate GENERATED --data REAL -o OUT/        # or --generated GEN --real REAL
    calozdc evaluate RUN_DIR --data REAL -o OUT/          # RUN_DIR/model.keras generates
    calozdc evaluate RUN_DIR -o OUT/                      # ... for the run's own test split

Files are read with :func:`calozdc.data.load` (calozdc / CaloChallenge HDF5, ALICE npz) or,
for ``.npz`` files with a ``showers`` array (``(N, H, W)``; optional ``conditions``,
``layers``), directly. With a RUN_DIR the saved model (``model.keras``, any Keras model with
a ``generate(conditions, seed=None)`` method returning showers in physical units) is loaded
with ``keras.saving.load_model`` and run on the conditions of the test split
(``ShowerDataset.split((0.7, 0.1, 0.2), seed=--split-seed)[2]``) or of the whole file
(``--split all``), in batches of ``--batch-size`` with seed ``--seed + batch index``.
Without ``--data`` a ``calozdc train`` run directory is evaluated on the showers it was
given: its own test split, rebuilt from ``run.json`` (the data file or the built-in showers,
the split fractions and seed; :func:`calozdc.cli.run_dir.run_data_split`), or all of them
with ``--split all``.
Writes ``OUT/metrics.json`` and ``OUT/report.png`` and prints the headline table.
"""

import os
import textwrap

import numpy as np

from calozdc.cli.main import CLIError

MODEL_FILE = "model.keras"


def _epilog():
    from calozdc.metrics.evaluate import METRIC_DESCRIPTIONS

    lines = [
        "Every metric is reported as value, floor and ratio. The floor is the same metric",
        "between two independent real samples of the same size (two random halves of the",
        "real data, or --reference): the best a perfect generator can score with this many",
        "showers. ratio = value / max(|floor|, floor error): ~1 is as good as the data allow,",
        "larger is worse.",
        "",
        "Metrics:",
    ]
    for name, text in METRIC_DESCRIPTIONS.items():
        lines.append(textwrap.fill(f"{name}: {text}", width=88, initial_indent="  ",
                                   subsequent_indent="      "))
    return "\n".join(lines)


def register(subparsers):
    import argparse

    p = subparsers.add_parser(
        "evaluate",
        help="physics metrics + report of generated vs real showers (with the data floor)",
        description="Compare generated with real showers: ALICE ZDC channel W1/MAE/RMSE, "
        "CaloChallenge feature chi^2, FPD, KPD (and optionally a classifier AUC), each beside "
        "its real-vs-real floor. SOURCE is a file of generated showers or a run directory "
        f"holding {MODEL_FILE} (then showers are generated for the real conditions; without "
        "--data the real showers are the run's own test split, rebuilt from its run.json).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help=f"generated-showers file, or run directory with {MODEL_FILE}")
    p.add_argument("--data", "--real", dest="data", default=None, metavar="REAL",
                   help="real showers file (the reference); optional with a RUN_DIR of "
                   "`calozdc train`: then the run's own test split")
    p.add_argument("--generated", default=None, metavar="FILE",
                   help="generated showers file (instead of SOURCE)")
    p.add_argument("--reference", default=None, metavar="FILE",
                   help="a second, independent real sample for the floor (default: split REAL)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="output directory for metrics.json and report.png")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--seed", type=int, default=0, help="seed for splits, batches, generation")
    p.add_argument("--geometry", default=None, help="geometry name (default: from the data)")
    p.add_argument("--splits", type=int, default=1, metavar="K",
                   help="average model and floor over K random half-splits of REAL (steadier "
                   "ratios, errors from the spread; K times slower; default 1)")
    p.add_argument("--classifier", action="store_true",
                   help="also train a classifier real vs generated (AUC; slower)")
    p.add_argument("--max-samples", type=int, default=None, metavar="N",
                   help="use at most N real showers (random subset)")
    p.add_argument("--split", choices=("test", "all"), default="test",
                   help="RUN_DIR mode: generate for the test split (default) or all of REAL "
                   "(without --data: all of the run's data)")
    p.add_argument("--split-seed", type=int, default=None,
                   help="RUN_DIR mode with --data: seed of the 70/10/20 split of REAL (default "
                   "0; without --data the run's own split is used)")
    p.add_argument("--batch-size", type=int, default=1024,
                   help="RUN_DIR mode: generation batch size")
    p.add_argument("--set", dest="set", action="append", default=None, metavar="KEY=VALUE",
                   help="RUN_DIR mode: override a generation setting of the run (default: "
                   "the run's, from its run.json; e.g. --set steps=50)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads for FPD/KPD/classifier (default 1, the fastest for "
                   "these small matrices; 0: no limit)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars on stderr (the table is still printed)")
    p.set_defaults(func=run)


def read_showers(path, geometry=None):
    """Read showers for evaluation: ``calozdc.data.load`` or a plain ``.npz`` with ``showers``.

    Returns a :class:`calozdc.metrics.Sample`.
    """
    from calozdc.metrics import Sample, as_sample

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file. Received: {path!r}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as npz:
            if "showers" in npz.files:
                return as_sample(
                    Sample(
                        npz["showers"],
                        npz["conditions"] if "conditions" in npz.files else None,
                        npz["layers"] if "layers" in npz.files else None,
                    ),
                    geometry,
                )
    from calozdc.data import load

    return as_sample(load(path, geometry=geometry), geometry)


def read_dataset(path, geometry=None):
    """Read real data as a :class:`calozdc.data.ShowerDataset` (for the test split)."""
    from calozdc.data import ShowerDataset, load

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file. Received: {path!r}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as npz:
            if "showers" in npz.files:
                if "conditions" not in npz.files:
                    raise ValueError(
                        f"{path!r} has no 'conditions' array; a model needs them to generate."
                    )
                return ShowerDataset(
                    npz["showers"], npz["conditions"],
                    layers=npz["layers"] if "layers" in npz.files else None,
                    geometry=geometry,
                )
    return load(path, geometry=geometry)


def generate_from_run(run_dir, conditions, seed=0, batch_size=1024, verbose=False,
                      sets=None):
    """Load ``run_dir/model.keras`` and generate one shower per row of ``conditions``.

    The model must have ``generate(conditions, seed=None)`` returning showers
    ``(n, H, W[, 1])`` in physical units (calozdc model families do). Batch ``i`` uses seed
    ``seed + i``; ``verbose`` shows a bar of the showers generated on stderr. A run of
    ``calozdc train`` generates with its recorded generation settings (``run.json``
    ``config.generation``), ``sets`` (``[(key, value), ...]``) over them.
    """
    import keras

    from calozdc.utils.progress import batch_ranges

    try:  # registers the calozdc model classes for deserialisation
        import calozdc.models  # noqa: F401
    except ImportError:  # pragma: no cover - model families not installed
        pass
    path = os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise CLIError(f"No {MODEL_FILE} in the run directory. Received: run_dir={run_dir!r}")
    if os.path.isfile(os.path.join(run_dir, "run.json")):
        # A `calozdc train` run: also check its calozdc version and model family.
        from calozdc.cli.run_dir import load_run_model
        from calozdc.cli.train_config import generation_settings

        model, run_info = load_run_model(run_dir)
        settings = generation_settings(run_info, model, sets)
    else:
        if sets:
            raise ValueError(f"--set needs a run directory of `calozdc train` (with run.json). "
                             f"Received: {run_dir!r}")
        model = keras.saving.load_model(path)
        settings = {}
    if not callable(getattr(model, "generate", None)):
        raise CLIError(
            f"The model in {path!r} has no generate(conditions, seed=None) method "
            f"(class {type(model).__name__})."
        )
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    parts = []
    ranges = batch_ranges(len(conditions), int(batch_size), "generate", verbose)
    for i, (start, stop) in enumerate(ranges):
        batch = conditions[start:stop]
        showers = model.generate(batch, seed=seed + i, **settings)
        parts.append(np.asarray(keras.ops.convert_to_numpy(showers)))
    return np.concatenate(parts)


def run(args):
    from calozdc.cli.train_config import parse_set
    from calozdc.metrics import (
        Sample,
        evaluate,
        format_table,
        largest_feature_terms,
        write_report,
    )

    if args.source is not None and args.generated is not None:
        raise CLIError("give the generated showers either as SOURCE or with --generated, not both")
    source = args.source if args.source is not None else args.generated
    run_mode = args.source is not None and os.path.isdir(args.source)
    if args.data is None and not run_mode:
        raise CLIError("give the real showers with --data/--real FILE (optional only when SOURCE "
                       "is a run directory of `calozdc train`: its test split is then used)")
    if source is None:
        raise CLIError("give SOURCE (generated file or run directory) or --generated FILE")
    if args.set and not run_mode:
        raise CLIError("--set (generation settings) goes with a run directory SOURCE")
    if args.max_samples is not None and args.max_samples < 2:
        raise ValueError(f"--max-samples must be >= 2. Received: {args.max_samples}")
    out_dir = args.output
    if not args.overwrite:
        for name in ("metrics.json", "report.png"):
            if os.path.exists(os.path.join(out_dir, name)):
                raise FileExistsError(
                    f"Output exists; pass --overwrite to replace it. Received: "
                    f"{os.path.join(out_dir, name)!r}"
                )
    real_source = None if args.data is None else os.path.abspath(args.data)
    if os.path.isdir(source):
        if not os.path.isfile(os.path.join(source, MODEL_FILE)):
            raise CLIError(f"No {MODEL_FILE} in the run directory. Received: {source!r}")
        if args.data is not None:
            data = read_dataset(args.data, args.geometry)
            if args.split == "test":
                seed = 0 if args.split_seed is None else args.split_seed
                data = data.split((0.7, 0.1, 0.2), seed=seed)[2]
        else:
            data, real_source = _run_split(source, args)
        real = read_sample_subset(data, args)
        showers = generate_from_run(source, real.conditions, seed=args.seed,
                                    batch_size=args.batch_size, verbose=not args.quiet,
                                    sets=parse_set(args.set))
        generated = Sample(showers, real.conditions, None, real.geometry)
    else:
        real = read_showers(args.data, args.geometry)
        generated = read_showers(source, args.geometry or real.geometry)
        if args.max_samples is not None:
            paired = len(generated) == len(real)
            if len(real) > args.max_samples:
                idx = _subset(len(real), args.max_samples, args.seed)
                real = real.take(idx)
                if paired:  # keep the pairs (same conditions) together
                    generated = generated.take(idx)
            if len(generated) > args.max_samples:
                generated = generated.take(_subset(len(generated), args.max_samples, args.seed))
    reference = None
    if args.reference is not None:
        reference = read_showers(args.reference, real.geometry)
    results = evaluate(real, generated, geometry=real.geometry, real_reference=reference,
                       seed=args.seed, classifier=args.classifier,
                       num_threads=args.threads or None, n_splits=args.splits,
                       verbose=not args.quiet)
    results["info"]["real_file"] = real_source
    results["info"]["source"] = os.path.abspath(source)
    if os.path.isdir(source):
        results["info"]["real_split"] = args.split
    paths = write_report(results, real, generated, out_dir, overwrite=args.overwrite)
    print(format_table(results))
    terms = largest_feature_terms(results)
    if terms:
        print("largest FPD terms (1-D Frechet of one feature; ratio to its floor): " + ", ".join(
            f"{name} {value:.3g}" + ("" if ratio is None else f" ({ratio:.3g}x)")
            for name, value, ratio in terms))
    print(f"wrote {paths['metrics']} and {paths['report']}")


def _run_split(run_dir, args):
    """The run's own showers (test split or all) when RUN_DIR comes without --data."""
    from calozdc.cli.run_dir import RUN_FILE, run_data_split

    if args.split_seed is not None:
        raise ValueError("--split-seed goes with --data; without --data the run's own split is "
                         f"used. Received: --split-seed={args.split_seed}")
    if not os.path.isfile(os.path.join(run_dir, RUN_FILE)):
        raise CLIError(f"No {RUN_FILE} in the run directory, so its data are unknown; give the "
                       f"real showers with --data FILE. Received: {run_dir!r}")
    data, source = run_data_split(run_dir, part=args.split, verbose=not args.quiet)
    if source is not None and not source.startswith("builtin:"):
        source = os.path.abspath(source)
    return data, source


def read_sample_subset(data, args):
    from calozdc.metrics import as_sample

    sample = as_sample(data, args.geometry)
    if args.max_samples is not None and len(sample) > args.max_samples:
        sample = sample.take(_subset(len(sample), args.max_samples, args.seed))
    return sample


def _subset(n, k, seed):
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
