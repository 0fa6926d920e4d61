"""Ready-to-train DDIM builder (the ``"ddim"`` entry of :mod:`calozdc.models.registry`)."""

import keras

from calozdc.models.ddim.conditional_unet import ConditionalUNet
from calozdc.models.ddim.ddim import DDIM
from calozdc.models.ddim.noise_schedule import NoiseSchedule
from calozdc.models.total_energy import build_total_model


def _image_shape(geometry):
    """``(H, W, C)`` of a Geometry, a geometry name ("zn44") or an image shape."""
    if isinstance(geometry, str):
        from calozdc.data.geometry import get_geometry

        geometry = get_geometry(geometry)
    shape = getattr(geometry, "image_shape", geometry)
    shape = tuple(int(s) for s in (shape() if callable(shape) else shape))
    if len(shape) == 2:
        shape = shape + (1,)
    return shape


def build_ddim(
    geometry,
    condition_dim,
    *,
    widths=(32, 64, 128),
    blocks_per_level=2,
    embedding_dim=128,
    attention=True,
    dropout=0.0,
    schedule="cosine",
    num_timesteps=1000,
    prediction_type="v",
    p_uncond=0.1,
    ema_decay=0.999,
    zero_quantile=0.01,
    learning_rate=2e-4,
    shower_transform=None,
    condition_transform=None,
    seed=None,
    total_energy=True,
):
    """A compiled :class:`DDIM` with a :class:`ConditionalUNet` for a geometry.

    Works for zn44 (44 -> 22 -> 11) and ecal20 (20 -> 10 -> 5) with the default three
    widths. Defaults: cosine schedule with ``T = 1000``, v-prediction, condition dropout 0.1
    (classifier-free guidance available), EMA decay 0.999, Adam at ``2e-4`` with gradient
    clipping at norm 1 (Ho et al. 2020 appendix B).

    Args:
        geometry: a ``calozdc.data.Geometry`` or an image shape ``(H, W[, C])``.
        condition_dim: number of condition columns.
        widths, blocks_per_level, embedding_dim, attention, dropout: U-Net arguments.
        schedule: ``"cosine"`` or ``"linear"``; ``num_timesteps``: ``T``.
        prediction_type, p_uncond, ema_decay, zero_quantile, shower_transform,
            condition_transform, seed: :class:`DDIM` arguments (``seed + 1000`` seeds the
            U-Net's dropout masks; the zero threshold applies only to a zero-preserving model
            space, e.g. a ``Standardize(center=False)`` chain).
        learning_rate: Adam learning rate.
        total_energy: add a total model (:func:`calozdc.models.total_energy.build_total_model`;
            after ``model.fit_totals`` on the training split, which ``calozdc train`` calls,
            ``generate`` scales each shower to a generated total: the energy/shape
            factorisation, ``benchmarks/RESULTS.md``).

    Returns:
        A compiled :class:`DDIM`.
    """
    unet = ConditionalUNet(
        _image_shape(geometry),
        condition_dim,
        widths=widths,
        blocks_per_level=blocks_per_level,
        embedding_dim=embedding_dim,
        attention=attention,
        dropout=dropout,
        # offset: the dropout streams must not repeat the DDIM's noise stream (same seed)
        seed=None if seed is None else seed + 1000,
    )
    model = DDIM(
        unet,
        NoiseSchedule(schedule, num_timesteps=num_timesteps),
        prediction_type=prediction_type,
        p_uncond=p_uncond,
        ema_decay=ema_decay,
        zero_quantile=zero_quantile,
        shower_transform=shower_transform,
        condition_transform=condition_transform,
        seed=seed,
        total_model=build_total_model(condition_dim, seed=None if seed is None else seed + 300)
        if total_energy else None,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0))
    return model

