"""VQ-VAE family: EMA vector-quantised autoencoder + conditional code prior = generator."""

from calozdc.models.vqvae.backbones import conv_decoder, conv_encoder, default_backbones
from calozdc.models.vqvae.prior import CodePrior, sample_logits
from calozdc.models.vqvae.vq_generator import VQGenerator
from calozdc.models.vqvae.vqvae import VQVAE

__all__ = ["VQVAE", "CodePrior", "VQGenerator", "conv_decoder", "conv_encoder",
           "default_backbones", "sample_logits"]
