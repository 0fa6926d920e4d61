"""The only place in calozdc that imports TensorFlow, JAX or PyTorch.

Everything else uses ``keras.ops``, ``keras.random`` and Keras APIs; code that needs a
framework (gradients in custom train steps, summaries, devices, distribution) asks this
package, which dispatches on ``keras.backend.backend()``.
"""

import keras


def backend_name():
    """Name of the active Keras backend (``"tensorflow"``, ``"jax"`` or ``"torch"``)."""
    return keras.backend.backend()


from calozdc.backend.distribution import available_devices, distribution_scope  # noqa: E402
