"""TensorFlow engine: ``tf.GradientTape`` gradients, stateful optimizer updates, ``tf.cond``;
works per replica under ``tf.distribute`` strategies (see :mod:`calozdc.backend.distribution`)."""

import tensorflow as tf

from calozdc.backend._stateful import StatefulEngine
from calozdc.backend.distribution import replica_count, scale_loss_for_replicas


class TensorFlowEngine(StatefulEngine):
    """Engine for the TensorFlow backend (eager or inside ``tf.function``/XLA)."""

    def _gradients(self, loss_fn, variables, optimizer):
        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
            # Under a strategy the optimizer sums the replicas' gradients: 1/R per replica.
            scaled = optimizer.scale_loss(scale_loss_for_replicas(loss))
        grads = tape.gradient(
            scaled, [v.value for v in variables],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return loss, aux, grads

    def minimize(self, name, loss_fn, keys, enabled=True):
        if isinstance(enabled, bool):
            return self._update(name, loss_fn, keys) if enabled else self._zeros(keys)
        if replica_count() > 1:
            return self._masked_update(name, loss_fn, keys, tf.convert_to_tensor(enabled))
        return tf.cond(
            tf.convert_to_tensor(enabled),
            lambda: self._update(name, loss_fn, keys),
            lambda: self._zeros(keys),
        )

    def _masked_update(self, name, loss_fn, keys, enabled):
        """``minimize`` with a tensor flag under a multi-replica strategy.

        The optimizer's gradient all-reduce is a synchronisation point that TF does not allow
        inside ``tf.cond``; so the update always runs and, when ``enabled`` is false, every
        variable it may change (all networks' weights and seed states, the optimizer's
        moments and iteration count) is put back to its value before the update.
        """
        variables, seen = [], set()
        for net, _ in self.networks.values():
            for variable in net.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        variables += list(self.networks[name][1].variables)
        before = [tf.identity(v.value) for v in variables]
        aux = self._update(name, loss_fn, keys)
        for variable, old in zip(variables, before):
            variable.assign(tf.where(enabled, variable.value, old))
        return {k: tf.where(enabled, v, tf.zeros_like(v)) for k, v in aux.items()}

    def input_value_and_grad(self, fn, x):
        return input_value_and_grad(fn, x)


def input_value_and_grad(fn, x):
    """``(fn(x), d sum(fn(x))/dx)``; recorded by any enclosing tape (second order)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        total = tf.reduce_sum(tf.cast(y, tf.float32))
    return y, tape.gradient(total, x)
