"""Ready-to-train VQ generator builder (the ``"vqvae"`` entry of :mod:`calozdc.models.registry`)."""

import keras

from calozdc.layers.vector_quantizer import VectorQuantizerEMA
from calozdc.models.total_energy import build_total_model
from calozdc.models.vqvae.backbones import GEOMETRY_DEFAULTS, default_backbones
from calozdc.models.vqvae.prior import CodePrior
from calozdc.models.vqvae.vq_generator import VQGenerator
from calozdc.models.vqvae.vqvae import VQVAE


def build_vq_generator(geometry, condition_dim, *, num_codes=None, code_dim=None, filters=None,
                       decay=0.99, epsilon=1e-5, commitment_cost=0.25, l2_normalize=True,
                       restart_after=32, reconstruction_loss="mse", learning_rate=1e-3,
                       prior_learning_rate=1e-3, prior_embed_dim=128, prior_layers=4,
                       prior_heads=4, prior_decay_to=0.05, temperature=1.0, top_k=None,
                       shower_transform=None, condition_transform=None, seed=None,
                       total_energy=True):
    """A compiled :class:`VQGenerator` for a geometry (``Geometry``, name or ``(H, W, C)``).

    zn44: 11×11 code grid, 256 codes of size 16; ecal20: 5×5 grid, 128 codes (see
    :data:`~calozdc.models.vqvae.backbones.GEOMETRY_DEFAULTS`). The quantiser uses
    ℓ2-normalised codes and restarts codes unused for ``restart_after`` steps (no collapse).
    ``fit`` trains the VQ-VAE, then the prior (``prior_epochs``, default = ``epochs``).
    The prior: 4 transformer blocks of width 128, Adam at 1e-3 cosine-decayed to 5 % over
    its phase (``prior_decay_to``). The prior limits the generated showers, not the
    autoencoder. On built-in zn44 showers, after 564 VQ-VAE and 564 prior steps, the
    generated channel W1 was 5.99× the floor with 2 blocks of 64 at a constant 3e-4. It was
    5.15× with the same prior decayed from 1e-3, and 3.56× with this one; the reconstructions
    are at 2.37× (``benchmarks/RESULTS.md``). The cost is sampling: about 3× the smaller
    prior's time per shower.
    ``total_energy=True`` (default) adds a total model
    (:func:`calozdc.models.total_energy.build_total_model`): after ``model.fit_totals`` on
    the training split (``calozdc train`` calls it), ``generate`` scales each shower to a
    generated total (the energy/shape factorisation, ``benchmarks/RESULTS.md``).
    """
    name = getattr(geometry, "name", geometry if isinstance(geometry, str) else None)
    defaults = GEOMETRY_DEFAULTS.get(name, GEOMETRY_DEFAULTS["ecal20"])
    num_codes = defaults["num_codes"] if num_codes is None else num_codes
    encoder, decoder = default_backbones(geometry, condition_dim, code_dim, filters)
    quantizer = VectorQuantizerEMA(num_codes, int(encoder.output_shape[-1]), decay=decay,
                                   epsilon=epsilon, commitment_cost=commitment_cost,
                                   l2_normalize=l2_normalize, restart_after=restart_after,
                                   seed=seed, name="quantizer")
    vqvae = VQVAE(encoder, decoder, quantizer, reconstruction_loss=reconstruction_loss,
                  shower_transform=shower_transform, condition_transform=condition_transform,
                  name="vqvae")
    length = int(encoder.output_shape[1]) * int(encoder.output_shape[2])
    prior = CodePrior(num_codes, length, condition_dim, embed_dim=prior_embed_dim,
                      num_heads=prior_heads, num_layers=prior_layers, seed=seed, name="prior")
    total_model = build_total_model(condition_dim, seed=None if seed is None else seed + 300) \
        if total_energy else None
    model = VQGenerator(vqvae, prior, temperature=temperature, top_k=top_k,
                        total_model=total_model, prior_decay_to=prior_decay_to,
                        name="vq_generator")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  prior_optimizer=keras.optimizers.Adam(prior_learning_rate))
    return model
