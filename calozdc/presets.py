"""Named option sets ("presets") of ``calozdc train FAMILY --preset NAME``; framework-free.

A preset names a set of options of one model family, in the form ``calozdc train --set``
takes: option name -> value (JSON values), where an option is a builder argument (e.g.
``hidden_dim``), a training option (``epochs``, ``batch_size`` ...), a transform
(``shower_transform``) or a generation setting (``steps``, ``solver``); ``SECTION.NAME``
(``model.preset``) names an option of one section explicitly. See
:mod:`calozdc.cli.train_config` for the sections and the order in which the options of a run
are resolved: family defaults < preset < ``--config`` file < ``--set``.

Every family has a ``"default"`` preset, which sets nothing (the builder's own defaults, which
may be re-tuned between calozdc versions); the other presets pin their values, so that a run
made with them stays the same when the defaults move. ``calozdc presets [FAMILY]`` lists them.

This module imports no framework (``calozdc presets`` and the command line's parser stay
fast).
"""

from calozdc.names import available_families

#: family -> preset name -> ``{"description": one line, "options": {option: value}}``
#: (a family not listed has only :data:`DEFAULT_PRESET`, as ``"default"``).
PRESETS = {
    "gan": {
        "default": {
            "description": "the builder's current defaults (build_conditional_gan)",
            "options": {},
        },
        "seed000": {
            "description": "seed 000: simplified D, soft labels 0.7/0.3, n_D:n_G 1:1, "
                           "asymmetric exp_range CyclicLR (G max 1e-4, D max 7e-5, "
                           "step 100, gamma 0.995)",
            "options": {"generator_variant": "extended2",
                        "discriminator_variant": "simplified", "heads": "single",
                        "real_label": 0.7, "fake_label": 0.3, "training_ratio": [1, 1],
                        "gradient_penalty_weight": 0.0, "g_max_lr": 1e-4, "d_max_lr": 7e-5,
                        "base_lr": 1e-6, "step_size": 100, "gamma": 0.995},
        },
        "seed001": {
            "description": "seed 000 with seed 001's mask/value generator heads (mask/value "
                           "loss, w = 200)",
            "options": {"generator_variant": "extended2",
                        "discriminator_variant": "simplified", "heads": "mask_value",
                        "real_label": 0.7, "fake_label": 0.3, "training_ratio": [1, 1],
                        "g_max_lr": 1e-4, "d_max_lr": 7e-5, "base_lr": 1e-6,
                        "step_size": 100, "gamma": 0.995},
        },
        "zdc-vit": {
            "description": "the ZDC peer's ViT GAN sizes (github.com/m-wojnar/zdc GAN(): "
                           "d 128, 4 heads, 4 blocks, 8x8 patches, dropout 0.1, latent 10; "
                           "915,841 + 1,422,337 parameters on zn44 with 9 conditions), "
                           "hard labels, the peer's peak learning rates (G 1e-4, D 1.4e-5)",
            "options": {"backbone": "vit", "hidden_dim": 128, "latent_dim": 10,
                        "vit_heads": 4, "vit_layers": 4, "patch_size": 8, "dropout": 0.1,
                        "real_label": 1.0, "fake_label": 0.0, "training_ratio": [1, 1],
                        "g_max_lr": 1e-4, "d_max_lr": 1.4e-5},
        },
    },
    "twostep": {
        "default": {"description": "the builder's current defaults (build_two_step_gan)",
                    "options": {}},
        "seed004": {
            "description": "seed 004: L2 pre-training (weight 10) switched to adversarial "
                           "at a third of the epochs, hard labels, CyclicLR (G max 1e-3, "
                           "D max 7e-4, gamma 0.999)",
            "options": {"l2_weight": 10.0, "real_label": 1.0, "fake_label": 0.0,
                        "g_max_lr": 1e-3, "d_max_lr": 7e-4, "base_lr": 1e-5,
                        "step_size": 100, "gamma": 0.999},
        },
    },
    "vqvae": {
        "default": {"description": "the builder's current defaults (build_vq_generator; "
                                   "codebook size from the geometry)", "options": {}},
        "small": {
            "description": "a small codebook (64 codes of size 8) and a one-layer prior: "
                           "quick CPU runs",
            "options": {"num_codes": 64, "code_dim": 8, "prior_embed_dim": 32,
                        "prior_layers": 1, "prior_heads": 2},
        },
        "fast": {
            "description": "a 2-block, width-64 prior: sampling ~4x faster (zn44, JAX, 2 CPU "
                           "cores: 2.7 vs 10.5 ms/shower), generated channel W1 5.2x vs 3.6x "
                           "the floor on zn44 (benchmarks/RESULTS.md)",
            "options": {"prior_embed_dim": 64, "prior_layers": 2},
        },
    },
    "vqgan": {
        "default": {"description": "the builder's current defaults (build_vqgan: the VQ "
                                   "generator's networks, a patch discriminator, hinge loss "
                                   "with the adaptive weight, 500 warm-up steps)",
                    "options": {}},
        "small": {
            "description": "the vqvae family's small preset with a small discriminator "
                           "(16/32 filters) and 200 warm-up steps: quick CPU runs",
            "options": {"num_codes": 64, "code_dim": 8, "prior_embed_dim": 32,
                        "prior_layers": 1, "prior_heads": 2,
                        "discriminator_filters": [16, 32], "warmup_steps": 200},
        },
        "fast": {
            "description": "the vqvae family's fast preset: a 2-block, width-64 prior, "
                           "sampling ~4x faster",
            "options": {"prior_embed_dim": 64, "prior_layers": 2},
        },
    },
    "ddim": {
        "default": {"description": "the builder's current defaults (build_ddim) and "
                                   "DDIM.generate's sampling defaults", "options": {}},
        "fast": {
            "description": "a small U-Net (16/32/64, one block per level, no attention) "
                           "and 20 sampling steps: quick CPU runs",
            "options": {"widths": [16, 32, 64], "blocks_per_level": 1, "embedding_dim": 64,
                        "attention": False, "steps": 20},
        },
    },
    "flow": {
        "default": {"description": "the builder's current defaults (build_flow: the "
                                   "leaderboard's U-Net) and FlowMatching.generate's",
                    "options": {}},
        "zdc": {
            "description": "about the size of the published ZDC flow-matching model (~70 k "
                           "parameters, arXiv:2507.18811): build_flow(preset='zdc')",
            "options": {"model.preset": "zdc"},
        },
        "heun": {
            "description": "the default model sampled with 25 second-order Heun steps "
                           "(slower generation, smoother showers)",
            "options": {"steps": 25, "solver": "heun"},
        },
    },
}

#: The preset of a family that :data:`PRESETS` does not list.
DEFAULT_PRESET = {"description": "the builder's current defaults", "options": {}}

#: Arguments of each family's ``generate`` that a run records as its generation settings
#: (the model's defaults unless set): used by the training monitors, ``calozdc generate`` and
#: ``calozdc evaluate RUN_DIR``. The VQ generator's ``temperature``/``top_k`` are builder
#: options (its generate defaults to them). Families not listed: those of
#: :data:`SAMPLING_KEYS` that their ``generate`` takes.
GENERATION_KEYS = {
    "gan": (),
    "twostep": (),
    "vqvae": (),
    "vqgan": (),
    "ddim": ("steps", "eta", "guidance"),
    "flow": ("steps", "solver", "guidance"),
}
SAMPLING_KEYS = ("steps", "solver", "eta", "guidance")


def _check_family(family):
    if family not in available_families():
        raise ValueError(f"Unknown model family. Expected one of {available_families()}. "
                         f"Received: family={family!r}")


def family_presets(family):
    """``{name: {"description", "options"}}`` of ``family``."""
    _check_family(family)
    return PRESETS.get(family, {"default": DEFAULT_PRESET})


def generation_keys(family):
    """The generation settings a run of ``family`` may set (see :data:`GENERATION_KEYS`)."""
    _check_family(family)
    return GENERATION_KEYS.get(family, SAMPLING_KEYS)


def preset_names(family):
    """The preset names of ``family`` (``"default"`` first)."""
    return sorted(family_presets(family), key=lambda n: (n != "default", n))


def get_preset(family, name):
    """The options of preset ``name`` of ``family`` (a new dict); ValueError listing the
    family's presets when there is no such preset."""
    presets = family_presets(family)
    if name not in presets:
        raise ValueError(f"Unknown preset of the {family} family. Expected one of "
                         f"{preset_names(family)}. Received: preset={name!r}")
    return dict(presets[name]["options"])


def describe(family=None):
    """Lines ``FAMILY NAME: description; options`` of every preset (of ``family``)."""
    import json

    families = available_families() if family is None else [family]
    lines = []
    for fam in families:
        for name in preset_names(fam):
            preset = family_presets(fam)[name]
            options = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}"
                               for k, v in preset["options"].items()) or "(no options)"
            lines.append(f"{fam} {name}: {preset['description']}; {options}")
    return lines
