"""Discrete variance schedules of the diffusion forward process."""

import math

import keras
import numpy as np
from keras import ops

SCHEDULE_KINDS = ("cosine", "linear")
PREDICTION_TYPES = ("epsilon", "v")


def _linear_alpha_bars(num_timesteps, beta_start, beta_end):
    betas = np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)
    return np.cumprod(1.0 - betas)


def _cosine_alpha_bars(num_timesteps, offset, max_beta):
    def f(t):
        return math.cos((t / num_timesteps + offset) / (1.0 + offset) * math.pi / 2.0) ** 2

    f0 = f(0.0)
    alpha_bars = np.empty(num_timesteps, dtype=np.float64)
    previous = 1.0
    for t in range(1, num_timesteps + 1):
        # beta_t = 1 - abar_t / abar_{t-1}, clipped so that the last steps stay invertible.
        beta = min(1.0 - (f(t) / f0) / (f(t - 1) / f0), max_beta)
        previous *= 1.0 - beta
        alpha_bars[t - 1] = previous
    return alpha_bars


@keras.saving.register_keras_serializable(package="calozdc")
class NoiseSchedule(keras.layers.Layer):
    """Discrete noise schedule ``alpha_bar_t`` of a DDPM, ``t = 0 .. T`` (no weights).

    The forward process is ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``. Index
    ``t = 0`` is the clean data (``abar_0 = 1`` exactly); training draws ``t`` from
    ``1 .. T``. Two schedules:

    * ``"linear"`` (Ho et al. 2020): ``beta_t`` linear from ``beta_start`` to ``beta_end``
      over ``t = 1 .. T``, ``abar_t = prod_{s<=t} (1 - beta_s)``.
    * ``"cosine"`` (Nichol & Dhariwal 2021, eq. 17): ``abar_t = f(t) / f(0)`` with
      ``f(t) = cos^2(((t/T + s) / (1 + s)) pi/2)``, through
      ``beta_t = min(1 - abar_t / abar_{t-1}, max_beta)``.

    It also holds the algebra between ``x_0``, the noise ``eps``, ``x_t`` and the velocity
    ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0`` (Salimans & Ho 2022, §4).

    Args:
        kind: ``"cosine"`` or ``"linear"``.
        num_timesteps: number of diffusion steps ``T``.
        beta_start: first ``beta`` of the linear schedule.
        beta_end: last ``beta`` of the linear schedule.
        cosine_offset: the offset ``s`` of the cosine schedule.
        max_beta: upper clip of ``beta_t`` in the cosine schedule.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: integer timesteps ``t`` (any shape).

    Returns:
        ``abar_t`` with the shape of ``t`` (float32).

    Example:

    >>> schedule = NoiseSchedule("cosine", num_timesteps=1000)
    >>> x_t = schedule.add_noise(x0, noise, t)       # t: (batch,) ints in 1..1000
    >>> target = schedule.velocity(x0, noise, t)

    References:
        Ho, Jain & Abbeel 2020, arXiv:2006.11239 (linear schedule, eq. 4).
        Nichol & Dhariwal 2021, "Improved DDPM", arXiv:2102.09672, eq. 17.
        Salimans & Ho 2022, "Progressive distillation", arXiv:2202.00512, §4 (v).
    """

    def __init__(
        self,
        kind="cosine",
        num_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        cosine_offset=0.008,
        max_beta=0.999,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"`kind` must be one of {SCHEDULE_KINDS}. Received: kind={kind!r}")
        if not isinstance(num_timesteps, int) or isinstance(num_timesteps, bool) or (
            num_timesteps < 1
        ):
            raise ValueError(
                f"`num_timesteps` must be an integer >= 1. Received: num_timesteps={num_timesteps}"
            )
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                "Need 0 < beta_start <= beta_end < 1. Received: "
                f"beta_start={beta_start}, beta_end={beta_end}"
            )
        if not cosine_offset >= 0:
            raise ValueError(f"`cosine_offset` must be >= 0. Received: cosine_offset={cosine_offset}")
        if not 0 < max_beta < 1:
            raise ValueError(f"`max_beta` must be in (0, 1). Received: max_beta={max_beta}")
        self.kind = kind
        self.num_timesteps = num_timesteps
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.cosine_offset = float(cosine_offset)
        self.max_beta = float(max_beta)
        if kind == "linear":
            tail = _linear_alpha_bars(num_timesteps, self.beta_start, self.beta_end)
        else:
            tail = _cosine_alpha_bars(num_timesteps, self.cosine_offset, self.max_beta)
        self._alpha_bars = np.concatenate([[1.0], tail])
        self.built = True

    # -- tables ---------------------------------------------------------------------------
    @property
    def alpha_bars(self):
        """``abar_t`` for ``t = 0 .. T`` as a float64 numpy array of length ``T + 1``."""
        return self._alpha_bars.copy()

    @property
    def betas(self):
        """``beta_t = 1 - abar_t / abar_{t-1}`` for ``t = 1 .. T`` (float64 numpy)."""
        return 1.0 - self._alpha_bars[1:] / self._alpha_bars[:-1]

    # -- tensor algebra -------------------------------------------------------------------
    def alpha_bar(self, t):
        """``abar_t`` gathered for integer timesteps ``t`` (float32 tensor, shape of t)."""
        table = ops.convert_to_tensor(self._alpha_bars.astype("float32"))
        return ops.take(table, ops.cast(t, "int32"), axis=0)

    def call(self, inputs):
        return self.alpha_bar(inputs)

    def signal_rate(self, t):
        """``sqrt(abar_t)`` (float32 tensor, shape of ``t``)."""
        table = ops.convert_to_tensor(np.sqrt(self._alpha_bars).astype("float32"))
        return ops.take(table, ops.cast(t, "int32"), axis=0)

    def noise_rate(self, t):
        """``sqrt(1 - abar_t)``, tabulated in float64 (no cancellation near ``abar = 1``)."""
        table = ops.convert_to_tensor(np.sqrt(1.0 - self._alpha_bars).astype("float32"))
        return ops.take(table, ops.cast(t, "int32"), axis=0)

    def _rates(self, t, like):
        """Signal and noise rates at ``t`` (shape ``(batch,)``) broadcast to ``like``."""
        shape = (-1,) + (1,) * (len(like.shape) - 1)
        signal = ops.cast(ops.reshape(self.signal_rate(t), shape), like.dtype)
        noise = ops.cast(ops.reshape(self.noise_rate(t), shape), like.dtype)
        return signal, noise

    def add_noise(self, x0, noise, t):
        """Forward process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (Ho 2020 eq. 4).

        ``x0`` and ``noise`` have shape ``(batch, ...)``, ``t`` integer shape ``(batch,)``.
        """
        x0 = ops.convert_to_tensor(x0)
        signal, noise_rate = self._rates(t, x0)
        return signal * x0 + noise_rate * ops.cast(noise, x0.dtype)

    def velocity(self, x0, noise, t):
        """Velocity target ``v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0`` (Salimans & Ho)."""
        x0 = ops.convert_to_tensor(x0)
        signal, noise_rate = self._rates(t, x0)
        return signal * ops.cast(noise, x0.dtype) - noise_rate * x0

    def target(self, x0, noise, t, prediction_type):
        """The regression target of the denoiser: ``noise`` or ``v``."""
        _check_prediction_type(prediction_type)
        if prediction_type == "epsilon":
            return ops.convert_to_tensor(noise)
        return self.velocity(x0, noise, t)

    def split_prediction(self, x_t, prediction, t, prediction_type):
        """Turns a denoiser output into ``(x0_hat, eps_hat)``.

        ``epsilon``: ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)`` (Ho 2020 eq. 15);
        ``v``: ``x0 = sqrt(abar) x_t - sqrt(1 - abar) v``,
        ``eps = sqrt(1 - abar) x_t + sqrt(abar) v`` (Salimans & Ho 2022, §4).
        """
        _check_prediction_type(prediction_type)
        signal, noise_rate = self._rates(t, x_t)
        if prediction_type == "epsilon":
            eps = prediction
            x0 = (x_t - noise_rate * eps) / signal
        else:
            x0 = signal * x_t - noise_rate * prediction
            eps = noise_rate * x_t + signal * prediction
        return x0, eps

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "num_timesteps": self.num_timesteps,
                "beta_start": self.beta_start,
                "beta_end": self.beta_end,
                "cosine_offset": self.cosine_offset,
                "max_beta": self.max_beta,
            }
        )
        return config


def _check_prediction_type(prediction_type):
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"`prediction_type` must be one of {PREDICTION_TYPES}. "
            f"Received: prediction_type={prediction_type!r}"
        )
