"""The ZDC peer's default ViT sizes (github.com/m-wojnar/zdc at commit 5f8b775), rebuilt.

:func:`zdc_gan_networks` gives the generator and discriminator of the peer's default
``GAN()`` (``models/gan/gan.py``: d = 128, 4 heads, 4 blocks, dropout 0.1, latent 10, 8 × 8
patches, 9 conditions) with exactly its parameter counts, :data:`ZDC_PARAMETERS`;
:func:`zdc_vq_backbones` the encoder and decoder of its image VQ-VAE (d = 96), each with the
dense layer the peer keeps outside the backbone (``pre_embedding``; our decoder also takes the
condition token, which the peer's unconditional image VQ-VAE has not). The peer's training
recipe (optimisers, schedules) is not part of these presets.
"""

from calozdc.models.vit.backbones import vit_decoder, vit_discriminator, vit_encoder, vit_generator

#: The peer's GAN sizes (``GAN()`` defaults; the token width 128 and head widths are
#: hard-wired in its generator and discriminator).
ZDC_GAN = {"latent_dim": 10, "hidden_dim": 128, "num_heads": 4, "num_layers": 4,
           "dropout": 0.1, "patch_size": 8, "token_dim": 128, "head_units": (128, 128, 64)}
#: The peer's image VQ-VAE backbone sizes (``architectures/vit.py`` defaults) and codebook
#: entry size.
ZDC_VQVAE = {"hidden_dim": 96, "num_heads": 4, "num_layers": 4, "dropout": 0.1,
             "patch_size": 8, "code_dim": 256}
#: The peer's data: zn44 images and 9 particle features.
ZDC_IMAGE_SHAPE = (44, 44, 1)
ZDC_CONDITION_DIM = 9
#: Parameter counts measured on the peer (flax init; shared/peers/zdc/RESULTS.md).
ZDC_PARAMETERS = {"generator": 915_841, "discriminator": 1_422_337,
                  "vq_encoder": 457_248, "vq_pre_embedding": 24_832, "vq_decoder": 481_633}


def zdc_gan_networks(image_shape=ZDC_IMAGE_SHAPE, condition_dim=ZDC_CONDITION_DIM,
                     output_activation=None, discriminator_output="probability", seed=None):
    """``(generator, discriminator)`` of the peer's default GAN (915,841 and 1,422,337
    parameters at zn44 with 9 conditions).

    ``output_activation``: the generator's (the peer: ``relu(x + 0.5)``; None: linear).
    ``discriminator_output``: ``"probability"`` (for :class:`ConditionalGAN`) or ``"logit"``
    (the peer's). ``seed``: base seed of the dropout layers (discriminator: ``seed + 100``).
    """
    sizes = {k: v for k, v in ZDC_GAN.items() if k not in ("latent_dim", "token_dim",
                                                            "head_units")}
    generator = vit_generator(image_shape, condition_dim, ZDC_GAN["latent_dim"],
                              token_dim=ZDC_GAN["token_dim"],
                              output_activation=output_activation, seed=seed, **sizes)
    discriminator = vit_discriminator(image_shape, condition_dim,
                                      head_units=ZDC_GAN["head_units"],
                                      output=discriminator_output,
                                      seed=None if seed is None else seed + 100, **sizes)
    return generator, discriminator


def zdc_vq_backbones(image_shape=ZDC_IMAGE_SHAPE, condition_dim=ZDC_CONDITION_DIM,
                     code_dim=ZDC_VQVAE["code_dim"]):
    """``(encoder, decoder)`` of the peer's image VQ-VAE size (d = 96) for
    :class:`~calozdc.models.VQVAE`: 36 codes of ``code_dim`` per zn44 shower."""
    sizes = {k: v for k, v in ZDC_VQVAE.items() if k != "code_dim"}
    return (vit_encoder(image_shape, code_dim, **sizes),
            vit_decoder(image_shape, code_dim, condition_dim, **sizes))
