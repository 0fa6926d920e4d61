"""KerasTuner search space of the DDIM family."""

from calozdc.tuning.family_hyper_model import FamilyHyperModel


class DDIMHyperModel(FamilyHyperModel):
    """Hypermodel of ``calozdc.models.ddim.DDIM`` (family ``"ddim"``).

    Searches the U-Net (``base_width`` doubled at each of ``levels`` levels,
    ``blocks_per_level``, ``embedding_dim``, ``attention``, ``dropout``), the noise schedule,
    the prediction target, condition dropout, EMA decay, the learning rate, and the number of
    DDIM sampling steps used by the metric (``sampling_steps``). Arguments: see
    :class:`FamilyHyperModel`.

    Example:
    >>> hm = DDIMHyperModel("zn44", 9, val.showers, val.conditions,
    ...                     space={"sampling_steps": [10]})  # doctest: +SKIP

    References:
        Song et al. 2021, arXiv:2010.02502 (DDIM); Salimans & Ho 2022, arXiv:2202.00512
        (v-prediction); Ho & Salimans 2022, arXiv:2207.12598 (condition dropout).
    """

    family = "ddim"
    DEFAULT_SPACE = {
        "base_width": [32, 16, 64],
        "levels": [3, 2],
        "blocks_per_level": [2, 1],
        "embedding_dim": [128, 64],
        "attention": [True, False],
        "dropout": {"min": 0.0, "max": 0.2, "step": 0.1, "default": 0.0},
        "schedule": ["cosine", "linear"],
        "num_timesteps": 1000,
        "prediction_type": ["v", "epsilon"],
        "p_uncond": [0.1, 0.0],
        "ema_decay": [0.999, 0.99],
        "learning_rate": {"min": 5e-5, "max": 1e-3, "sampling": "log", "default": 2e-4},
        "sampling_steps": [25, 10, 50],
    }

    def options(self, values):
        options = dict(values)
        width, levels = int(options.pop("base_width")), int(options.pop("levels"))
        options["widths"] = tuple(width * 2**i for i in range(levels))
        options.pop("sampling_steps", None)
        return options

    def metric_generate_kwargs(self, hp):
        kwargs = dict(self.generate_kwargs)
        if "sampling_steps" in hp.values:
            kwargs.setdefault("steps", int(hp.get("sampling_steps")))
        return kwargs
