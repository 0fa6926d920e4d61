"""Two optimizers presented to Keras' trainers as one: generator's and discriminator's."""

import keras


@keras.saving.register_keras_serializable(package="calozdc")
class OptimizerPair(keras.optimizers.Optimizer):
    """Holds the generator and discriminator optimizers of an adversarial model.

    Keras' trainers know one ``model.optimizer``; the JAX trainer in particular threads
    ``model.optimizer.variables`` through the stateless train step and writes them back after
    ``fit``. This container exposes the variables of both optimizers there (so both are
    carried, saved and restored on every backend) while the model's train step applies each
    optimizer to its own network. It never applies gradients itself.

    Keras' callbacks that understand several optimizers (``TensorBoard``'s learning-rate
    scalars, ``LearningRateScheduler``, ``ReduceLROnPlateau``, ``SwapEMAWeights``) reach both
    through :attr:`optimizers`; TensorBoard then writes ``learning_rate_<name>`` per optimizer,
    so give the two distinct names (the calozdc builders use ``generator_adam`` and
    ``discriminator_adam``). The pair's own ``learning_rate`` is a placeholder 0.

    Args:
        generator_optimizer: a :class:`keras.optimizers.Optimizer` for G (may be a
            ``LossScaleOptimizer``).
        discriminator_optimizer: the optimizer for D.
        name: optional name.

    Example:

    >>> pair = OptimizerPair(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(7e-5))
    >>> pair.build_pair(generator.trainable_variables,
    ...                 discriminator.trainable_variables)  # doctest: +SKIP

    References:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (alternating updates
        of two players with their own optimizers).
    """

    def __init__(self, generator_optimizer, discriminator_optimizer, name="optimizer_pair",
                 **kwargs):
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        for arg, opt in (("generator_optimizer", generator_optimizer),
                         ("discriminator_optimizer", discriminator_optimizer)):
            if not isinstance(opt, keras.optimizers.Optimizer):
                raise ValueError(
                    f"`{arg}` must be a keras.optimizers.Optimizer. Received: {arg}={opt!r}"
                )
        if generator_optimizer is discriminator_optimizer:
            raise ValueError(
                "The generator and the discriminator need two distinct optimizer instances. "
                f"Received the same object twice: {generator_optimizer!r}"
            )
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer

    def build_pair(self, generator_variables, discriminator_variables):
        """Build each optimizer on its network's trainable variables (in that order)."""
        if not self.generator_optimizer.built:
            self.generator_optimizer.build(list(generator_variables))
        if not self.discriminator_optimizer.built:
            self.discriminator_optimizer.build(list(discriminator_variables))
        self.built = True

    def build(self, var_list):
        if not self.built:
            raise ValueError(
                "OptimizerPair is built by its model with build_pair(generator_variables, "
                "discriminator_variables); it cannot split a flat variable list."
            )

    @property
    def optimizers(self):
        """``[generator_optimizer, discriminator_optimizer]`` (Keras' multi-optimizer hook)."""
        return [self.generator_optimizer, self.discriminator_optimizer]

    @property
    def variables(self):
        return (self._variables[:] + self.generator_optimizer.variables
                + self.discriminator_optimizer.variables)

    def save_own_variables(self, store):
        # The two optimizers are saved as children (attributes) of the pair.
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        if len(store.keys()) != len(self._variables):
            raise ValueError(
                f"Expected {len(self._variables)} variables for {self.name}. "
                f"Received: {len(store.keys())}"
            )
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])

    def apply(self, grads, trainable_variables=None):
        raise NotImplementedError(
            "OptimizerPair does not apply gradients: use generator_optimizer / "
            "discriminator_optimizer."
        )

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError(
            "OptimizerPair does not apply gradients: use generator_optimizer / "
            "discriminator_optimizer."
        )

    def finalize_variable_values(self, var_list):
        ids = {id(v) for v in var_list}
        for opt in (self.generator_optimizer, self.discriminator_optimizer):
            own = [v for v in opt._trainable_variables if id(v) in ids]
            if own:
                opt.finalize_variable_values(own)

    def get_config(self):
        return {
            "generator_optimizer": keras.optimizers.serialize(self.generator_optimizer),
            "discriminator_optimizer": keras.optimizers.serialize(self.discriminator_optimizer),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("generator_optimizer", "discriminator_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key], custom_objects=custom_objects)
        return cls(**config)
