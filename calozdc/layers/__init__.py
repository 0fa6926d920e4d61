"""calozdc.layers."""

from calozdc.layers.pixel_shuffle import PixelShuffle2D, PixelUnshuffle2D
from calozdc.layers.scaled_sigmoid import ScaledSigmoid
from calozdc.layers.sinusoidal_embedding import SinusoidalEmbedding
from calozdc.layers.vector_quantizer import VectorQuantizerEMA

__all__ = ["PixelShuffle2D", "PixelUnshuffle2D", "ScaledSigmoid", "SinusoidalEmbedding",
           "VectorQuantizerEMA"]
