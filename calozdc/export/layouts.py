"""Input/output layouts of an exported generator: calozdc's own and ALICE O2's ZDC one.

* ``"calozdc"``: inputs ``conditions`` ``(B, k)`` (physical units) then ``noise`` ``(B, D)``
  (standard normal; its segments are listed in the model card); output ``showers``
  ``(B, H, W, C)`` in physical units.
* ``"alice-o2"``: the interface of the ZDC fast simulation of ALICE O2
  (``Detectors/ZDC/fastsimulation`` in AliceO2Group/AliceO2: ``src/FastSimulations.cxx``,
  ``src/Processors.cxx``, ``src/Utils.cxx``). O2 feeds input 0 with 10 standard-normal
  numbers and input 1 with the 9 particle values standardised as ``(x - mean) / scale``
  with the means and scales it reads from a text file (a ``#means`` line, 9 values one per
  line, a blank line, ``#scales``, 9 values; ``parse_block`` stops at the first empty
  line), and sums ``expm1`` of output 0, read flat as ``j + 44 i`` (row ``i``, column
  ``j``), into its 5 channels. So the graph takes ``noise`` ``(B, 10)`` first and the
  standardised ``conditions`` ``(B, 9)`` second, undoes the standardisation, and returns
  ``log(1 + showers)`` ``(B, 44, 44)`` in row-major order; O2's channel sums of it are
  calozdc's (:func:`calozdc.metrics.zdc.channel_sums`, same quadrants and (i + j) parity).
"""

import keras
import numpy as np
from keras import ops

from calozdc.data import transforms as T
from calozdc.export.transform_ops import log1p

LAYOUTS = ("calozdc", "alice-o2")

#: ALICE O2's fixed sizes: noise numbers, particle values, image side.
O2_NOISE, O2_CONDITIONS, O2_SIDE = 10, 9, 44


def o2_means_scales(condition_transform, k=O2_CONDITIONS):
    """The means and scales O2 standardises the particle with.

    The model's own per-column standardisation when its condition transform is one
    (``Standardize(axis="feature")``, alone or as a one-member chain), so that the caller's
    inputs are exactly the model's; otherwise zeros and ones (O2 passes the physical values
    through and the graph applies the model's transform).
    """
    t = condition_transform
    if isinstance(t, T.Chain) and len(t.transforms) == 1:
        t = t.transforms[0]
    if isinstance(t, T.Standardize) and t.axis == "feature" and t.fitted \
            and np.shape(t.mean) == (k,):
        return np.asarray(t.mean, "float64"), np.asarray(t.std, "float64")
    return np.zeros(k), np.ones(k)


def o2_scales_text(means, scales):
    """The means/scales file O2's ``loadScales`` parses (``#means`` / ``#scales`` blocks)."""
    lines = ["#means", *(repr(float(v)) for v in means), "", "#scales",
             *(repr(float(v)) for v in scales)]
    return "\n".join(lines) + "\n"


def check_o2(graph):
    """One clear ValueError when ``graph`` cannot take O2's interface."""
    problems = []
    if graph.noise_dtype != "float32":
        problems.append("a decoder given codes takes code indices, not O2's noise")
    if graph.noise_size != O2_NOISE:
        problems.append(f"O2 draws {O2_NOISE} noise numbers, this model needs {graph.noise_size} "
                        f"(a GAN with latent_dim={O2_NOISE} fits)")
    if graph.condition_dim != O2_CONDITIONS:
        problems.append(f"O2 passes {O2_CONDITIONS} particle values, this model takes "
                        f"{graph.condition_dim}")
    if tuple(graph.image_shape) not in ((O2_SIDE, O2_SIDE), (O2_SIDE, O2_SIDE, 1)):
        problems.append(f"O2 reads a {O2_SIDE} x {O2_SIDE} image, this model makes "
                        f"{tuple(graph.image_shape)}")
    if problems:
        raise ValueError("--layout alice-o2 does not fit this model: " + "; ".join(problems)
                         + ". Received: layout='alice-o2'")


class AliceO2Graph(keras.Model):
    """A :class:`~calozdc.export.generator_graph.GeneratorGraph` behind O2's interface.

    Args:
        graph: the calozdc-layout graph (10 noise numbers, 9 conditions, 44 x 44 showers).
        means, scales: the standardisation O2 applies to the particle (length 9).

    Call arguments:
        inputs: ``[noise (B, 10), conditions (B, 9) standardised]``.

    Returns:
        ``log(1 + showers)`` ``(B, 44, 44)`` float32.

    References:
        AliceO2Group/AliceO2, ``Detectors/ZDC/fastsimulation/src/FastSimulations.cxx``
        (inputs and the channel loop) and ``scales/*.txt`` (the means/scales files).
    """

    def __init__(self, graph, means, scales, **kwargs):
        super().__init__(**kwargs)
        check_o2(graph)
        self.graph = graph
        self.means = np.asarray(means, "float32")
        self.scales = np.asarray(scales, "float32")
        self.built = True

    def call(self, inputs):
        noise, standardised = inputs
        # Constants as tensors: a numpy operand would make torch's tracer freeze the input.
        scales = ops.convert_to_tensor(self.scales)
        means = ops.convert_to_tensor(self.means)
        conditions = ops.cast(standardised, "float32") * scales + means
        showers = self.graph([conditions, noise])
        return ops.reshape(log1p(showers), (-1, O2_SIDE, O2_SIDE))
