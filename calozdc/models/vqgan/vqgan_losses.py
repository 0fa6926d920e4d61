"""Loss terms of the VQ-GAN (``keras.ops``, float32), written once for all backends.

Discriminator outputs are *logits* (a patch map or one per shower), not probabilities.
"""

from keras import ops

#: Adversarial losses :class:`~calozdc.models.vqgan.VQGAN` accepts.
ADVERSARIAL_LOSSES = ("hinge", "non_saturating")


def _mean(x):
    return ops.mean(ops.cast(x, "float32"))


def discriminator_loss(real_logits, fake_logits, kind="hinge"):
    """Discriminator loss on logits of real and reconstructed showers.

    * ``"hinge"``: ``½ [mean relu(1 − D(x)) + mean relu(1 + D(x̂))]`` (Lim & Ye 2017,
      arXiv:1705.02894; the ½ as in Esser et al. 2021's code);
    * ``"non_saturating"``: ``½ [mean softplus(−D(x)) + mean softplus(D(x̂))]``, i.e. the
      binary cross-entropy of ``σ(D)`` (Goodfellow et al. 2014).
    """
    real = ops.cast(real_logits, "float32")
    fake = ops.cast(fake_logits, "float32")
    if kind == "hinge":
        return 0.5 * (_mean(ops.relu(1.0 - real)) + _mean(ops.relu(1.0 + fake)))
    if kind == "non_saturating":
        return 0.5 * (_mean(ops.softplus(-real)) + _mean(ops.softplus(fake)))
    raise ValueError(f"`kind` must be one of {ADVERSARIAL_LOSSES}. Received: kind={kind!r}")


def generator_loss(fake_logits, kind="hinge"):
    """Adversarial loss of the autoencoder (the generator) on the logits of its
    reconstructions: ``−mean D(x̂)`` for ``"hinge"`` (Lim & Ye 2017; Esser et al. 2021),
    ``mean softplus(−D(x̂)) = −mean log σ(D(x̂))`` for ``"non_saturating"`` (Goodfellow et
    al. 2014, sec. 3)."""
    fake = ops.cast(fake_logits, "float32")
    if kind == "hinge":
        return -_mean(fake)
    if kind == "non_saturating":
        return _mean(ops.softplus(-fake))
    raise ValueError(f"`kind` must be one of {ADVERSARIAL_LOSSES}. Received: kind={kind!r}")


def adaptive_weight(reconstruction_grad, adversarial_grad, delta=1e-4, max_weight=1e4):
    """Adaptive weight of the adversarial term, Esser, Rombach & Ommer 2021 eq. 7::

        λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ),   clipped to [0, max_weight]

    where ``∇_{G_L}`` is the gradient with respect to the decoder's last layer
    (arXiv:2012.09841; ``δ = 1e-4`` and the clip at ``1e4`` as in their code). Returned
    without gradient (a constant of the step).
    """
    rec = ops.sqrt(ops.sum(ops.square(ops.cast(reconstruction_grad, "float32"))))
    adv = ops.sqrt(ops.sum(ops.square(ops.cast(adversarial_grad, "float32"))))
    return ops.stop_gradient(ops.clip(rec / (adv + delta), 0.0, max_weight))


def feature_matching_loss(real_features, fake_features):
    """Mean over the discriminator's feature maps of ``mean |f(x) − f(x̂)|``, the real
    features held constant (Salimans et al. 2016, arXiv:1606.03498 sec. 3.1; the per-layer
    L1 form of Wang et al. 2018, pix2pixHD, arXiv:1711.11585 eq. 4). 0 without features."""
    terms = [_mean(ops.abs(ops.stop_gradient(ops.cast(r, "float32")) - ops.cast(f, "float32")))
             for r, f in zip(real_features, fake_features)]
    if not terms:
        return ops.zeros((), "float32")
    return ops.sum(ops.stack(terms)) / float(len(terms))
