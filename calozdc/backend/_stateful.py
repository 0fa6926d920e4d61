"""Shared part of the engines of the stateful backends (TensorFlow, PyTorch)."""

from keras import ops


class StatefulEngine:
    """Engine over live Keras variables; subclasses supply gradients and conditionals."""

    def __init__(self, model, networks, training=True):
        self.model = model
        self.networks = dict(networks)
        self.training = training

    def call(self, name, inputs, training=True):
        return self.networks[name][0](inputs, training=training and self.training)

    def read(self, variable):
        return variable.value

    def run_stateful(self, fn):
        return fn()

    def _zeros(self, keys):
        return {k: ops.zeros((), "float32") for k in keys}

    def _update(self, name, loss_fn, keys):
        net, optimizer = self.networks[name]
        variables = list(net.trainable_variables)
        loss, aux, grads = self._gradients(loss_fn, variables, optimizer)
        optimizer.apply(grads, variables)
        return {k: ops.cast(self._detach(aux[k]), "float32") for k in keys}

    def _detach(self, value):
        return value
