"""JAX engine: the stateless train step (``stateless_call``, ``jax.value_and_grad``,
``optimizer.stateless_apply``, ``lax.cond``), jit-compatible."""

import jax
import jax.numpy as jnp
import keras


class StatelessEngine:
    """Engine for the JAX backend; all variable values live in ``self._values``.

    ``state`` is the tuple Keras' JAX trainer passes to ``train_step``
    (trainable, non-trainable, optimizer, metrics variable values) or to ``test_step``
    (trainable, non-trainable, metrics). :meth:`new_state` returns it updated.
    """

    def __init__(self, model, networks, state, training=True):
        self.model = model
        self.networks = dict(networks)
        self.training = training
        groups = [model.trainable_variables, model.non_trainable_variables]
        if training:
            groups.append(model.optimizer.variables)
        groups.append(model.metrics_variables)
        if len(state) != len(groups):
            raise ValueError(
                f"Expected a JAX state of {len(groups)} lists. Received: {len(state)} lists."
            )
        self._groups = groups
        self._vars = {}
        self._values = {}
        for variables, values in zip(groups, state):
            if len(variables) != len(values):
                raise ValueError(
                    "JAX state does not match the model's variables: "
                    f"{len(values)} values for {len(variables)} variables."
                )
            for v, value in zip(variables, values):
                self._vars[id(v)] = v
                self._values[id(v)] = value
        self._override = {}

    def new_state(self):
        return tuple([self._values[id(v)] for v in variables] for variables in self._groups)

    def read(self, variable):
        return self._values[id(variable)]

    def _get(self, variables):
        return [self._values[id(v)] for v in variables]

    def _set(self, variables, values):
        for v, value in zip(variables, values):
            self._values[id(v)] = value

    def run_stateful(self, fn):
        mapping = [(self._vars[k], value) for k, value in self._values.items()]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = fn()
        for k, v in self._vars.items():
            value = scope.get_current_value(v)
            if value is not None:
                self._values[k] = value
        return out

    def call(self, name, inputs, training=True):
        net = self.networks[name][0]
        if name in self._override:
            trainable = self._override[name]
        else:
            trainable = self._get(net.trainable_variables)
        non_trainable = self._get(net.non_trainable_variables)
        outputs, non_trainable = net.stateless_call(
            trainable, non_trainable, inputs, training=training and self.training
        )
        self._set(net.non_trainable_variables, non_trainable)
        return outputs

    def _traced(self, fn):
        """Run ``fn`` inside a JAX transformation: return its output and the values it changed,
        restoring ``self._values`` so no tracer escapes through the engine."""
        saved = dict(self._values)
        try:
            out = fn()
            changed = {k: v for k, v in self._values.items() if v is not saved.get(k)}
        finally:
            self._values = saved
        return out, changed

    def _update(self, name, loss_fn, keys):
        net, optimizer = self.networks[name]
        variables = list(net.trainable_variables)
        opt_vars = list(optimizer.variables)

        def pure(params):
            def body():
                self._override[name] = params
                try:
                    loss, aux = loss_fn()
                finally:
                    self._override.pop(name, None)
                mapping = list(zip(opt_vars, self._get(opt_vars)))
                with keras.StatelessScope(state_mapping=mapping):
                    scaled = optimizer.scale_loss(loss)
                return scaled, {k: jnp.asarray(aux[k], jnp.float32) for k in keys}

            (scaled, aux), changed = self._traced(body)
            return scaled, (aux, changed)

        params = self._get(variables)
        (_, (aux, changed)), grads = jax.value_and_grad(pure, has_aux=True)(params)
        self._values.update(changed)
        new_params, new_opt = optimizer.stateless_apply(self._get(opt_vars), grads, params)
        self._set(variables, new_params)
        self._set(opt_vars, new_opt)
        return aux

    def minimize(self, name, loss_fn, keys, enabled=True):
        if not isinstance(enabled, (bool, jax.core.Tracer)):
            # Concrete flag (jit_compile=False): branch in Python, no per-step cond tracing.
            enabled = bool(enabled)
        if isinstance(enabled, bool):
            if not enabled:
                return {k: jnp.zeros((), jnp.float32) for k in keys}
            return self._update(name, loss_fn, keys)
        order = list(self._values)

        def on(values):
            self._values = dict(zip(order, values))
            aux = self._update(name, loss_fn, keys)
            return [self._values[k] for k in order], aux

        def off(values):
            return list(values), {k: jnp.zeros((), jnp.float32) for k in keys}

        saved = self._values
        try:
            values, aux = jax.lax.cond(
                jnp.asarray(enabled), on, off, [saved[k] for k in order]
            )
        finally:
            self._values = saved
        self._values = dict(zip(order, values))
        return aux

    def input_value_and_grad(self, fn, x):
        def f(x):
            y, changed = self._traced(lambda: fn(x))
            return jnp.sum(y.astype(jnp.float32)), (y, changed)

        (_, (y, changed)), grad = jax.value_and_grad(f, has_aux=True)(x)
        self._values.update(changed)
        return y, grad


def input_value_and_grad(fn, x):
    """``(fn(x), d sum(fn(x))/dx)`` for a pure ``fn`` (differentiable again)."""

    def f(x):
        y = fn(x)
        return jnp.sum(y.astype(jnp.float32)), y

    (_, y), grad = jax.value_and_grad(f, has_aux=True)(x)
    return y, grad
