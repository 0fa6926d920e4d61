"""Backend-agnostic custom training steps: one engine per backend, one algorithm per model.

A model whose training needs several networks and optimizers (a GAN: generator and
discriminator) writes its algorithm once, in ``keras.ops``, against the small *engine*
interface below, and routes Keras' ``train_step`` / ``test_step`` through
:func:`run_train_step` / :func:`run_test_step`. The engine hides what differs between
backends:

* TensorFlow: ``tf.GradientTape`` and stateful ``optimizer.apply`` (:mod:`._tensorflow`);
* PyTorch: ``torch.autograd.grad`` and stateful ``optimizer.apply`` (:mod:`._torch`);
* JAX: the stateless pattern of Keras' JAX trainer -- ``train_step(state, data)`` gets the
  values of all variables, networks run through ``stateless_call``, gradients come from
  ``jax.value_and_grad`` and updates from ``optimizer.stateless_apply``; the new values
  (including the ``SeedGenerator`` state and step counters) are returned as the new state,
  so the step works under ``jit`` (:mod:`._jax`).

Engine interface (what a model's algorithm may use):

``engine.call(name, inputs, training=True)``
    Run network ``name`` (current weights; inside :meth:`minimize` of that network, the weights
    being differentiated).
``engine.minimize(name, loss_fn, keys, enabled=True)``
    ``loss_fn()`` returns ``(loss, aux)`` with ``aux`` a dict of scalars containing ``keys``;
    differentiates ``loss`` (scaled by the optimizer's loss scale under mixed precision) with
    respect to network ``name``'s trainable variables and applies its optimizer. ``enabled``
    (Python bool or boolean scalar tensor) skips the update -- gradients, weights, optimizer
    moments and iteration count -- when false; the returned dict then holds zeros.
``engine.input_value_and_grad(fn, x)``
    ``(fn(x), d sum(fn(x)) / dx)``, differentiable again (for gradient penalties).
``engine.run_stateful(fn)``
    Run ``fn()`` that reads and assigns Keras variables (random draws from a
    ``SeedGenerator``, metric updates, counters); on JAX inside a ``StatelessScope`` whose
    updates become the new state.
``engine.read(variable)``
    Current value of a Keras variable.

Networks are registered as ``{name: (keras_model, optimizer_or_None)}``; each optimizer must
be built on exactly ``keras_model.trainable_variables``.
"""

from calozdc.backend import backend_name


def make_engine(model, networks, state=None, training=True):
    """Return the engine for the active backend (``state``: Keras' JAX state tuple or None)."""
    name = backend_name()
    if name == "jax":
        from calozdc.backend._jax import StatelessEngine

        return StatelessEngine(model, networks, state, training=training)
    if name == "tensorflow":
        from calozdc.backend._tensorflow import TensorFlowEngine

        return TensorFlowEngine(model, networks, training=training)
    if name == "torch":
        from calozdc.backend._torch import TorchEngine

        return TorchEngine(model, networks, training=training)
    raise ValueError(f"Unsupported Keras backend. Received: backend={name!r}")


def _split_args(args, kind):
    if backend_name() == "jax":
        if len(args) != 2:
            raise ValueError(
                f"On JAX, {kind}_step takes (state, data). Received {len(args)} arguments."
            )
        return args[0], args[1]
    if len(args) != 1:
        raise ValueError(f"{kind}_step takes (data). Received {len(args)} arguments.")
    return None, args[0]


def run_train_step(model, networks, algorithm, *args):
    """Run ``algorithm(engine, data) -> logs`` as Keras' ``train_step`` on any backend.

    Call it from ``Model.train_step(self, *args)``: it accepts ``(data)`` on TensorFlow and
    PyTorch and ``(state, data)`` on JAX, and returns what that backend's trainer expects
    (``logs``, or ``(logs, new_state)`` on JAX).
    """
    state, data = _split_args(args, "train")
    engine = make_engine(model, networks, state, training=True)
    logs = algorithm(engine, data)
    if state is None:
        return logs
    return logs, engine.new_state()


def run_test_step(model, networks, algorithm, *args):
    """Like :func:`run_train_step` for ``test_step`` (no updates; JAX state has 3 lists)."""
    state, data = _split_args(args, "test")
    engine = make_engine(model, networks, state, training=False)
    logs = algorithm(engine, data)
    if state is None:
        return logs
    return logs, engine.new_state()
