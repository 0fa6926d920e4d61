"""ODE solvers of a flow-matching model as a Keras model (``predict`` compiles them)."""

import keras
import numpy as np
from keras import ops

#: Fixed-step solvers of ``dx/dt = v(x, t)`` and their network evaluations per step.
SOLVERS = {"euler": 1, "midpoint": 2, "heun": 2}

#: The velocity network sees ``t * TIME_SCALE`` (its sinusoidal embedding was designed for
#: the DDPM's integer timesteps 0 .. 1000).
TIME_SCALE = 1000.0


def check_solver(solver, steps):
    """One clear ValueError for a bad solver name or step count."""
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {sorted(SOLVERS)}. Received: solver={solver!r}")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"`steps` must be an integer >= 1. Received: steps={steps!r}")


@keras.saving.register_keras_serializable(package="calozdc")
class FlowSampler(keras.Model):
    """Integrates a conditional velocity field from noise (``t = 0``) to data (``t = 1``).

    ``steps`` equal steps ``h = 1 / steps`` of one of the fixed-step solvers

    * ``"euler"``: ``x <- x + h v(x, t)``;
    * ``"midpoint"``: ``x <- x + h v(x + h/2 v(x, t), t + h/2)``;
    * ``"heun"`` (explicit trapezoid): ``k1 = v(x, t)``, ``k2 = v(x + h k1, t + h)``,
      ``x <- x + h (k1 + k2) / 2``;

    (Hairer, Nørsett & Wanner, "Solving ordinary differential equations I", §II.1). Euler is
    exact in one step for a straight (rectified) flow (Liu et al. 2023); the second-order
    solvers cost two network evaluations per step. With ``guidance = w != 0`` the velocity is
    classifier-free guided, ``(1 + w) v(x, t, c) - w v(x, t, null)`` (Ho & Salimans 2022), the
    two passes batched in one call. The loop is an ``ops.fori_loop`` on every backend; the
    sampler is deterministic: all randomness is the ``noise`` input.

    Args:
        network: velocity network with the dict inputs of
            :class:`~calozdc.models.ddim.ConditionalUNet` (the state under
            ``"noisy_showers"``, time ``t * 1000`` under ``"timesteps"``).
        steps: number of solver steps.
        solver: ``"euler"``, ``"midpoint"`` or ``"heun"``.
        guidance: classifier-free guidance scale ``w``.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: dict with ``"conditions"`` ``(B, k)`` (model space) and ``"noise"``, the
            starting point ``x_0 ~ N(0, I)`` of the network's state shape.

    Returns:
        ``x_1`` (model space), float32.

    References:
        Lipman et al. 2023, "Flow matching for generative modeling", arXiv:2210.02747.
        Liu, Gong & Liu 2023, "Flow straight and fast", arXiv:2209.03003.
        Ho & Salimans 2022, "Classifier-free diffusion guidance", arXiv:2207.12598.
    """

    def __init__(self, network, steps=10, solver="euler", guidance=0.0, **kwargs):
        super().__init__(**kwargs)
        check_solver(solver, steps)
        self.network = network
        self.steps = int(steps)
        self.solver = solver
        self.guidance = float(guidance)
        self.built = True

    @property
    def input_dtype(self):
        # The ODE state stays float32 under any dtype policy; only the network follows it.
        return "float32"

    def velocity(self, x, t, conditions):
        """Guided velocity at time ``t`` (a scalar tensor in [0, 1])."""
        column = ops.ones_like(ops.reshape(x, (ops.shape(x)[0], -1))[:, :1])  # (B, 1)
        timesteps = column * (ops.cast(t, x.dtype) * TIME_SCALE)
        if self.guidance == 0.0:
            out = self.network(
                {"noisy_showers": x, "timesteps": timesteps, "conditions": conditions,
                 "condition_mask": column},
                training=False,
            )
            return ops.cast(out, x.dtype)
        both = self.network(
            {
                "noisy_showers": ops.concatenate([x, x], axis=0),
                "timesteps": ops.concatenate([timesteps, timesteps], axis=0),
                "conditions": ops.concatenate([conditions, ops.zeros_like(conditions)], axis=0),
                "condition_mask": ops.concatenate([column, ops.zeros_like(column)], axis=0),
            },
            training=False,
        )
        conditional, unconditional = ops.split(ops.cast(both, x.dtype), 2, axis=0)
        return (1.0 + self.guidance) * conditional - self.guidance * unconditional

    def step(self, x, t, h, conditions):
        """One solver step from ``t`` to ``t + h``."""
        k1 = self.velocity(x, t, conditions)
        if self.solver == "euler":
            return x + h * k1
        if self.solver == "midpoint":
            return x + h * self.velocity(x + 0.5 * h * k1, t + 0.5 * h, conditions)
        k2 = self.velocity(x + h * k1, t + h, conditions)
        return x + 0.5 * h * (k1 + k2)

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs["noise"], "float32")
        conditions = ops.convert_to_tensor(inputs["conditions"], "float32")
        h = 1.0 / self.steps

        def body(i, x_t):
            return self.step(x_t, ops.cast(i, "float32") * h, h, conditions)

        return ops.fori_loop(0, self.steps, body, x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "steps": self.steps,
                "solver": self.solver,
                "guidance": self.guidance,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
