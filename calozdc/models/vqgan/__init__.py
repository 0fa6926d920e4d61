"""VQ-GAN family: a VQ-VAE trained with a patch discriminator, then the VQ prior → generator."""

from calozdc.models.vqgan.patch_discriminator import patch_discriminator
from calozdc.models.vqgan.vqgan import VQGAN

__all__ = ["VQGAN", "patch_discriminator"]
