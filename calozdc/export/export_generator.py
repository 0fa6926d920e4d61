"""``export_generator``: a trained calozdc generator as one ONNX file or TensorFlow SavedModel."""

import json
import os
import shutil
import tempfile
import warnings

import keras
import numpy as np

from calozdc.export.generator_graph import _kind, generator_graph
from calozdc.export.layouts import (
    LAYOUTS,
    AliceO2Graph,
    check_o2,
    o2_means_scales,
    o2_scales_text,
)
from calozdc.export.model_card import card_path, model_card

FORMATS = ("onnx", "saved_model")

#: What each backend's converter exports to ONNX (measured with the tiny models of
#: tests/_tiny_models.py, Keras 3.15, tf2onnx 1.17, jax2onnx 0.17, torch 2.13): TensorFlow's
#: tf2onnx converts every family (the samplers' while loops become ONNX Loops); jax2onnx
#: stops on the DDIM's and the flows' sampler loops; torch's exporter on the flow's
#: ConditionalMLP (its LayerNormalization with a dynamic batch) and on the DDIM's ``ravel``.
#: A GAN with a fitted total model needs "flow" too (its total's 1-D flow).
ONNX_KINDS = {
    "tensorflow": {"gan", "ddim", "flow", "vq"},
    "jax": {"gan", "vq"},
    "torch": {"gan", "vq"},  # with a fixed batch size only
}
#: Backends that write a TensorFlow SavedModel (``keras.export.ExportArchive``; JAX through
#: jax2tf).
SAVED_MODEL_BACKENDS = ("tensorflow", "jax")

_KIND_NAMES = {"gan": "GANs", "ddim": "the DDIM", "flow": "the flow family",
               "vq": "a VQ generator's decoder"}


def scales_path(path):
    """Where the alice-o2 layout's means/scales file goes: ``<path>.scales.txt``."""
    return os.fspath(path).rstrip("/\\") + ".scales.txt"


def _needed_kinds(model, part="generator"):
    """The parts a converter must handle: the family's, and the flow of a fitted total
    model (``generate`` scales the showers to its totals; not the VQ decoder's)."""
    kinds = [_kind(model)]
    if part == "generator" and getattr(model, "totals_fitted", False):
        kinds.append("flow")
    return kinds


def exportable(model, format="onnx", backend=None, part="generator"):
    """Whether ``backend`` (default: the current one) can export ``model`` in ``format``."""
    backend = keras.backend.backend() if backend is None else backend
    if format == "saved_model":
        return backend in SAVED_MODEL_BACKENDS
    return all(k in ONNX_KINDS.get(backend, ()) for k in _needed_kinds(model, part))


def _check_backend(kinds, fmt, backend, batch):
    if fmt == "onnx" and backend == "torch" and batch is None:
        raise ValueError(
            "torch's ONNX exporter needs a fixed batch size (its tracer cannot keep the "
            "LayerNormalization of a dynamic batch): pass batch_size=N (--batch-size N), or "
            "run the export under KERAS_BACKEND=tensorflow for a dynamic batch. Received: "
            "batch_size='dynamic', backend='torch'"
        )
    if fmt == "saved_model" and backend not in SAVED_MODEL_BACKENDS:
        raise ValueError(
            f"The {backend} backend cannot write a TensorFlow SavedModel; run the export under "
            "KERAS_BACKEND=tensorflow (or jax). Received: format='saved_model', "
            f"backend={backend!r}"
        )
    missing = [k for k in kinds if k not in ONNX_KINDS.get(backend, ())]
    if fmt == "onnx" and missing:
        what = _KIND_NAMES[missing[0]] if missing[0] == kinds[0] else \
            "the flow of its fitted total model (the energy/shape factorisation)"
        raise ValueError(
            f"The {backend} backend's ONNX exporter cannot convert {what}; run the export "
            "under KERAS_BACKEND=tensorflow (tf2onnx converts every family; the .keras file "
            f"loads under any backend). Received: format='onnx', backend={backend!r}"
        )


def _check_batch_size(batch_size):
    if batch_size is None or batch_size == "dynamic":
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive integer or 'dynamic'. "
            f"Received: batch_size={batch_size!r}"
        )
    return int(batch_size)


def _rename_onnx(path, input_names, output_name, batch_size):
    """Give the ONNX graph's inputs/output calozdc's names and the batch axis one name."""
    import onnx

    model = onnx.load(path)
    graph = model.graph
    renames = {}
    for value, name in zip(graph.input, input_names):
        renames[value.name] = name
    renames[graph.output[0].name] = output_name
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            if batch_size is None:
                dims[0].dim_param = "batch"
            else:
                dims[0].dim_value = batch_size
    onnx.save(model, path)


def _write_onnx(graph, path, specs, input_names, output_name, batch_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph.export(path, format="onnx", input_signature=[specs], verbose=False)
    _rename_onnx(path, input_names, output_name, batch_size)


def _write_saved_model(graph, path, specs, input_names, output_name):
    archive = keras.export.ExportArchive()
    archive.track(graph)

    def serve(*inputs):
        return {output_name: graph(list(inputs))}

    archive.add_endpoint("serve", serve, input_signature=specs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        archive.write_out(path, verbose=False)


def _converter(fmt, backend):
    if fmt == "saved_model":
        return "keras.export.ExportArchive" + (" (jax2tf)" if backend == "jax" else "")
    return {"tensorflow": "tf2onnx (keras Model.export)", "jax": "jax2onnx (keras Model.export)",
            "torch": "torch.onnx (keras Model.export)"}[backend]


def export_generator(model, path, format="onnx", steps=None, solver=None, guidance=0.0,
                     use_ema=True, batch_size="dynamic", layout="calozdc", part="generator",
                     overwrite=False, condition_names=None, run_dir=None):
    """Export ``model`` as one graph ``(conditions, noise) -> showers`` with a model card.

    The graph (:func:`calozdc.export.generator_graph.generator_graph`) holds the condition
    transform, the network(s), the fixed-step sampler (DDIM with ``eta = 0``, flow ODE),
    the zero threshold and the inverse shower transform; the caller draws the noise, so the
    graph is deterministic. Given the noise ``generate(seed=s)`` draws
    (:func:`~calozdc.export.generator_graph.generation_noise`) it returns ``generate``'s
    showers. Beside the file: the card ``<path>.json`` (:mod:`calozdc.export.model_card`)
    and, for ``layout="alice-o2"``, O2's means/scales file ``<path>.scales.txt``.

    Converters: ONNX through Keras' ``Model.export`` (tf2onnx on TensorFlow, jax2onnx on
    JAX, torch.onnx on PyTorch; :data:`ONNX_KINDS` lists what each converts), SavedModel
    through ``keras.export.ExportArchive`` (TensorFlow, JAX), endpoint ``serve``.

    Args:
        model: a trained calozdc generator.
        path: output file (ONNX) or directory (SavedModel).
        format: ``"onnx"`` or ``"saved_model"``.
        steps, solver, guidance, use_ema: sampler settings baked in (see
            :func:`~calozdc.export.generator_graph.generator_graph`).
        batch_size: a fixed batch size, or ``"dynamic"`` (default).
        layout: ``"calozdc"`` or ``"alice-o2"`` (:mod:`calozdc.export.layouts`).
        part: ``"generator"`` or ``"decoder"`` (a VQ generator's decoder given codes).
        overwrite: replace existing outputs (else a ValueError, nothing written).
        condition_names: condition column names for the card.
        run_dir: the run directory the model came from (for the card).

    Returns:
        The model card (dict).

    Raises:
        ValueError: a bad option, an existing output without ``overwrite``, a model or part
            that cannot be exported, or a backend whose converter cannot convert this
            family (the message names a backend that can). Nothing is written then.

    Example:

    >>> card = export_generator(model, "gan.onnx", batch_size="dynamic")   # doctest: +SKIP
    >>> card["inputs"][1]["shape"]                                           # doctest: +SKIP
    ['batch', 10]
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")
    batch = _check_batch_size(batch_size)
    path = os.fspath(path)
    outputs = [path, card_path(path)] + ([scales_path(path)] if layout == "alice-o2" else [])
    existing = [p for p in outputs if os.path.exists(p)]
    if existing and not overwrite:
        raise ValueError(
            f"Output exists (use overwrite=True / --overwrite to replace it). Received: "
            f"{existing[0]!r}"
        )
    backend = keras.backend.backend()
    graph = generator_graph(model, steps=steps, solver=solver, guidance=guidance,
                            use_ema=use_ema, part=part)
    if layout == "alice-o2":
        check_o2(graph)
    _check_backend(_needed_kinds(model, part), format, backend, batch)
    k, d = graph.condition_dim, graph.noise_size
    noise_name = "codes" if graph.noise_dtype == "int32" else "noise"
    cond_spec = keras.InputSpec(shape=(batch, k), dtype="float32", name="conditions")
    noise_spec = keras.InputSpec(shape=(batch, d), dtype=graph.noise_dtype, name=noise_name)
    o2 = None
    if layout == "alice-o2":
        means, scales = o2_means_scales(graph.condition_transform, k)
        exported = AliceO2Graph(graph, means, scales, name="alice_o2_graph")
        specs, input_names, output_name = [noise_spec, cond_spec], ["noise", "conditions"], \
            "showers_log1p"
        o2 = {"means": [float(v) for v in means], "scales": [float(v) for v in scales],
              "scales_file": os.path.basename(scales_path(path))}
    else:
        exported = graph
        specs, input_names, output_name = [cond_spec, noise_spec], ["conditions", noise_name], \
            "showers"
    card = model_card(
        graph, family=getattr(model, "family", None) or _family_of(model),
        model_class=type(model).__name__, fmt=format, layout=layout, batch_size=batch,
        backend=backend, converter=_converter(format, backend), condition_names=condition_names,
        run_dir=run_dir, input_names=input_names, output_name=output_name, o2=o2,
        example_conditions=_example_conditions(graph.condition_transform, k),
    )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".calozdc-export-", dir=directory)
    try:
        staged = os.path.join(tmp, os.path.basename(path))
        if format == "onnx":
            _write_onnx(exported, staged, specs, input_names, output_name, batch)
        else:
            _write_saved_model(exported, staged, specs, input_names, output_name)
        with open(os.path.join(tmp, "card.json"), "w") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        if o2 is not None:
            with open(os.path.join(tmp, "scales.txt"), "w") as f:
                f.write(o2_scales_text(o2["means"], o2["scales"]))
        # Everything is written: move it into place (each a rename on one file system).
        for target in outputs:
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
        os.replace(staged, path)
        os.replace(os.path.join(tmp, "card.json"), card_path(path))
        if o2 is not None:
            os.replace(os.path.join(tmp, "scales.txt"), scales_path(path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return card


def _example_conditions(condition_transform, k):
    """A typical physical condition row: the condition transform's inverse of the origin of
    model space (the training means of a standardisation), else ones."""
    if condition_transform is None:
        return np.ones(k)
    try:
        row = np.asarray(condition_transform.inverse(np.zeros((1, k))), "float64")[0]
    except ValueError:  # a transform that needs the incident energy to invert
        return np.ones(k)
    return row if np.all(np.isfinite(row)) else np.ones(k)


def _family_of(model):
    """The calozdc family name of ``model``'s class, or None."""
    from calozdc.cli.run_dir import FAMILY_CLASSES

    for family, cls in FAMILY_CLASSES.items():
        if cls == type(model).__name__:
            return family
    return None
