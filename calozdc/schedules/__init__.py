"""calozdc.schedules: learning-rate schedules (``keras.optimizers.schedules``)."""

from calozdc.schedules.cyclic_lr import CyclicLR

__all__ = ["CyclicLR"]
