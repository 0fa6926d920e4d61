"""DDIM: conditional denoising diffusion with fast deterministic sampling."""

from calozdc.models.ddim.conditional_unet import ConditionalUNet
from calozdc.models.ddim.ddim import DDIM
from calozdc.models.ddim.ddim_sampler import DDIMSampler
from calozdc.models.ddim.noise_schedule import NoiseSchedule

__all__ = ["DDIM", "ConditionalUNet", "DDIMSampler", "NoiseSchedule"]
