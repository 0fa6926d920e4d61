"""KerasTuner search space of the TwoStepGAN family."""

from calozdc.tuning.family_hyper_model import FamilyHyperModel


class TwoStepGANHyperModel(FamilyHyperModel):
    """Hypermodel of ``calozdc.models.gan.TwoStepGAN`` (family ``"twostep"``).

    Searches widths, dropout, the L2 weight λ of the first (regression) step, the switch
    epoch (as ``switch_fraction`` of the epochs given to the constructor) and both CyclicLR
    schedules. Arguments: see :class:`FamilyHyperModel` (pass ``epochs`` so the switch
    fraction means something).

    Example:
    >>> hm = TwoStepGANHyperModel("ecal20", 1, val.showers, val.conditions,
    ...                           epochs=30)  # doctest: +SKIP

    References:
        Seed 004 (two-step training: L2 pre-training, then adversarial).
    """

    family = "twostep"
    DEFAULT_SPACE = {
        "latent_dim": [16, 8, 32],
        "hidden_dim": [16, 8, 32],
        "dropout": {"min": 0.0, "max": 0.3, "step": 0.1, "default": 0.1},
        "l2_weight": {"min": 1.0, "max": 100.0, "sampling": "log", "default": 10.0},
        "switch_fraction": [0.33, 0.2, 0.5],
        "g_max_lr": {"min": 1e-4, "max": 3e-3, "sampling": "log", "default": 1e-3},
        "d_max_lr": {"min": 1e-4, "max": 3e-3, "sampling": "log", "default": 7e-4},
        "base_lr": 1e-5,
        "step_size": [100, 50, 200],
        "gamma": [0.999, 0.995],
    }

    def options(self, values):
        options = dict(values)
        fraction = float(options.pop("switch_fraction"))
        options["switch_epoch"] = max(1, int(round(fraction * (self.epochs or 3))))
        return options
