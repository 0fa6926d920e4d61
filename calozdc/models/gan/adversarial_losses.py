"""Loss functions of the adversarial models (``keras.ops``, float32), written once for all
backends and used inside the train steps of :class:`ConditionalGAN` and :class:`TwoStepGAN`."""

import keras
from keras import ops

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before taking logs.
EPSILON = 1e-7


def soft_binary_crossentropy(label, prob):
    """Mean BCE ``−[y log p + (1 − y) log(1 − p)]`` of probabilities ``prob`` against a
    (possibly soft) ``label`` in [0, 1] (float or tensor broadcastable to ``prob``)."""
    prob = ops.clip(ops.cast(prob, "float32"), EPSILON, 1.0 - EPSILON)
    return -ops.mean(label * ops.log(prob) + (1.0 - label) * ops.log(1.0 - prob))


def discriminator_loss(real_prob, fake_prob, real_label=1.0, fake_label=0.0):
    """``BCE(D(x), real_label) + BCE(D(G(z)), fake_label)`` (soft labels, e.g. 0.73/0.27)."""
    return (soft_binary_crossentropy(real_label, real_prob)
            + soft_binary_crossentropy(fake_label, fake_prob))


def generator_adversarial_loss(fake_prob, target=1.0):
    """Non-saturating generator loss ``BCE(D(G(z)), target)`` (= ``−log D(G(z))`` for 1)."""
    return soft_binary_crossentropy(target, fake_prob)


def r1_penalty(input_gradients):
    """``E ||∇_x D(x)||²`` over the batch (sum over all non-batch axes), Mescheder et al. 2018.

    The R1 regulariser is ``γ/2 · r1_penalty(∇_x D(x_real))``.
    """
    g = ops.cast(input_gradients, "float32")
    g = ops.reshape(ops.square(g), (ops.shape(g)[0], -1))
    return ops.mean(ops.sum(g, axis=1))


def mean_squared_error(y_true, y_pred):
    """``mean((y_pred − y_true)²)`` in float32 (the L2 term of seed 004)."""
    return ops.mean(ops.square(ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")))


def weighted_terms(terms, y_true, y_pred, conditions):
    """Sum of ``weight · term(...)`` for ``(term, weight)`` pairs, each reduced to a scalar.

    ``keras.losses.Loss`` instances are called as ``term(y_true, y_pred)``; other callables
    as ``term(y_true, y_pred, conditions)``.
    """
    total = ops.zeros((), "float32")
    for term, weight in terms:
        if isinstance(term, keras.losses.Loss):
            value = term(y_true, y_pred)
        else:
            value = term(y_true, y_pred, conditions)
        total = total + float(weight) * ops.mean(ops.cast(value, "float32"))
    return total
