"""Framework gradients behind one function (for tests and simple uses outside train steps)."""

from calozdc.backend import backend_name


def input_value_and_grad(fn, x):
    """Return ``(fn(x), d sum(fn(x)) / dx)``, differentiable again (second order).

    ``fn`` must be a function of ``x`` only (on JAX it is traced: no Keras variable updates).
    Used for gradient penalties (Mescheder et al. 2018, arXiv:1801.04406).
    """
    name = backend_name()
    if name == "jax":
        from calozdc.backend._jax import input_value_and_grad as impl
    elif name == "tensorflow":
        from calozdc.backend._tensorflow import input_value_and_grad as impl
    elif name == "torch":
        from calozdc.backend._torch import input_value_and_grad as impl
    else:
        raise ValueError(f"Unsupported Keras backend. Received: backend={name!r}")
    return impl(fn, x)
