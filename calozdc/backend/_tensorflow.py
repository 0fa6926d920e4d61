"""TensorFlow engine: ``tf.GradientTape`` gradients, stateful optimizer updates, ``tf.cond``."""

import tensorflow as tf

from calozdc.backend._stateful import StatefulEngine


class TensorFlowEngine(StatefulEngine):
    """Engine for the TensorFlow backend (eager or inside ``tf.function``/XLA)."""

    def _gradients(self, loss_fn, variables, optimizer):
        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(
            scaled, [v.value for v in variables],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return loss, aux, grads

    def minimize(self, name, loss_fn, keys, enabled=True):
        if isinstance(enabled, bool):
            return self._update(name, loss_fn, keys) if enabled else self._zeros(keys)
        return tf.cond(
            tf.convert_to_tensor(enabled),
            lambda: self._update(name, loss_fn, keys),
            lambda: self._zeros(keys),
        )

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
