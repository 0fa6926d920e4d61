"""Exponential moving average of network weights, updated after every optimizer step.

Shared by the diffusion and flow families: a model lists its ``(ema_network, network)``
pairs and gets the update inside ``train_step`` on every backend (the JAX trainer is
functional, so there the new EMA values are written into the returned state instead of
assigned), skipped together with an optimizer step that ``mixed_float16`` loss scaling
skipped.
"""

import keras
from keras import ops


def ema_decay_at(num_updates, decay, warmup):
    """Decay used for the EMA update number ``num_updates + 1``.

    With ``warmup`` the decay is ``min(decay, (1 + n) / (10 + n))`` (the ``num_updates``
    rule of TensorFlow's ``ExponentialMovingAverage``), so early averages are not dominated
    by the random initial weights; works on tensors and Python numbers.
    """
    if not warmup:
        return decay
    return ops.minimum(decay, (1.0 + num_updates) / (10.0 + num_updates))


def clone_network(network, suffix="_ema"):
    """A fresh, non-trainable copy of ``network`` rebuilt from its config (same weights
    layout, its own variables), named ``<name><suffix>``; one clear error if the config does
    not rebuild the same weights."""
    config = keras.saving.serialize_keras_object(network)
    config["config"] = dict(config["config"], name=f"{network.name}{suffix}")
    clone = keras.saving.deserialize_keras_object(config)
    clone.trainable = False
    ema_w, raw_w = clone.weights, network.weights
    if len(ema_w) != len(raw_w) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(ema_w, raw_w)
    ):
        raise ValueError(
            "The network could not be cloned for the EMA (its config does not rebuild "
            f"the same weights). Received: network={network.name!r}"
        )
    return clone


class EMAWeightsMixin:
    """Polyak averaging ``ema = d ema + (1 - d) w`` of some networks of a ``keras.Model``.

    The model sets ``ema_decay`` (None disables), ``ema_warmup``, creates the counter with
    :meth:`_make_ema_counter` and implements :meth:`_ema_networks` (the list of
    ``(ema_network, network)`` pairs). ``train_step`` is Keras' own step followed by one EMA
    update; a step that the loss-scale optimizer skipped (non-finite gradients under
    ``mixed_float16``) leaves the EMA and its count unchanged.
    """

    def _ema_networks(self):
        raise NotImplementedError

    def _make_ema_counter(self):
        self.ema_updates = self.add_weight(
            shape=(), initializer="zeros", dtype="float32", trainable=False, name="ema_updates"
        )

    def _ema_pairs(self):
        return [
            (ema, raw)
            for ema_net, raw_net in self._ema_networks()
            for ema, raw in zip(ema_net.weights, raw_net.weights)
            if keras.backend.is_float_dtype(raw.dtype)
        ]

    def reset_ema(self):
        """Copies the current raw weights into the EMA copies; resets the count."""
        if self.ema_decay is None:
            return
        for ema, raw in self._ema_pairs():
            ema.assign(ops.copy(raw.value))  # a copy: JAX must not alias the buffers
        self.ema_updates.assign(0.0)

    def _ema_new_values(self, ema_values, raw_values, count, applied=True):
        decay = ema_decay_at(count, self.ema_decay, self.ema_warmup)
        new_values = [
            decay * e + (1.0 - decay) * ops.stop_gradient(ops.cast(r, e.dtype))
            for e, r in zip(ema_values, raw_values)
        ]
        if applied is True:
            return new_values, count + 1.0
        # A step that the loss-scale optimizer skipped (non-finite gradients) is no update.
        new_values = [ops.where(applied, n, e) for n, e in zip(new_values, ema_values)]
        return new_values, count + ops.cast(applied, "float32")

    def update_ema(self, applied=True):
        """One EMA update from the current raw weights (stateful; TF and torch steps).

        ``applied``: boolean scalar, False when the optimizer step was skipped (the EMA and
        its count are then left unchanged).
        """
        if self.ema_decay is None:
            return
        pairs = self._ema_pairs()
        new_values, count = self._ema_new_values(
            [e.value for e, _ in pairs], [r.value for _, r in pairs], self.ema_updates.value,
            applied,
        )
        for (ema, _), value in zip(pairs, new_values):
            ema.assign(value)
        self.ema_updates.assign(count)

    def _skips_steps(self):
        """Whether the optimizer may skip a step (dynamic loss scaling, ``mixed_float16``)."""
        return isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)

    def train_step(self, *args, **kwargs):
        # Keras' own step (gradient + one optimizer update), then the EMA update. The JAX
        # trainer is functional: its step takes and returns the state, so the EMA values
        # are computed from the new state instead of assigned (no framework import).
        # With a LossScaleOptimizer, a step with non-finite gradients leaves the iteration
        # count unchanged; the EMA then skips it too.
        if keras.backend.backend() != "jax":
            before = ops.copy(self.optimizer.iterations.value) if self._skips_steps() else None
            logs = super().train_step(*args, **kwargs)
            self.update_ema(
                True if before is None else ops.not_equal(self.optimizer.iterations.value, before)
            )
            return logs
        state, data = args
        logs, new_state = super().train_step(state, data)
        if self.ema_decay is None:
            return logs, new_state
        applied = True
        if self._skips_steps():
            i = [id(v) for v in self.optimizer.variables].index(id(self.optimizer.iterations))
            applied = ops.not_equal(new_state[2][i], state[2][i])
        trainable, non_trainable, optimizer_vars, metrics_vars = new_state
        t_index = {id(v): i for i, v in enumerate(self.trainable_variables)}
        n_index = {id(v): i for i, v in enumerate(self.non_trainable_variables)}

        def current(variable):
            if id(variable) in t_index:
                return trainable[t_index[id(variable)]]
            return non_trainable[n_index[id(variable)]]

        pairs = self._ema_pairs()
        count = non_trainable[n_index[id(self.ema_updates)]]
        new_values, count = self._ema_new_values(
            [current(e) for e, _ in pairs], [current(r) for _, r in pairs], count, applied
        )
        non_trainable = list(non_trainable)
        for (ema, _), value in zip(pairs, new_values):
            non_trainable[n_index[id(ema)]] = value
        non_trainable[n_index[id(self.ema_updates)]] = count
        return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)
