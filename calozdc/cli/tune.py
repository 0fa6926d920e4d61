"""``calozdc tune FAMILY --data FILE``: KerasTuner search on the channel-W1 physics objective.

Trials are stored in ``DIRECTORY/FAMILY`` (KerasTuner's format): rerunning the same command
resumes the search (finished trials are kept) unless ``--overwrite``. The best model is saved
as ``DIRECTORY/best_FAMILY.keras`` and the trial summary as ``DIRECTORY/best_FAMILY.json``;
the summary's ``config`` entry is the best trial as a ``calozdc train`` configuration (builder
options, the sampling settings of the objective as generation settings, the search's epochs,
batch size, seed, validation fraction and data): ``calozdc train --config
DIRECTORY/best_FAMILY.json`` trains that model (see :mod:`calozdc.cli.train_config`).
"""

import json
import os
import tempfile


def register(subparsers):
    from calozdc.names import TUNERS, available_families

    p = subparsers.add_parser(
        "tune", help="search hyperparameters of a model family (KerasTuner)",
        description="Search the hyperparameters of a model family with KerasTuner, minimising "
                    "val_channel_w1 (channel-sum Wasserstein-1 of generated vs validation "
                    "showers). Resumes from --directory.",
    )
    p.add_argument("family", choices=available_families(), help="model family")
    p.add_argument("--data", required=True, help="shower file")
    p.add_argument("--max-trials", type=int, default=10, help="number of trials (default 10)")
    p.add_argument("--tuner", choices=TUNERS, default="random", help="search (default random)")
    p.add_argument("--directory", default="tuning", help="tuner directory (default tuning)")
    p.add_argument("--epochs", type=int, default=5,
                   help="epochs per trial (hyperband: largest budget; default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--val-split", type=float, default=0.1,
                   help="validation fraction for the objective (default 0.1)")
    p.add_argument("--metric-showers", type=int, default=1000,
                   help="validation showers used by the objective (default 1000)")
    p.add_argument("--space", default=None, metavar="JSON",
                   help="search-space overrides: a JSON object or a .json file, e.g. "
                        "'{\"hidden_dim\": [8, 16], \"dropout\": 0.0, \"d_max_lr\": "
                        "{\"min\": 1e-5, \"max\": 1e-3, \"sampling\": \"log\"}}' "
                        "(list: choice; min/max: range; value: fixed)")
    p.add_argument("--seed", type=int, default=0, help="model and tuner seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="restart the search from scratch")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def _check(args):
    for name in ("max_trials", "epochs", "batch_size", "metric_showers"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1. "
                             f"Received: {name}={getattr(args, name)}")
    if not 0.0 < args.val_split < 0.8:
        raise ValueError(f"--val-split must be in (0, 0.8). Received: {args.val_split}")
    if not os.path.exists(args.data):
        raise ValueError(f"Data file not found. Received: data={args.data!r}")


def read_space(value, family):
    """``--space``: a JSON object (inline or a file) whose keys are in the family's space."""
    from calozdc.tuning import HYPERMODELS

    if value is None:
        return None
    text = value
    if os.path.isfile(value):
        with open(value) as f:
            text = f.read()
    try:
        space = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--space must be a JSON object or a JSON file ({err.msg}). "
                         f"Received: space={value!r}") from None
    if not isinstance(space, dict):
        raise ValueError(f"--space must be a JSON object. Received: space={value!r}")
    known = HYPERMODELS[family].DEFAULT_SPACE
    unknown = sorted(set(space) - set(known))
    if unknown:
        raise ValueError(f"--space has hyperparameters that {family} does not tune "
                         f"(known: {sorted(known)}). Received: {unknown}")
    return space


def _best_config(args, hypermodel, hp):
    """The best trial as a ``calozdc train --config`` configuration."""
    from calozdc.cli.train_config import config_from_options

    train = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
             "val_split": args.val_split, "data": os.path.abspath(args.data),
             "builtin_showers": None}
    return config_from_options(args.family, hypermodel.options(dict(hp.values)),
                               generation=hypermodel.metric_generate_kwargs(hp), train=train)


def run(args):
    import numpy as np

    from calozdc.cli.train import SPLIT_SEED, TEST_FRACTION, default_transforms
    from calozdc.data import atomic_path, load
    from calozdc.tuning import get_hypermodel, make_tuner

    _check(args)
    space = read_space(args.space, args.family)
    dataset = load(args.data)
    val = float(args.val_split)
    train, valid, _ = dataset.split((1.0 - val - TEST_FRACTION, val, TEST_FRACTION),
                                    seed=SPLIT_SEED)
    if len(train) == 0 or len(valid) < 2:
        raise ValueError(f"Need training showers and >= 2 validation showers after the split. "
                         f"Received: {len(dataset)} showers, val_split={val}")
    shower_t, cond_t = default_transforms(args.family)
    x_phys = np.asarray(train.showers, dtype="float32")
    c_phys = np.asarray(train.conditions, dtype="float32")
    shower_t.fit(x_phys, conditions=c_phys)
    cond_t.fit(c_phys)
    n_metric = min(args.metric_showers, len(valid))
    vx = np.asarray(valid.showers, dtype="float32")
    vc = np.asarray(valid.conditions, dtype="float32")
    geometry = dataset.geometry if dataset.geometry is not None else tuple(x_phys.shape[1:])
    extra = {}
    if args.family in ("flow", "latent-flow"):
        # Its model space needs the showers' totals: fitted once by a reference model,
        # shared by every trial (the factorisation stays on).
        from calozdc.models.registry import build_model

        ref = build_model(args.family, geometry, c_phys.shape[1], shower_transform=shower_t,
                          condition_transform=cond_t, preset="zdc")
        ref.fit_transforms(x_phys, c_phys)
        preprocess = ref.preprocess
        extra = {"total_stats": ref.total_stats}
    else:
        def preprocess(showers, conditions):
            return (np.asarray(shower_t.forward(showers, conditions=conditions), "float32"),
                    np.asarray(cond_t.forward(conditions), "float32"))
    x, c = preprocess(x_phys, c_phys)
    hypermodel = get_hypermodel(args.family, geometry, c_phys.shape[1], vx[:n_metric],
                                vc[:n_metric], shower_transform=shower_t,
                                condition_transform=cond_t, space=space, seed=args.seed,
                                epochs=args.epochs, **extra)
    hypermodel.check_space()
    tuner = make_tuner(args.tuner, hypermodel, args.directory, args.family,
                       max_trials=args.max_trials, max_epochs=args.epochs, seed=args.seed,
                       overwrite=args.overwrite)
    validation = preprocess(vx, vc)
    verbose = 0 if args.quiet else "auto"
    fit_kwargs = dict(batch_size=args.batch_size, validation_data=validation, verbose=verbose)
    if args.tuner != "hyperband":
        fit_kwargs["epochs"] = args.epochs
    tuner.search(x, c, **fit_kwargs)

    best_trial = tuner.oracle.get_best_trials(1)[0]
    model = tuner.load_model(best_trial)
    target = os.path.join(args.directory, f"best_{args.family}.keras")
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=args.directory)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        os.remove(tmp)
        raise
    summary = {"family": args.family, "tuner": args.tuner, "objective": "val_channel_w1",
               "best_trial": best_trial.trial_id, "best_score": float(best_trial.score),
               "hyperparameters": best_trial.hyperparameters.values,
               "config": _best_config(args, hypermodel, best_trial.hyperparameters),
               "trials": {t.trial_id: (None if t.score is None else float(t.score))
                          for t in tuner.oracle.trials.values()}}
    info = os.path.join(args.directory, f"best_{args.family}.json")
    # Part of the search state (a resumed search updates it): replaced atomically.
    with atomic_path(info, overwrite=True) as tmp, open(tmp, "w") as f:
        json.dump(summary, f, indent=2, default=str)
    if not args.quiet:
        print(f"calozdc tune: {len(summary['trials'])} trials; best {best_trial.trial_id} "
              f"val_channel_w1={best_trial.score:.4g}; wrote {target}")
    return 0
