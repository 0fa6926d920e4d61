"""``VQGenerator``: a VQ-VAE and its conditional code prior, trained in two phases."""

import keras
import numpy as np

from calozdc.models.total_energy import TotalEnergyMixin
from calozdc.models.vqvae.prior import CodePrior
from calozdc.models.vqvae.vqvae import VQVAE, unpack_pair
from calozdc.schedules import constant_learning_rate


def _prefixed(logs, prefix):
    out = {}
    for key, value in (logs or {}).items():
        if key.startswith("val_"):
            out[f"val_{prefix}{key[4:]}"] = value
        else:
            out[f"{prefix}{key}"] = value
    return out


class _Forward(keras.callbacks.Callback):
    """Forwards one phase's events to the generator's callbacks (epochs offset, keys renamed).

    ``on_train_begin``/``on_train_end`` are sent once, by :meth:`VQGenerator.fit`; a
    callback that sets ``stop_training`` on the generator ends the current phase.
    """

    def __init__(self, callbacks, generator, epoch_offset, prefix):
        super().__init__()
        self.callbacks = callbacks
        self.generator = generator
        self.epoch_offset = epoch_offset
        self.prefix = prefix

    def _logs(self, logs):
        return _prefixed(logs, self.prefix) if self.prefix else logs

    def on_epoch_begin(self, epoch, logs=None):
        self.callbacks.on_epoch_begin(epoch + self.epoch_offset, self._logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.callbacks.on_epoch_end(epoch + self.epoch_offset, self._logs(logs))
        if self.generator.stop_training:
            self.model.stop_training = True

    def on_train_batch_begin(self, batch, logs=None):
        self.callbacks.on_train_batch_begin(batch, self._logs(logs))

    def on_train_batch_end(self, batch, logs=None):
        self.callbacks.on_train_batch_end(batch, self._logs(logs))


def _cosine_per_epoch(base_rate, decay_to, first_epoch, end_epoch):
    """``schedule(epoch, rate)`` for ``keras.callbacks.LearningRateScheduler``: epoch
    ``first_epoch + i`` of ``n = end_epoch - first_epoch`` gets
    ``base · (a + (1 - a) · (1 + cos(π i / n)) / 2)`` with ``a = decay_to`` (one cosine
    cycle, Loshchilov & Hutter 2017, eq. 5)."""
    cosine = keras.optimizers.schedules.CosineDecay(
        base_rate, max(1, int(end_epoch) - int(first_epoch)), alpha=decay_to)

    def schedule(epoch, rate=None):
        step = max(int(epoch) - int(first_epoch), 0)  # CosineDecay holds past its steps
        return float(keras.ops.convert_to_numpy(cosine(step)))

    return schedule


@keras.saving.register_keras_serializable(package="calozdc")
class VQGenerator(TotalEnergyMixin, keras.Model):
    """Shower generator from a :class:`VQVAE` and a :class:`CodePrior` (one wrapper, two phases).

    Design: **two models inside one wrapper**. The VQ-VAE and the prior are ordinary Keras
    models, each with its own optimizer and Keras' own train step (so the EMA codebook
    update runs inside ``fit`` on every backend). :meth:`fit` runs two phases one after the
    other on the same data: phase 1 trains the VQ-VAE for ``epochs``; phase 2 encodes the
    training showers with the now frozen VQ-VAE (no EMA updates, ``training=False``) and
    trains the prior for ``prior_epochs`` on ``(codes, conditions)``. The phases can also be
    run by hand: ``gen.vqvae.fit(...)``, then ``gen.fit_prior(x, ...)``.

    :meth:`generate` samples code grids from the prior given the (transformed) particle
    conditions, decodes them with the VQ-VAE's decoder and inverts the VQ-VAE's shower
    transform: showers in physical units. Saving the generator as ``.keras`` stores both
    networks, the codebook and the transforms.

    Args:
        vqvae: a :class:`VQVAE` (its transforms are the generator's).
        prior: a :class:`CodePrior` with ``num_codes``, ``sequence_length = h·w`` and
            ``condition_dim`` matching the VQ-VAE, or None for a default prior
            (``embed_dim=64``, 2 layers, 4 heads).
        temperature: default sampling temperature (>= 0; 0 = argmax).
        top_k: default top-k (None = all codes).
        total_model: None, or a model of the shower total
            (:func:`calozdc.models.total_energy.build_total_model`, the builder's default):
            once fitted with :meth:`fit_totals`, ``generate`` scales each shower to a total
            drawn from it (the energy/shape factorisation).
        zero_fraction: None, or the fraction of a shower's sum below which a generated cell
            is set empty before the scaling (set by :meth:`calibrate_zero_level`).
        prior_decay_to: None (the prior's optimizer keeps its learning rate), or a fraction
            in ``[0, 1]``: over each prior phase (:meth:`fit_prior`) the rate follows a cosine
            per epoch from the optimizer's rate down to ``prior_decay_to`` times it
            (SGDR's annealing, Loshchilov & Hutter 2017, arXiv:1608.03983, eq. 5, one
            cycle), and is restored afterwards. The builders set 0.05. On zn44 the same
            prior reached 2.71 nats per code at 1e-3 decayed (per step, in
            ``benchmarks/vq_prior_variants.py``) and 2.96 at a constant 3e-4
            (``benchmarks/RESULTS.md``). Ignored when the optimizer already has a
            learning-rate schedule.
        **kwargs: :class:`keras.Model` arguments.

    Example:

    >>> encoder, decoder = default_backbones("ecal20", condition_dim=1)
    >>> gen = VQGenerator(VQVAE(encoder, decoder, num_codes=128,
    ...                         shower_transform=Chain([Log1p(), Standardize()]),
    ...                         condition_transform=Standardize()))
    >>> gen.fit_transforms(train.showers, train.conditions)
    >>> gen.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> gen.fit(train.batches(64, shower_transform=gen.shower_transform,
    ...                       condition_transform=gen.condition_transform),
    ...         epochs=10, prior_epochs=10)
    >>> showers = gen.generate(test.conditions, seed=0)        # physical units

    References:
        van den Oord, Vinyals & Kavukcuoglu 2017, arXiv:1711.00937 (two-stage training:
        VQ-VAE, then an autoregressive prior over its codes).
        Esser, Rombach & Ommer 2021, arXiv:2012.09841.
    """

    def __init__(self, vqvae, prior=None, temperature=1.0, top_k=None, total_model=None,
                 zero_fraction=None, prior_decay_to=None, **kwargs):
        super().__init__(**kwargs)
        self._set_total_model(total_model, zero_fraction)
        if prior_decay_to is not None and (isinstance(prior_decay_to, bool)
                                           or not 0.0 <= float(prior_decay_to) <= 1.0):
            raise ValueError("`prior_decay_to` must be None or a number in [0, 1]. Received: "
                             f"prior_decay_to={prior_decay_to!r}")
        self.prior_decay_to = None if prior_decay_to is None else float(prior_decay_to)
        if not isinstance(vqvae, VQVAE):
            raise ValueError(f"`vqvae` must be a VQVAE. Received: vqvae={vqvae!r}")
        h_w = vqvae.latent_shape[:-1]
        length = int(np.prod(h_w))
        if prior is None:
            prior = CodePrior(vqvae.num_codes, length, vqvae.condition_dim, name="prior")
        if not isinstance(prior, CodePrior):
            raise ValueError(f"`prior` must be a CodePrior or None. Received: prior={prior!r}")
        expected = (vqvae.num_codes, length, vqvae.condition_dim)
        got = (prior.num_codes, prior.sequence_length, prior.condition_dim)
        if got != expected:
            raise ValueError(
                "The prior's (num_codes, sequence_length, condition_dim) must match the VQ-VAE "
                f"{expected}. Received: {got}"
            )
        from calozdc.models.vqvae.prior import _check_sampling

        _check_sampling(temperature, top_k, vqvae.num_codes)
        self.vqvae = vqvae
        self.prior = prior
        self.temperature = float(temperature)
        self.top_k = top_k
        # The two models hold the optimizers; Keras callbacks (TensorBoard) read model.optimizer.
        self.optimizer = None
        self.built = True

    # -- shared with the VQ-VAE --------------------------------------------------------------
    @property
    def shower_transform(self):
        return self.vqvae.shower_transform

    @property
    def condition_transform(self):
        return self.vqvae.condition_transform

    @property
    def image_shape(self):
        return self.vqvae.image_shape

    @property
    def condition_dim(self):
        return self.vqvae.condition_dim

    def fit_transforms(self, showers, conditions):
        """Fit the VQ-VAE's transforms (on the training split only)."""
        self.vqvae.fit_transforms(showers, conditions)
        return self

    def call(self, inputs, training=False):
        """The VQ-VAE's forward pass (reconstruction dict); sampling is :meth:`generate`."""
        return self.vqvae(inputs, training=training)

    # -- training ---------------------------------------------------------------------------
    def compile(self, optimizer="adam", prior_optimizer=None, run_eagerly=False, jit_compile="auto",
                **kwargs):
        """Compile both models: ``optimizer`` for the VQ-VAE, ``prior_optimizer`` (default:
        Adam(3e-4)) for the prior. ``kwargs`` go to both ``compile`` calls."""
        if prior_optimizer is None:
            prior_optimizer = keras.optimizers.Adam(3e-4)
        self.vqvae.compile(optimizer=optimizer, run_eagerly=run_eagerly,
                           jit_compile=jit_compile, **kwargs)
        self.prior.compile(optimizer=prior_optimizer, run_eagerly=run_eagerly,
                           jit_compile=jit_compile, **kwargs)

    def codes_of(self, x):
        """``(codes (N, T) int32, conditions (N, k))`` of model-space data.

        ``x``: a ``(showers, conditions)`` pair of arrays, or a Keras ``PyDataset`` (e.g.
        :meth:`ShowerDataset.batches`) whose batches hold them; each batch is read once.
        """
        if isinstance(x, keras.utils.PyDataset):
            parts = [unpack_pair(x[i]) for i in range(len(x))]
        else:
            parts = [unpack_pair(x)]
        codes, conds = [], []
        for showers, conditions in parts:
            idx = self.vqvae.encode_model_space(np.asarray(showers, "float32"))
            codes.append(idx.reshape(len(idx), -1))
            conds.append(np.asarray(conditions, "float32"))
        return np.concatenate(codes).astype("int32"), np.concatenate(conds)

    def fit_prior(self, x, epochs=1, batch_size=64, validation_data=None, callbacks=None,
                  verbose="auto", initial_epoch=0, **kwargs):
        """Phase 2 alone: train the prior on the codes of ``x`` (see :meth:`codes_of`), its
        learning rate decayed over epochs ``initial_epoch .. epochs - 1`` when
        ``prior_decay_to`` is set (logged as ``learning_rate``)."""
        codes, conds = self.codes_of(x)
        val = None
        if validation_data is not None:
            v_codes, v_conds = self.codes_of(validation_data)
            val = ({"codes": v_codes, "conditions": v_conds}, v_codes)
        callbacks = list(callbacks or [])
        base_rate = self._prior_base_rate()
        if base_rate is not None:  # first: the others then see the epoch's rate in the logs
            callbacks.insert(0, keras.callbacks.LearningRateScheduler(
                _cosine_per_epoch(base_rate, self.prior_decay_to, initial_epoch, epochs)))
        try:
            return self.prior.fit({"codes": codes, "conditions": conds}, codes,
                                  batch_size=batch_size, epochs=epochs, validation_data=val,
                                  callbacks=callbacks, verbose=verbose,
                                  initial_epoch=initial_epoch, **kwargs)
        finally:
            if base_rate is not None:
                self.prior.optimizer.learning_rate = base_rate

    def _prior_base_rate(self):
        """The prior optimizer's constant learning rate when :meth:`fit_prior` decays it,
        else None (no decay asked, or the optimizer has a schedule of its own)."""
        optimizer = self.prior.optimizer
        if self.prior_decay_to is None or optimizer is None:
            return None
        return constant_learning_rate(optimizer)

    def fit(self, x=None, y=None, epochs=1, prior_epochs=None, batch_size=None,
            prior_batch_size=64, validation_data=None, callbacks=None, verbose="auto",
            **kwargs):
        """Phase 1 (VQ-VAE, ``epochs``) then phase 2 (prior, ``prior_epochs``, default
        ``epochs``) on the same data.

        ``x``: model-space ``(showers, conditions)`` arrays or a ``PyDataset`` of such batches;
        or ``x=showers, y=conditions`` (``validation_data``: the same forms). ``callbacks``
        see this generator as their model and one run of
        ``epochs + prior_epochs`` epochs; phase 2 logs are prefixed ``prior_`` (``loss`` →
        ``prior_loss``, ``val_loss`` → ``val_prior_loss``). Returns a ``History`` with the
        logs of both phases.
        """
        prior_epochs = epochs if prior_epochs is None else prior_epochs
        for name, value in (("epochs", epochs), ("prior_epochs", prior_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
        if not self.vqvae.compiled or not self.prior.compiled:
            raise ValueError("Call compile() before fit(). Received: an uncompiled VQGenerator")
        history = keras.callbacks.History()
        cbs = keras.callbacks.CallbackList(
            list(callbacks or []) + [history], add_history=False, add_progbar=False,
            model=self, epochs=epochs + prior_epochs, verbose=0,
        )
        self.stop_training = False
        cbs.on_train_begin()
        if isinstance(x, keras.utils.PyDataset):
            x_train = x
        else:  # fit(x=showers, y=conditions) as in `calozdc train`, or x=(showers, conditions)
            x_train = unpack_pair(x) if y is None else (x, y)
        if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            validation_data = (tuple(validation_data),)  # Keras: x=(showers, conditions), no y
        if epochs:
            self.vqvae.fit(x_train, batch_size=batch_size, epochs=epochs,
                           validation_data=validation_data, verbose=verbose,
                           callbacks=[_Forward(cbs, self, 0, "")], **kwargs)
        if prior_epochs and not self.stop_training:
            self.fit_prior(x_train, epochs=epochs + prior_epochs, initial_epoch=epochs,
                           batch_size=prior_batch_size, validation_data=validation_data,
                           callbacks=[_Forward(cbs, self, 0, "prior_")], verbose=verbose)
        cbs.on_train_end()
        return history

    # -- generation -------------------------------------------------------------------------
    def generate(self, conditions, seed=None, temperature=None, top_k="default",
                 batch_size=256, return_codes=False, verbose=False):
        """Sample showers in physical units for physical conditions ``(N, k)``.

        Args:
            conditions: ``(N, k)`` (``(N,)`` when ``k == 1``), physical units.
            seed: integer seed (same seed → same showers on a backend) or None.
            temperature: sampling temperature (default: the generator's).
            top_k: top-k of the sampling (default: the generator's; None = all codes).
            batch_size: showers per prior / decoder call.
            return_codes: also return the sampled code grids ``(N, h, w)``.
            verbose: show a progress bar of the prior sampling (stderr).

        Returns:
            float32 ``(N, H, W, C)``, non-negative (and the codes when asked).
        """
        conditions = self.vqvae._check_conditions(conditions)
        temperature = self.temperature if temperature is None else temperature
        top_k = self.top_k if top_k == "default" else top_k
        model_conditions = self.vqvae.transform_conditions(conditions)
        codes = self.prior.sample(model_conditions, temperature=temperature, top_k=top_k,
                                  seed=seed, batch_size=batch_size, verbose=verbose)
        grids = codes.reshape((len(codes),) + tuple(self.vqvae.latent_shape[:-1]))
        u = self.vqvae.decode_model_space(grids, model_conditions, batch_size)
        showers = self.vqvae.postprocess(u, conditions)
        showers = self.scale_to_totals(showers, conditions, seed, batch_size)
        return (showers, grids) if return_codes else showers

    # -- serialisation ----------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update({
            "vqvae": keras.saving.serialize_keras_object(self.vqvae),
            "prior": keras.saving.serialize_keras_object(self.prior),
            "temperature": self.temperature,
            "top_k": self.top_k,
            "prior_decay_to": self.prior_decay_to,
            **self._total_energy_config(),
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["vqvae"] = keras.saving.deserialize_keras_object(config["vqvae"])
        config["prior"] = keras.saving.deserialize_keras_object(config["prior"])
        config["total_model"] = cls._deserialize_total_model(config.get("total_model"))
        return cls(**config)
