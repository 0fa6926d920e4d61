"""KerasTuner search space of the VQ-VAE + prior family."""

from calozdc.tuning.family_hyper_model import FamilyHyperModel


class VQVAEHyperModel(FamilyHyperModel):
    """Hypermodel of ``calozdc.models.vqvae.VQGenerator`` (family ``"vqvae"``).

    Searches the codebook (``num_codes``, ``code_dim``, ``commitment_cost``, ``decay``), the
    VQ-VAE learning rate and the transformer prior (``prior_embed_dim``, ``prior_layers``,
    ``prior_heads``, ``prior_learning_rate``) and the sampling temperature. ``fit`` trains the
    VQ-VAE then the prior (see ``VQGenerator.fit``); the metric is computed on the whole
    model at the end of the epochs it is due. Arguments: see :class:`FamilyHyperModel`.

    Example:
    >>> hm = VQVAEHyperModel("ecal20", 1, val.showers, val.conditions)  # doctest: +SKIP

    References:
        van den Oord et al. 2017, arXiv:1711.00937 (VQ-VAE).
    """

    family = "vqvae"
    DEFAULT_SPACE = {
        "num_codes": [128, 64, 256],
        "code_dim": [16, 8, 32],
        "commitment_cost": {"min": 0.1, "max": 0.5, "step": 0.05, "default": 0.25},
        "decay": [0.99, 0.95],
        "learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log", "default": 1e-3},
        "prior_embed_dim": [128, 64, 32],
        "prior_layers": [4, 2, 1],
        "prior_heads": [4, 2],
        "prior_learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log", "default": 1e-3},
        "temperature": [1.0, 0.8],
    }


class VQGANHyperModel(VQVAEHyperModel):
    """Hypermodel of the VQ-GAN generator (family ``"vqgan"``,
    ``calozdc.models.vqgan.presets.build_vqgan``).

    The VQ space of :class:`VQVAEHyperModel` plus the adversarial term: its loss, weight,
    warm-up and the discriminator's learning rate. Arguments: see :class:`FamilyHyperModel`.

    References:
        Esser, Rombach & Ommer 2021, arXiv:2012.09841 (VQ-GAN).
    """

    family = "vqgan"
    DEFAULT_SPACE = {
        **VQVAEHyperModel.DEFAULT_SPACE,
        "adversarial_loss": ["hinge", "non_saturating"],
        "adversarial_weight": {"min": 0.05, "max": 1.0, "sampling": "log", "default": 0.5},
        "warmup_steps": [500, 0, 2000],
        "discriminator_learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log",
                                        "default": 1e-3},
    }
