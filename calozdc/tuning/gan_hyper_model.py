"""KerasTuner search space of the ConditionalGAN family."""

from calozdc.tuning.family_hyper_model import FamilyHyperModel


class GANHyperModel(FamilyHyperModel):
    """Hypermodel of ``calozdc.models.gan.ConditionalGAN`` (family ``"gan"``).

    Searches network widths (``latent_dim``, ``hidden_dim``), dropout, the soft labels
    (label smoothing: ``real_label``, ``fake_label``), the ``n_D:n_G`` ratio (``d_steps``
    discriminator steps per generator step), the gradient-penalty weight λ and the two
    asymmetric CyclicLR schedules (``g_max_lr``, ``d_max_lr``, ``base_lr``, ``step_size``,
    ``gamma``). Arguments: see :class:`FamilyHyperModel`.

    Example:
    >>> hm = GANHyperModel("ecal20", 1, val.showers, val.conditions,
    ...                    space={"hidden_dim": [8, 16]})  # doctest: +SKIP

    References:
        Seed 000 (soft labels 0.7/0.3, asymmetric exp_range CyclicLR); Gulrajani et al.
        2017, arXiv:1704.00028 (gradient penalty).
    """

    family = "gan"
    DEFAULT_SPACE = {
        "latent_dim": [16, 8, 32],
        "hidden_dim": [16, 8, 32],
        "generator_variant": ["extended2", "default"],
        "discriminator_variant": ["simplified", "default"],
        "dropout": {"min": 0.0, "max": 0.3, "step": 0.1, "default": 0.1},
        "real_label": [0.7, 0.9, 1.0],
        "fake_label": [0.3, 0.1, 0.0],
        "d_steps": [1, 2, 3],
        "gradient_penalty_weight": [0.0, 1.0, 10.0],
        "g_max_lr": {"min": 1e-5, "max": 1e-3, "sampling": "log", "default": 1e-4},
        "d_max_lr": {"min": 1e-5, "max": 1e-3, "sampling": "log", "default": 7e-5},
        "base_lr": 1e-6,
        "step_size": [100, 50, 200],
        "gamma": [0.995, 0.99, 0.999],
    }

    def options(self, values):
        options = dict(values)
        options["training_ratio"] = (int(options.pop("d_steps")), 1)
        return options
