"""Learning rates, loss scales and codebook health in the training logs (TensorBoard, History)."""

import math

import keras
import numpy as np
from keras import callbacks

from calozdc.layers.vector_quantizer import VectorQuantizerEMA


def _float(value):
    return float(np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64))


def named_optimizers(model):
    """``[(prefix, optimizer), ...]`` of the optimizers that train ``model``.

    * a model whose ``optimizer`` holds a generator and a discriminator optimizer (the GANs'
      :class:`~calozdc.models.gan.OptimizerPair`): ``("g_", G's), ("d_", D's)``;
    * any other compiled model: ``("", model.optimizer)``;
    * a wrapper of two compiled models (:class:`~calozdc.models.VQGenerator`):
      ``("", vqvae.optimizer), ("prior_", prior.optimizer)``, the prefixes of its phase logs
      (a VQ-GAN autoencoder: its own optimizer as ``""`` and its discriminator's as ``"d_"``).
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and hasattr(optimizer, "generator_optimizer") and hasattr(
            optimizer, "discriminator_optimizer"):
        return [("g_", optimizer.generator_optimizer), ("d_", optimizer.discriminator_optimizer)]
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return [("", optimizer)]
    out = []
    for attribute, prefix in (("vqvae", ""), ("prior", "prior_")):
        sub = getattr(getattr(model, attribute, None), "optimizer", None)
        if hasattr(sub, "generator_optimizer") and hasattr(sub, "discriminator_optimizer"):
            # a VQ-GAN's pair: the autoencoder's optimizer and its discriminator's ("d_")
            out += [(prefix, sub.generator_optimizer), ("d_", sub.discriminator_optimizer)]
        elif isinstance(sub, keras.optimizers.Optimizer):
            out.append((prefix, sub))
    return out


def _quantizers(model):
    layers = getattr(model, "_flatten_layers", None)
    if layers is None:
        return []
    return [layer for layer in layers(include_self=True, recursive=True)
            if isinstance(layer, VectorQuantizerEMA) and layer.built]


class TrainingScalarsCallback(callbacks.Callback):
    """Adds learning rates, loss-scale factors and codebook health to the training ``logs``.

    At the end of every epoch (and, with ``on_batch=True``, of every training batch) the
    callback adds to ``logs``:

    * ``{p}lr``: the learning rate each optimizer uses for its next update, its schedule
      (e.g. :class:`calozdc.schedules.CyclicLR`) evaluated at the optimizer's own update
      count, and ``{p}iterations``: that count. ``p`` is ``""`` for a single optimizer,
      ``"g_"`` / ``"d_"`` for the generator / discriminator optimizers of the GANs (their
      counts differ with an ``n_d:n_g`` training ratio), ``""`` / ``"prior_"`` for the two
      models of a :class:`~calozdc.models.VQGenerator`.
    * ``{p}loss_scale``: the dynamic loss-scale factor of each
      ``keras.optimizers.LossScaleOptimizer`` (``mixed_float16``): it halves after every
      step with non-finite gradients (that step is skipped) and doubles after a run of
      finite ones, so a factor that keeps falling means overflowing gradients.
    * for models with a :class:`~calozdc.layers.VectorQuantizerEMA`: ``dead_code_fraction``,
      the fraction of codes that received no encoder output for at least
      ``dead_code_steps`` consecutive training steps (the quantiser's ``unused_steps``), and
      ``codebook_perplexity`` ``exp(−Σ p_k log p_k)`` with ``p_k`` the EMA cluster sizes
      ``N_k / Σ N`` (in ``[1, num_codes]``) — only if the model does not already log its own
      ``perplexity`` metric (:class:`~calozdc.models.VQVAE` logs the batch perplexity and
      ``codebook_usage``, which are not repeated). With several quantisers the keys are
      prefixed with the layer name.

    Keras' ``TensorBoard`` callback writes whatever is in the logs it receives, and Keras
    calls callbacks in list order: put this callback **before** ``TensorBoard`` (and before
    ``CSVLogger``/``EarlyStopping`` if they should see the values). The scalars then appear
    as ``epoch_g_lr``, ``epoch_loss_scale``, ... (``batch_...`` with ``on_batch=True`` and
    ``TensorBoard(update_freq="batch")``). ``History`` and the progress bar see them too.

    Args:
        on_batch: also add the scalars to every training batch's logs. This reads device
            values after each step (on JAX it syncs the training state back to the model
            each step), so it slows short steps; off by default.
        dead_code_steps: steps without input after which a code counts as dead (int >= 1;
            with a quantiser's ``restart_after``, codes are restarted after that many
            steps, so choose a smaller value).

    Example:

    >>> cbs = [TrainingScalarsCallback(), keras.callbacks.TensorBoard("runs/gan")]
    >>> gan.fit(x, c, epochs=50, callbacks=cbs)  # doctest: +SKIP
    >>> gan.history.history["g_lr"][-1]  # doctest: +SKIP

    References:
        Micikevicius et al. 2018, "Mixed precision training", arXiv:1710.03740 (dynamic
        loss scaling); L. N. Smith 2017, arXiv:1506.01186 (cyclical learning rates);
        Dhariwal et al. 2020, arXiv:2005.00341 (dead codes and codebook restarts).
    """

    def __init__(self, on_batch=False, dead_code_steps=8):
        super().__init__()
        if not isinstance(on_batch, bool):
            raise ValueError(f"`on_batch` must be True or False. Received: on_batch={on_batch!r}")
        if isinstance(dead_code_steps, bool) or not isinstance(
                dead_code_steps, (int, np.integer)) or dead_code_steps < 1:
            raise ValueError(
                f"`dead_code_steps` must be an integer >= 1. Received: "
                f"dead_code_steps={dead_code_steps!r}"
            )
        self.on_batch = on_batch
        self.dead_code_steps = int(dead_code_steps)
        self._model_logs_perplexity = False

    def get_config(self):
        return {"on_batch": self.on_batch, "dead_code_steps": self.dead_code_steps}

    def on_train_begin(self, logs=None):
        self._model_logs_perplexity = False

    def scalars(self, model=None, logs=None):
        """The scalars for ``model`` (default: the fitted model) as a dict of floats.

        ``logs``: the logs they will join (to see whether the model logs ``perplexity``).
        """
        model = self.model if model is None else model
        if logs and "perplexity" in logs:
            self._model_logs_perplexity = True
        out = {}
        for prefix, optimizer in named_optimizers(model):
            out[f"{prefix}lr"] = _float(optimizer.learning_rate)
            out[f"{prefix}iterations"] = _float(optimizer.iterations)
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                scale = optimizer.dynamic_scale if optimizer.built else optimizer.initial_scale
                out[f"{prefix}loss_scale"] = _float(scale)
        quantizers = _quantizers(model)
        for quantizer in quantizers:
            prefix = f"{quantizer.name}_" if len(quantizers) > 1 else ""
            unused = keras.ops.convert_to_numpy(quantizer.unused_steps.value)
            out[f"{prefix}dead_code_fraction"] = float(np.mean(unused >= self.dead_code_steps))
            if not self._model_logs_perplexity:
                counts = np.asarray(keras.ops.convert_to_numpy(quantizer.ema_count.value),
                                    np.float64)
                p = counts / max(counts.sum(), 1e-12)
                entropy = -np.sum(p * np.log(np.where(p > 0, p, 1.0)))
                out[f"{prefix}codebook_perplexity"] = float(math.exp(entropy))
        return out

    def _sync(self):
        # Keras' JAX trainer keeps the state outside the variables between epoch ends.
        models = [self.model] + [getattr(self.model, a, None) for a in ("vqvae", "prior")]
        for model in models:
            sync = getattr(model, "jax_state_sync", None)
            if sync is not None:
                sync()

    def on_train_batch_end(self, batch, logs=None):
        if self.on_batch and isinstance(logs, dict):
            self._sync()
            logs.update(self.scalars(logs=logs))

    def on_epoch_end(self, epoch, logs=None):
        if isinstance(logs, dict):
            logs.update(self.scalars(logs=logs))
