"""Ready-to-train GAN family builders (the entries of :mod:`calozdc.models.registry`)."""

import keras

from calozdc.models.gan.cnn_discriminator import cnn_discriminator
from calozdc.models.gan.cnn_generator import cnn_generator
from calozdc.models.gan.conditional_gan import ConditionalGAN
from calozdc.models.gan.two_step_gan import TwoStepGAN
from calozdc.models.total_energy import build_total_model
from calozdc.schedules.cyclic_lr import CyclicLR


def _image_shape(geometry):
    shape = getattr(geometry, "image_shape", geometry)
    return tuple(int(s) for s in (shape() if callable(shape) else shape))


BACKBONES = ("cnn", "vit")


def _networks(image_shape, condition_dim, latent_dim, hidden_dim, generator_variant,
              discriminator_variant, dropout, heads, seed, output_activation=None,
              backbone="cnn", vit_heads=4, vit_layers=4, patch_size=8):
    if backbone not in BACKBONES:
        raise ValueError(f"`backbone` must be one of {BACKBONES}. Received: backbone={backbone!r}")
    if backbone == "vit":
        return _vit_networks(image_shape, condition_dim, latent_dim, hidden_dim, dropout, heads,
                             seed, output_activation, vit_heads, vit_layers, patch_size)
    generator = cnn_generator(image_shape, condition_dim, latent_dim, hidden_dim,
                              generator_variant, dropout, heads,
                              seed=None if seed is None else seed + 100,
                              output_activation=output_activation)
    discriminator = cnn_discriminator(image_shape, condition_dim, hidden_dim,
                                      discriminator_variant, dropout,
                                      seed=None if seed is None else seed + 200)
    return generator, discriminator


def _total_model(total_energy, condition_dim, seed):
    return build_total_model(condition_dim, seed=None if seed is None else seed + 300) \
        if total_energy else None


def _vit_networks(image_shape, condition_dim, latent_dim, hidden_dim, dropout, heads, seed,
                  output_activation, vit_heads, vit_layers, patch_size):
    """ViT generator and discriminator (:mod:`calozdc.models.vit`) of width ``hidden_dim``."""
    from calozdc.models.vit import vit_discriminator, vit_generator

    if heads != "single":
        raise ValueError("The ViT backbone has a single output head (heads='single'). "
                         f"Received: heads={heads!r}")
    sizes = {"hidden_dim": hidden_dim, "num_heads": vit_heads, "num_layers": vit_layers,
             "dropout": dropout, "patch_size": patch_size}
    generator = vit_generator(image_shape, condition_dim, latent_dim,
                              output_activation=output_activation,
                              seed=None if seed is None else seed + 100, **sizes)
    discriminator = vit_discriminator(image_shape, condition_dim,
                                      seed=None if seed is None else seed + 200, **sizes)
    return generator, discriminator


def _optimizers(g_max_lr, d_max_lr, base_lr, step_size, gamma):
    """Seed 000 "asymmetric" CyclicLR: one exp_range schedule per network."""
    def make(max_lr, network):
        return keras.optimizers.Adam(
            CyclicLR(base_lr, max_lr, step_size, step_size, "exp_range", gamma), beta_1=0.5,
            name=f"{network}_adam",
        )
    return make(g_max_lr, "generator"), make(d_max_lr, "discriminator")


def build_conditional_gan(geometry, condition_dim, *, latent_dim=16, hidden_dim=16,
                          generator_variant="extended2", discriminator_variant="simplified",
                          dropout=0.1, heads="single", real_label=0.7, fake_label=0.3,
                          training_ratio=(1, 1), gradient_penalty_weight=0.0,
                          g_max_lr=1e-4, d_max_lr=7e-5, base_lr=1e-6, step_size=100,
                          gamma=0.995, shower_transform=None, condition_transform=None,
                          seed=None, output_activation="softplus",
                          generator_loss_terms="default", total_energy=True, backbone="cnn",
                          vit_heads=4, vit_layers=4, patch_size=8):
    """A compiled :class:`ConditionalGAN` for a geometry (a ``Geometry`` or ``(H, W, C)``).

    Defaults follow seed 000's balanced setting (simplified D, labels 0.7/0.3, ratio 1:1,
    asymmetric exp_range CyclicLR: G max 1e-4, D max 7e-5, step 100 up/100 down, γ 0.995) with
    a modest width (``hidden_dim=16``) for CPU training. ``heads="mask_value"`` adds the
    mask/value loss (seed 001, w = 200) as a generator term. ``output_activation`` is passed
    to :func:`cnn_generator` (e.g. ``"softplus"`` with a zero-preserving shower transform);
    ``generator_loss_terms`` (``(loss, weight)`` pairs, e.g.
    ``calozdc.losses.EnergyConservationLoss``) are added to the generator loss.

    The energy recipe (issue 19; ``tests/test_learning_gan.py``): a non-negative
    ``"softplus"`` output and, with ``generator_loss_terms="default"``, the absolute energy
    term ``(EnergyConservationLoss(target="showers", relative=False), 1e-2)``, for the
    zero-preserving model space of :func:`default_transforms` (energy fraction, scaled
    without centring); pass ``output_activation=None`` and ``generator_loss_terms=None``
    for seed 000's plain setting. ``total_energy=True`` (default) adds a total model
    (:func:`calozdc.models.total_energy.build_total_model`): after ``model.fit_totals(showers,
    conditions)`` on the training split (``calozdc train`` calls it), ``generate`` scales
    each shower to a total drawn from it (the energy/shape factorisation,
    ``benchmarks/RESULTS.md``).

    ``backbone="vit"`` replaces the CNNs by the ViT generator and discriminator of
    :mod:`calozdc.models.vit` (token width ``hidden_dim``, ``vit_heads`` heads, ``vit_layers``
    blocks, ``patch_size`` × ``patch_size`` patches, MLP dropout ``dropout``; the variants
    do not apply); the ``zdc-vit`` preset gives the ZDC peer's sizes (``hidden_dim=128``,
    ``latent_dim=10``: 915,841 + 1,422,337 parameters on zn44 with 9 conditions).
    """
    from calozdc.losses import EnergyConservationLoss, MaskValueLoss

    if isinstance(generator_loss_terms, str) and generator_loss_terms == "default":
        generator_loss_terms = [(EnergyConservationLoss(target="showers", relative=False), 1e-2)]

    image_shape = _image_shape(geometry)
    generator, discriminator = _networks(image_shape, condition_dim, latent_dim, hidden_dim,
                                         generator_variant, discriminator_variant, dropout,
                                         heads, seed, output_activation, backbone, vit_heads,
                                         vit_layers, patch_size)
    terms = [(MaskValueLoss(value_weight=200.0), 1.0)] if heads == "mask_value" else []
    terms = terms + list(generator_loss_terms or [])
    model = ConditionalGAN(generator, discriminator, latent_dim, real_label=real_label,
                           fake_label=fake_label, training_ratio=training_ratio,
                           gradient_penalty_weight=gradient_penalty_weight,
                           generator_loss_terms=terms, shower_transform=shower_transform,
                           condition_transform=condition_transform, seed=seed,
                           total_model=_total_model(total_energy, condition_dim, seed))
    g_opt, d_opt = _optimizers(g_max_lr, d_max_lr, base_lr, step_size, gamma)
    model.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    return model


def build_two_step_gan(geometry, condition_dim, *, latent_dim=16, hidden_dim=16,
                       generator_variant="extended2", discriminator_variant="simplified",
                       dropout=0.1, l2_weight=10.0, switch_epoch=None, switch_step=None,
                       real_label=1.0, fake_label=0.0, g_max_lr=1e-3, d_max_lr=7e-4,
                       base_lr=1e-5, step_size=100, gamma=0.999, shower_transform=None,
                       condition_transform=None, seed=None, epochs=None,
                       output_activation="softplus", generator_loss_terms=None,
                       total_energy=True, backbone="cnn", vit_heads=4, vit_layers=4,
                       patch_size=8):
    """A compiled :class:`TwoStepGAN` (seed 004) for a geometry.

    Without ``switch_epoch``/``switch_step``, the switch is placed at a third of ``epochs``
    when given (at least epoch 1), else at epoch 1. ``output_activation`` is passed to
    :func:`cnn_generator` (default ``"softplus"``: non-negative in the zero-preserving model
    space of :func:`default_transforms`); ``generator_loss_terms`` (``(loss, weight)`` pairs, e.g.
    ``calozdc.losses.EnergyConservationLoss``) are added to the phase-2 generator loss;
    ``total_energy`` as in :func:`build_conditional_gan`; so are ``backbone``, ``vit_heads``,
    ``vit_layers`` and ``patch_size`` (``"vit"``: the ViT networks of :mod:`calozdc.models.vit`).
    """
    image_shape = _image_shape(geometry)
    generator, discriminator = _networks(image_shape, condition_dim, latent_dim, hidden_dim,
                                         generator_variant, discriminator_variant, dropout,
                                         "single", seed, output_activation, backbone,
                                         vit_heads, vit_layers, patch_size)
    if switch_epoch is None and switch_step is None:
        switch_epoch = max(1, (epochs or 3) // 3)
    model = TwoStepGAN(generator, discriminator, latent_dim, l2_weight=l2_weight,
                       switch_step=switch_step, switch_epoch=switch_epoch,
                       real_label=real_label, fake_label=fake_label,
                       generator_loss_terms=generator_loss_terms,
                       shower_transform=shower_transform,
                       condition_transform=condition_transform, seed=seed,
                       total_model=_total_model(total_energy, condition_dim, seed))
    g_opt, d_opt = _optimizers(g_max_lr, d_max_lr, base_lr, step_size, gamma)
    model.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    return model


def default_transforms():
    """The GAN families' model space: ``(shower_transform, condition_transform)``.

    Showers: the energy fraction of each cell (``DivideByIncidentEnergy``), scaled without
    centring, so an empty cell is exactly 0 and a non-negative generator output cannot add
    energy to it (a centred standardisation put the zero level of empty cells at a value the
    generator must hit exactly). Conditions: ``log`` of the incident energy (column 0), then
    per-column standardisation. The recipe of ``tests/test_learning_gan.py``.
    """
    from calozdc.data import transforms

    return (transforms.Chain([transforms.DivideByIncidentEnergy(),
                              transforms.Standardize(center=False)]),
            transforms.Chain([transforms.LogColumns([0]),
                              transforms.Standardize(axis="feature")]))
