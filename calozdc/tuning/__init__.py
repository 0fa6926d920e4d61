"""calozdc.tuning: KerasTuner hypermodels per model family, tuned on a physics metric.

* :class:`GANHyperModel`, :class:`TwoStepGANHyperModel`, :class:`DDIMHyperModel`,
  :class:`VQVAEHyperModel`, :class:`VQGANHyperModel`, :class:`FlowHyperModel`,
  :class:`LatentFlowHyperModel` (base :class:`FamilyHyperModel`);
* :data:`OBJECTIVE` = ``keras_tuner.Objective("val_channel_w1", "min")``;
* :func:`get_hypermodel` (by family name) and :func:`make_tuner` (random, bayesian,
  hyperband; resumable from its directory).
"""

from calozdc.names import TUNERS
from calozdc.tuning.ddim_hyper_model import DDIMHyperModel
from calozdc.tuning.family_hyper_model import (
    OBJECTIVE,
    FamilyHyperModel,
    register_hyperparameter,
)
from calozdc.tuning.flow_hyper_model import FlowHyperModel, LatentFlowHyperModel
from calozdc.tuning.gan_hyper_model import GANHyperModel
from calozdc.tuning.two_step_gan_hyper_model import TwoStepGANHyperModel
from calozdc.tuning.vqvae_hyper_model import VQGANHyperModel, VQVAEHyperModel

HYPERMODELS = {
    "gan": GANHyperModel,
    "twostep": TwoStepGANHyperModel,
    "ddim": DDIMHyperModel,
    "vqvae": VQVAEHyperModel,
    "flow": FlowHyperModel,
    "latent-flow": LatentFlowHyperModel,
    "vqgan": VQGANHyperModel,
}


def get_hypermodel(family, *args, **kwargs):
    """The hypermodel of ``family`` built with ``*args, **kwargs``."""
    if family not in HYPERMODELS:
        raise ValueError(f"Unknown model family. Expected one of {sorted(HYPERMODELS)}. "
                         f"Received: family={family!r}")
    return HYPERMODELS[family](*args, **kwargs)


def make_tuner(kind, hypermodel, directory, project_name, max_trials=10, max_epochs=10, seed=0,
               overwrite=False, **kwargs):
    """A KerasTuner tuner minimising :data:`OBJECTIVE`.

    Args:
        kind: ``"random"``, ``"bayesian"`` or ``"hyperband"``.
        hypermodel: a :class:`FamilyHyperModel`.
        directory, project_name: where trials are stored; with ``overwrite=False`` an
            existing project is reloaded and the search resumes (finished trials are kept).
        max_trials: trials (random, bayesian; hyperband: its own schedule, capped by this).
        max_epochs: hyperband's largest budget.
        seed: tuner seed.
        **kwargs: other tuner arguments.
    """
    import keras_tuner

    common = dict(objective=OBJECTIVE, seed=seed, directory=directory,
                  project_name=project_name, overwrite=overwrite, **kwargs)
    if kind == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if kind == "hyperband":
        tuner = keras_tuner.Hyperband(hypermodel, max_epochs=max_epochs, factor=3, **common)
        tuner.oracle.max_trials = max_trials
        return tuner
    raise ValueError(f"Unknown tuner. Expected one of {list(TUNERS)}. Received: tuner={kind!r}")


__all__ = ["DDIMHyperModel", "FamilyHyperModel", "FlowHyperModel", "GANHyperModel",
           "HYPERMODELS", "LatentFlowHyperModel", "OBJECTIVE", "TUNERS", "TwoStepGANHyperModel",
           "VQGANHyperModel", "VQVAEHyperModel", "get_hypermodel", "make_tuner", "register_hyperparameter"]
