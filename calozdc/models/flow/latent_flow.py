"""Latent flow matching: the flow runs on the latent grid of a small convolutional autoencoder."""

import keras
import numpy as np
from keras import layers

from calozdc.models.flow.flow_matching import FlowMatching
from calozdc.models.vqvae.vqvae import unpack_pair


def conv_autoencoder(image_shape, latent_channels=4, widths=(32, 32), name="autoencoder"):
    """A continuous convolutional autoencoder: ``(H, W, C)`` -> ``(H/4, W/4, latent_channels)``.

    Two stride-2 convolutions down (the image zero-padded to a multiple of 4, so zn44's
    44 x 44 becomes an 11 x 11 latent grid, the size of the published ZDC latent model) and
    two transposed convolutions up, SiLU activations, the decoder output cropped back.

    Args:
        image_shape: ``(H, W, C)``.
        latent_channels: channels of the latent grid.
        widths: channels at full and half resolution.
        name: prefix of the two models' names.

    Returns:
        ``(encoder, decoder)`` Keras models.

    References:
        Rombach et al. 2022, "High-resolution image synthesis with latent diffusion models",
        arXiv:2112.10752 (a generative model in an autoencoder's latent space).
    """
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"`image_shape` must be (H, W, C). Received: image_shape={image_shape}")
    if int(latent_channels) < 1 or len(widths) != 2 or min(widths) < 1:
        raise ValueError(
            "`latent_channels` must be >= 1 and `widths` two positive integers. Received: "
            f"latent_channels={latent_channels}, widths={widths}"
        )
    height, width, channels = image_shape
    pad_h, pad_w = (-height) % 4, (-width) % 4
    pads = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    w0, w1 = int(widths[0]), int(widths[1])

    x_in = keras.Input(image_shape, name="showers")
    x = layers.ZeroPadding2D(pads, name="pad")(x_in) if pad_h or pad_w else x_in
    x = layers.Conv2D(w0, 3, padding="same", activation="silu", name="enc_conv0")(x)
    x = layers.Conv2D(w0, 4, strides=2, padding="same", activation="silu", name="enc_down0")(x)
    x = layers.Conv2D(w1, 3, padding="same", activation="silu", name="enc_conv1")(x)
    x = layers.Conv2D(w1, 4, strides=2, padding="same", activation="silu", name="enc_down1")(x)
    z = layers.Conv2D(int(latent_channels), 1, dtype="float32", name="enc_latent")(x)
    encoder = keras.Model(x_in, z, name=f"{name}_encoder")

    z_in = keras.Input(tuple(z.shape[1:]), name="latents")
    y = layers.Conv2D(w1, 3, padding="same", activation="silu", name="dec_conv1")(z_in)
    y = layers.Conv2DTranspose(w1, 4, strides=2, padding="same", activation="silu",
                               name="dec_up1")(y)
    y = layers.Conv2D(w0, 3, padding="same", activation="silu", name="dec_conv0")(y)
    y = layers.Conv2DTranspose(w0, 4, strides=2, padding="same", activation="silu",
                               name="dec_up0")(y)
    y = layers.Conv2D(channels, 3, padding="same", dtype="float32", name="dec_out")(y)
    if pad_h or pad_w:
        y = layers.Cropping2D(pads, dtype="float32", name="crop")(y)
    decoder = keras.Model(z_in, y, name=f"{name}_decoder")
    return encoder, decoder


@keras.saving.register_keras_serializable(package="calozdc")
class LatentFlowMatching(FlowMatching):
    """:class:`FlowMatching` in the latent space of a convolutional autoencoder.

    Everything of the pixel-space flow holds (energy/shape factorisation, time sampling,
    guidance, EMA, solvers, transforms inside the model) but the flow carries noise to the
    autoencoder's latent grid of a model-space image, and ``generate`` decodes its end point.
    ``fit`` runs two phases on the same data, like ``VQGenerator``: the autoencoder
    (``autoencoder_epochs``, mean squared reconstruction error in model space), then the
    flow on the frozen encoder's latents (``epochs``), divided by their standard deviation
    (``latent_scale``, fitted after phase 1) so that the latent data match the N(0, I)
    noise in scale. A smaller grid makes every solver step cheaper (zn44: 11 x 11 x 4 instead
    of 44 x 44, as in the published latent ZDC model, arXiv:2507.18811).

    Args:
        velocity_network: U-Net on the latent grid (``condition_dim`` ``k`` or ``k + 1``).
        total_network: as in :class:`FlowMatching`.
        encoder, decoder: the autoencoder (:func:`conv_autoencoder`); the encoder's output
            shape is the velocity network's state shape.
        autoencoder_epochs: default phase-1 epochs of :meth:`fit` (None: ``epochs``).
        latent_scale: fitted standard deviation of the latents (None until phase 1).
        **kwargs: :class:`FlowMatching` arguments.

    Example:

    >>> model = build_latent_flow("zn44", condition_dim=5)
    >>> model.fit_transforms(train.showers, train.conditions)
    >>> model.fit(*model.preprocess(train.showers, train.conditions), epochs=20)
    >>> showers = model.generate(test.conditions, steps=10, seed=0)

    References:
        Rombach et al. 2022, arXiv:2112.10752 (latent diffusion); Lipman et al. 2023,
        arXiv:2210.02747 (flow matching); Wojnar et al. 2025, arXiv:2507.18811 (latent flow
        matching for the ALICE ZDC).
    """

    def __init__(self, velocity_network, total_network=None, encoder=None, decoder=None,
                 autoencoder_epochs=None, latent_scale=None, **kwargs):
        super().__init__(velocity_network, total_network, **kwargs)
        for name, net in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(net, keras.Model):
                raise ValueError(f"`{name}` must be a keras.Model. Received: {name}={net!r}")
        latent = tuple(encoder.output.shape[1:])
        if latent != tuple(self.state_shape) or tuple(decoder.input.shape[1:]) != latent:
            raise ValueError(
                "The encoder's output, the decoder's input and the velocity network's state "
                f"must have one shape. Received: encoder -> {latent}, decoder <- "
                f"{tuple(decoder.input.shape[1:])}, velocity network {tuple(self.state_shape)}"
            )
        if autoencoder_epochs is not None and (
                isinstance(autoencoder_epochs, bool) or int(autoencoder_epochs) != autoencoder_epochs
                or autoencoder_epochs < 0):
            raise ValueError("`autoencoder_epochs` must be None or an integer >= 0. "
                             f"Received: autoencoder_epochs={autoencoder_epochs!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.image_shape = tuple(int(s) for s in encoder.input.shape[1:])
        self.autoencoder_epochs = None if autoencoder_epochs is None else int(autoencoder_epochs)
        self.latent_scale = None if latent_scale is None else float(latent_scale)
        images = keras.Input(self.image_shape)
        self.autoencoder = keras.Model(images, decoder(encoder(images)),
                                       name=f"{self.name}_autoencoder")
        self.encoder.trainable = self.decoder.trainable = False

    def compile(self, optimizer="adam", autoencoder_optimizer=None, **kwargs):
        """Compiles the flow (``optimizer``) and the autoencoder (``autoencoder_optimizer``,
        default Adam(1e-3), mean squared error)."""
        optimizer = keras.optimizers.get(optimizer)
        autoencoder_optimizer = keras.optimizers.get(autoencoder_optimizer or
                                                     keras.optimizers.Adam(1e-3))
        super().compile(optimizer=optimizer, **kwargs)
        self.autoencoder.compile(optimizer=autoencoder_optimizer, loss="mse",
                                 jit_compile=kwargs.get("jit_compile", "auto"))
        self._latent_compile_config = {
            "optimizer": keras.optimizers.serialize(optimizer),
            "autoencoder_optimizer": keras.optimizers.serialize(autoencoder_optimizer),
            **{k: v for k, v in kwargs.items() if k in ("run_eagerly", "jit_compile")},
        }

    def get_compile_config(self):
        return dict(getattr(self, "_latent_compile_config", {}))

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("optimizer", "autoencoder_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    @staticmethod
    def _arrays(data):
        """``(images, conditions)`` numpy arrays from a pair or a ``PyDataset`` of batches."""
        if isinstance(data, keras.utils.PyDataset):
            parts = [unpack_pair(data[i], "LatentFlowMatching") for i in range(len(data))]
        else:
            parts = [unpack_pair(data, "LatentFlowMatching")]
        return (np.concatenate([np.asarray(s, "float32") for s, _ in parts]),
                np.concatenate([np.asarray(c, "float32") for _, c in parts]))

    @property
    def _scale(self):
        return 1.0 if self.latent_scale is None else self.latent_scale  # 1 before phase 1

    def encode(self, images, batch_size=256):
        """Scaled latents of model-space images (the flow's data)."""
        latents = self.encoder.predict(np.asarray(images, "float32"), batch_size=batch_size,
                                       verbose=0)
        return (np.asarray(latents, "float32") / self._scale).astype("float32")

    def decode_states(self, states, batch_size=256):
        """Model-space images of (scaled) latents."""
        return np.asarray(self.decoder.predict(np.asarray(states, "float32") * self._scale,
                                               batch_size=batch_size, verbose=0), "float32")

    def fit(self, x=None, y=None, epochs=1, autoencoder_epochs=None, batch_size=None,
            validation_data=None, callbacks=None, verbose="auto", **kwargs):
        """Phase 1: the autoencoder; phase 2: the flow on its latents.

        ``x``: model-space ``(images, conditions)`` (:meth:`preprocess`) or a ``PyDataset``
        of such batches, or ``x=images, y=conditions``. ``callbacks`` see phase 2 (the flow,
        epochs counted from 0); the returned ``History`` of phase 2 also holds the phase-1
        losses as ``autoencoder_loss`` (and ``val_autoencoder_loss``).
        """
        images, conditions = self._arrays(x if y is None else (x, y))
        # Both phases shuffle their (materialised) arrays; a caller's shuffle=False meant
        # the order of its batches (calozdc train), which no longer applies.
        kwargs.pop("shuffle", None)
        ae_epochs = autoencoder_epochs
        if ae_epochs is None:
            ae_epochs = epochs if self.autoencoder_epochs is None else self.autoencoder_epochs
        val = None
        if validation_data is not None:
            val = self._arrays(validation_data)
        fit_batch = batch_size or 32
        ae_history = {}
        if ae_epochs:
            self.encoder.trainable = self.decoder.trainable = True
            ae_history = self.autoencoder.fit(
                images, images, batch_size=fit_batch, epochs=ae_epochs,
                validation_data=None if val is None else (val[0], val[0]), verbose=verbose,
            ).history
            self.latent_scale = None
        if self.latent_scale is None:
            latents = self.encoder.predict(images, batch_size=256, verbose=0)
            self.latent_scale = float(np.std(latents)) or 1.0
        # Frozen in phase 2: the flow's optimizer sees the velocity (and total) networks only.
        self.encoder.trainable = self.decoder.trainable = False
        history = super().fit(
            self.encode(images), conditions, batch_size=fit_batch, epochs=epochs,
            validation_data=None if val is None else (self.encode(val[0]), val[1]),
            callbacks=callbacks, verbose=verbose, **kwargs,
        )
        for key, values in ae_history.items():
            history.history[f"{key[:4]}autoencoder_{key[4:]}" if key.startswith("val_")
                            else f"autoencoder_{key}"] = values
        return history

    def get_config(self):
        config = super().get_config()
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "autoencoder_epochs": self.autoencoder_epochs,
            "latent_scale": self.latent_scale,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return super().from_config(config)
