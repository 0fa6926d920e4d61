"""VQ-GAN task model: the VQ-VAE trained with an adversarial (patch discriminator) term."""

import keras
from keras import ops

from calozdc.backend.train_step import run_test_step, run_train_step
from calozdc.models.gan.optimizer_pair import OptimizerPair
from calozdc.models.vqgan import vqgan_losses as losses
from calozdc.models.vqvae.vqvae import VQVAE, unpack_pair
from calozdc.schedules import constant_learning_rate


class _Autoencoder(keras.Model):
    """Encoder → quantiser → decoder body → output layer: the VQ-GAN's generator network.

    The decoder's last layer is applied separately so that its input (the features ``h``) is
    available for the adaptive weight. Not tracked by the :class:`VQGAN` (its layers are the
    VQ-GAN's own); the train step's engine differentiates its trainable variables.
    """

    def __init__(self, encoder, quantizer, body, output_layer, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.quantizer = quantizer
        self.body = body
        self.output_layer = output_layer
        self.built = True

    def call(self, inputs, training=False):
        showers, conditions = inputs
        latent = self.encoder(showers, training=training)
        q = self.quantizer(latent, training=training, return_dict=True)
        features = self.body([q["quantized"], conditions], training=training)
        return {"reconstruction": self.output_layer(features), "features": features,
                "commitment_loss": q["commitment_loss"], "perplexity": q["perplexity"],
                "usage": q["usage"]}


def _decoder_split(decoder):
    """``(body, output_layer)`` of a functional decoder: ``body`` maps the decoder's inputs to
    the input of the layer that makes its output. None when the decoder is not of that form."""
    outputs = decoder.outputs if isinstance(decoder.outputs, list) else [decoder.outputs]
    if len(outputs) != 1:
        return None
    history = getattr(outputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None)
    if not isinstance(layer, keras.layers.Layer) or not layer.trainable_weights:
        return None
    try:
        features = layer.input
    except (AttributeError, ValueError):
        return None
    if isinstance(features, (list, tuple)):
        return None
    body = keras.Model(decoder.inputs, features, name=f"{decoder.name}_body")
    return body, layer


@keras.saving.register_keras_serializable(package="calozdc")
class VQGAN(VQVAE):
    """VQ-VAE trained with an adversarial term from a patch discriminator (the VQ-GAN).

    The autoencoder (encoder → :class:`~calozdc.layers.VectorQuantizerEMA` → decoder) is
    trained on ``L_rec + L_commit + g · (w · λ · L_G + w_fm · L_FM)`` and a discriminator
    ``D([showers, conditions])`` on the reconstructions, each network with its own optimizer
    (one train step written with :mod:`calozdc.backend.train_step`, so it runs on every
    backend). ``L_G`` and ``D``'s loss are hinge or non-saturating
    (:mod:`calozdc.models.vqgan.vqgan_losses`); ``λ`` is the adaptive weight of Esser et al.
    2021 eq. 7 (the ratio of the gradient norms of ``L_rec`` and ``L_G`` at the decoder's last
    layer) or 1; ``w`` is ``adversarial_weight``; ``L_FM`` an optional feature-matching term
    on ``D``'s intermediate outputs. ``g`` is 0 for the first ``warmup_steps`` autoencoder
    steps (and ``D`` is not updated then) and 1 after: the autoencoder first learns to
    reconstruct. The codebook learns by EMA as in :class:`VQVAE`.

    Everything else is the :class:`VQVAE`'s (transforms, ``encode``/``decode``, code grid), so
    a :class:`~calozdc.models.VQGenerator` takes a VQ-GAN as its ``vqvae``: the same prior →
    decoder generation. ``fit`` logs ``loss``, ``reconstruction_loss``, ``commitment_loss``,
    ``perplexity``, ``codebook_usage``, ``g_loss``, ``d_loss``, ``d_real``, ``d_fake`` (mean
    logits), ``adaptive_weight`` and, with feature matching, ``feature_matching``
    (validation logs: the losses and codebook statistics, no adaptive weight or feature
    matching).

    Args:
        encoder, decoder, quantizer, num_codes, reconstruction_loss, shower_transform,
            condition_transform: as :class:`VQVAE`. With ``adaptive_weight=True`` the decoder
            must be a functional model whose output comes from one layer with weights.
        discriminator: Keras model ``[showers, conditions] → logits`` or ``→ [logits,
            *features]`` (e.g. :func:`~calozdc.models.vqgan.patch_discriminator`).
        adversarial_loss: ``"hinge"`` (default) or ``"non_saturating"``.
        adversarial_weight: ``w`` >= 0 (Esser et al.'s discriminator weight).
        adaptive_weight: multiply by ``λ`` of eq. 7 (True) or use ``w`` alone (False).
        max_adaptive_weight: clip of ``λ``.
        warmup_steps: autoencoder steps before the adversarial term and ``D`` start.
        feature_matching_weight: ``w_fm`` >= 0 (0: no feature matching).
        **kwargs: :class:`keras.Model` arguments.

    Example:

    >>> encoder, decoder = default_backbones("zn44", condition_dim=5)
    >>> model = VQGAN(encoder, decoder, patch_discriminator((44, 44, 1), 5), num_codes=256,
    ...               warmup_steps=500)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9))
    >>> model.fit(x=(showers, conditions), epochs=5)                 # doctest: +SKIP

    References:
        Esser, Rombach & Ommer 2021, "Taming transformers for high-resolution image
        synthesis", arXiv:2012.09841 (VQ-GAN; eq. 7 adaptive weight, delayed discriminator).
        van den Oord, Vinyals & Kavukcuoglu 2017, arXiv:1711.00937 (VQ-VAE).
        Isola et al. 2017, arXiv:1611.07004 (patch discriminator).
    """

    def __init__(self, encoder, decoder, discriminator, quantizer=None, num_codes=256,
                 reconstruction_loss="mse", adversarial_loss="hinge", adversarial_weight=0.5,
                 adaptive_weight=True, max_adaptive_weight=1e4, warmup_steps=0,
                 feature_matching_weight=0.0, shower_transform=None, condition_transform=None,
                 **kwargs):
        super().__init__(encoder, decoder, quantizer=quantizer, num_codes=num_codes,
                         reconstruction_loss=reconstruction_loss,
                         shower_transform=shower_transform,
                         condition_transform=condition_transform, **kwargs)
        if not isinstance(discriminator, keras.Model):
            raise ValueError(f"`discriminator` must be a keras.Model. Received: "
                             f"discriminator={discriminator!r}")
        if adversarial_loss not in losses.ADVERSARIAL_LOSSES:
            raise ValueError(f"`adversarial_loss` must be one of {losses.ADVERSARIAL_LOSSES}. "
                             f"Received: adversarial_loss={adversarial_loss!r}")
        for name, value in (("adversarial_weight", adversarial_weight),
                            ("feature_matching_weight", feature_matching_weight),
                            ("max_adaptive_weight", max_adaptive_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be an integer >= 0. Received: "
                             f"warmup_steps={warmup_steps!r}")
        if not isinstance(adaptive_weight, bool):
            raise ValueError(f"`adaptive_weight` must be True or False. Received: "
                             f"adaptive_weight={adaptive_weight!r}")
        split = _decoder_split(decoder)
        if split is None:
            raise ValueError(
                "The VQ-GAN needs a functional decoder whose output comes from one layer with "
                "weights (its input feeds the adaptive weight). Received: decoder "
                f"{decoder.name!r} with outputs {decoder.outputs}"
            )
        self.discriminator = discriminator
        self.adversarial_loss = adversarial_loss
        self.adversarial_weight = float(adversarial_weight)
        self.adaptive_weight = adaptive_weight
        self.max_adaptive_weight = float(max_adaptive_weight)
        self.warmup_steps = warmup_steps
        self.feature_matching_weight = float(feature_matching_weight)
        # The generator network of the train step: the VQ-VAE's layers, not tracked twice.
        object.__setattr__(self, "_autoencoder", _Autoencoder(
            encoder, self.quantizer, split[0], split[1], name=f"{self.name}_autoencoder"))
        self.total_tracker = keras.metrics.Mean(name="loss")
        names = ["g_loss", "d_loss", "d_real", "d_fake", "adaptive_weight"]
        if self.feature_matching_weight > 0:
            names.append("feature_matching")
        self.adversarial_trackers = {n: keras.metrics.Mean(name=n) for n in names}

    @property
    def metrics(self):
        return ([self.total_tracker] + list(self.trackers.values())
                + list(self.adversarial_trackers.values()))

    @property
    def autoencoder_optimizer(self):
        return None if self.optimizer is None else self.optimizer.generator_optimizer

    @property
    def discriminator_optimizer(self):
        return None if self.optimizer is None else self.optimizer.discriminator_optimizer

    # -- configuration ------------------------------------------------------------------------
    def compile(self, optimizer="adam", discriminator_optimizer=None, run_eagerly=False,
                jit_compile="auto", steps_per_execution=1, auto_scale_loss=True):
        """One optimizer per network.

        Args:
            optimizer: the autoencoder's optimizer (instance, name or config).
            discriminator_optimizer: the discriminator's, or None for
                ``Adam(lr, β1=0.5, β2=0.9)`` with the autoencoder's learning rate when it is a
                number (else 1e-4), as Esser et al. 2021's code.
            run_eagerly, jit_compile, steps_per_execution: as :meth:`keras.Model.compile`.
            auto_scale_loss: under ``mixed_float16``, wrap each optimizer in a
                ``LossScaleOptimizer``.
        """
        ae_opt = keras.optimizers.get(optimizer)
        if discriminator_optimizer is None:
            rate = constant_learning_rate(ae_opt)
            rate = 1e-4 if rate is None else rate
            discriminator_optimizer = keras.optimizers.Adam(
                rate, beta_1=0.5, beta_2=0.9, name="discriminator_adam")
        d_opt = keras.optimizers.get(discriminator_optimizer)
        if auto_scale_loss and self.dtype_policy.name == "mixed_float16":
            ae_opt, d_opt = (
                o if isinstance(o, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(o) for o in (ae_opt, d_opt)
            )
        super().compile(optimizer=None, run_eagerly=run_eagerly, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution, auto_scale_loss=False)
        self.optimizer = OptimizerPair(ae_opt, d_opt)
        self.optimizer.build_pair(self._autoencoder.trainable_variables,
                                  self.discriminator.trainable_variables)
        self._vqgan_compile_config = {
            "optimizer": keras.optimizers.serialize(ae_opt),
            "discriminator_optimizer": keras.optimizers.serialize(d_opt),
            "run_eagerly": run_eagerly,
            "jit_compile": jit_compile,
            "steps_per_execution": steps_per_execution,
            "auto_scale_loss": auto_scale_loss,
        }

    def get_compile_config(self):
        return dict(getattr(self, "_vqgan_compile_config", {}))

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("optimizer", "discriminator_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    # -- train step -------------------------------------------------------------------------
    def _networks(self):
        return {"autoencoder": (self._autoencoder, self.autoencoder_optimizer),
                "discriminator": (self.discriminator, self.discriminator_optimizer)}

    def train_step(self, *args):
        return run_train_step(self, self._networks(), self._train_algorithm, *args)

    def test_step(self, *args):
        return run_test_step(self, self._networks(), self._test_algorithm, *args)

    @staticmethod
    def _unpack(data):
        showers, conditions = unpack_pair(data, "VQGAN")
        return ops.cast(showers, "float32"), ops.cast(conditions, "float32")

    @staticmethod
    def _split_outputs(outputs):
        if isinstance(outputs, (list, tuple)):
            return outputs[0], list(outputs[1:])
        return outputs, []

    def _discriminate(self, engine, showers, conditions):
        return self._split_outputs(
            engine.call("discriminator", [showers, conditions], training=True))

    @staticmethod
    def _loss_scale(engine, optimizer):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return ops.cast(engine.read(optimizer.dynamic_scale), "float32")
        return None

    def _adaptive_lambda(self, engine, showers, conditions, features):
        """λ of Esser et al. 2021 eq. 7: gradients of ``L_rec`` and ``L_G`` with respect to
        the first weight (the kernel) of the decoder's output layer, at its current value
        and for the current features (held constant)."""
        layer = self._autoencoder.output_layer
        weights = [engine.read(v) for v in layer.trainable_variables]
        others = [engine.read(v) for v in layer.non_trainable_variables]
        # stateless_call skips Layer.__call__'s autocast: the features in the layer's dtype.
        features = ops.cast(ops.stop_gradient(features), layer.compute_dtype)
        # mixed_float16: gradients of the loss-scaled terms (a float16 backward would
        # underflow), unscaled; λ is a ratio, so the scale cancels anyway.
        scale = self._loss_scale(engine, self.autoencoder_optimizer)
        scale = 1.0 if scale is None else scale

        def output(kernel):
            return layer.stateless_call([kernel] + weights[1:], others, features)[0]

        def rec_loss(kernel):
            return self._reconstruction_loss(showers, output(kernel)) * scale

        def adv_loss(kernel):
            logits, _ = self._discriminate(engine, output(kernel), conditions)
            return losses.generator_loss(logits, self.adversarial_loss) * scale

        _, rec_grad = engine.input_value_and_grad(rec_loss, weights[0])
        _, adv_grad = engine.input_value_and_grad(adv_loss, weights[0])
        return losses.adaptive_weight(ops.cast(rec_grad, "float32") / scale,
                                      ops.cast(adv_grad, "float32") / scale,
                                      max_weight=self.max_adaptive_weight)

    def _autoencoder_loss(self, engine, showers, conditions, gate):
        out = engine.call("autoencoder", [showers, conditions], training=True)
        reconstruction = out["reconstruction"]
        rec_loss = self._reconstruction_loss(showers, reconstruction)
        commitment = ops.cast(out["commitment_loss"], "float32")
        loss = rec_loss + (commitment if self.quantizer.add_commitment_loss else 0.0)
        fake_logits, fake_features = self._discriminate(engine, reconstruction, conditions)
        g_loss = losses.generator_loss(fake_logits, self.adversarial_loss)
        if self.adaptive_weight:
            lam = self._adaptive_lambda(engine, showers, conditions, out["features"])
        else:
            lam = ops.ones((), "float32")
        loss = loss + gate * self.adversarial_weight * lam * g_loss
        aux = {"reconstruction_loss": rec_loss, "commitment_loss": commitment,
               "perplexity": out["perplexity"], "codebook_usage": out["usage"],
               "g_loss": g_loss, "adaptive_weight": lam}
        if self.feature_matching_weight > 0:
            _, real_features = self._discriminate(engine, showers, conditions)
            fm = losses.feature_matching_loss(real_features, fake_features)
            loss = loss + gate * self.feature_matching_weight * fm
            aux["feature_matching"] = fm
        aux["loss"] = loss
        # The reconstructions go to the discriminator's update (one forward pass per step).
        aux["reconstruction"] = reconstruction
        return loss, aux

    def _discriminator_loss(self, engine, showers, conditions, fake):
        real_logits, _ = self._discriminate(engine, showers, conditions)
        fake_logits, _ = self._discriminate(engine, fake, conditions)
        loss = losses.discriminator_loss(real_logits, fake_logits, self.adversarial_loss)
        return loss, {"d_loss": loss, "d_real": ops.mean(ops.cast(real_logits, "float32")),
                      "d_fake": ops.mean(ops.cast(fake_logits, "float32"))}

    def _autoencoder_keys(self):
        keys = ["loss", "reconstruction_loss", "commitment_loss", "perplexity",
                "codebook_usage", "g_loss", "adaptive_weight"]
        return keys + (["feature_matching"] if self.feature_matching_weight > 0 else [])

    def _record(self, values, enabled=True):
        weight = None if isinstance(enabled, bool) else ops.cast(enabled, "float32")
        trackers = {"loss": self.total_tracker, **self.trackers, **self.adversarial_trackers}
        for name, value in values.items():
            if name in trackers and (weight is not None or enabled):
                trackers[name].update_state(value, sample_weight=weight)

    def _logs(self, engine):
        return engine.run_stateful(lambda: {m.name: m.result() for m in self.metrics})

    def _warm(self, engine):
        """(adversarial part on?, its gate as float32): on from autoencoder step
        ``warmup_steps`` (Python True when there is no warm-up)."""
        if self.warmup_steps == 0:
            return True, 1.0
        step = engine.read(self.autoencoder_optimizer.iterations)
        on = ops.greater_equal(step, self.warmup_steps)
        return on, ops.cast(on, "float32")

    def _train_algorithm(self, engine, data):
        showers, conditions = self._unpack(data)
        on, gate = self._warm(engine)
        ae_logs = engine.minimize(
            "autoencoder", lambda: self._autoencoder_loss(engine, showers, conditions, gate),
            keys=self._autoencoder_keys() + ["reconstruction"])
        fake = ops.stop_gradient(ae_logs.pop("reconstruction"))
        d_logs = engine.minimize(
            "discriminator", lambda: self._discriminator_loss(engine, showers, conditions, fake),
            keys=["d_loss", "d_real", "d_fake"], enabled=on)

        def record():
            self._record(ae_logs)
            self._record(d_logs, on)

        engine.run_stateful(record)
        return self._logs(engine)

    def _test_algorithm(self, engine, data):
        showers, conditions = self._unpack(data)
        out = engine.call("autoencoder", [showers, conditions], training=False)
        rec_loss = self._reconstruction_loss(showers, out["reconstruction"])
        commitment = ops.cast(out["commitment_loss"], "float32")
        loss = rec_loss + (commitment if self.quantizer.add_commitment_loss else 0.0)
        _, d_logs = self._discriminator_loss(engine, showers, conditions, out["reconstruction"])
        fake_logits, _ = self._discriminate(engine, out["reconstruction"], conditions)
        values = {"loss": loss, "reconstruction_loss": rec_loss, "commitment_loss": commitment,
                  "perplexity": out["perplexity"], "codebook_usage": out["usage"],
                  "g_loss": losses.generator_loss(fake_logits, self.adversarial_loss), **d_logs}
        engine.run_stateful(lambda: self._record(values))
        return self._logs(engine)

    # -- serialisation ------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update({
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "adversarial_loss": self.adversarial_loss,
            "adversarial_weight": self.adversarial_weight,
            "adaptive_weight": self.adaptive_weight,
            "max_adaptive_weight": self.max_adaptive_weight,
            "warmup_steps": self.warmup_steps,
            "feature_matching_weight": self.feature_matching_weight,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return super().from_config(config)
