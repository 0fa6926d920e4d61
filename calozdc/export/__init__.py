"""Deploy a trained generator: one ONNX file or TensorFlow SavedModel with the whole sampler.

:func:`export_generator` writes the graph of :func:`generator_graph` (condition transform,
networks, fixed-step sampler, inverse shower transform; the caller draws the noise) with a
model card beside it; ``layout="alice-o2"`` gives ALICE O2's ZDC fast-simulation interface.
See ``docs/deploy.md``.
"""

from calozdc.export.export_generator import (
    FORMATS,
    ONNX_KINDS,
    export_generator,
    exportable,
    scales_path,
)
from calozdc.export.generator_graph import GeneratorGraph, generation_noise, generator_graph
from calozdc.export.layouts import LAYOUTS, AliceO2Graph
from calozdc.export.model_card import card_path, model_card

__all__ = ["FORMATS", "LAYOUTS", "ONNX_KINDS", "AliceO2Graph", "GeneratorGraph", "card_path",
           "export_generator", "exportable", "generation_noise", "generator_graph", "model_card",
           "scales_path"]
