"""Two-step GAN (seed 004): L2 pretraining of G(p), then adversarial training with an L2 term."""

import keras
from keras import ops

from calozdc.models.gan import adversarial_losses as losses
from calozdc.models.gan.conditional_gan import ConditionalGAN


class _PhaseSwitch(keras.callbacks.Callback):
    """Sets the adversarial phase at the start of epoch ``switch_epoch`` (0-based)."""

    def __init__(self, switch_epoch):
        super().__init__()
        self.switch_epoch = switch_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.switch_epoch and self.model.phase == 1:
            self.model.set_phase(2)


@keras.saving.register_keras_serializable(package="calozdc")
class TwoStepGAN(ConditionalGAN):
    """Two-step conditional GAN: regression pretraining, then adversarial fine-tuning.

    * Phase 1: ``L_G = L2(G(0, p), x)`` (noise zeroed), D untouched.
    * Phase 2: ``L_D = −[log D(x, p) + log(1 − D(G(z, p), p))]`` (soft labels if configured)
      and ``L_G = −log D(G(z, p), p) + λ · L2(G(z, p), x)``, alternating with the
      ``training_ratio`` schedule of :class:`ConditionalGAN` (counted from the first step).

    Switching, both ways (logged ``phase`` shows which one ran):

    1. inside one ``fit``: ``switch_step=S`` (phase 2 from the S-th train step on, counted by a
       saved step counter) or ``switch_epoch=E`` (phase 2 from epoch E, 0-based, of a ``fit``
       call; set by a callback that ``fit`` adds);
    2. two ``fit`` calls: ``model.fit(...)`` in phase 1, then ``model.set_phase(2)`` and
       ``model.fit(...)`` again (leave both switches None).

    Logged metrics add ``l2`` (the L2 term of the step that ran) and ``phase`` to those of
    :class:`ConditionalGAN`; in phase 1 ``g_loss == l2``, in phase 2
    ``g_loss == g_adv + λ·l2 (+ extra terms)``.

    Args:
        generator, discriminator, latent_dim: as in :class:`ConditionalGAN`.
        l2_weight: λ >= 0 of the L2 term in phase 2.
        switch_step: train step at which phase 2 starts, or None.
        switch_epoch: epoch at which phase 2 starts, or None.
        **kwargs: the other :class:`ConditionalGAN` arguments (labels, ratio, penalty,
            extra terms, transforms, seed, name).

    Example:

    >>> model = TwoStepGAN(cnn_generator((20, 20, 1), 1, 8, 8),
    ...                    cnn_discriminator((20, 20, 1), 1, 8), latent_dim=8,
    ...                    l2_weight=10.0, switch_epoch=5)
    >>> model.compile(g_optimizer="adam", d_optimizer="adam")
    >>> model.fit(showers_t, conditions_t, epochs=20)      # one call   # doctest: +SKIP
    >>> # or: model.fit(..., epochs=5); model.set_phase(2); model.fit(..., epochs=15)

    References:
        Seed 004 (H.-Y. Chou, AMS ECAL generator, 2024: step 1 ``L2(G(p), x)``; step 2
        ``−log D(G(z,p),p) + λ·L2(G(z,p), x)``); Isola et al., "Image-to-Image Translation
        with Conditional Adversarial Networks", CVPR 2017, arXiv:1611.07004 (adversarial +
        λ·L_rec objective).
    """

    def __init__(self, generator, discriminator, latent_dim, l2_weight=1.0, switch_step=None,
                 switch_epoch=None, **kwargs):
        if not float(l2_weight) >= 0.0:
            raise ValueError(f"`l2_weight` must be >= 0. Received: l2_weight={l2_weight}")
        for name, value in (("switch_step", switch_step), ("switch_epoch", switch_epoch)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(
                    f"`{name}` must be None or an integer >= 0. Received: {name}={value!r}"
                )
        if switch_step is not None and switch_epoch is not None:
            raise ValueError(
                "Give at most one of `switch_step` and `switch_epoch`. Received: "
                f"switch_step={switch_step}, switch_epoch={switch_epoch}"
            )
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        self.l2_weight = float(l2_weight)
        self.switch_step = switch_step
        self.switch_epoch = switch_epoch
        self.phase_variable = self.add_weight(
            shape=(), dtype="int32", initializer="ones", trainable=False, name="phase"
        )
        for name in ("l2", "phase"):
            self._trackers[name] = keras.metrics.Mean(name=name)

    def get_config(self):
        config = super().get_config()
        config.update({"l2_weight": self.l2_weight, "switch_step": self.switch_step,
                       "switch_epoch": self.switch_epoch})
        return config

    # ----------------------------------------------------------------- phase
    def _effective_phase(self, phase, step):
        """Phase (1 or 2) as a tensor from the phase variable and the step counter."""
        phase = ops.cast(phase, "int32")
        if self.switch_step is not None:
            phase = ops.where(ops.cast(step, "int32") >= self.switch_step, 2, phase)
        return phase

    @property
    def phase(self):
        """The phase the next train step runs (1: L2 pretraining, 2: adversarial)."""
        value = self._effective_phase(self.phase_variable.value, self.step_counter.value)
        return int(ops.convert_to_numpy(value))

    def set_phase(self, phase):
        """Force a phase (1 or 2) for the following steps, e.g. between two ``fit`` calls."""
        if phase not in (1, 2):
            raise ValueError(f"`phase` must be 1 or 2. Received: phase={phase!r}")
        self.phase_variable.assign(phase)

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        if self.switch_epoch is not None:
            callbacks.append(_PhaseSwitch(self.switch_epoch))
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # ----------------------------------------------------------------- losses
    def _pretrain_loss(self, engine, x, p):
        zeros = ops.zeros((ops.shape(p)[0], self.latent_dim), "float32")
        fake = self._shower(engine.call("generator", [zeros, p], training=True))
        l2 = losses.mean_squared_error(x, fake)
        return l2, {"g_loss": l2, "l2": l2, "g_adv": ops.zeros((), "float32")}

    def _generator_loss(self, engine, x, p, z):
        raw = engine.call("generator", [z, p], training=True)
        fake = self._shower(raw)
        fake_prob = engine.call("discriminator", [fake, p], training=True)
        adv = losses.generator_adversarial_loss(fake_prob, self.generator_target)
        l2 = losses.mean_squared_error(x, fake)
        loss = adv + self.l2_weight * l2 + losses.weighted_terms(
            self.generator_loss_terms, x, raw, p)
        return loss, {"g_loss": loss, "g_adv": adv, "l2": l2}

    def _train_algorithm(self, engine, data):
        x, p = self._unpack(data)
        batch = ops.shape(x)[0]
        z_d, z_g = engine.run_stateful(lambda: (self._noise(batch), self._noise(batch)))
        step = engine.read(self.step_counter)
        adversarial = self._effective_phase(engine.read(self.phase_variable), step) == 2
        pretrain = ops.logical_not(adversarial)
        d_on, g_on = self._schedule(step)
        d_on = adversarial if isinstance(d_on, bool) else ops.logical_and(adversarial, d_on)
        g_on = adversarial if isinstance(g_on, bool) else ops.logical_and(adversarial, g_on)
        g_keys = ["g_loss", "g_adv", "l2"]
        pre_logs = engine.minimize(
            "generator", lambda: self._pretrain_loss(engine, x, p), keys=g_keys,
            enabled=pretrain,
        )
        d_logs = engine.minimize(
            "discriminator", lambda: self._discriminator_loss(engine, x, p, z_d),
            keys=self._d_keys(), enabled=d_on,
        )
        g_logs = engine.minimize(
            "generator", lambda: self._generator_loss(engine, x, p, z_g), keys=g_keys,
            enabled=g_on,
        )

        def record():
            self._update_trackers(pre_logs, pretrain)
            self._update_trackers(d_logs, d_on)
            self._update_trackers(g_logs, g_on)
            self._trackers["phase"].update_state(ops.where(adversarial, 2.0, 1.0))
            self.step_counter.assign_add(1)

        engine.run_stateful(record)
        return self._logs(engine)

    def _latent_for_generation(self, rng, n):
        z = super()._latent_for_generation(rng, n)
        return z if self.phase == 2 else z * 0.0
