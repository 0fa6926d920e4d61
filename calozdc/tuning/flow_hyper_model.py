"""KerasTuner search space of the flow-matching family."""

from calozdc.tuning.family_hyper_model import FamilyHyperModel


class FlowHyperModel(FamilyHyperModel):
    """Hypermodel of ``calozdc.models.flow.FlowMatching`` (family ``"flow"``).

    Searches the U-Net (``base_width`` doubled at each of ``levels`` levels,
    ``blocks_per_level``, ``embedding_dim``, ``attention``), the training-time distribution,
    condition dropout, EMA decay, the learning rate, and the solver and step count used by
    the metric (``solver``, ``sampling_steps``). The energy/shape factorisation is kept on
    (it fixes the model space): pass the fitted ``total_stats`` of a model whose
    ``fit_transforms`` ran on the training split (``calozdc tune flow`` does), with that
    model's fitted transforms. Other arguments: see :class:`FamilyHyperModel`.

    Example:
    >>> ref = build_flow("zn44", 5, shower_transform=st, condition_transform=ct)  # doctest: +SKIP
    >>> ref.fit_transforms(train.showers, train.conditions)                        # doctest: +SKIP
    >>> hm = FlowHyperModel("zn44", 5, val.showers, val.conditions,
    ...                     shower_transform=ref.shower_transform,
    ...                     condition_transform=ref.condition_transform,
    ...                     total_stats=ref.total_stats)                           # doctest: +SKIP

    References:
        Lipman et al. 2023, arXiv:2210.02747; Esser et al. 2024, arXiv:2403.03206
        (logit-normal time); Ho & Salimans 2022, arXiv:2207.12598 (condition dropout).
    """

    family = "flow"
    DEFAULT_SPACE = {
        "base_width": [32, 16, 8],
        "levels": [3, 2],
        "blocks_per_level": [1, 2],
        "embedding_dim": [64, 32],
        "attention": [False, True],
        "time_sampling": ["uniform", "logit-normal"],
        "p_uncond": [0.1, 0.0],
        "ema_decay": [0.999, 0.99],
        "learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log", "default": 1e-3},
        "solver": ["euler", "heun", "midpoint"],
        "sampling_steps": [10, 4, 25],
    }

    def __init__(self, *args, total_stats=None, **kwargs):
        self.total_stats = None if total_stats is None else [float(v) for v in total_stats]
        super().__init__(*args, **kwargs)

    def options(self, values):
        options = dict(values)
        width, levels = int(options.pop("base_width")), int(options.pop("levels"))
        options["widths"] = tuple(width * 2 ** min(i, 2) for i in range(levels))
        options.pop("sampling_steps", None)
        options.pop("solver", None)
        return options

    def metric_generate_kwargs(self, hp):
        kwargs = dict(self.generate_kwargs)
        if "sampling_steps" in hp.values:
            kwargs.setdefault("steps", int(hp.get("sampling_steps")))
        if "solver" in hp.values:
            kwargs.setdefault("solver", hp.get("solver"))
        return kwargs

    def build(self, hp):
        model = super().build(hp)
        if self.total_stats is not None:
            model.total_stats = list(self.total_stats)
        return model


class LatentFlowHyperModel(FlowHyperModel):
    """Hypermodel of ``calozdc.models.flow.LatentFlowMatching`` (family ``"latent-flow"``).

    The flow's space of :class:`FlowHyperModel` (its U-Net on the latent grid, at most two
    levels) plus the autoencoder: ``latent_channels``, ``autoencoder_width`` (both levels) and
    the phase-1 learning rate. Arguments as :class:`FlowHyperModel` (``total_stats`` of a
    reference model fitted on the training split).

    References:
        Rombach et al. 2022, arXiv:2112.10752 (latent diffusion).
    """

    family = "latent-flow"
    DEFAULT_SPACE = {
        **{k: v for k, v in FlowHyperModel.DEFAULT_SPACE.items() if k != "levels"},
        "levels": [2, 1],
        "latent_channels": [4, 2, 8],
        "autoencoder_width": [32, 16],
        "autoencoder_learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log",
                                      "default": 1e-3},
    }

    def options(self, values):
        options = super().options(values)
        width = int(options.pop("autoencoder_width"))
        options["autoencoder_widths"] = (width, width)
        return options
