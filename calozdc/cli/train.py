"""``calozdc train FAMILY --data FILE``: fit a model family and write a run directory.

The run directory holds ``model.keras`` (weights, both optimizers' state, fitted transforms),
``run.json`` (family, geometry, arguments, calozdc version, data path, split seed and sizes)
and ``history.json`` (per-epoch logs). It is written to a temporary directory beside the
target and renamed into place at the end, so an interrupted run leaves nothing half-written.
"""

import json
import os
import shutil
import tempfile

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def register(subparsers):
    from calozdc.models.registry import available_families

    p = subparsers.add_parser(
        "train", help="train a generative model family on a shower file",
        description="Train a model family (model.fit on the active KERAS_BACKEND) and save a "
                    "run directory with model.keras, run.json and history.json.",
    )
    p.add_argument("family", choices=available_families(), help="model family")
    p.add_argument("--data", required=True, help="shower file (calozdc HDF5 or a supported format)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--run-dir", default=None,
                   help="output run directory (default runs/<family>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    p.add_argument("--val-split", type=float, default=0.1,
                   help="validation fraction; test fraction is 0.2, the rest trains (default 0.1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check(args):
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1. Received: epochs={args.epochs}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1. Received: batch_size={args.batch_size}")
    if not 0.0 <= args.val_split < 1.0 - TEST_FRACTION:
        raise ValueError(
            f"--val-split must be in [0, {1.0 - TEST_FRACTION}). Received: {args.val_split}"
        )
    if not os.path.exists(args.data):
        raise ValueError(f"Data file not found. Received: data={args.data!r}")
    run_dir = args.run_dir or os.path.join("runs", args.family)
    if os.path.exists(run_dir) and not args.overwrite:
        raise ValueError(
            f"Run directory exists (use --overwrite to replace it). Received: {run_dir!r}"
        )
    return run_dir


def default_transforms():
    """Shower: log1p then global standardisation; conditions: per-feature standardisation."""
    from calozdc.data import transforms

    return (transforms.Chain([transforms.Log1p(), transforms.Standardize()]),
            transforms.Standardize(axis="feature"))


def _geometry_info(dataset):
    geometry = dataset.geometry
    if geometry is not None:
        return geometry, getattr(geometry, "name", None)
    return tuple(int(s) for s in dataset.showers.shape[1:]), None


def _to_jsonable(logs):
    return {k: [float(v) for v in values] for k, values in logs.items()}


def run(args):
    import numpy as np

    from calozdc.data import load
    from calozdc.models.registry import build_model
    from calozdc.version import __version__

    run_dir = _check(args)
    dataset = load(args.data)
    val = float(args.val_split)
    train, valid, test = dataset.split((1.0 - val - TEST_FRACTION, val, TEST_FRACTION),
                                       seed=SPLIT_SEED)
    if len(train) == 0:
        raise ValueError(f"No training showers after the split. Received: {len(dataset)} showers")
    shower_t, cond_t = default_transforms()
    x_phys = np.asarray(train.showers, dtype="float32")
    c_phys = np.asarray(train.conditions, dtype="float32")
    shower_t.fit(x_phys, conditions=c_phys)
    cond_t.fit(c_phys)
    x = np.asarray(shower_t.forward(x_phys, conditions=c_phys), dtype="float32")
    c = np.asarray(cond_t.forward(c_phys), dtype="float32")
    geometry, geometry_name = _geometry_info(dataset)
    model = build_model(args.family, geometry, c.shape[1], shower_transform=shower_t,
                        condition_transform=cond_t, seed=args.seed, epochs=args.epochs)
    validation = None
    if len(valid):
        vx = np.asarray(valid.showers, dtype="float32")
        vc = np.asarray(valid.conditions, dtype="float32")
        validation = (np.asarray(shower_t.forward(vx, conditions=vc), dtype="float32"),
                      np.asarray(cond_t.forward(vc), dtype="float32"))
    history = model.fit(x, c, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=validation, verbose=0 if args.quiet else "auto")

    import keras

    parent = os.path.dirname(os.path.abspath(run_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(run_dir) + ".tmp-", dir=parent)
    try:
        model.save(os.path.join(tmp, "model.keras"))
        run_info = {
            "family": args.family,
            "geometry": geometry_name,
            "image_shape": list(x.shape[1:]),
            "condition_dim": int(c.shape[1]),
            "condition_names": list(getattr(dataset, "condition_names", None) or []),
            "args": {k: v for k, v in vars(args).items() if k != "func"},
            "calozdc_version": __version__,
            "keras_backend": keras.backend.backend(),
            "data": os.path.abspath(args.data),
            "split": {"fractions": [1.0 - val - TEST_FRACTION, val, TEST_FRACTION],
                      "seed": SPLIT_SEED,
                      "sizes": [len(train), len(valid), len(test)]},
        }
        with open(os.path.join(tmp, "run.json"), "w") as f:
            json.dump(run_info, f, indent=2, default=str)
        with open(os.path.join(tmp, "history.json"), "w") as f:
            json.dump(_to_jsonable(history.history), f, indent=2)
        if os.path.exists(run_dir):
            old = run_dir.rstrip("/") + ".old-" + os.path.basename(tmp)
            os.replace(run_dir, old)
            os.replace(tmp, run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not args.quiet:
        print(f"calozdc train: wrote {run_dir} ({len(train)} training showers, "
              f"{args.epochs} epochs)")
    return 0
