"""Cyclical learning rate (Smith 2017) as a Keras ``LearningRateSchedule``."""

import math

import keras
from keras import ops

_MODES = ("triangular", "triangular2", "exp_range")


@keras.saving.register_keras_serializable(package="calozdc")
class CyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rate between base and max (triangular, triangular2, exp_range).

    With ``T = step_size_up + step_size_down``, ``r = step_size_up / T`` and the optimizer step
    ``t`` (``optimizer.iterations``, 0 for the first update):

    * ``cycle = floor(1 + t / T)``, ``x = 1 + t / T − cycle`` (position in the cycle, [0, 1));
    * ``s = x / r`` if ``x <= r`` (rising) else ``(x − 1) / (r − 1)`` (falling);
    * ``lr = base_lr + (max_lr − base_lr) · s · scale``, with ``scale`` = 1 (``"triangular"``),
      ``1 / 2**(cycle − 1)`` (``"triangular2"``, the amplitude halves every cycle) or
      ``gamma**t`` (``"exp_range"``).

    For ``step_size_down == step_size_up`` this is Smith's ``max(0, 1 − |t/ss − 2·cycle + 1|)``
    form; the asymmetric up/down split and the per-iteration ``gamma**t`` of ``exp_range``
    follow ``torch.optim.lr_scheduler.CyclicLR`` (the scheduler of seed 000), so the same
    settings give the same sequence. Use one instance per optimizer for an "asymmetric"
    generator/discriminator pair (seed 000: G max 1e-4, D max 7e-5).

    Args:
        base_lr: lower bound, >= 0 (seed 000: 1e-6).
        max_lr: upper bound, >= ``base_lr`` (seed 000: 1e-4).
        step_size_up: optimizer steps from ``base_lr`` to ``max_lr``, >= 1.
        step_size_down: steps back down; ``None`` means ``step_size_up``.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: decay per step of the ``"exp_range"`` amplitude, in (0, 1] (seed 000: 0.999925).
        name: optional name.

    Call arguments:
        step: the optimizer's iteration count (scalar tensor or int).

    Returns:
        float32 scalar learning rate.

    Example:

    >>> schedule = CyclicLR(1e-6, 1e-4, step_size_up=40, step_size_down=160,
    ...                     mode="exp_range", gamma=0.999925)
    >>> optimizer = keras.optimizers.Adam(learning_rate=schedule)

    References:
        L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
        arXiv:1506.01186; PyTorch ``CyclicLR`` (``step_size_down``, ``exp_range`` scaling).
    """

    def __init__(self, base_lr=1e-6, max_lr=1e-4, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, name=None):
        super().__init__()
        base_lr, max_lr, gamma = float(base_lr), float(max_lr), float(gamma)
        if not math.isfinite(base_lr) or base_lr < 0:
            raise ValueError(f"`base_lr` must be finite and >= 0. Received: base_lr={base_lr}")
        if not math.isfinite(max_lr) or max_lr < base_lr:
            raise ValueError(
                f"`max_lr` must be finite and >= base_lr={base_lr}. Received: max_lr={max_lr}"
            )
        step_size_up = _check_steps(step_size_up, "step_size_up")
        if step_size_down is not None:
            step_size_down = _check_steps(step_size_down, "step_size_down")
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}. Received: mode={mode!r}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"`gamma` must be in (0, 1]. Received: gamma={gamma}")
        self.base_lr = base_lr
        self.max_lr = max_lr
        self.step_size_up = step_size_up
        self.step_size_down = step_size_down
        self.mode = mode
        self.gamma = gamma
        self.name = name

    def __call__(self, step):
        up = float(self.step_size_up)
        down = float(self.step_size_up if self.step_size_down is None else self.step_size_down)
        total = up + down
        ratio = up / total
        # float64 is unavailable on some backends/devices; float32 is exact for t < 2**24.
        t = ops.cast(step, "float32")
        cycle = ops.floor(1.0 + t / total)
        x = 1.0 + t / total - cycle
        rising = x / ratio
        falling = (x - 1.0) / (ratio - 1.0) if ratio < 1.0 else ops.zeros_like(x)
        s = ops.where(x <= ratio, rising, falling)
        if self.mode == "triangular":
            scale = ops.ones_like(t)
        elif self.mode == "triangular2":
            scale = ops.power(0.5, cycle - 1.0)
        else:
            scale = ops.exp(t * math.log(self.gamma))
        lr = self.base_lr + (self.max_lr - self.base_lr) * s * scale
        return ops.cast(lr, "float32")

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
            "name": self.name,
        }


def _check_steps(value, name):
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value}")
    return int(value)
