"""Reading run directories (``calozdc train`` output) with one clear error per problem.

Used by ``calozdc generate`` and ``calozdc evaluate RUN_DIR``. A run directory holds
``run.json`` (family, geometry, ``condition_dim``, ``calozdc_version``, ``format_version``,
the data and its split) and ``model.keras``. Checks, in order: the directory and both files
exist, ``run.json`` is a JSON object, it was not written by a newer calozdc
(:func:`calozdc.version.check_compatible`, kind ``"run"``), its family is known, and the
saved model is of that family and can generate. :func:`run_data_split` rebuilds the run's
test split from what ``run.json`` records.
"""

import json
import os
import warnings

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"

#: Class of the saved model of each family (``calozdc train FAMILY``).
FAMILY_CLASSES = {
    "gan": "ConditionalGAN",
    "twostep": "TwoStepGAN",
    "vqvae": "VQGenerator",
    "ddim": "DDIM",
    "flow": "FlowMatching",
    "latent-flow": "LatentFlowMatching",
    "vqgan": "VQGenerator",
}


def read_run_info(run_dir):
    """Validated contents of ``run_dir/run.json`` (a dict); ValueError naming the problem."""
    from calozdc.version import check_compatible

    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isdir(run_dir) or not os.path.isfile(path) \
            or not os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        raise ValueError(
            f"Not a run directory (needs {RUN_FILE} and {MODEL_FILE}, as written by "
            f"`calozdc train`). Received: {run_dir!r}"
        )
    try:
        with open(path) as f:
            info = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path!r} is not valid JSON ({err}). Received: {path!r}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path!r} must hold a JSON object. Received: {type(info).__name__}")
    check_compatible("run", info.get("format_version"), info.get("calozdc_version"),
                     what=f"Run directory {run_dir!r}")
    family = info.get("family")
    if family is not None and family not in FAMILY_CLASSES:
        raise ValueError(
            f"{path!r} names an unknown model family. Expected one of "
            f"{sorted(FAMILY_CLASSES)}. Received: family={family!r}"
        )
    condition_dim = info.get("condition_dim")
    if condition_dim is not None and (
        isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 1
    ):
        raise ValueError(
            f"{path!r}: condition_dim must be a positive integer. "
            f"Received: condition_dim={condition_dim!r}"
        )
    return info


def load_run_model(run_dir, run_info=None):
    """Load ``run_dir/model.keras`` and check that it matches ``run.json``'s family.

    Returns:
        ``(model, run_info)``.
    """
    import keras

    import calozdc.models  # noqa: F401  (registers the model classes)

    run_info = read_run_info(run_dir) if run_info is None else run_info
    path = os.path.join(os.fspath(run_dir), MODEL_FILE)
    try:
        with warnings.catch_warnings():
            # Generation needs no optimizer state: Keras' notice that it skipped loading it
            # (the optimizers are rebuilt lazily) is noise for generate/evaluate.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = keras.saving.load_model(path)
    except (ValueError, TypeError, KeyError, OSError) as err:
        raise ValueError(
            f"Cannot load the model {path!r} (corrupt file, or saved by an incompatible "
            f"calozdc/Keras?): {err}"
        ) from None
    family = run_info.get("family")
    expected = FAMILY_CLASSES.get(family)
    got = type(model).__name__
    if expected is not None and got != expected:
        raise ValueError(
            f"{path!r} holds a {got} but {RUN_FILE} says family={family!r} (a "
            f"{expected}); the run directory mixes files of different runs. Received: "
            f"family={family!r}, model class={got}"
        )
    if not callable(getattr(model, "generate", None)):
        raise ValueError(
            f"The model in {path!r} has no generate(conditions, seed=None) method. "
            f"Received: model class={got}"
        )
    return model, run_info


BUILTIN_PREFIX = "builtin:"


def _no_split(run_dir, why):
    return ValueError(
        f"Cannot rebuild the test split of the run: {why}; give the real showers with "
        f"--data FILE. Received: run_dir={os.fspath(run_dir)!r}"
    )


def run_data_split(run_dir, part="test", run_info=None, verbose=False):
    """The showers a ``calozdc train`` run was given, split as the run split them.

    ``run.json`` records the data (``options["data"]``: a file, or ``None`` with
    ``options["builtin_showers"]`` for the built-in showers, whose cache file is ``data``
    after ``builtin:``) and the split (``split``: ``fractions``, ``seed``, ``sizes``). The data
    are read again (a file lazily: only the rows used are read; the built-in showers from
    their cache file, or simulated again when this calozdc version makes the same ones) and
    split with ``ShowerDataset.split(fractions, seed)``; the sizes must match the recorded
    ones.

    Args:
        run_dir: the run directory.
        part: ``"test"`` (the held-out showers, the last part of the split) or ``"all"``.
        run_info: ``run.json``'s contents, if already read.
        verbose: a line on stderr when the built-in showers have to be simulated again.

    Returns:
        ``(dataset, source)``: a :class:`~calozdc.data.ShowerDataset` and the recorded data
        source (the file's path, or ``builtin:`` and the cache path).

    Raises:
        ValueError: naming ``--data`` as the way out, when ``run.json`` does not record the
            data and split (runs of older calozdc versions, run directories not written by
            ``calozdc train``), the data file is gone or no longer holds the same number of
            showers, or the built-in showers of that run cannot be made again.
    """
    from calozdc.data import load
    from calozdc.data.builtin import DEFAULT_BUILTIN_SEED, builtin_dataset, builtin_path

    if part not in ("test", "all"):
        raise ValueError(f"`part` must be 'test' or 'all'. Received: part={part!r}")
    info = read_run_info(run_dir) if run_info is None else run_info
    options, split = info.get("options"), info.get("split")
    if not isinstance(options, dict) or not isinstance(split, dict) \
            or not {"fractions", "seed", "sizes"} <= set(split):
        raise _no_split(run_dir, f"{RUN_FILE} does not record the data and split (a run of an "
                                 "older calozdc, or not written by `calozdc train`)")
    data, n_builtin = options.get("data"), options.get("builtin_showers")
    source = info.get("data")
    if data is not None:
        if not os.path.isfile(data):
            raise _no_split(run_dir, f"its data file {data!r} is gone")
        dataset, source = load(data, lazy=True), data
    elif isinstance(n_builtin, int) and not isinstance(n_builtin, bool) and n_builtin >= 1:
        cached = source[len(BUILTIN_PREFIX):] if isinstance(source, str) \
            and source.startswith(BUILTIN_PREFIX) else None
        if cached and os.path.isfile(cached):
            dataset = load(cached, lazy=True)
        elif cached and os.path.basename(cached) == os.path.basename(
                builtin_path(n_builtin, DEFAULT_BUILTIN_SEED)):  # same n, seed and version
            dataset = builtin_dataset(n=n_builtin, seed=DEFAULT_BUILTIN_SEED, verbose=verbose)
        else:
            raise _no_split(run_dir, f"it trained on {n_builtin} built-in showers of calozdc "
                                     f"{info.get('calozdc_version')} whose cache file "
                                     f"{cached!r} is gone, and this calozdc simulates other ones")
    else:
        raise _no_split(run_dir, f"{RUN_FILE} names neither a data file nor built-in showers")
    try:
        sizes = [int(s) for s in split["sizes"]]
    except (TypeError, ValueError):
        raise _no_split(run_dir, f"{RUN_FILE} records split sizes {split['sizes']!r}") from None
    if len(dataset) != sum(sizes):
        raise _no_split(run_dir, f"{source!r} holds {len(dataset)} showers, but the run split "
                                 f"{sum(sizes)} (the file has changed)")
    parts = dataset.split(tuple(split["fractions"]), seed=split["seed"])
    if [len(p) for p in parts] != sizes:
        raise _no_split(run_dir, f"the split of {source!r} gives {[len(p) for p in parts]} "
                                 f"showers, but the run recorded {sizes}")
    return (parts[-1] if part == "test" else dataset), source
