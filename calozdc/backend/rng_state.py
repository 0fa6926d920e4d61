"""The backend's global random state, saved with training checkpoints for an exact resume.

Keras draws most training randomness from ``keras.random.SeedGenerator`` states, which a
checkpoint saves itself. One path does not: on the torch backend, ``Dropout`` layers whose seed
generator was created without a seed use ``torch.nn.functional.dropout``, i.e. torch's global
generator. :func:`global_rng_state` captures that state (CPU and, when present, CUDA
generators) as JSON-serialisable text and :func:`set_global_rng_state` restores it. On
TensorFlow and JAX the state is empty: their Keras random ops are stateless, keyed by the seed
generators.
"""

import base64

import numpy as np

from calozdc.backend import backend_name


def _encode(tensor):
    return base64.b64encode(np.asarray(tensor.cpu().numpy(), dtype=np.uint8).tobytes()).decode()


def _decode(text):
    import torch

    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())


def global_rng_state():
    """The active backend's global generator state: a JSON-serialisable dict (``{}`` on
    TensorFlow and JAX)."""
    if backend_name() != "torch":
        return {}
    import torch

    state = {"backend": "torch", "cpu": _encode(torch.get_rng_state())}
    if torch.cuda.is_available():
        state["cuda"] = [_encode(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_global_rng_state(state):
    """Restore a state from :func:`global_rng_state` (ignored when it is empty or was taken on
    another backend).

    Raises:
        ValueError: ``state`` is not a dict.
    """
    if not isinstance(state, dict):
        raise ValueError(f"`state` must be a dict. Received: state={state!r}")
    if state.get("backend") != "torch" or backend_name() != "torch":
        return
    import torch

    torch.set_rng_state(_decode(state["cpu"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_decode(s) for s in cuda])
