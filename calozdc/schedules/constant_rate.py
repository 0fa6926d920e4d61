"""The constant learning rate of an optimizer, when it has one."""

import keras


def constant_learning_rate(optimizer):
    """``optimizer``'s learning rate as a float, or None when it follows a
    ``LearningRateSchedule`` (its rate then changes with the step). A
    ``LossScaleOptimizer`` answers for the optimizer it wraps."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if isinstance(getattr(inner, "_learning_rate", None),
                  keras.optimizers.schedules.LearningRateSchedule):
        return None
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
