"""GAN family: CNN backbones (seeds 000/001), ConditionalGAN and TwoStepGAN (seed 004)."""

from calozdc.models.gan.builders import build_conditional_gan, build_two_step_gan
from calozdc.models.gan.cnn_discriminator import cnn_discriminator
from calozdc.models.gan.cnn_generator import cnn_generator
from calozdc.models.gan.conditional_gan import ConditionalGAN
from calozdc.models.gan.optimizer_pair import OptimizerPair
from calozdc.models.gan.two_step_gan import TwoStepGAN

__all__ = [
    "ConditionalGAN",
    "OptimizerPair",
    "TwoStepGAN",
    "build_conditional_gan",
    "build_two_step_gan",
    "cnn_discriminator",
    "cnn_generator",
]
