"""calozdc.layers."""

from calozdc.layers.condition_token import ConditionToken
from calozdc.layers.mixer_block import MixerBlock
from calozdc.layers.patch_embedding import PatchEmbedding
from calozdc.layers.patch_to_image import PatchToImage
from calozdc.layers.pixel_shuffle import PixelShuffle2D, PixelUnshuffle2D
from calozdc.layers.position_embedding import PositionEmbedding
from calozdc.layers.scaled_sigmoid import ScaledSigmoid
from calozdc.layers.sinusoidal_embedding import SinusoidalEmbedding
from calozdc.layers.transformer_block import TransformerBlock, gelu_tanh
from calozdc.layers.vector_quantizer import VectorQuantizerEMA

__all__ = ["ConditionToken", "MixerBlock", "PatchEmbedding", "PatchToImage", "PixelShuffle2D",
           "PixelUnshuffle2D", "PositionEmbedding", "ScaledSigmoid", "SinusoidalEmbedding",
           "TransformerBlock", "VectorQuantizerEMA", "gelu_tanh"]
