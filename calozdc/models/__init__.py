"""calozdc.models."""

from calozdc.models.ddim import DDIM, ConditionalUNet, DDIMSampler, NoiseSchedule
from calozdc.models.gan import ConditionalGAN, OptimizerPair, TwoStepGAN
from calozdc.models.vqvae import VQVAE, CodePrior, VQGenerator
