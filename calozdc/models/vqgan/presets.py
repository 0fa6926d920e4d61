"""Ready-to-train VQ-GAN generator builder (the ``"vqgan"`` entry of :mod:`calozdc.models.registry`)."""

import keras

from calozdc.layers.vector_quantizer import VectorQuantizerEMA
from calozdc.models.total_energy import build_total_model
from calozdc.models.vqgan.patch_discriminator import patch_discriminator
from calozdc.models.vqgan.vqgan import VQGAN
from calozdc.models.vqvae.backbones import GEOMETRY_DEFAULTS, default_backbones
from calozdc.models.vqvae.prior import CodePrior
from calozdc.models.vqvae.vq_generator import VQGenerator


def default_transforms():
    """The VQ generator's transforms (:func:`calozdc.models.registry.default_transforms` of
    ``"vqvae"``): both families share the model space, so they compare on the same footing."""
    from calozdc.models.registry import default_transforms as family_transforms

    return family_transforms("vqvae")


def build_vqgan(geometry, condition_dim, *, encoder=None, decoder=None, num_codes=None,
                code_dim=None, filters=None, decay=0.99, epsilon=1e-5, commitment_cost=0.25,
                l2_normalize=True, restart_after=32, reconstruction_loss="mse",
                discriminator_filters=(32, 64), adversarial_loss="hinge",
                adversarial_weight=0.5, adaptive_weight=True, warmup_steps=500,
                feature_matching_weight=0.0, learning_rate=1e-3,
                discriminator_learning_rate=None, prior_learning_rate=1e-3, prior_embed_dim=128,
                prior_layers=4, prior_heads=4, prior_decay_to=0.05, temperature=1.0,
                top_k=None, shower_transform=None, condition_transform=None, seed=None,
                total_energy=True):
    """A compiled :class:`~calozdc.models.VQGenerator` whose autoencoder is a :class:`VQGAN`.

    The autoencoder, codebook and prior are those of
    :func:`~calozdc.models.vqvae.presets.build_vq_generator` with the same arguments (zn44:
    11×11 codes, 256 in the book), so the two families differ by the adversarial term only.
    Added: a :func:`patch_discriminator` (``discriminator_filters``), the adversarial loss
    (hinge or non-saturating), its weight (``adversarial_weight``, times the adaptive
    weight of Esser et al. 2021 eq. 7 when ``adaptive_weight``), ``warmup_steps`` of
    reconstruction only, optional ``feature_matching_weight``. Optimisers: Adam(β1 = 0.5,
    β2 = 0.9) for the autoencoder and the discriminator (``discriminator_learning_rate``,
    default ``learning_rate``), as in Esser et al.'s code; Adam for the prior.

    ``encoder``/``decoder``: Keras models to use instead of the convolutional backbones
    (``image → (h, w, D)`` and ``[latent, conditions] → image``; e.g. a ViT pair).
    ``fit`` trains the VQ-GAN, then the prior (``prior_epochs``, default = ``epochs``), as
    ``build_vq_generator``'s (4 blocks of width 128, 1e-3 cosine-decayed to
    ``prior_decay_to``).
    ``total_energy``: the total model of the energy/shape factorisation, as
    ``build_vq_generator``'s (``model.fit_totals`` on the training split).
    """
    name = getattr(geometry, "name", geometry if isinstance(geometry, str) else None)
    defaults = GEOMETRY_DEFAULTS.get(name, GEOMETRY_DEFAULTS["ecal20"])
    num_codes = defaults["num_codes"] if num_codes is None else num_codes
    if (encoder is None) != (decoder is None):
        raise ValueError("Pass both `encoder` and `decoder` or neither. Received: "
                         f"encoder={encoder!r}, decoder={decoder!r}")
    if encoder is None:
        encoder, decoder = default_backbones(geometry, condition_dim, code_dim, filters)
    quantizer = VectorQuantizerEMA(num_codes, int(encoder.output_shape[-1]), decay=decay,
                                   epsilon=epsilon, commitment_cost=commitment_cost,
                                   l2_normalize=l2_normalize, restart_after=restart_after,
                                   seed=seed, name="quantizer")
    image_shape = tuple(int(s) for s in encoder.input_shape[1:])
    discriminator = patch_discriminator(image_shape, condition_dim,
                                        tuple(discriminator_filters))
    vqgan = VQGAN(encoder, decoder, discriminator, quantizer,
                  reconstruction_loss=reconstruction_loss, adversarial_loss=adversarial_loss,
                  adversarial_weight=adversarial_weight, adaptive_weight=adaptive_weight,
                  warmup_steps=warmup_steps, feature_matching_weight=feature_matching_weight,
                  shower_transform=shower_transform, condition_transform=condition_transform,
                  name="vqgan")
    length = int(encoder.output_shape[1]) * int(encoder.output_shape[2])
    prior = CodePrior(num_codes, length, condition_dim, embed_dim=prior_embed_dim,
                      num_heads=prior_heads, num_layers=prior_layers, seed=seed, name="prior")
    total_model = build_total_model(condition_dim, seed=None if seed is None else seed + 300) \
        if total_energy else None
    model = VQGenerator(vqgan, prior, temperature=temperature, top_k=top_k,
                        total_model=total_model, prior_decay_to=prior_decay_to,
                        name="vqgan_generator")
    d_rate = learning_rate if discriminator_learning_rate is None else discriminator_learning_rate
    vqgan.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9,
                                                  name="autoencoder_adam"),
                  discriminator_optimizer=keras.optimizers.Adam(
                      d_rate, beta_1=0.5, beta_2=0.9, name="discriminator_adam"))
    prior.compile(optimizer=keras.optimizers.Adam(prior_learning_rate))
    return model
