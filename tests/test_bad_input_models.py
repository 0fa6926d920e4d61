"""Out-of-range model hyperparameters: one ValueError naming the received value.

Covers the constructors of every family (GAN, two-step GAN, VQ-VAE + prior, DDIM), their
building blocks, the learning-rate schedule and ``build_model`` (the CLI's entry point).
"""

import functools

import pytest

from calozdc.layers.vector_quantizer import VectorQuantizerEMA
from calozdc.models.ddim.conditional_unet import ConditionalUNet
from calozdc.models.ddim.ddim import DDIM
from calozdc.models.ddim.ddim_sampler import DDIMSampler
from calozdc.models.ddim.noise_schedule import NoiseSchedule
from calozdc.models.gan.cnn_discriminator import cnn_discriminator
from calozdc.models.gan.cnn_generator import cnn_generator
from calozdc.models.gan.conditional_gan import ConditionalGAN
from calozdc.models.gan.two_step_gan import TwoStepGAN
from calozdc.models.registry import build_model
from calozdc.models.vqvae.prior import CodePrior
from calozdc.schedules.cyclic_lr import CyclicLR

SHAPE = (12, 12, 1)


# Built once: the constructors below raise before they touch the networks.
@functools.cache
def _gd():
    return cnn_generator(SHAPE, 1, 4, 4), cnn_discriminator(SHAPE, 1, 4)


@functools.cache
def _unet():
    return ConditionalUNet(SHAPE, 1, widths=(8, 16), blocks_per_level=1, embedding_dim=8,
                           attention=False)


TINY_GAN = {"latent_dim": 4, "hidden_dim": 4}


CASES = [
    # GAN networks and models
    ("generator dropout<0", lambda: cnn_generator(SHAPE, 1, 4, 4, dropout=-0.1), "dropout=-0.1"),
    ("generator dropout>=1", lambda: cnn_generator(SHAPE, 1, 4, 4, dropout=1.5), "dropout=1.5"),
    ("generator latent 0", lambda: cnn_generator(SHAPE, 1, 0, 4), "latent_dim=0"),
    ("generator image", lambda: cnn_generator((10, 10, 1), 1, 4, 4), "image_shape=(10, 10, 1)"),
    ("generator conditions 0", lambda: cnn_generator(SHAPE, 0, 4, 4), "condition_dim=0"),
    ("generator variant", lambda: cnn_generator(SHAPE, 1, 4, 4, variant="huge"), "'huge'"),
    ("discriminator dropout<0", lambda: cnn_discriminator(SHAPE, 1, 4, dropout=-0.5),
     "dropout=-0.5"),
    ("discriminator hidden 0", lambda: cnn_discriminator(SHAPE, 1, 0), "hidden_dim=0"),
    ("gan latent<1", lambda: ConditionalGAN(*_gd(), latent_dim=-3), "latent_dim=-3"),
    ("gan latent mismatch", lambda: ConditionalGAN(*_gd(), latent_dim=5), "latent_dim=5"),
    ("gan n_D:n_G 0:1", lambda: ConditionalGAN(*_gd(), 4, training_ratio=(0, 1)), "(0, 1)"),
    ("gan n_D:n_G 1:0", lambda: ConditionalGAN(*_gd(), 4, training_ratio=(1, 0)), "(1, 0)"),
    ("gan ratio float", lambda: ConditionalGAN(*_gd(), 4, training_ratio=(1.5, 1)), "(1.5, 1)"),
    ("gan label>1", lambda: ConditionalGAN(*_gd(), 4, real_label=1.2), "real_label=1.2"),
    ("gan label<0", lambda: ConditionalGAN(*_gd(), 4, fake_label=-0.1), "fake_label=-0.1"),
    ("gan R1<0", lambda: ConditionalGAN(*_gd(), 4, gradient_penalty_weight=-1.0),
     "gradient_penalty_weight=-1.0"),
    ("gan R1 NaN", lambda: ConditionalGAN(*_gd(), 4, gradient_penalty_weight=float("nan")),
     "gradient_penalty_weight=nan"),
    ("gan not a model", lambda: ConditionalGAN("generator", _gd()[1], 4), "'generator'"),
    ("twostep lambda<0", lambda: TwoStepGAN(*_gd(), 4, l2_weight=-1.0), "l2_weight=-1.0"),
    ("twostep switch<0", lambda: TwoStepGAN(*_gd(), 4, switch_step=-2), "switch_step=-2"),
    ("twostep both switches", lambda: TwoStepGAN(*_gd(), 4, switch_step=1, switch_epoch=1),
     "switch_step=1, switch_epoch=1"),
    # VQ-VAE
    ("codebook size 1", lambda: VectorQuantizerEMA(1, 4), "num_codes=1"),
    ("decay 1", lambda: VectorQuantizerEMA(8, 4, decay=1.0), "decay=1.0"),
    ("decay 0", lambda: VectorQuantizerEMA(8, 4, decay=0.0), "decay=0.0"),
    ("decay<0", lambda: VectorQuantizerEMA(8, 4, decay=-0.5), "decay=-0.5"),
    ("epsilon 0", lambda: VectorQuantizerEMA(8, 4, epsilon=0.0), "epsilon=0.0"),
    ("commitment<0", lambda: VectorQuantizerEMA(8, 4, commitment_cost=-1.0),
     "commitment_cost=-1.0"),
    ("restart<1", lambda: VectorQuantizerEMA(8, 4, restart_after=0), "restart_after=0"),
    ("prior codes 1", lambda: CodePrior(1, 4, 1), "num_codes=1"),
    ("prior dropout<0", lambda: CodePrior(8, 4, 1, dropout=-0.1), "dropout=-0.1"),
    ("prior heads", lambda: CodePrior(8, 4, 1, embed_dim=16, num_heads=3), "num_heads=3"),
    # DDIM
    ("timesteps 0", lambda: NoiseSchedule("cosine", num_timesteps=0), "num_timesteps=0"),
    ("schedule kind", lambda: NoiseSchedule("quadratic"), "'quadratic'"),
    ("unet dropout<0", lambda: ConditionalUNet(SHAPE, 1, widths=(8, 16), dropout=-0.2),
     "dropout=-0.2"),
    ("unet widths", lambda: ConditionalUNet(SHAPE, 1, widths=(8, -16)), "(8, -16)"),
    ("p_uncond 1", lambda: DDIM(_unet(), NoiseSchedule("cosine", 10), p_uncond=1.0),
     "p_uncond=1.0"),
    ("ema decay>1", lambda: DDIM(_unet(), NoiseSchedule("cosine", 10), ema_decay=1.5),
     "ema_decay=1.5"),
    ("prediction type", lambda: DDIM(_unet(), NoiseSchedule("cosine", 10), prediction_type="x"),
     "'x'"),
    ("sampler steps 0", lambda: DDIMSampler(_unet(), NoiseSchedule("cosine", 10), steps=0),
     "steps=0"),
    ("sampler steps>T", lambda: DDIMSampler(_unet(), NoiseSchedule("cosine", 10), steps=11),
     "steps=11"),
    # schedule
    ("lr<0", lambda: CyclicLR(-1.0, 1e-3, 10), "base_lr=-1.0"),
    ("max_lr<base_lr", lambda: CyclicLR(1e-2, 1e-3, 10), "max_lr=0.001"),
    ("step size 0", lambda: CyclicLR(1e-4, 1e-3, 0), "step_size_up=0"),
    ("gamma 0", lambda: CyclicLR(1e-4, 1e-3, 10, mode="exp_range", gamma=0.0), "gamma=0.0"),
    # build_model: what `calozdc train FAMILY` calls
    ("unknown family", lambda: build_model("glow", "ecal20", 1), "family='glow'"),
    ("unknown geometry", lambda: build_model("gan", "ecal99", 1), "ecal99"),
    ("condition_dim 0", lambda: build_model("gan", "ecal20", 0), "condition_dim=0"),
    ("build lr<0", lambda: build_model("gan", SHAPE, 1, g_max_lr=-1.0, **TINY_GAN), "max_lr=-1.0"),
    ("build twostep lambda<0", lambda: build_model("twostep", SHAPE, 1, l2_weight=-2.0,
                                                                     **TINY_GAN),
     "l2_weight=-2.0"),
    ("vq code_dim 0", lambda: VectorQuantizerEMA(8, 0), "code_dim=0"),
    ("prior mlp_dim 0", lambda: CodePrior(8, 4, 1, mlp_dim=0), "mlp_dim=0"),
    ("build ddim T 0", lambda: build_model("ddim", SHAPE, 1, num_timesteps=0, widths=(8, 16),
                                           embedding_dim=8, attention=False), "num_timesteps=0"),
]


@pytest.mark.parametrize("build, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_hyperparameter(build, text):
    with pytest.raises(ValueError) as err:
        build()
    assert text in str(err.value), str(err.value)
    assert "Received" in str(err.value)
