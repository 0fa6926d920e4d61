"""Reading run directories (``calozdc train`` output) with one clear error per problem.

Used by ``calozdc generate`` and ``calozdc evaluate RUN_DIR``. A run directory holds
``run.json`` (family, geometry, ``condition_dim``, ``calozdc_version``, ``format_version``)
and ``model.keras``. Checks, in order: the directory and both files exist, ``run.json`` is a
JSON object, it was not written by a newer calozdc (:func:`calozdc.version.check_compatible`,
kind ``"run"``), its family is known, and the saved model is of that family and can generate.
"""

import json
import os

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"

#: Class of the saved model of each family (``calozdc train FAMILY``).
FAMILY_CLASSES = {
    "gan": "ConditionalGAN",
    "twostep": "TwoStepGAN",
    "vqvae": "VQGenerator",
    "ddim": "DDIM",
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
