"""PyTorch engine: ``torch.autograd.grad`` gradients and stateful optimizer updates."""

import torch

from calozdc.backend._stateful import StatefulEngine


class TorchEngine(StatefulEngine):
    """Engine for the PyTorch backend (eager; conditionals are Python ``if``)."""

    def _gradients(self, loss_fn, variables, optimizer):
        params = [v.value for v in variables]
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss)
        grads = torch.autograd.grad(scaled, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        return loss, aux, grads

    def _detach(self, value):
        return value.detach() if isinstance(value, torch.Tensor) else value

    def minimize(self, name, loss_fn, keys, enabled=True):
        if not isinstance(enabled, bool):
            enabled = bool(enabled)
        if not enabled:
            return self._zeros(keys)
        with torch.enable_grad():
            return self._update(name, loss_fn, keys)

    def input_value_and_grad(self, fn, x):
        return input_value_and_grad(fn, x)


def input_value_and_grad(fn, x):
    """``(fn(x), d sum(fn(x))/dx)`` with ``create_graph=True`` (second order)."""
    with torch.enable_grad():
        x = torch.as_tensor(x).detach().requires_grad_(True)
        y = fn(x)
        (grad,) = torch.autograd.grad(y.float().sum(), x, create_graph=True)
    return y, grad
