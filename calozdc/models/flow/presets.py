"""Ready-to-train flow-matching builder (the ``"flow"`` entry of :mod:`calozdc.models.registry`)."""

import keras

from calozdc.models.ddim.conditional_unet import ConditionalUNet
from calozdc.models.ddim.presets import _image_shape
from calozdc.models.flow.conditional_mlp import ConditionalMLP
from calozdc.models.flow.flow_matching import FlowMatching

#: U-Net sizes by name. ``"zdc"``: about the size of the published ZDC flow-matching model
#: (~70 k parameters, arXiv:2507.18811; this U-Net: 75 k for zn44 with the total appended to
#: the conditions); ``"default"``: wider (741 k), the leaderboard's entry.
FLOW_PRESETS = {
    "zdc": {"widths": (8, 16, 24), "blocks_per_level": 1, "embedding_dim": 16,
            "attention": False},
    "default": {"widths": (32, 64, 64), "blocks_per_level": 1, "embedding_dim": 64,
                "attention": False},
}


def default_transforms():
    """The flow family's model space: ``(shower_transform, condition_transform)``.

    Shower (applied to the shower divided by its total, see :class:`FlowMatching`):
    ``LogScaled`` (log1p above the median non-empty cell, linear below, empty cells exactly
    0) then a global scaling without centring, so the zero level stays at 0. Conditions:
    ``log`` of the incident energy (column 0) then per-column standardisation.
    """
    from calozdc.data import transforms

    return (transforms.Chain([transforms.LogScaled(0.5), transforms.Standardize(center=False)]),
            transforms.Chain([transforms.LogColumns([0]),
                              transforms.Standardize(axis="feature")]))


def build_flow(
    geometry,
    condition_dim,
    *,
    preset="default",
    widths=None,
    blocks_per_level=None,
    embedding_dim=None,
    attention=None,
    dropout=0.0,
    factorise=True,
    total_width=64,
    total_blocks=3,
    time_sampling="uniform",
    p_uncond=0.1,
    ema_decay=0.999,
    learning_rate=1e-3,
    shower_transform=None,
    condition_transform=None,
    seed=None,
):
    """A compiled :class:`FlowMatching` with a :class:`ConditionalUNet` for a geometry.

    Defaults (the recipe measured in ``benchmarks/RESULTS.md``): the energy/shape
    factorisation (a :class:`ConditionalMLP` flow for the log total, the U-Net for the shape),
    uniform time (logit-normal time doubled the channel W1 on 2,000 zn44 showers: the
    placement of the shower, decided near ``t = 0``, was undertrained), condition dropout
    0.1, EMA 0.999, Adam at ``1e-3`` with gradient
    clipping at norm 1. Pass the transforms of :func:`default_transforms` (fitted with
    ``model.fit_transforms``) for the recipe's model space.

    Args:
        geometry: a ``calozdc.data.Geometry``, its name or an image shape ``(H, W[, C])``.
        condition_dim: number of condition columns ``k`` (physical).
        preset: a key of :data:`FLOW_PRESETS` (U-Net size); explicit ``widths``,
            ``blocks_per_level``, ``embedding_dim``, ``attention`` override it.
        dropout: U-Net dropout.
        factorise: generate the total first (energy/shape factorisation).
        total_width, total_blocks: size of the total's MLP.
        time_sampling, p_uncond, ema_decay, shower_transform, condition_transform, seed:
            :class:`FlowMatching` arguments (``seed + 1000`` seeds the U-Net's dropout).
        learning_rate: Adam learning rate.

    Returns:
        A compiled :class:`FlowMatching`.
    """
    if preset not in FLOW_PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(FLOW_PRESETS)}. Received: preset={preset!r}")
    size = dict(FLOW_PRESETS[preset])
    for key, value in (("widths", widths), ("blocks_per_level", blocks_per_level),
                       ("embedding_dim", embedding_dim), ("attention", attention)):
        if value is not None:
            size[key] = value
    image_conditions = condition_dim + 1 if factorise else condition_dim
    unet = ConditionalUNet(
        _image_shape(geometry), image_conditions, dropout=dropout,
        seed=None if seed is None else seed + 1000, **size,
    )
    total = None
    if factorise:
        total = ConditionalMLP(1, condition_dim, width=total_width, blocks=total_blocks)
    model = FlowMatching(
        unet,
        total,
        time_sampling=time_sampling,
        p_uncond=p_uncond,
        ema_decay=ema_decay,
        shower_transform=shower_transform,
        condition_transform=condition_transform,
        seed=seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0))
    return model


def build_latent_flow(
    geometry,
    condition_dim,
    *,
    latent_channels=4,
    autoencoder_widths=(32, 32),
    widths=(32, 64),
    blocks_per_level=1,
    embedding_dim=64,
    attention=False,
    dropout=0.0,
    factorise=True,
    total_width=64,
    total_blocks=3,
    time_sampling="uniform",
    p_uncond=0.1,
    ema_decay=0.999,
    learning_rate=1e-3,
    autoencoder_learning_rate=1e-3,
    autoencoder_epochs=None,
    shower_transform=None,
    condition_transform=None,
    seed=None,
):
    """A compiled :class:`LatentFlowMatching`: :func:`conv_autoencoder` (zn44: an 11 x 11 x 4
    latent grid) and a two-level :class:`ConditionalUNet` on it, the energy/shape
    factorisation and the flow family's other defaults (see :func:`build_flow`). Use the
    transforms of :func:`default_transforms`.

    Args:
        geometry: a ``calozdc.data.Geometry``, its name or an image shape ``(H, W[, C])``.
        condition_dim: number of condition columns ``k``.
        latent_channels, autoencoder_widths: the autoencoder.
        widths, blocks_per_level, embedding_dim, attention, dropout: the latent U-Net.
        autoencoder_learning_rate: Adam learning rate of phase 1.
        autoencoder_epochs: default phase-1 epochs (None: as many as the flow's).
        Others: as :func:`build_flow`.

    Returns:
        A compiled :class:`LatentFlowMatching`.
    """
    from calozdc.models.flow.latent_flow import LatentFlowMatching, conv_autoencoder

    encoder, decoder = conv_autoencoder(_image_shape(geometry), latent_channels,
                                        autoencoder_widths)
    latent_shape = tuple(encoder.output.shape[1:])
    unet = ConditionalUNet(
        latent_shape, condition_dim + 1 if factorise else condition_dim, widths=widths,
        blocks_per_level=blocks_per_level, embedding_dim=embedding_dim, attention=attention,
        dropout=dropout, seed=None if seed is None else seed + 1000,
    )
    total = ConditionalMLP(1, condition_dim, width=total_width, blocks=total_blocks) \
        if factorise else None
    model = LatentFlowMatching(
        unet, total, encoder, decoder, autoencoder_epochs=autoencoder_epochs,
        time_sampling=time_sampling, p_uncond=p_uncond, ema_decay=ema_decay,
        shower_transform=shower_transform, condition_transform=condition_transform, seed=seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                  autoencoder_optimizer=keras.optimizers.Adam(autoencoder_learning_rate))
    return model
