"""The configuration of a ``calozdc train`` run: presets, ``--config`` files and ``--set``.

A run is defined by its **family** and four sections of options:

* ``model``: the keyword arguments of the family's builder (:mod:`calozdc.models.registry`;
  e.g. ``hidden_dim``, ``real_label``, ``training_ratio`` for ``gan``, ``widths``,
  ``learning_rate`` for ``ddim``), except the transforms, ``seed`` and ``epochs``, which the
  run sets;
* ``train``: ``epochs``, ``batch_size``, ``seed``, ``val_split``, ``data``,
  ``builtin_showers``, ``mixed_precision``, ``distribution`` (the ``calozdc train`` flags of
  the same names);
* ``transforms``: ``shower_transform`` and ``condition_transform``, each a transform name
  (``"log1p"``), a list of them (a ``Chain``) or a serialized dict
  (:func:`calozdc.data.transforms.serialize`); default: the family's
  (:func:`calozdc.models.registry.default_transforms`);
* ``generation``: the ``generate`` settings the run's monitors use and that ``calozdc
  generate`` / ``calozdc evaluate RUN_DIR`` use by default (:data:`calozdc.presets.
  GENERATION_KEYS`: ``steps``, ``eta``, ``guidance`` for ``ddim``; ``steps``, ``solver``,
  ``guidance`` for ``flow``); default: the model's ``generate`` defaults.

An option is named by its name alone (``hidden_dim``) or as ``SECTION.NAME`` (needed for the
flow builder's U-Net size ``model.preset``, since ``preset`` alone names a calozdc preset).
Options are resolved in this order, each overriding the one before:

1. the builder's defaults (and the family's transforms, the model's generation defaults);
2. the preset (``--preset NAME``, else the config file's ``preset``, else ``"default"``;
   :mod:`calozdc.presets`);
3. the ``--config FILE`` (a JSON object: ``family``, ``preset``, the sections as objects, or
   options by name at the top level; a file holding such an object under ``"config"`` — a
   run's ``run.json``, a ``calozdc tune`` summary ``best_FAMILY.json`` — gives that object);
4. the flags ``--epochs``, ``--batch-size``, ``--seed``, ``--val-split``, ``--data``,
   ``--builtin-showers``, ``--mixed-precision``, ``--distribution``;
5. ``--set KEY=VALUE`` (repeatable; the value is read as JSON when it is JSON — numbers,
   ``true``/``false``/``null``, lists, objects — else as a string).

Setting ``data`` clears ``builtin_showers`` of the layers below and vice versa; a relative
``data`` path is read from the current directory (``run.json`` records it absolute). Unknown
options, options of the wrong type and values the builder rejects give one ``ValueError``
that names the option (and lists the valid ones). The resolved configuration
(:func:`resolve`, completed by :func:`build_model`) holds every option and is saved as
``config`` in ``run.json``: ``calozdc train --config RUN_DIR/run.json`` builds the same model
and, with the same data and seed, trains it to the same weights.

GAN loss terms (``generator_loss_terms``) are given as JSON: a list of
``{"loss": "EnergyConservationLoss", "config": {...}, "weight": 0.01}`` (a class of
:mod:`calozdc.losses` and its constructor arguments; or ``"loss"``: a
``keras.saving.serialize_keras_object`` dict), e.g.
``--set 'generator_loss_terms=[{"loss": "EnergyConservationLoss", "weight": 0.01}]'``.
"""

import inspect
import json
import os

SECTIONS = ("model", "train", "transforms", "generation")
#: Builder arguments the run itself sets (not options).
RUN_SET_ARGUMENTS = ("geometry", "condition_dim", "shower_transform", "condition_transform",
                     "seed", "epochs")
TRANSFORM_KEYS = ("shower_transform", "condition_transform")
#: Top-level entries of a configuration (not options).
TOP_LEVEL = ("family", "preset")
#: The monitors (``--logdir`` metrics and images) sample with at most this many steps.
MONITOR_STEPS = 20
#: Accepted choices of the ``train`` options that are names.
TRAIN_CHOICES = {"mixed_precision": (None, "float16", "bfloat16"),
                 "distribution": ("none", "data-parallel")}


# ----------------------------------------------------------------------------- inputs
def parse_set(items, flag="--set"):
    """``["key=value", ...]`` -> ``[(key, value), ...]``: the value parsed as JSON when it is
    JSON, else kept as a string."""
    pairs = []
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{flag} takes KEY=VALUE (e.g. {flag} hidden_dim=32). "
                             f"Received: {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        pairs.append((key, value))
    return pairs


def read_config_file(path):
    """The configuration object of a JSON file (its ``"config"`` entry when it has one)."""
    if not os.path.isfile(path):
        raise ValueError(f"--config: no such file. Received: config={path!r}")
    try:
        with open(path) as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"--config: {path!r} is not valid JSON ({err}). Received: "
                         f"config={path!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config: {path!r} must hold a JSON object. Received: "
                         f"{type(data).__name__}")
    if isinstance(data.get("config"), dict):
        return data["config"]
    if "calozdc_version" in data or "best_trial" in data:
        raise ValueError(f"--config: {path!r} is a run.json or tune summary without a "
                         "'config' entry (written by an older calozdc); give the options "
                         f"instead. Received: keys={sorted(data)}")
    return data


# ----------------------------------------------------------------------------- option sets
def option_defaults(family):
    """``{section: {option: default}}`` of ``family`` (the builder's signature, the train
    defaults; transforms and generation defaults are None here: filled when resolved)."""
    from calozdc.cli.train import RUN_DEFAULTS
    from calozdc.models.registry import get_builder
    from calozdc.presets import generation_keys

    params = inspect.signature(get_builder(family)).parameters.values()
    model = {p.name: p.default for p in params
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
             and p.default is not p.empty and p.name not in RUN_SET_ARGUMENTS}
    return {"model": model, "train": dict(RUN_DEFAULTS),
            "transforms": dict.fromkeys(TRANSFORM_KEYS),
            "generation": dict.fromkeys(generation_keys(family))}


def _valid_list(defaults):
    return "; ".join(f"{s}: {', '.join(sorted(defaults[s])) or '-'}" for s in SECTIONS)


def _locate(family, defaults, key, value, source):
    """``(section, name)`` of option ``key`` (``NAME`` or ``SECTION.NAME``)."""
    if not isinstance(key, str):
        raise ValueError(f"Option names must be strings ({source}). Received: {key!r}")
    section, dot, name = key.partition(".")
    if dot:
        if section in defaults and name in defaults[section]:
            return section, name
    elif key in TOP_LEVEL:
        if key == "family":
            how = "give the family as `calozdc train FAMILY`"
        else:
            how = "choose a preset with --preset NAME"
            if key in defaults["model"]:
                how += " (the builder's own `preset` is model.preset)"
        raise ValueError(f"`{key}` is not an option ({source}): {how}. "
                         f"Received: {key}={value!r}")
    else:
        sections = [s for s in SECTIONS if key in defaults[s]]
        if len(sections) == 1:
            return sections[0], key
        if len(sections) > 1:
            raise ValueError(f"Option `{key}` is in sections {sections}: name it as "
                             f"SECTION.{key} ({source}). Received: {key}={value!r}")
    raise ValueError(f"Unknown option of the {family} family ({source}). Valid options: "
                     f"{_valid_list(defaults)}. Received: {key}={value!r}")


def _type_error(key, want, default, source, value):
    return ValueError(f"`{key}` must be {want} (default {default!r}; {source}). "
                      f"Received: {key}={value!r}")


def check_type(key, value, default, source):
    """``value`` of an option whose default is ``default``: of the same kind (bool, integer,
    number, string, list); sequences become lists (JSON), numbers become floats for float
    defaults. A None default takes anything (the builder checks)."""
    if default is None:  # lists in their JSON form (the same value on a rerun from run.json)
        return list(value) if isinstance(value, tuple) else value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _type_error(key, "true or false", default, source, value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, "an integer", default, source, value)
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(key, "a number", default, source, value)
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise _type_error(key, "a string", default, source, value)
    elif isinstance(default, (tuple, list)):
        if not isinstance(value, (tuple, list)):
            raise _type_error(key, "a list", list(default), source, value)
        value = list(value)
    return value


def _check_train(key, value, source):
    from calozdc.cli.train import RUN_DEFAULTS

    if key in TRAIN_CHOICES:
        if value not in TRAIN_CHOICES[key]:
            raise ValueError(f"`{key}` must be one of {list(TRAIN_CHOICES[key])} ({source}). "
                             f"Received: {key}={value!r}")
        return value
    if key == "data":
        if value is not None and not isinstance(value, str):
            raise _type_error(key, "a file name or null", None, source, value)
        return value
    if key == "builtin_showers":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _type_error(key, "an integer or null", None, source, value)
        return value
    return check_type(key, value, RUN_DEFAULTS[key], source)


def make_transform(key, spec, source="config"):
    """A transform from a name, a list (a ``Chain``) or a serialized dict."""
    from calozdc.data import transforms

    try:
        if isinstance(spec, (list, tuple)):
            transform = transforms.Chain(list(spec))
        elif isinstance(spec, (str, dict)):
            transform = transforms.get(spec)
        else:
            raise ValueError("expected a transform name, a list of them or a serialized dict")
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"`{key}` is not a valid transform ({err}; {source}). "
                         f"Received: {key}={spec!r}") from None
    return transform


def _loss_terms(value, source):
    """``generator_loss_terms`` in their JSON form, normalised to
    ``[{"loss": NAME, "config": {...}, "weight": w}, ...]`` (checked by building them)."""
    import math

    key = "generator_loss_terms"
    if value is None or value == "default":  # "default": the builder's own recipe terms
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"`{key}` must be a list of {{\"loss\": NAME, \"config\": {{...}}, "
                         f"\"weight\": w}} objects ({source}). Received: {key}={value!r}")
    out = []
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 2:  # a (loss, weight) pair
            item = {"loss": item[0], "weight": item[1]}
        if not isinstance(item, dict) or "loss" not in item \
                or not set(item) <= {"loss", "config", "weight"}:
            raise ValueError(f"Each of `{key}` must be an object with 'loss', optional "
                             f"'config' and 'weight' ({source}). Received: {key}=[..., "
                             f"{item!r}, ...]")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"Loss-term weights must be numbers >= 0 ({source}). "
                             f"Received: {key}=[..., {item!r}, ...]")
        loss = make_loss(item["loss"], item.get("config"), source)
        out.append({**_serialize_loss(loss), "weight": float(weight)})
    return out


def make_loss(spec, config=None, source="config"):
    """A loss object from a :mod:`calozdc.losses` class name (and constructor arguments) or a
    ``keras.saving.serialize_keras_object`` dict."""
    import keras

    from calozdc import losses

    try:
        if isinstance(spec, str):
            cls = getattr(losses, spec, None)
            if not (isinstance(cls, type) and issubclass(cls, keras.losses.Loss)):
                names = sorted(n for n in losses.__all__ if isinstance(getattr(losses, n), type))
                raise ValueError(f"unknown loss class; expected one of {names}")
            if config is not None and not isinstance(config, dict):
                raise ValueError("'config' must be an object of constructor arguments")
            return cls.from_config(dict(config or {}))
        if isinstance(spec, dict) and config is None:
            loss = keras.saving.deserialize_keras_object(spec)
            if not callable(loss):
                raise ValueError("not a loss")
            return loss
        raise ValueError("'loss' must be a calozdc.losses class name (with optional 'config') "
                         "or a serialized Keras loss")
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"Invalid generator loss term ({err}; {source}). "
                         f"Received: loss={spec!r}, config={config!r}") from None


def _serialize_loss(loss):
    import keras

    from calozdc import losses

    name = type(loss).__name__
    if getattr(losses, name, None) is type(loss) and hasattr(loss, "get_config"):
        return {"loss": name, "config": loss.get_config()}
    return {"loss": keras.saving.serialize_keras_object(loss)}


def _check_value(family, defaults, section, key, value, source):
    if section == "model":
        if key == "generator_loss_terms":
            return _loss_terms(value, source)
        return check_type(key, value, defaults["model"][key], source)
    if section == "train":
        return _check_train(key, value, source)
    if section == "transforms":
        from calozdc.data import transforms

        return transforms.serialize(make_transform(key, value, source))
    return value  # generation: checked against the model's generate() in build_model


def _entries_of_config(config, source):
    """``(family, preset, [(key, value), ...])`` of a configuration object."""
    family, preset, entries = config.get("family"), config.get("preset"), []
    if family is not None and not isinstance(family, str):
        raise ValueError(f"`family` must be a family name ({source}). Received: "
                         f"family={family!r}")
    if preset is not None and not isinstance(preset, str):
        raise ValueError(f"`preset` must be a preset name ({source}). Received: "
                         f"preset={preset!r}")
    for key, value in config.items():
        if key in TOP_LEVEL:
            continue
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"Section `{key}` must be a JSON object ({source}). "
                                 f"Received: {key}={value!r}")
            entries += [(f"{key}.{name}", v) for name, v in value.items()]
        else:
            entries.append((key, value))
    return family, preset, entries


def resolve(family=None, preset=None, config=None, config_source="--config", flags=None,
            sets=None):
    """The resolved configuration of a run (see the module docstring for the order).

    Args:
        family: the family named on the command line (None: the config's).
        preset: ``--preset`` (None: the config's ``preset``, else ``"default"``).
        config: a configuration object (:func:`read_config_file`) or None.
        config_source: how ``config`` is named in error messages.
        flags: ``{train option: value}`` of the command-line flags that were given.
        sets: ``[(key, value), ...]`` of ``--set`` (:func:`parse_set`).

    Returns:
        ``{"family", "preset", "model", "train", "transforms", "generation"}``: every model,
        train and transform option; the generation settings given (completed by
        :func:`build_model`).
    """
    from calozdc.names import available_families
    from calozdc.presets import get_preset

    file_family, file_preset, file_entries = (None, None, [])
    if config is not None:
        file_family, file_preset, file_entries = _entries_of_config(config, config_source)
    if family is None:
        family = file_family
    if family is None:
        raise ValueError("Name the model family (e.g. `calozdc train gan`), give a --config "
                         "file that names one, or give --resume RUN_DIR. Received: no family")
    if family not in available_families():
        raise ValueError(f"Unknown model family. Expected one of {available_families()}. "
                         f"Received: family={family!r}")
    if file_family is not None and file_family != family:
        raise ValueError(f"The config {config_source} is for the {file_family!r} family, not "
                         f"{family!r}. Received: family={family!r}")
    preset = preset or file_preset or "default"
    preset_options = get_preset(family, preset)
    defaults = option_defaults(family)
    layers = [(f"preset {preset!r}", list(preset_options.items())),
              (config_source, file_entries),
              ("command-line flags", list((flags or {}).items())),
              ("--set", list(sets or ()))]
    values = {}
    for source, entries in layers:
        layer = {}
        for key, value in entries:
            section, name = _locate(family, defaults, key, value, source)
            layer[(section, name)] = _check_value(family, defaults, section, name, value,
                                                  source)
        for one, other in (("data", "builtin_showers"), ("builtin_showers", "data")):
            if ("train", one) in layer and ("train", other) not in layer:
                layer[("train", other)] = None
        values.update(layer)
    resolved = {"family": family, "preset": preset}
    for section in ("model", "train", "transforms"):
        resolved[section] = {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in defaults[section].items()}
    resolved["generation"] = {}
    if any(values.get(("transforms", k)) is None for k in TRANSFORM_KEYS):
        from calozdc.data import transforms
        from calozdc.models.registry import default_transforms

        for key, transform in zip(TRANSFORM_KEYS, default_transforms(family)):
            resolved["transforms"][key] = transforms.serialize(transform)
    for (section, name), value in values.items():
        resolved[section][name] = value
    return resolved


# ----------------------------------------------------------------------------- building
def transforms_of(config):
    """Unfitted ``(shower_transform, condition_transform)`` of a resolved configuration."""
    from calozdc.data import transforms

    return tuple(transforms.deserialize(json.loads(json.dumps(config["transforms"][k])))
                 for k in TRANSFORM_KEYS)


def builder_options(config):
    """The builder keyword arguments of a resolved configuration that differ from the
    builder's defaults (lists as tuples where the default is a tuple, loss terms built)."""
    family = config["family"]
    defaults = option_defaults(family)["model"]
    options = {}
    for key, value in config["model"].items():
        default = defaults.get(key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if key == "generator_loss_terms" and value not in (None, "default"):
            value = [(make_loss(t["loss"], t.get("config")), t["weight"]) for t in value]
        if value is not default and value != default:
            options[key] = value
    return options


def build_model(config, geometry, condition_dim, shower_transform=None,
                condition_transform=None):
    """Build the model of a resolved configuration (with ``train.seed``, ``train.epochs``)
    and complete and check its ``generation`` settings against ``model.generate``.

    Only the options that differ from the builder's defaults are passed (same model).

    Raises:
        ValueError: the builder's error, prefixed with the family; a bad generation setting.
    """
    from calozdc.models import registry

    family = config["family"]
    options = builder_options(config)
    try:
        model = registry.build_model(family, geometry, condition_dim,
                                     shower_transform=shower_transform,
                                     condition_transform=condition_transform,
                                     seed=config["train"]["seed"],
                                     epochs=config["train"]["epochs"], **options)
    except (ValueError, TypeError) as err:
        shown = {k: v for k, v in config["model"].items() if k in options}
        if isinstance(err, ValueError) and any(f"{k}=" in str(err) for k in shown):
            raise ValueError(f"Cannot build the {family} model with these options: {err}") \
                from None
        # the builder's message does not name an option (a TypeError, an inner argument)
        raise ValueError(f"Cannot build the {family} model with these options ({err}). "
                         f"Received: {shown}") from None
    config["generation"] = check_generation(family, model, config.get("generation") or {},
                                            complete=True)
    return model


def check_generation(family, model, settings, complete=False, source="run configuration"):
    """Generation settings checked against ``model.generate`` (its defaults for the missing
    ones when ``complete``)."""
    from calozdc.presets import generation_keys

    params = inspect.signature(model.generate).parameters
    keys = [k for k in generation_keys(family) if k in params]
    unknown = sorted(set(settings) - set(keys))
    if unknown:
        raise ValueError(f"Unknown generation setting of the {family} family ({source}). "
                         f"Valid: {list(keys)}. Received: {unknown[0]}="
                         f"{settings[unknown[0]]!r}")
    out = {}
    for key in keys:
        default = params[key].default
        if key in settings:
            out[key] = check_type(key, settings[key], default, source)
        elif complete:
            out[key] = default
            if key == "steps" and family == "ddim":  # a short schedule: at most T steps
                out[key] = min(default, int(model.schedule.num_timesteps))
    steps = out.get("steps")
    try:
        if family == "flow" and complete:
            from calozdc.models.flow.flow_sampler import check_solver

            check_solver(out["solver"], steps)
        if family == "ddim" and steps is not None:
            from calozdc.models.ddim.ddim_sampler import sampling_timesteps

            sampling_timesteps(model.schedule.num_timesteps, steps)
    except ValueError as err:
        raise ValueError(f"Bad generation setting of the {family} model ({source}): {err}") \
            from None
    if out.get("eta", 0.0) < 0:
        raise ValueError(f"`eta` must be >= 0 ({source}). Received: eta={out['eta']!r}")
    guidance = out.get("guidance", 0.0)
    if guidance < 0 or (guidance and not getattr(model, "p_uncond", 0)):
        raise ValueError(f"`guidance` must be >= 0, and 0 unless the model trains with "
                         f"p_uncond > 0 ({source}). Received: guidance={guidance!r}")
    return out


def monitor_settings(config):
    """The run's generation settings for the training monitors (steps at most
    :data:`MONITOR_STEPS`)."""
    settings = dict(config.get("generation") or {})
    if isinstance(settings.get("steps"), int):
        settings["steps"] = min(settings["steps"], MONITOR_STEPS)
    return settings or None


def generation_settings(run_info, model, sets=None):
    """``generate`` keyword arguments of a run: its recorded settings (``run.json``
    ``config.generation``; none for runs of older calozdc versions) with ``--set`` pairs
    over them, checked against ``model.generate``."""
    config = run_info.get("config") if isinstance(run_info, dict) else None
    recorded = dict((config or {}).get("generation") or {}) if isinstance(config, dict) else {}
    settings = {**recorded, **dict(sets or ())}
    if not settings:
        return {}
    family = run_info.get("family")
    return check_generation(family, model, settings, source="--set" if sets else "run.json")


def config_from_options(family, model_options, generation=None, train=None):
    """A configuration object (``calozdc train --config``) from builder options (those the
    builder does not take are left out), generation settings and train options."""
    from calozdc.data import transforms
    from calozdc.models.registry import default_transforms

    defaults = option_defaults(family)
    model = {k: (list(v) if isinstance(v, tuple) else v) for k, v in model_options.items()
             if k in defaults["model"]}
    shower_t, cond_t = default_transforms(family)
    return {"family": family, "preset": "default", "model": model, "train": dict(train or {}),
            "transforms": {"shower_transform": transforms.serialize(shower_t),
                           "condition_transform": transforms.serialize(cond_t)},
            "generation": {k: v for k, v in (generation or {}).items()
                           if k in defaults["generation"]}}
