"""The KerasTuner hypermodel shared by the model families (search space as a dict)."""

import copy
import numbers

import keras_tuner
import numpy as np

from calozdc.callbacks import PhysicsMetricsCallback

#: The tuning objective: the mean channel-sum W1 of generated vs validation showers.
OBJECTIVE = keras_tuner.Objective("val_channel_w1", direction="min")


def register_hyperparameter(hp, name, spec):
    """Declare ``name`` in ``hp`` from a compact ``spec`` and return its value.

    * a list → ``hp.Choice(name, spec)`` (first entry is the default);
    * a dict with ``min``/``max`` (optional ``step``, ``sampling`` ``"linear"``/``"log"``)
      → ``hp.Int`` when both bounds are integers, else ``hp.Float``;
    * anything else (number, string, bool, None) → ``hp.Fixed(name, spec)``.
    """
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ValueError(f"Empty choice list for hyperparameter {name!r}. Received: {spec!r}")
        return hp.Choice(name, list(spec), default=spec[0])
    if isinstance(spec, dict):
        unknown = set(spec) - {"min", "max", "step", "sampling", "default"}
        if unknown or "min" not in spec or "max" not in spec:
            raise ValueError(
                f"Range of hyperparameter {name!r} needs 'min' and 'max' (optional 'step', "
                f"'sampling', 'default'). Received: {spec!r}"
            )
        integer = all(isinstance(spec[k], numbers.Integral) and not isinstance(spec[k], bool)
                      for k in ("min", "max"))
        kind = hp.Int if integer else hp.Float
        return kind(name, spec["min"], spec["max"], step=spec.get("step"),
                    sampling=spec.get("sampling", "linear"), default=spec.get("default"))
    return hp.Fixed(name, spec)


class FamilyHyperModel(keras_tuner.HyperModel):
    """A ``keras_tuner.HyperModel`` for a calozdc model family, tuned on a physics metric.

    The constructor fixes what sets shapes and units (geometry, condition columns, fitted
    transforms) and the validation showers the objective is computed on; ``build(hp)`` reads
    the search space (the class's ``DEFAULT_SPACE`` updated with ``space``) and calls the
    family's builder from :mod:`calozdc.models.registry`; ``fit`` adds a
    :class:`~calozdc.callbacks.PhysicsMetricsCallback` in front of the tuner's callbacks, so
    every epoch (or every ``metric_every``) logs ``val_channel_w1``, the objective
    :data:`OBJECTIVE` (direction "min"), rather than a GAN loss.

    Subclasses set ``family`` and ``DEFAULT_SPACE`` and map the sampled values to builder
    options in :meth:`options`.

    Args:
        geometry: ``calozdc.data.Geometry``, name or ``(H, W, C)`` image shape.
        condition_dim: number of condition columns.
        metric_showers: ``(N, H, W[, 1])`` validation showers in physical units.
        metric_conditions: ``(N, k)`` their conditions in physical units.
        shower_transform, condition_transform: fitted transforms (copied into each model).
        space: dict overriding entries of ``DEFAULT_SPACE`` (see
            :func:`register_hyperparameter` for the spec format); a name that is not in
            the default space is passed to the builder as is.
        metric_every: epochs between metric computations (the last epoch always has one).
        metric_seed: generation seed of the metric (the same showers for the same weights).
        generate_kwargs: extra ``model.generate`` arguments for the metric.
        seed: model seed.
        epochs: passed to builders that use it (the TwoStep switch epoch).
        name, tunable: ``keras_tuner.HyperModel`` arguments.

    Example:
    >>> hm = GANHyperModel("ecal20", 1, val.showers, val.conditions,
    ...                    shower_transform=st, condition_transform=ct)  # doctest: +SKIP
    >>> tuner = keras_tuner.RandomSearch(hm, objective=OBJECTIVE, max_trials=10,
    ...                                  directory="tuning")  # doctest: +SKIP
    >>> tuner.search(x, c, epochs=5, batch_size=64)  # doctest: +SKIP

    References:
        O'Malley et al., KerasTuner (2019); arXiv:2407.16704 eq. 4.2 (channel W1).
    """

    family = None
    DEFAULT_SPACE = {}

    def __init__(self, geometry, condition_dim, metric_showers, metric_conditions,
                 shower_transform=None, condition_transform=None, space=None, metric_every=1,
                 metric_seed=0, generate_kwargs=None, seed=0, epochs=None, name=None,
                 tunable=True):
        super().__init__(name=name, tunable=tunable)
        if isinstance(condition_dim, bool) or not isinstance(condition_dim, numbers.Integral) \
                or condition_dim < 1:
            raise ValueError(
                f"`condition_dim` must be a positive integer. Received: "
                f"condition_dim={condition_dim!r}"
            )
        if space is not None and not isinstance(space, dict):
            raise ValueError(f"`space` must be a dict. Received: space={space!r}")
        if isinstance(geometry, str):
            from calozdc.data.geometry import get_geometry

            geometry = get_geometry(geometry)
        self.geometry = geometry
        self.condition_dim = int(condition_dim)
        self.metric_showers = np.asarray(metric_showers, dtype="float32")
        self.metric_conditions = np.asarray(metric_conditions, dtype="float32")
        self.shower_transform = shower_transform
        self.condition_transform = condition_transform
        self.overrides = dict(space or {})
        self.space = {**self.DEFAULT_SPACE, **self.overrides}
        self.metric_every = metric_every
        self.metric_seed = int(metric_seed)
        self.generate_kwargs = dict(generate_kwargs or {})
        self.seed = seed
        self.epochs = epochs
        # fails early on bad metric data or `metric_every`
        self.metrics_callback(keras_tuner.HyperParameters())

    def values(self, hp):
        """Declare the search space in ``hp`` and return the sampled values."""
        return {name: register_hyperparameter(hp, name, spec) for name, spec in self.space.items()}

    def check_space(self):
        """Build a model for every value the caller's ``space`` gives (the rest at defaults).

        A search samples values it may reach only after hours; this finds a value the
        family's builder rejects (a negative width, an unknown schedule name ...) up front.
        Ranges are checked at their ``min`` and ``max``. Costs one build per value.

        Raises:
            ValueError: naming the hyperparameter and value, with the builder's message.
        """
        base = keras_tuner.HyperParameters()
        self.values(base)  # also rejects a malformed spec
        for name, spec in self.overrides.items():
            if isinstance(spec, (list, tuple)):
                probes = list(spec)
            elif isinstance(spec, dict):
                probes = [spec["min"], spec["max"]]
            else:
                probes = [spec]
            for value in probes:
                hp = base.copy()
                hp.values[name] = value
                try:
                    self.build(hp)
                except Exception as err:  # any builder error becomes one clear message
                    raise ValueError(
                        f"The {self.family} builder rejects {name}={value!r} "
                        f"({type(err).__name__}: {err}). Received: space={{{name!r}: {spec!r}}}"
                    ) from None

    def options(self, values):
        """Builder options from the sampled ``values`` (default: the values themselves)."""
        return dict(values)

    def metric_generate_kwargs(self, hp):
        """``model.generate`` arguments of the metric for these hyperparameters."""
        return dict(self.generate_kwargs)

    def build(self, hp):
        from calozdc.models.registry import build_model

        options = self.options(self.values(hp))
        return build_model(self.family, self.geometry, self.condition_dim,
                           shower_transform=copy.deepcopy(self.shower_transform),
                           condition_transform=copy.deepcopy(self.condition_transform),
                           seed=self.seed, epochs=self.epochs, **options)

    def metrics_callback(self, hp):
        """The :class:`PhysicsMetricsCallback` that computes the objective."""
        return PhysicsMetricsCallback(
            self.metric_showers, self.metric_conditions, every=self.metric_every,
            geometry=getattr(self.geometry, "name", None), prefix="val_", seed=self.metric_seed,
            generate_kwargs=self.metric_generate_kwargs(hp),
        )

    def fit(self, hp, model, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        return model.fit(*args, callbacks=[self.metrics_callback(hp), *callbacks], **kwargs)
