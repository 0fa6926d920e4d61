"""``calozdc train FAMILY [--preset NAME] [--config FILE] [--set KEY=VALUE ...]``: fit a model
family and write a run directory.

Without ``--data`` the model trains on the built-in zn44 showers
(:func:`calozdc.data.builtin_dataset`: simulated once with a fixed seed, then read from the
user cache).

The model, training, transform and generation options of the run are resolved in the order
family defaults < preset (``--preset NAME``, :mod:`calozdc.presets`, listed by ``calozdc
presets``) < ``--config FILE.json`` < the flags (``--epochs`` ...) < ``--set KEY=VALUE``
(values read as JSON when they are JSON); unknown options or bad values give one error naming
the option (exit code 2). See :mod:`calozdc.cli.train_config`. The resolved configuration is
saved as ``config`` in ``run.json``: ``calozdc train --config RUN_DIR/run.json`` builds the
same model (the same weights for the same data and seed); its ``generation`` settings
(``steps``, ``solver`` ...) are used by the monitors, ``calozdc generate`` and ``calozdc
evaluate RUN_DIR``.

The run directory is created when training starts and holds, while training:

* ``run.json``: family, geometry, the resolved configuration (``config``), the run's
  arguments (defaults filled in), calozdc version,
  Keras backend, dtype policy, data source, split seed and sizes, and ``status``:
  ``"running"``, ``"finished"``, ``"interrupted"`` (Ctrl-C) or ``"failed"`` (e.g. a NaN, with
  the epoch, batch and loss terms under ``"non_finite"``);
* ``checkpoint/``: the latest checkpoint (every ``--checkpoint-every`` epochs and at the end):
  ``model-epochNNNNN.keras`` (weights, both optimizers' state, transforms) and
  ``checkpoint.json`` (epochs done, history so far, arguments, seed, random-generator
  states), written atomically (see :class:`calozdc.callbacks.RunCheckpoint`);

and when training has finished ``model.keras`` (the final model) and ``history.json``
(per-epoch logs). ``calozdc train --resume RUN_DIR [--epochs E]`` continues an interrupted
run (or extends a finished one) from its checkpoint with the run's own arguments; the batches
are shuffled from ``(seed, epoch)`` and the random-generator states are restored, so on CPU a
resumed run ends with the same weights as an uninterrupted one. A non-finite loss stops
training with exit code 2 and leaves the last good checkpoint in place.

``--logdir DIR`` writes TensorBoard event files (Keras' ``TensorBoard``) with the training
scalars (learning rates, loss scales, codebook health), physics metrics of the validation
split (channel W1, total-energy W1) and shower images every ``--metrics-every`` epochs.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

SPLIT_SEED = 0
TEST_FRACTION = 0.2
CHECKPOINT_DIR = "checkpoint"
#: Defaults of the options that define a run (fixed on ``--resume``).
RUN_DEFAULTS = {"epochs": 10, "batch_size": 64, "seed": 0, "val_split": 0.1, "data": None,
                "builtin_showers": None, "mixed_precision": None, "distribution": "none"}
#: Validation showers used by the physics metrics (at most).
METRIC_SHOWERS = 1000
#: Showers pictured in TensorBoard.
IMAGE_SHOWERS = 4
#: Extra callbacks for tests (factories called with no argument, appended last).
extra_callbacks = []

_EPILOG = """\
options (--set KEY=VALUE, or in a --config file):
  model       the family builder's arguments, e.g. gan: latent_dim, hidden_dim,
              generator_variant, discriminator_variant, dropout, heads, real_label,
              fake_label, training_ratio, gradient_penalty_weight, g_max_lr, d_max_lr,
              base_lr, step_size, gamma, output_activation, generator_loss_terms;
              ddim: widths, blocks_per_level, attention, schedule, prediction_type,
              p_uncond, ema_decay, learning_rate; flow: model.preset (U-Net size),
              widths, ..., factorise, time_sampling, learning_rate
  train       epochs, batch_size, seed, val_split, data, builtin_showers,
              mixed_precision, distribution (as the flags)
  transforms  shower_transform, condition_transform: a name ("log1p"), a list of
              names (a chain) or a serialized dict
  generation  ddim: steps, eta, guidance; flow: steps, solver, guidance (used by
              the --logdir monitors, `calozdc generate` and `calozdc evaluate RUN`)
  An unknown option lists the valid ones. A --config file is a JSON object with
  "family", "preset" and the sections as objects (or options by name).

examples:
  calozdc train gan --preset seed000 --set hidden_dim=32 --set training_ratio=[2,1]
  calozdc train flow --preset zdc --set steps=25 --set solver=heun
  calozdc train ddim --set 'shower_transform=["log1p", "standardize"]'
  calozdc train gan --set 'generator_loss_terms=[{"loss": "EnergyConservationLoss",
      "config": {"target": "showers"}, "weight": 0.01}]'
  calozdc train --config runs/gan/run.json --run-dir runs/gan2   # same model again
  calozdc train gan --config tuning/best_gan.json               # the tuner's best
"""


def register(subparsers):
    from calozdc.data.builtin import DEFAULT_BUILTIN_SHOWERS
    from calozdc.names import available_families

    p = subparsers.add_parser(
        "train", help="train a generative model family (built-in showers or a shower file)",
        description="Train a model family (model.fit on the active KERAS_BACKEND) and write\n"
                    "a run directory with model.keras, run.json, history.json and\n"
                    "checkpoint/. Options resolve as: family defaults < --preset < --config <\n"
                    "flags < --set; run.json records them all (`config`). Resume an\n"
                    "interrupted run with --resume RUN_DIR.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("family", nargs="?", choices=available_families(), default=None,
                   help="model family (optional with --resume, or with a --config that "
                        "names one)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="a named option set of the family (`calozdc presets FAMILY` lists "
                        "them; default: the config's, else 'default')")
    p.add_argument("--config", default=None, metavar="FILE.json",
                   help="options as a JSON object (sections model/train/transforms/"
                        "generation, or options by name); a run's run.json or a tune "
                        "best_FAMILY.json (their 'config' entry) reproduces that run")
    p.add_argument("--set", dest="set", action="append", default=None, metavar="KEY=VALUE",
                   help="set one option (repeatable; VALUE as JSON when it parses, else a "
                        "string), e.g. --set hidden_dim=32 --set training_ratio=[2,1]")
    p.add_argument("--data", default=None,
                   help="shower file (calozdc HDF5 or a supported format); default: the "
                        "built-in zn44 showers")
    p.add_argument("--builtin-showers", type=int, default=None, metavar="N",
                   help=f"number of built-in showers without --data (default "
                        f"{DEFAULT_BUILTIN_SHOWERS})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {RUN_DEFAULTS['epochs']}; with --resume: "
                        "the new total, default the run's)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"batch size (default {RUN_DEFAULTS['batch_size']})")
    p.add_argument("--run-dir", default=None, help="output run directory (default runs/<family>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run directory")
    p.add_argument("--seed", type=int, default=None,
                   help="model, noise and shuffling seed (default 0)")
    p.add_argument("--val-split", type=float, default=None,
                   help="validation fraction; test fraction is 0.2, the rest trains (default 0.1)")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                   help="write a checkpoint every N epochs (default 1; always at the end)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its checkpoint (its arguments; "
                        "--epochs may extend it)")
    p.add_argument("--logdir", default=None, metavar="DIR",
                   help="TensorBoard directory: training scalars, physics metrics, images")
    p.add_argument("--metrics-every", type=int, default=5, metavar="K",
                   help="physics metrics and images every K epochs with --logdir (default 5)")
    p.add_argument("--mixed-precision", choices=("float16", "bfloat16"), default=None,
                   help="train under the Keras mixed_float16 / mixed_bfloat16 policy")
    p.add_argument("--distribution", choices=("none", "data-parallel"), default=None,
                   help="data-parallel training over the visible devices (default none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- arguments
def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")


def _check_monitoring(args):
    _positive("--checkpoint-every", args.checkpoint_every)
    _positive("--metrics-every", args.metrics_every)
    if args.logdir is not None and os.path.exists(args.logdir) and not os.path.isdir(args.logdir):
        raise ValueError(f"--logdir must be a directory, not a file. Received: {args.logdir!r}")


def _check_run_options(opts):
    if opts["epochs"] < 1:
        raise ValueError(f"--epochs must be >= 1. Received: epochs={opts['epochs']}")
    if opts["batch_size"] < 1:
        raise ValueError(f"--batch-size must be >= 1. Received: batch_size={opts['batch_size']}")
    if not 0.0 <= opts["val_split"] < 1.0 - TEST_FRACTION:
        raise ValueError(
            f"--val-split must be in [0, {1.0 - TEST_FRACTION}). Received: {opts['val_split']}"
        )
    if opts["data"] is not None:
        if opts["builtin_showers"] is not None:
            raise ValueError("--builtin-showers is for the built-in data; it cannot be combined "
                             f"with --data. Received: data={opts['data']!r}")
        if not os.path.exists(opts["data"]):
            raise ValueError(f"Data file not found. Received: data={opts['data']!r}")
    elif opts["builtin_showers"] is not None and opts["builtin_showers"] < 10:
        raise ValueError(f"--builtin-showers must be >= 10. Received: {opts['builtin_showers']}")


def _fresh_options(args):
    """Run options and resolved configuration of a new run (see
    :func:`calozdc.cli.train_config.resolve`)."""
    from calozdc.cli import train_config
    from calozdc.data.builtin import DEFAULT_BUILTIN_SHOWERS

    sets = train_config.parse_set(args.set)
    file_config = None
    if args.config is not None:
        file_config = train_config.read_config_file(args.config)
    flags = {k: getattr(args, k) for k in RUN_DEFAULTS if getattr(args, k) is not None}
    config = train_config.resolve(args.family, args.preset, file_config,
                                  config_source=f"--config {args.config!r}", flags=flags,
                                  sets=sets)
    opts = dict(config["train"])
    _check_run_options(opts)
    if opts["data"] is None and opts["builtin_showers"] is None:
        opts["builtin_showers"] = DEFAULT_BUILTIN_SHOWERS
    if opts["data"] is not None:
        opts["data"] = os.path.abspath(opts["data"])
    config["train"] = dict(opts)
    family = config["family"]
    opts["family"] = family
    run_dir = args.run_dir or os.path.join("runs", family)
    if os.path.exists(run_dir):
        if not args.overwrite:
            raise ValueError(
                f"Run directory exists (use --overwrite to replace it). Received: {run_dir!r}"
            )
        if not os.path.isdir(run_dir):
            raise ValueError(f"The run directory is a file. Received: {run_dir!r}")
        if os.listdir(run_dir) and not os.path.isfile(os.path.join(run_dir, "run.json")):
            raise ValueError("--overwrite only replaces calozdc run directories (with run.json); "
                             f"this one is not empty and has none. Received: {run_dir!r}")
    return opts, run_dir, config


def _read_run(run_dir):
    if not os.path.isdir(run_dir):
        raise ValueError(f"--resume: no such run directory. Received: {run_dir!r}")
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        raise ValueError(f"--resume: not a calozdc train run directory (no run.json). "
                         f"Received: {run_dir!r}")
    from calozdc.version import check_compatible

    try:
        with open(path) as f:
            info = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--resume: {path!r} is not valid JSON ({err}). Received: {path!r}") \
            from None
    if not isinstance(info, dict):
        raise ValueError(f"--resume: {path!r} must hold a JSON object. Received: "
                         f"{type(info).__name__}")
    check_compatible("run", info.get("format_version"), info.get("calozdc_version"),
                     what=f"Run directory {run_dir!r}")
    return info


def _resume_options(args):
    """Run options of ``--resume``: the stored ones, with a new ``--epochs`` if given."""
    from calozdc.callbacks.run_checkpoint import read_checkpoint

    run_dir = args.resume
    for flag, given in (("--preset", args.preset), ("--config", args.config),
                        ("--set", args.set)):
        if given is not None:
            raise ValueError(f"{flag} cannot be combined with --resume (the run keeps its "
                             f"configuration; --epochs may extend it). Received: {flag} "
                             f"{given!r}")
    info = _read_run(run_dir)
    stored = info.get("options") or {}
    family = info.get("family")
    if args.family is not None and args.family != family:
        raise ValueError(f"--resume: the run in {run_dir!r} trains the {family!r} family, not "
                         f"{args.family!r}. Received: family={args.family!r}")
    if family in ("vqvae", "vqgan", "latent-flow"):
        raise ValueError(f"--resume is not supported for the {family} family (its fit has two "
                         f"phases); start a new run. Received: family={family!r}")
    if args.run_dir is not None and os.path.abspath(args.run_dir) != os.path.abspath(run_dir):
        raise ValueError(f"--run-dir cannot differ from --resume. Received: {args.run_dir!r}")
    if args.overwrite:
        raise ValueError("--overwrite cannot be combined with --resume. Received: --overwrite")
    for key in RUN_DEFAULTS:
        given = getattr(args, key)
        if key == "data" and given is not None:
            given = os.path.abspath(given)
        if key != "epochs" and given is not None and given != stored.get(key):
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"{flag} cannot change when resuming (the run used "
                             f"{stored.get(key)!r}). Received: {flag}={given!r}")
    ckpt = read_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
    done = int(ckpt["epoch"])
    opts = dict(stored, family=family)
    if args.epochs is not None:
        opts["epochs"] = args.epochs
    _check_run_options(opts)
    if opts["epochs"] <= done:
        what = "finished" if info.get("status") == "finished" else "has a checkpoint"
        raise ValueError(f"--resume: the run {what} after {done} epochs; pass --epochs > {done} "
                         f"to train longer. Received: epochs={opts['epochs']}")
    return opts, run_dir, info, ckpt


# ----------------------------------------------------------------------------- helpers
def default_transforms(family=None):
    """The family's recommended transforms (:func:`calozdc.models.registry.default_transforms`);
    without a family: log1p then global standardisation of the showers, per-feature
    standardisation of the conditions."""
    from calozdc.models.registry import default_transforms as family_transforms

    return family_transforms(family)


#: Training showers generated to calibrate a model's zero level after training.
CALIBRATION_SHOWERS = 512


def _calibrate_zero_level(model, train, config, quiet):
    """After training, the zero level of the generated showers set to the training occupancy:
    a flow model's model-space ``zero_threshold`` (``FlowMatching.calibrate_zero_threshold``)
    or, for a family with a fitted total model, its ``zero_fraction``
    (``TotalEnergyMixin.calibrate_zero_level``), with the run's generation settings, on
    :data:`CALIBRATION_SHOWERS` training showers. Returns what was set (for run.json), or
    None for models without a zero level to calibrate."""
    import inspect

    import numpy as np

    flow = getattr(model, "zero_threshold", None) is not None and \
        hasattr(model, "calibrate_zero_threshold")
    if not flow and not getattr(model, "totals_fitted", False):
        return None
    params = inspect.signature(model.generate).parameters
    generation = {k: v for k, v in ((config or {}).get("generation") or {}).items()
                  if v is not None and k in params and k not in ("seed", "batch_size", "verbose")}
    if not quiet:
        print("calozdc train: calibrating the zero level on training showers", flush=True)
    rows = np.sort(np.random.default_rng(0).permutation(len(train))[:CALIBRATION_SHOWERS])
    subset = train[rows]
    if flow:
        options = {k: generation[k] for k in ("steps", "solver") if k in generation}
        before = float(model.zero_threshold)
        value = model.calibrate_zero_threshold(subset.showers, subset.conditions,
                                               n=len(rows), **options)
        return {"zero_threshold": value, "before": before, **options}
    value = model.calibrate_zero_level(subset.showers, subset.conditions, n=len(rows),
                                       **generation)
    return {"zero_fraction": value, **generation}


def _monitor_settings(run_info):
    """``generate`` arguments of the monitors: the run's generation settings (steps capped
    at :data:`~calozdc.cli.train_config.MONITOR_STEPS`); runs without a recorded
    configuration (older calozdc): 20 DDIM steps, else the model's defaults."""
    from calozdc.cli.train_config import MONITOR_STEPS, monitor_settings

    config = run_info.get("config")
    if isinstance(config, dict):
        return monitor_settings(config)
    return {"steps": MONITOR_STEPS} if run_info.get("family") == "ddim" else None


def _geometry_info(dataset):
    geometry = dataset.geometry
    if geometry is not None:
        return geometry, getattr(geometry, "name", None)
    return tuple(int(s) for s in dataset.showers.shape[1:]), None


def _load_data(opts, quiet):
    from calozdc.data import load
    from calozdc.data.builtin import builtin_dataset, builtin_path

    if opts["data"] is not None:
        return load(opts["data"]), opts["data"]
    n = int(opts["builtin_showers"])
    return builtin_dataset(n=n, verbose=not quiet), f"builtin:{builtin_path(n)}"


def _round_trip(transform):
    """The transform as a saved model will have it (so fresh and resumed runs feed identical
    batches)."""
    from calozdc.data import transforms

    return transforms.deserialize(json.loads(json.dumps(transforms.serialize(transform))))


def _batches_class():
    from calozdc.data.shower_batches import ShowerBatches

    class EpochBatches(ShowerBatches):
        """ShowerBatches whose shuffle order is set per epoch by :class:`_DataEpoch`."""

        def set_epoch(self, epoch):
            self.epoch = int(epoch)
            self._order = self._make_order()

        def on_epoch_end(self):  # the order depends on the epoch number only
            pass

    return EpochBatches


def _callback_classes():
    import keras

    from calozdc.callbacks import PhysicsMetricsCallback, ShowerImagesCallback
    from calozdc.callbacks.run_checkpoint import sync_model_state

    class DataEpoch(keras.callbacks.Callback):
        """Shuffles the batches for epoch ``e`` from ``seed + e`` (exact resume); writes the
        JAX state of nested models back at epoch end (VQGenerator)."""

        def __init__(self, batches):
            super().__init__()
            self.batches = batches

        def on_epoch_begin(self, epoch, logs=None):
            self.batches.set_epoch(epoch)

        def on_epoch_end(self, epoch, logs=None):
            sync_model_state(self.model)

    def guarded(base):
        """``base`` whose epoch-end work is skipped once the non-finite guard has tripped."""

        class Guarded(base):
            def __init__(self, guard, *a, **k):
                super().__init__(*a, **k)
                self.guard = guard

            def on_epoch_end(self, epoch, logs=None):
                if not self.guard.tripped:
                    super().on_epoch_end(epoch, logs)

        Guarded.__name__ = f"Guarded{base.__name__}"
        return Guarded

    return DataEpoch, guarded(PhysicsMetricsCallback), guarded(ShowerImagesCallback)


def _monitoring_callbacks(args, valid, guard, phys_cls, images_cls, seed, generate_kwargs):
    import keras
    import numpy as np

    from calozdc.callbacks import TrainingScalarsCallback

    logdir = args.logdir
    out = [TrainingScalarsCallback()]
    if len(valid):
        m = min(len(valid), METRIC_SHOWERS)
        showers = np.asarray(valid.showers[:m], dtype="float32")
        conditions = np.asarray(valid.conditions[:m], dtype="float32")
        gen_kwargs = generate_kwargs
        out.append(phys_cls(guard, showers, conditions, every=args.metrics_every,
                            geometry=valid.geometry, seed=seed, generate_kwargs=gen_kwargs,
                            log_dir=logdir))
        k = min(m, IMAGE_SHOWERS)
        out.append(images_cls(guard, logdir, conditions[:k], showers[:k],
                              every=args.metrics_every, seed=seed,
                              histogram_showers=showers, histogram_conditions=conditions,
                              geometry=valid.geometry, generate_kwargs=gen_kwargs))
    # Last: it writes the logs the callbacks above have completed.
    out.append(keras.callbacks.TensorBoard(logdir, write_graph=False))
    return out


def _write_model(model, path):
    """``model.save`` to ``path`` atomically (a ``.keras`` temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=os.path.dirname(path))
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _link_or_copy(source, target):
    """Put ``source`` at ``target`` atomically: a hard link (no copy), else a copy."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=os.path.dirname(target))
    os.close(fd)
    os.remove(tmp)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _prepare_run_dir(run_dir):
    """Empty ``run_dir`` (a calozdc run directory, checked) or create it."""
    if os.path.isdir(run_dir):
        old = run_dir.rstrip("/") + f".old-{os.getpid()}-{int(time.time())}"
        os.replace(run_dir, old)
        shutil.rmtree(old, ignore_errors=True)
    os.makedirs(run_dir)


# ----------------------------------------------------------------------------- main
def run(args):
    import keras
    import numpy as np

    from calozdc.callbacks import NonFiniteGuard, RunCheckpoint
    from calozdc.callbacks.run_checkpoint import load_checkpoint, write_json
    from calozdc.cli import train_config
    from calozdc.cli.main import CLIError
    from calozdc.version import FORMAT_VERSIONS, __version__

    _check_monitoring(args)
    if args.resume is not None:
        opts, run_dir, run_info, ckpt = _resume_options(args)
        config = None
    else:
        opts, run_dir, config = _fresh_options(args)
        run_info, ckpt = None, None
    family = opts["family"]
    dataset, source = _load_data(opts, args.quiet)
    val = float(opts["val_split"])
    fractions = [1.0 - val - TEST_FRACTION, val, TEST_FRACTION]
    train, valid, test = dataset.split(tuple(fractions), seed=SPLIT_SEED)
    if len(train) == 0:
        raise ValueError(f"No training showers after the split. Received: {len(dataset)} showers")
    geometry, geometry_name = _geometry_info(dataset)
    from calozdc.backend.distribution import distribution_scope

    seed = int(opts["seed"])
    keras.utils.set_random_seed(seed)
    previous_policy = keras.mixed_precision.global_policy()
    if opts["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_" + opts["mixed_precision"])
    run_json = os.path.join(run_dir, "run.json")
    try:
        with distribution_scope(opts["distribution"] or "none"):
            if ckpt is None:
                shower_t, cond_t = train_config.transforms_of(config)
                x_phys = np.asarray(train.showers, dtype="float32")
                c_phys = np.asarray(train.conditions, dtype="float32")
                shower_t.fit(x_phys, conditions=c_phys)
                cond_t.fit(c_phys)
                shower_t, cond_t = _round_trip(shower_t), _round_trip(cond_t)
                # also completes and checks config["generation"] against model.generate
                model = train_config.build_model(config, geometry, c_phys.shape[1],
                                                 shower_transform=shower_t,
                                                 condition_transform=cond_t)
                if getattr(model, "fit_with_preprocess", False):
                    # its model space depends on more than the transforms (flow: the
                    # shower's own total): the model fits it and maps every batch
                    model.fit_transforms(x_phys, c_phys)
                if getattr(model, "total_model", None) is not None:
                    # the energy/shape factorisation: the total's own small flow
                    model.fit_totals(x_phys, c_phys)
                initial_epoch, history = 0, {}
                _prepare_run_dir(run_dir)
                run_info = {
                    "family": family,
                    "status": "running",
                    "geometry": geometry_name,
                    "image_shape": list(x_phys.shape[1:]),
                    "condition_dim": int(c_phys.shape[1]),
                    "condition_names": list(getattr(dataset, "condition_names", None) or []),
                    "config": config,
                    "options": opts,
                    "calozdc_version": __version__,
                    "format_version": FORMAT_VERSIONS["run"],
                    "keras_backend": keras.backend.backend(),
                    "dtype_policy": model.dtype_policy.name,
                    "data": source,
                    "split": {"fractions": fractions, "seed": SPLIT_SEED,
                              "sizes": [len(train), len(valid), len(test)]},
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            else:
                model, _ = load_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
                shower_t, cond_t = model.shower_transform, model.condition_transform
                initial_epoch, history = int(ckpt["epoch"]), ckpt.get("history") or {}
                run_info["options"] = opts
                run_info["status"] = "running"
                run_info.setdefault("resumed", []).append(
                    {"epoch": initial_epoch, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
            run_info["args"] = {**opts, "run_dir": run_dir, "logdir": args.logdir,
                                "checkpoint_every": args.checkpoint_every,
                                "metrics_every": args.metrics_every}
            write_json(run_json, run_info)

            batches_cls = _batches_class()
            data_epoch_cls, phys_cls, images_cls = _callback_classes()
            # Data-parallel steps need whole global batches (split evenly over devices).
            parallel = (opts["distribution"] or "none") != "none"
            if getattr(model, "fit_with_preprocess", False):
                feed = {"preprocess": model.preprocess}
            else:
                feed = {"shower_transform": shower_t, "condition_transform": cond_t}
            batches = batches_cls(train, opts["batch_size"], shuffle=True, seed=seed,
                                  drop_remainder=parallel and len(train) >= opts["batch_size"],
                                  **feed)
            validation = None
            if len(valid):
                validation = batches_cls(valid, opts["batch_size"], shuffle=False, **feed)
            guard = NonFiniteGuard()
            metadata = {"options": opts, "seed": seed, "family": family}
            checkpoint = RunCheckpoint(os.path.join(run_dir, CHECKPOINT_DIR),
                                       every=args.checkpoint_every, metadata=metadata,
                                       history=history, guard=guard)
            callbacks = [data_epoch_cls(batches), guard]
            if args.logdir is not None:
                *monitors, tensorboard = _monitoring_callbacks(
                    args, valid, guard, phys_cls, images_cls, seed, _monitor_settings(run_info))
                callbacks += monitors + [checkpoint, tensorboard]
            else:  # learning rates (and loss scales) in history.json all the same
                from calozdc.callbacks import TrainingScalarsCallback

                callbacks += [TrainingScalarsCallback(), checkpoint]
            callbacks += [factory() for factory in extra_callbacks]
            # shuffle=False: Keras would permute the batch indices with Python's global RNG;
            # the batches shuffle themselves from (seed, epoch).
            fit_kwargs = {"shuffle": False}
            if initial_epoch:
                fit_kwargs["initial_epoch"] = initial_epoch
            try:
                model.fit(batches, epochs=opts["epochs"], validation_data=validation,
                          callbacks=callbacks, verbose=0 if args.quiet else "auto",
                          **fit_kwargs)
            except KeyboardInterrupt:
                run_info["status"] = "interrupted"
                run_info["checkpoint_epoch"] = checkpoint.last_epoch or initial_epoch
                write_json(run_json, run_info)
                raise
            except BaseException as err:
                run_info["status"] = "failed"
                run_info["error"] = f"{type(err).__name__}: {err}"
                write_json(run_json, run_info)
                raise
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    done = checkpoint.last_epoch or initial_epoch
    if guard.tripped:
        run_info["status"] = "failed"
        run_info["non_finite"] = guard.report
        run_info["checkpoint_epoch"] = done
        write_json(run_json, run_info)
        kept = (f"the last good checkpoint (epoch {done}) is kept in "
                f"{os.path.join(run_dir, CHECKPOINT_DIR)}" if done
                else "no checkpoint was written")
        raise CLIError(f"{guard.message()}; training stopped, {kept}. Lower the learning rate "
                       "or check the data.")
    final = os.path.join(run_dir, "model.keras")
    calibrated = _calibrate_zero_level(model, train, config or run_info.get("config") or {},
                                       args.quiet)
    if calibrated is not None:
        run_info["zero_level"] = calibrated
        _write_model(model, final)  # the checkpoints hold the threshold before calibration
    elif checkpoint.last_path is not None and checkpoint.last_epoch == checkpoint.seen_epoch:
        _link_or_copy(checkpoint.last_path, final)  # the last checkpoint is the final model
    else:
        _write_model(model, final)
    write_json(os.path.join(run_dir, "history.json"), checkpoint.history)
    run_info["status"] = "finished"
    run_info["epochs_completed"] = done
    run_info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(run_json, run_info)
    if not args.quiet:
        print(f"calozdc train: wrote {run_dir} ({len(train)} training showers, "
              f"{done} epochs)")
    return 0
