"""VQ-VAE task model: encoder → EMA vector quantiser → conditional decoder."""

import keras
import numpy as np
from keras import ops

from calozdc.backend.distribution import scale_loss_for_replicas
from calozdc.layers.vector_quantizer import VectorQuantizerEMA
from calozdc.models.preprocessing import check_conditions, get_transform, serialize_transform

_NAMED_LOSSES = ("mse", "mae")
def _per_example_mean(values):
    values = ops.cast(values, "float32")
    if len(values.shape) > 1:
        values = ops.mean(values, axis=tuple(range(1, len(values.shape))))
    return values


def unpack_pair(data, what="VQVAE"):
    """``(showers, conditions)`` from ``(S, C)``, ``((S, C),)`` or ``{"showers", "conditions"}``."""
    if isinstance(data, dict) and {"showers", "conditions"} <= set(data):
        return data["showers"], data["conditions"]
    if isinstance(data, (tuple, list)) and len(data) == 1:
        return unpack_pair(data[0], what)
    if isinstance(data, (tuple, list)) and len(data) >= 2:
        return data[0], data[1]
    raise ValueError(
        f"{what} inputs must be a pair (showers, conditions) or a dict with 'showers' and "
        f"'conditions'. Received: inputs of type {type(data).__name__}"
    )


@keras.saving.register_keras_serializable(package="calozdc")
class VQVAE(keras.Model):
    """Vector-quantised autoencoder of calorimeter showers, conditional on the particle.

    ``encoder`` maps a shower (model space) to a grid of vectors ``(h, w, D)``; the
    :class:`~calozdc.layers.VectorQuantizerEMA` replaces each by its nearest code (the
    codebook learns by EMA inside ``call`` when training, on every backend); ``decoder``
    maps ``[quantised grid, conditions]`` back to the shower. The loss is the
    reconstruction loss plus the quantiser's commitment loss (``add_loss``). ``fit`` takes
    the batches of :meth:`calozdc.data.ShowerDataset.batches` (``x = (showers,
    conditions)`` in model space) or ``x=(showers, conditions)`` arrays and logs ``loss``,
    ``reconstruction_loss``, ``commitment_loss``, ``perplexity`` and ``codebook_usage`` (of
    the batch; the codebook collapse of seed 002 shows as perplexity ≪ number of codes).

    A VQ-VAE alone is not a generator: :class:`~calozdc.models.VQGenerator` adds the
    conditional prior over code indices.

    Args:
        encoder: Keras model ``(H, W, C) → (h, w, D)``.
        decoder: Keras model ``[(h, w, D), (k,)] → (H, W, C)``.
        quantizer: a :class:`VectorQuantizerEMA` with ``code_dim = D``, or None for one with
            ``num_codes`` codes and the default settings (ℓ2-normalised, restarts after 32
            unused steps).
        num_codes: codebook size when ``quantizer`` is None.
        reconstruction_loss: ``"mse"`` (default), ``"mae"``, a ``keras.losses.Loss`` or a
            function ``(y_true, y_pred) → per-example or scalar loss`` (e.g. from
            :mod:`calozdc.losses`); evaluated in model space.
        shower_transform: fitted transform physical → model space (object, name or
            serialized dict) or None.
        condition_transform: fitted transform of the conditions or None.
        **kwargs: :class:`keras.Model` arguments.

    Call arguments:
        inputs: ``(showers, conditions)`` or a dict with these keys, model space.
        training: update the codebook when True.

    Returns:
        dict with ``"reconstruction"``, ``"indices"`` ``(B, h, w)``, ``"commitment_loss"``,
        ``"perplexity"``, ``"usage"``.

    Example:

    >>> encoder, decoder = default_backbones("ecal20", condition_dim=1)
    >>> model = VQVAE(encoder, decoder, num_codes=128,
    ...               shower_transform=Chain([Log1p(), Standardize()]),
    ...               condition_transform=Standardize())
    >>> model.fit_transforms(train.showers, train.conditions)
    >>> model.compile(optimizer="adam")
    >>> model.fit(train.batches(64, shower_transform=model.shower_transform,
    ...                         condition_transform=model.condition_transform), epochs=5)
    >>> rec = model.reconstruct(test.showers, test.conditions)       # physical units

    References:
        van den Oord, Vinyals & Kavukcuoglu 2017, "Neural discrete representation learning",
        arXiv:1711.00937.
        Razavi, van den Oord & Vinyals 2019, arXiv:1906.00446 (VQ-VAE-2).
    """

    def __init__(self, encoder, decoder, quantizer=None, num_codes=256, reconstruction_loss="mse",
                 shower_transform=None, condition_transform=None, **kwargs):
        super().__init__(**kwargs)
        for name, net in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(net, keras.Model):
                raise ValueError(f"`{name}` must be a keras.Model. Received: {name}={net!r}")
        latent_shape = tuple(encoder.output_shape[1:])
        if len(latent_shape) < 2 or any(s is None for s in latent_shape):
            raise ValueError(
                "The encoder must output a fixed-size grid of code vectors (h, w, D). "
                f"Received: encoder.output_shape={encoder.output_shape}"
            )
        code_dim = int(latent_shape[-1])
        if quantizer is None:
            quantizer = VectorQuantizerEMA(num_codes, code_dim, name="quantizer")
        if not isinstance(quantizer, VectorQuantizerEMA):
            raise ValueError(
                f"`quantizer` must be a VectorQuantizerEMA or None. Received: {quantizer!r}"
            )
        if quantizer.code_dim != code_dim:
            raise ValueError(
                f"The quantizer's code_dim ({quantizer.code_dim}) must match the encoder's "
                f"output size ({code_dim}). Received: quantizer.code_dim={quantizer.code_dim}"
            )
        if not (reconstruction_loss in _NAMED_LOSSES or callable(reconstruction_loss)):
            raise ValueError(
                f"`reconstruction_loss` must be one of {_NAMED_LOSSES} or a callable. "
                f"Received: reconstruction_loss={reconstruction_loss!r}"
            )
        decoder_inputs = decoder.inputs if isinstance(decoder.inputs, list) else [decoder.inputs]
        if len(decoder_inputs) != 2:
            raise ValueError(
                "The decoder must take [latent, conditions]. Received: decoder with "
                f"{len(decoder_inputs)} inputs"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        if not quantizer.built:
            quantizer.build((None, code_dim))
        self.num_codes = quantizer.num_codes
        self.latent_shape = latent_shape
        self.image_shape = tuple(int(s) for s in encoder.input_shape[1:])
        self.condition_dim = int(decoder_inputs[1].shape[-1])
        self.reconstruction_loss = reconstruction_loss
        self.shower_transform = get_transform(shower_transform)
        self.condition_transform = get_transform(condition_transform)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("reconstruction_loss", "commitment_loss", "perplexity",
                         "codebook_usage")
        }
        self.built = True

    # -- forward ----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        showers, conditions = unpack_pair(inputs)
        # Un-jitted JAX fit passes numpy batches: the decoder must not get [tracer, ndarray].
        conditions = ops.convert_to_tensor(conditions)
        latent = self.encoder(showers, training=training)
        q = self.quantizer(latent, training=training, return_dict=True)
        reconstruction = self.decoder([q["quantized"], conditions], training=training)
        return {
            "reconstruction": reconstruction,
            "indices": q["indices"],
            "commitment_loss": q["commitment_loss"],
            "perplexity": q["perplexity"],
            "usage": q["usage"],
        }

    def _reconstruction_loss(self, showers, reconstruction, sample_weight=None):
        showers = ops.cast(showers, "float32")
        reconstruction = ops.cast(reconstruction, "float32")
        if self.reconstruction_loss == "mse":
            per_example = _per_example_mean(ops.square(showers - reconstruction))
        elif self.reconstruction_loss == "mae":
            per_example = _per_example_mean(ops.abs(showers - reconstruction))
        else:
            per_example = _per_example_mean(self.reconstruction_loss(showers, reconstruction))
        if sample_weight is None or len(per_example.shape) == 0:
            return ops.mean(per_example)
        weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        return ops.sum(per_example * weights) / ops.maximum(ops.sum(weights), 1e-12)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Reconstruction loss (model space) + the quantiser's commitment loss."""
        showers, _ = unpack_pair(x)
        loss = self._reconstruction_loss(showers, y_pred["reconstruction"], sample_weight)
        # The commitment term is taken from this call's outputs, not from the quantiser's
        # add_loss list: under a TF strategy on CPU the replicas pause in the quantiser's
        # all-gather (a merge_call) and then append to that shared list one after another,
        # so it would hold the terms of the earlier replicas too.
        own = {id(term) for term in self.quantizer.losses}
        extras = [term for term in self.losses if id(term) not in own]
        if self.quantizer.add_commitment_loss:
            extras.append(y_pred["commitment_loss"])
        for extra in extras:
            loss = loss + ops.cast(ops.sum(extra), "float32")
        # TF strategy: gradients are summed over replicas (identity on one device and JAX).
        return scale_loss_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        showers, _ = unpack_pair(x)
        t = self.trackers
        t["reconstruction_loss"].update_state(
            self._reconstruction_loss(showers, y_pred["reconstruction"], sample_weight))
        t["commitment_loss"].update_state(y_pred["commitment_loss"])
        t["perplexity"].update_state(y_pred["perplexity"])
        t["codebook_usage"].update_state(y_pred["usage"])
        return self.get_metrics_result()

    # -- physical-unit API -----------------------------------------------------------------
    def _check_conditions(self, conditions):
        return check_conditions(conditions, self.condition_dim,
                                physical=self.condition_transform is not None)

    def _check_showers(self, showers, n):
        showers = np.asarray(showers, dtype="float32")
        if showers.ndim == len(self.image_shape) and self.image_shape[-1] == 1:
            showers = showers[..., None]
        if showers.shape[1:] != self.image_shape or len(showers) != n:
            raise ValueError(
                f"`showers` must have shape ({n}, {', '.join(map(str, self.image_shape))}) "
                f"(one per condition row). Received: showers.shape={showers.shape}"
            )
        return showers

    def fit_transforms(self, showers, conditions):
        """Fit the shower and condition transforms (on the training split only)."""
        conditions = self._check_conditions(conditions)
        showers = self._check_showers(showers, len(conditions))
        if self.shower_transform is not None:
            self.shower_transform.fit(showers, conditions)
        if self.condition_transform is not None:
            self.condition_transform.fit(conditions)
        return self

    def preprocess(self, showers, conditions):
        """Physical units → ``(showers, conditions)`` float32 arrays in model space."""
        conditions = self._check_conditions(conditions)
        showers = self._check_showers(showers, len(conditions))
        if self.shower_transform is not None:
            showers = self.shower_transform.forward(showers, conditions)
        return np.asarray(showers, "float32"), self.transform_conditions(conditions)

    def transform_conditions(self, conditions):
        """Physical conditions → model space (float32)."""
        conditions = self._check_conditions(conditions)
        if self.condition_transform is not None:
            conditions = self.condition_transform.forward(conditions)
        return np.asarray(conditions, "float32")

    def postprocess(self, showers, conditions):
        """Model-space showers → physical units (inverse transform, clipped at 0)."""
        conditions = self._check_conditions(conditions)
        showers = np.asarray(showers, "float32")
        if self.shower_transform is not None:
            showers = self.shower_transform.inverse(showers, conditions)
        return np.clip(np.asarray(showers, "float32"), 0.0, None)

    def encode_model_space(self, showers, batch_size=256):
        """Code indices ``(N, h, w)`` (int32) of model-space showers."""
        out = []
        for start in range(0, len(showers), batch_size):
            latent = self.encoder(showers[start:start + batch_size], training=False)
            q = self.quantizer(latent, training=False, return_dict=True)
            out.append(ops.convert_to_numpy(q["indices"]).astype("int32"))
        if not out:
            return np.zeros((0,) + self.latent_shape[:-1], "int32")
        return np.concatenate(out)

    def decode_model_space(self, indices, conditions, batch_size=256):
        """Model-space showers from code indices ``(N, h, w)`` and model-space conditions."""
        indices = np.asarray(indices)
        if indices.shape[1:] != self.latent_shape[:-1] or not np.issubdtype(indices.dtype,
                                                                            np.integer):
            raise ValueError(
                f"`indices` must be integers of shape (N, {', '.join(map(str, self.latent_shape[:-1]))}). "
                f"Received: indices.shape={indices.shape}, dtype={indices.dtype}"
            )
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"`indices` must lie in [0, {self.num_codes}). Received: range "
                             f"[{indices.min()}, {indices.max()}]")
        out = []
        for start in range(0, len(indices), batch_size):
            stop = start + batch_size
            latent = self.quantizer.lookup(indices[start:stop])
            cond = ops.convert_to_tensor(np.asarray(conditions[start:stop], "float32"))
            rec = self.decoder([latent, cond], training=False)
            out.append(ops.convert_to_numpy(rec).astype("float32"))
        if not out:
            return np.zeros((0,) + self.image_shape, "float32")
        return np.concatenate(out)

    def encode(self, showers, conditions, batch_size=256):
        """Code indices ``(N, h, w)`` of physical-unit showers (conditions: physical)."""
        showers, _ = self.preprocess(showers, conditions)
        return self.encode_model_space(showers, batch_size)

    def decode(self, indices, conditions, batch_size=256):
        """Physical-unit showers ``(N, H, W, C)`` from code indices and physical conditions."""
        conditions = self._check_conditions(conditions)
        if len(indices) != len(conditions):
            raise ValueError(f"`indices` and `conditions` must have the same length. Received: "
                             f"{len(indices)} and {len(conditions)}")
        u = self.decode_model_space(indices, self.transform_conditions(conditions), batch_size)
        return self.postprocess(u, conditions)

    def reconstruct(self, showers, conditions, batch_size=256):
        """Encode then decode physical-unit showers; returns physical units."""
        return self.decode(self.encode(showers, conditions, batch_size), conditions, batch_size)

    # -- serialisation ------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        loss = self.reconstruction_loss
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "quantizer": keras.saving.serialize_keras_object(self.quantizer),
            "num_codes": self.num_codes,
            "reconstruction_loss": loss if isinstance(loss, str)
            else keras.saving.serialize_keras_object(loss),
            "shower_transform": serialize_transform(self.shower_transform),
            "condition_transform": serialize_transform(self.condition_transform),
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "quantizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        loss = config.get("reconstruction_loss", "mse")
        if not isinstance(loss, str):
            config["reconstruction_loss"] = keras.saving.deserialize_keras_object(loss)
        return cls(**config)
