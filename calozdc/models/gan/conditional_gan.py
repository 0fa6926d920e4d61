"""Conditional GAN task model: G(z, p), D(x, p), soft-label BCE, n_D:n_G ratio, R1 penalty."""

import keras
import numpy as np
from keras import ops

from calozdc.backend.distribution import replica_rows
from calozdc.backend.train_step import run_test_step, run_train_step
from calozdc.models.gan import adversarial_losses as losses
from calozdc.models.gan.optimizer_pair import OptimizerPair
from calozdc.models.preprocessing import check_conditions, get_transform, serialize_transform
from calozdc.models.total_energy import TotalEnergyMixin
from calozdc.utils.progress import batch_ranges


def _check_label(value, name):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={value}")
    return value


def _check_terms(terms):
    checked = []
    for item in terms or ():
        try:
            term, weight = item
            weight = float(weight)
        except (TypeError, ValueError):
            raise ValueError(
                "`generator_loss_terms` must be a list of (callable, weight) pairs. "
                f"Received: item={item!r}"
            ) from None
        if not callable(term):
            raise ValueError(f"Loss terms must be callable. Received: term={term!r}")
        checked.append((term, weight))
    return checked


@keras.saving.register_keras_serializable(package="calozdc")
class ConditionalGAN(TotalEnergyMixin, keras.Model):
    """Conditional GAN trained with ``compile`` + ``fit`` on TensorFlow, JAX and PyTorch.

    The generator maps noise and conditions to a shower, ``G(z, p)``; the discriminator gives
    the probability that a shower is real for its conditions, ``D(x, p)``. Each train step
    (one batch ``(x, p)``, in model space, i.e. transformed):

    * D update (if scheduled): ``L_D = BCE(D(x, p), real_label) + BCE(D(G(z, p), p),
      fake_label) [+ γ/2 · E||∇_x D(x, p)||²]`` (soft labels, seed 000: 0.73/0.27; optional
      zero-centred R1 gradient penalty on real data).
    * G update (if scheduled), with fresh ``z`` and the updated D:
      ``L_G = BCE(D(G(z, p), p), generator_target) + Σ wᵢ · termᵢ(x, G(z, p), p)``.

    **Training ratio** ``(n_d, n_g)``: with ``C = max(n_d, n_g)`` and the step counter ``s``
    (number of train steps so far), D is updated on steps with ``s mod C < n_d`` and G on
    steps with ``s mod C < n_g``. So ``(1, 3)`` = one D update per three G updates (D on
    steps 0, 3, 6, …, G every step); ``(3, 1)`` the reverse. Skipped updates leave weights,
    optimizer moments and iteration counts untouched (jit-compatible ``cond``).

    Logged metrics (``keras.metrics.Mean`` over the epoch, skipped steps not counted):
    ``d_loss``, ``g_loss``, ``d_real`` / ``d_fake`` (mean D output on real / generated
    showers), ``d_acc_real`` / ``d_acc_fake`` (fraction classified correctly at 0.5),
    ``g_adv`` (adversarial part of ``g_loss``), ``d_gp`` (R1 term, when enabled).

    **Mixed precision** (``keras.mixed_precision.set_global_policy`` before building): the
    networks compute in float16/bfloat16 with float32 weights, losses and output layers. Under
    ``mixed_float16``, :meth:`compile` wraps each optimizer in its own
    ``keras.optimizers.LossScaleOptimizer``: each network's loss is multiplied by its dynamic
    scale before differentiation, and a step whose gradients are not finite is skipped for that
    network only (its weights, moments and iteration count unchanged) while its scale halves.
    The R1 input gradient is taken of the D output times D's scale, then divided by it.

    If the generator has two output channels (mask/value heads, seed 001), the shower is
    their product ``mask · value``; the raw two-channel output is what the extra terms see,
    so ``calozdc.losses.MaskValueLoss(value_weight=200)`` can be one of them.

    Args:
        generator: ``keras.Model([z, p]) → (B, H, W, C)`` (or ``(B, H, W, 2)`` mask/value),
            e.g. :func:`calozdc.models.gan.cnn_generator`.
        discriminator: ``keras.Model([x, p]) → (B, 1)`` probabilities, e.g.
            :func:`calozdc.models.gan.cnn_discriminator`.
        latent_dim: size of ``z`` (must match the generator's first input).
        real_label: BCE target of real showers for D, in [0, 1].
        fake_label: BCE target of generated showers for D, in [0, 1].
        generator_target: BCE target of generated showers for G (1: ``−log D(G(z, p))``).
        training_ratio: ``(n_d, n_g)`` positive integers (see above).
        gradient_penalty_weight: γ >= 0 of the R1 penalty (0: off).
        generator_loss_terms: list of ``(callable, weight)``; a ``keras.losses.Loss`` is called
            as ``term(x, G(z, p))``, any other callable as ``term(x, G(z, p), p)``; outputs are
            averaged to a scalar. Serialised with ``keras.saving`` (register custom ones).
        shower_transform: fitted ``calozdc.data.transforms`` transform from physical showers to
            model space, or None; saved with the model and inverted by :meth:`generate`.
        condition_transform: fitted transform of the conditions, or None.
        seed: seed of the model's ``keras.random.SeedGenerator`` (noise during training).
        total_model: None, or a model of the shower total
            (:func:`calozdc.models.total_energy.build_total_model`, the builders' default):
            once fitted with :meth:`fit_totals`, ``generate`` scales each shower to a total
            drawn from it (the energy/shape factorisation, :mod:`calozdc.models.total_energy`).
        zero_fraction: None, or the fraction of a shower's sum below which a generated cell
            is set empty before the scaling (set by :meth:`calibrate_zero_level`).
        **kwargs: :class:`keras.Model` arguments (``name``...).

    Call arguments:
        inputs: ``[z, p]`` (model space).
        training: passed to the generator.

    Returns:
        Generated showers in model space ``(B, H, W, C)``.

    Example:

    >>> gan = ConditionalGAN(cnn_generator((20, 20, 1), 1, 16, 8),
    ...                      cnn_discriminator((20, 20, 1), 1, 8), latent_dim=16,
    ...                      real_label=0.73, fake_label=0.27, training_ratio=(1, 1))
    >>> gan.compile(g_optimizer=keras.optimizers.Adam(CyclicLR(1e-6, 1e-4, 100)),
    ...             d_optimizer=keras.optimizers.Adam(CyclicLR(1e-6, 7e-5, 100)))
    >>> gan.fit(showers_t, conditions_t, batch_size=64, epochs=10)  # doctest: +SKIP
    >>> showers = gan.generate(conditions, seed=0)  # physical units   # doctest: +SKIP

    References:
        Mirza & Osindero, "Conditional Generative Adversarial Nets", arXiv:1411.1784;
        Goodfellow et al. 2014, arXiv:1406.2661 (non-saturating G loss);
        Salimans et al. 2016, arXiv:1606.03498 (one-sided/soft label smoothing);
        Mescheder et al., "Which Training Methods for GANs do actually Converge?",
        ICML 2018, arXiv:1801.04406 (R1 penalty); seeds 000, 001.
    """

    def __init__(self, generator, discriminator, latent_dim, real_label=1.0, fake_label=0.0,
                 generator_target=1.0, training_ratio=(1, 1), gradient_penalty_weight=0.0,
                 generator_loss_terms=None, shower_transform=None, condition_transform=None,
                 seed=None, total_model=None, zero_fraction=None,
                 **kwargs):
        super().__init__(**kwargs)
        for arg, net in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(net, keras.Model):
                raise ValueError(f"`{arg}` must be a keras.Model. Received: {arg}={net!r}")
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(
                f"`latent_dim` must be a positive integer. Received: latent_dim={latent_dim!r}"
            )
        generator_latent = generator.input_shape[0][-1] if isinstance(
            generator.input_shape, list) else None
        if generator_latent is not None and generator_latent != latent_dim:
            raise ValueError(
                f"`latent_dim` must match the generator's noise input ({generator_latent}). "
                f"Received: latent_dim={latent_dim}"
            )
        try:
            n_d, n_g = (int(r) for r in training_ratio)
            ok = n_d >= 1 and n_g >= 1 and tuple(training_ratio) == (n_d, n_g)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                "`training_ratio` must be a pair of positive integers (n_d, n_g). "
                f"Received: training_ratio={training_ratio!r}"
            )
        if not float(gradient_penalty_weight) >= 0.0:
            raise ValueError(
                "`gradient_penalty_weight` must be >= 0. "
                f"Received: gradient_penalty_weight={gradient_penalty_weight}"
            )
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.real_label = _check_label(real_label, "real_label")
        self.fake_label = _check_label(fake_label, "fake_label")
        self.generator_target = _check_label(generator_target, "generator_target")
        self.training_ratio = (n_d, n_g)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.generator_loss_terms = _check_terms(generator_loss_terms)
        self.shower_transform = get_transform(shower_transform)
        self.condition_transform = get_transform(condition_transform)
        self._set_total_model(total_model, zero_fraction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.step_counter = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="step_counter"
        )
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in self._metric_names()
        }
        self.built = True

    # ----------------------------------------------------------------- configuration
    def _metric_names(self):
        names = ["d_loss", "g_loss", "g_adv", "d_real", "d_fake", "d_acc_real", "d_acc_fake"]
        if self.gradient_penalty_weight > 0:
            names.append("d_gp")
        return names

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def g_optimizer(self):
        return None if self.optimizer is None else self.optimizer.generator_optimizer

    @property
    def d_optimizer(self):
        return None if self.optimizer is None else self.optimizer.discriminator_optimizer

    def compile(self, g_optimizer="adam", d_optimizer="adam", run_eagerly=False,
                jit_compile="auto", steps_per_execution=1, auto_scale_loss=True):
        """Configure training with one optimizer per network.

        Args:
            g_optimizer: generator optimizer (instance, name or config), e.g. Adam with a
                :class:`calozdc.schedules.CyclicLR` learning rate.
            d_optimizer: discriminator optimizer (a distinct instance).
            run_eagerly, jit_compile, steps_per_execution: as in :meth:`keras.Model.compile`
                (``jit_compile=True`` works on JAX; the step is a pure function there).
            auto_scale_loss: under the ``mixed_float16`` policy, wrap each optimizer in a
                ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling per network).
        """
        g_opt = keras.optimizers.get(g_optimizer)
        d_opt = keras.optimizers.get(d_optimizer)
        if auto_scale_loss and self.dtype_policy.name == "mixed_float16":
            g_opt, d_opt = (
                o if isinstance(o, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(o) for o in (g_opt, d_opt)
            )
        super().compile(optimizer=None, run_eagerly=run_eagerly, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution, auto_scale_loss=False)
        self.optimizer = OptimizerPair(g_opt, d_opt)
        self.optimizer.build_pair(self.generator.trainable_variables,
                                  self.discriminator.trainable_variables)
        self._gan_compile_config = {
            "g_optimizer": keras.optimizers.serialize(g_opt),
            "d_optimizer": keras.optimizers.serialize(d_opt),
            "run_eagerly": run_eagerly,
            "jit_compile": jit_compile,
            "steps_per_execution": steps_per_execution,
            "auto_scale_loss": auto_scale_loss,
        }

    def get_compile_config(self):
        return dict(getattr(self, "_gan_compile_config", {}))

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("g_optimizer", "d_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "real_label": self.real_label,
            "fake_label": self.fake_label,
            "generator_target": self.generator_target,
            "training_ratio": list(self.training_ratio),
            "gradient_penalty_weight": self.gradient_penalty_weight,
            "generator_loss_terms": [
                [keras.saving.serialize_keras_object(t), w] for t, w in self.generator_loss_terms
            ],
            "shower_transform": serialize_transform(self.shower_transform),
            "condition_transform": serialize_transform(self.condition_transform),
            "seed": self.seed,
            **self._total_energy_config(),
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        config["generator_loss_terms"] = [
            (keras.saving.deserialize_keras_object(t, custom_objects=custom_objects), w)
            for t, w in config.get("generator_loss_terms") or ()
        ]
        config["total_model"] = cls._deserialize_total_model(config.get("total_model"),
                                                             custom_objects)
        return cls(**config)

    # ----------------------------------------------------------------- saving
    def _seed_states(self):
        """State variables of every ``SeedGenerator`` (noise, dropout), in layer order."""
        states, seen = [], set()
        for layer in self._flatten_layers(include_self=True):
            for generator in getattr(layer, "_seed_generators", ()):
                if id(generator.state) not in seen:
                    seen.add(id(generator.state))
                    states.append(generator.state)
        return states

    def save_own_variables(self, store):
        # Keras does not save SeedGenerator states; saving them makes a resumed fit draw the
        # same noise and dropout masks as an uninterrupted one.
        super().save_own_variables(store)
        for i, state in enumerate(self._seed_states()):
            store[f"seed_state_{i}"] = keras.ops.convert_to_numpy(state.value)

    def load_own_variables(self, store):
        own = self._trainable_variables + self._non_trainable_variables
        seed_keys = [k for k in store.keys() if str(k).startswith("seed_state_")]
        if len(store.keys()) - len(seed_keys) != len(own):
            raise ValueError(
                f"Layer '{self.name}' expected {len(own)} variables, but received "
                f"{len(store.keys()) - len(seed_keys)} variables during loading."
            )
        for i, variable in enumerate(own):
            variable.assign(store[str(i)])
        states = self._seed_states()
        if len(seed_keys) == len(states):
            for i, state in enumerate(states):
                state.assign(store[f"seed_state_{i}"])

    # ----------------------------------------------------------------- forward / helpers
    def call(self, inputs, training=False):
        return self._shower(self.generator(inputs, training=training))

    def _shower(self, raw):
        """Generator output → shower (product of the mask and value channels if present)."""
        if raw.shape[-1] == 2 and self._has_mask_value_heads():
            return raw[..., :1] * raw[..., 1:]
        return raw

    def _has_mask_value_heads(self):
        return self.generator.output_shape[-1] == 2 and self.discriminator.input_shape[0][-1] == 1

    def _networks(self):
        return {
            "generator": (self.generator, self.g_optimizer),
            "discriminator": (self.discriminator, self.d_optimizer),
        }

    @staticmethod
    def _unpack(data):
        x, p, _ = keras.utils.unpack_x_y_sample_weight(data)
        if p is None and isinstance(x, (list, tuple)) and len(x) == 2:
            x, p = x
        if p is None:
            raise ValueError(
                "GAN models are fitted on (showers, conditions): call fit(x=showers, "
                "y=conditions) or pass a dataset of (showers, conditions) pairs."
            )
        return ops.cast(x, "float32"), ops.cast(p, "float32")

    def _noise(self, batch_size):
        # Under a TF strategy each replica keeps its slice of a global-batch draw, so the
        # noise does not depend on the number of devices.
        return replica_rows(
            lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator),
            batch_size,
        )

    def _schedule(self, step):
        """(D update?, G update?) for step counter ``step`` (Python bools when constant)."""
        n_d, n_g = self.training_ratio
        cycle = max(n_d, n_g)
        pos = ops.mod(step, cycle) if cycle > 1 else None
        d_on = True if n_d == cycle else pos < n_d
        g_on = True if n_g == cycle else pos < n_g
        return d_on, g_on

    def _update_trackers(self, values, enabled=True):
        weight = None if isinstance(enabled, bool) else ops.cast(enabled, "float32")
        for name, value in values.items():
            if name in self._trackers:
                self._trackers[name].update_state(value, sample_weight=weight)

    def _logs(self, engine):
        return engine.run_stateful(lambda: {m.name: m.result() for m in self.metrics})

    # ----------------------------------------------------------------- losses (all backends)
    @staticmethod
    def _loss_scale(engine, optimizer):
        """Current dynamic loss scale of ``optimizer`` (float32), None if it does not scale."""
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return ops.cast(engine.read(optimizer.dynamic_scale), "float32")
        return None

    def _discriminator_loss(self, engine, x, p, z, penalty=True):
        fake = ops.stop_gradient(self._shower(engine.call("generator", [z, p], training=True)))

        def d_real(inp):
            return engine.call("discriminator", [inp, p], training=True)

        if penalty and self.gradient_penalty_weight > 0:
            scale = self._loss_scale(engine, self.d_optimizer)
            if scale is None:
                real_prob, grad = engine.input_value_and_grad(d_real, x)
            else:
                # mixed_float16: ∇_x D is taken of the loss-scaled output (the float16
                # backward would underflow otherwise) and unscaled, as the weight gradients.
                real_prob, grad = engine.input_value_and_grad(
                    lambda inp: ops.cast(d_real(inp), "float32") * scale, x)
                real_prob, grad = real_prob / scale, grad / scale
            gp = losses.r1_penalty(grad)
        else:
            real_prob, gp = d_real(x), ops.zeros((), "float32")
        fake_prob = engine.call("discriminator", [fake, p], training=True)
        loss = losses.discriminator_loss(real_prob, fake_prob, self.real_label, self.fake_label)
        loss = loss + 0.5 * self.gradient_penalty_weight * gp
        aux = {
            "d_loss": loss,
            "d_real": ops.mean(real_prob),
            "d_fake": ops.mean(fake_prob),
            "d_acc_real": ops.mean(ops.cast(real_prob > 0.5, "float32")),
            "d_acc_fake": ops.mean(ops.cast(fake_prob < 0.5, "float32")),
            "d_gp": gp,
        }
        return loss, aux

    def _generator_loss(self, engine, x, p, z):
        raw = engine.call("generator", [z, p], training=True)
        fake_prob = engine.call("discriminator", [self._shower(raw), p], training=True)
        adv = losses.generator_adversarial_loss(fake_prob, self.generator_target)
        loss = adv + losses.weighted_terms(self.generator_loss_terms, x, raw, p)
        return loss, {"g_loss": loss, "g_adv": adv}

    # ----------------------------------------------------------------- train / test steps
    def train_step(self, *args):
        return run_train_step(self, self._networks(), self._train_algorithm, *args)

    def test_step(self, *args):
        return run_test_step(self, self._networks(), self._test_algorithm, *args)

    def _d_keys(self):
        return [k for k in ("d_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake", "d_gp")
                if k in self._trackers]

    def _train_algorithm(self, engine, data):
        x, p = self._unpack(data)
        batch = ops.shape(x)[0]
        z_d, z_g = engine.run_stateful(lambda: (self._noise(batch), self._noise(batch)))
        d_on, g_on = self._schedule(engine.read(self.step_counter))
        d_logs = engine.minimize(
            "discriminator", lambda: self._discriminator_loss(engine, x, p, z_d),
            keys=self._d_keys(), enabled=d_on,
        )
        g_logs = engine.minimize(
            "generator", lambda: self._generator_loss(engine, x, p, z_g),
            keys=["g_loss", "g_adv"], enabled=g_on,
        )

        def record():
            self._update_trackers(d_logs, d_on)
            self._update_trackers(g_logs, g_on)
            self.step_counter.assign_add(1)

        engine.run_stateful(record)
        return self._logs(engine)

    def _test_algorithm(self, engine, data):
        x, p = self._unpack(data)
        batch = ops.shape(x)[0]
        z = engine.run_stateful(lambda: self._noise(batch))
        _, d_logs = self._discriminator_loss(engine, x, p, z, penalty=False)
        _, g_logs = self._generator_loss(engine, x, p, z)
        engine.run_stateful(lambda: self._update_trackers({**d_logs, **g_logs}))
        return self._logs(engine)

    # ----------------------------------------------------------------- generation
    def _latent_for_generation(self, rng, n):
        return rng.standard_normal((n, self.latent_dim)).astype("float32")

    def generate(self, conditions, seed=None, batch_size=1024, verbose=False):
        """Generate showers in physical units for the given conditions.

        The conditions are transformed with the fitted ``condition_transform``, noise is drawn
        from ``numpy.random.default_rng(seed)`` (same noise for a seed on every backend), the
        generator output is mapped back with ``shower_transform.inverse`` and negative values
        are clipped to 0.

        Args:
            conditions: ``(N, k)`` array in physical units.
            seed: integer seed or None.
            batch_size: generator batch size.
            verbose: show a progress bar of the showers generated (stderr).

        Returns:
            float32 numpy array ``(N, H, W, C)``.
        """
        k = int(self.generator.input_shape[1][-1])
        cond = check_conditions(conditions, k, physical=self.condition_transform is not None)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
        model_cond = cond
        if self.condition_transform is not None:
            model_cond = np.asarray(self.condition_transform.forward(cond), dtype="float32")
        z = self._latent_for_generation(np.random.default_rng(seed), len(cond))
        outputs = []
        for start, stop in batch_ranges(len(cond), batch_size, "generate", verbose):
            out = self([z[start:stop], model_cond[start:stop]], training=False)
            outputs.append(ops.convert_to_numpy(out).astype("float32"))
        shape = (0, *self.generator.output_shape[1:-1], self.discriminator.input_shape[0][-1])
        u = np.concatenate(outputs) if outputs else np.zeros(shape, "float32")
        if self.shower_transform is not None:
            u = self.shower_transform.inverse(u, conditions=cond)
        u = np.clip(np.asarray(u, dtype="float32"), 0.0, None)
        return self.scale_to_totals(u, cond, seed, batch_size)
