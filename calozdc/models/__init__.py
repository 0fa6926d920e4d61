"""calozdc.models."""

from calozdc.models.ddim import DDIM, ConditionalUNet, DDIMSampler, NoiseSchedule
from calozdc.models.flow import ConditionalMLP, FlowMatching, FlowSampler
from calozdc.models.gan import ConditionalGAN, OptimizerPair, TwoStepGAN
from calozdc.models.vqvae import VQVAE, CodePrior, VQGenerator
