"""calozdc.models."""

# The physics losses a saved model may hold as generator terms (the GAN builders' default
# energy term) must be registered before ``keras.saving.load_model``.
import calozdc.losses  # noqa: F401
from calozdc.models.ddim import DDIM, ConditionalUNet, DDIMSampler, NoiseSchedule
from calozdc.models.flow import ConditionalMLP, FlowMatching, FlowSampler
from calozdc.models.gan import ConditionalGAN, OptimizerPair, TwoStepGAN
from calozdc.models.vqgan import VQGAN  # noqa: F401  (registers the class for loading)
from calozdc.models.vqvae import VQVAE, CodePrior, VQGenerator
