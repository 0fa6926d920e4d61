"""ViT backbones (generator, discriminator, VQ-VAE encoder/decoder, DDIM/flow denoiser) and the
ZDC peer's sizes."""

from calozdc.models.vit.backbones import (
    grid_shape,
    vit_decoder,
    vit_discriminator,
    vit_encoder,
    vit_generator,
)
from calozdc.models.vit.presets import ZDC_PARAMETERS, zdc_gan_networks, zdc_vq_backbones
from calozdc.models.vit.vit_denoiser import ViTDenoiser

__all__ = ["ZDC_PARAMETERS", "ViTDenoiser", "grid_shape", "vit_decoder", "vit_discriminator", "vit_encoder",
           "vit_generator", "zdc_gan_networks", "zdc_vq_backbones"]
