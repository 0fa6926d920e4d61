"""Names of the model families and tuners, importable without a framework.

The command line builds its parser (``calozdc --help``, ``calozdc simulate``) from these, so
those commands start without loading Keras and a backend. The families' builders are in
:mod:`calozdc.models.registry`, their hypermodels in :mod:`calozdc.tuning`.
"""

#: Model family -> ``"module:builder"`` (imported on first use by calozdc.models.registry).
FAMILIES = {
    "gan": "calozdc.models.gan.builders:build_conditional_gan",
    "twostep": "calozdc.models.gan.builders:build_two_step_gan",
    "vqvae": "calozdc.models.vqvae.presets:build_vq_generator",
    "ddim": "calozdc.models.ddim.presets:build_ddim",
    "flow": "calozdc.models.flow.presets:build_flow",
    "latent-flow": "calozdc.models.flow.presets:build_latent_flow",
    "vqgan": "calozdc.models.vqgan.presets:build_vqgan",
}

#: KerasTuner search kinds of ``calozdc tune`` / ``calozdc.tuning.make_tuner``.
TUNERS = ("random", "bayesian", "hyperband")


def available_families():
    """Sorted family names."""
    return sorted(FAMILIES)
