"""Tiny models and data shared by the GAN tests."""

import keras
import numpy as np

from calozdc.models.gan import cnn_discriminator, cnn_generator

SHAPE = (20, 20, 1)
LATENT = 4


def tiny_networks(heads="single", dropout=0.1):
    g = cnn_generator(SHAPE, 1, LATENT, 4, "extended2", dropout, heads)
    d = cnn_discriminator(SHAPE, 1, 4, "simplified", dropout)
    return g, d


def dense_networks(dropout=0.1):
    """Small dense G and D (fast to compile) with dropout, for the training-logic tests."""
    z = keras.Input((LATENT,))
    p = keras.Input((1,))
    h = keras.layers.Concatenate()([z, p])
    h = keras.layers.Dense(8, activation="relu")(h)
    h = keras.layers.Dropout(dropout, seed=11)(h)
    h = keras.layers.Dense(SHAPE[0] * SHAPE[1])(h)
    g = keras.Model([z, p], keras.layers.Reshape(SHAPE)(h), name="generator")
    x = keras.Input(SHAPE)
    q = keras.Input((1,))
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x), q])
    h = keras.layers.Dense(8, activation="relu")(h)
    h = keras.layers.Dropout(dropout, seed=12)(h)
    d = keras.Model([x, q], keras.layers.Dense(1, activation="sigmoid")(h), name="discriminator")
    return g, d


def constant_discriminator(bias):
    """D(x, p) = sigmoid(w·x + b) with w = 0: the output is sigmoid(bias) for every input."""
    x = keras.Input(SHAPE)
    p = keras.Input((1,))
    h = keras.layers.Flatten()(x)
    h = keras.layers.Concatenate()([h, p])
    logit = keras.layers.Dense(1, kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(bias))(h)
    return keras.Model([x, p], keras.layers.Activation("sigmoid")(logit))


def linear_discriminator(seed=0):
    """D(x, p) = sigmoid(w·flatten(x) + 0·p + b) with random w (for gradient-penalty checks)."""
    x = keras.Input(SHAPE)
    p = keras.Input((1,))
    h = keras.layers.Flatten()(x)
    h = keras.layers.Concatenate()([h, p])
    logit = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed))(h)
    return keras.Model([x, p], keras.layers.Activation("sigmoid")(logit))


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *SHAPE)).astype("float32")
    p = rng.uniform(-1, 1, size=(n, 1)).astype("float32")
    return x, p


def weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def jit_options():
    """jit settings to test: both on JAX, eager/graph on TF, eager on torch (torch.compile is
    slow to start and not what users run on CPU)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return [True, False]
    if backend == "tensorflow":
        return [False]
    return [False]
