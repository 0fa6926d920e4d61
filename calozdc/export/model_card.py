"""The model card written beside an exported generator (JSON, ``<file>.json``).

It tells a caller without calozdc everything the file needs: the inputs and output (names,
shapes, dtypes, units, order), the condition columns, the noise layout and how to draw it,
the sampler settings baked in, and where the model came from (calozdc version, Keras
backend, converter, run directory).
"""

import datetime
import os

from calozdc.version import __version__

#: Version of the card's own layout (bumped when a reader would misread a newer card).
CARD_VERSION = 1


def card_path(path):
    """Where the card of the file or directory ``path`` goes: ``path + ".json"``."""
    return os.fspath(path).rstrip("/\\") + ".json"


def _dim(batch_size):
    return "batch" if batch_size is None else int(batch_size)


def model_card(graph, *, family, model_class, fmt, layout, batch_size, backend, converter,
               condition_names=None, run_dir=None, input_names=None, output_name="showers",
               o2=None, example_conditions=None):
    """The card (a JSON-compatible dict) of an exported ``graph``.

    Args:
        graph: the :class:`~calozdc.export.generator_graph.GeneratorGraph` exported.
        family, model_class: the calozdc family (or None) and the model's class name.
        fmt: ``"onnx"`` or ``"saved_model"``; ``layout``: ``"calozdc"`` or ``"alice-o2"``.
        batch_size: fixed batch size, or None (dynamic).
        backend, converter: the Keras backend and the converter that wrote the file.
        condition_names: names of the condition columns, in order, if known.
        run_dir: the run directory the model came from, if any.
        input_names: names of the inputs in the file, in order.
        output_name: the output's name.
        o2: for the alice-o2 layout, ``{"means", "scales", "scales_file"}``.
        example_conditions: one typical condition row in physical units (for examples).
    """
    k = graph.condition_dim
    names = list(condition_names or []) or [f"c{i}" for i in range(k)]
    b = _dim(batch_size)
    segments, offset = [], 0
    for name, shape in graph.noise_layout:
        size = 1
        for s in shape:
            size *= int(s)
        segments.append({"name": name, "shape": [int(s) for s in shape], "offset": offset,
                         "size": size})
        offset += size
    decoder = graph.noise_dtype == "int32"
    conditions = {"name": "conditions", "shape": [b, k], "dtype": "float32",
                  "units": "physical (as in training)", "columns": names}
    if decoder:
        noise = {"name": "codes", "shape": [b, graph.noise_size], "dtype": "int32",
                 "draw": f"code indices in [0, {graph.num_codes}), row-major over the "
                         f"{segments[0]['shape']} grid, sampled by the model's prior in Python",
                 "segments": segments}
    else:
        noise = {"name": "noise", "shape": [b, graph.noise_size], "dtype": "float32",
                 "draw": "independent standard normal N(0, 1) numbers, one row per shower; "
                         "the segments are consecutive along axis 1, each reshaped row-major",
                 "segments": segments}
    image = [int(s) for s in graph.image_shape]
    if layout == "alice-o2":
        conditions.update(units="standardised by the caller: (x - mean) / scale with the "
                                "means and scales of the scales file")
        inputs = [noise, conditions]
        output = {"name": output_name, "shape": [b, image[0], image[1]], "dtype": "float32",
                  "units": "log(1 + photons) per cell", "index_order":
                  "row-major: flat index j + W * i for row i, column j (O2's i + 44 j "
                  "loop with i the column)"}
    else:
        inputs = [conditions, noise]
        output = {"name": output_name, "shape": [b, *image], "dtype": "float32",
                  "units": "physical (as in training), non-negative",
                  "index_order": "row-major (batch, row, column, channel)"}
    if input_names:
        for spec, name in zip(inputs, input_names):
            spec["name"] = name
    card = {
        "card_version": CARD_VERSION,
        "format": fmt,
        "layout": layout,
        "family": family,
        "model_class": model_class,
        "part": graph.settings.get("part", "generator"),
        "inputs": inputs,
        "outputs": [output],
        "condition_columns": names,
        "example_conditions": None if example_conditions is None
        else [float(v) for v in example_conditions],
        "noise_size": graph.noise_size,
        "sampler": {k_: v for k_, v in graph.settings.items() if k_ != "part"},
        "calozdc_version": __version__,
        "keras_backend": backend,
        "converter": converter,
        "run_dir": None if run_dir is None else os.path.abspath(os.fspath(run_dir)),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if o2 is not None:
        card["alice_o2"] = o2
    return card
