"""calozdc.schedules: learning-rate schedules (``keras.optimizers.schedules``)."""

from calozdc.schedules.constant_rate import constant_learning_rate
from calozdc.schedules.cyclic_lr import CyclicLR

__all__ = ["CyclicLR", "constant_learning_rate"]
