"""DDIM task model: DDPM training, EMA of weights, fast DDIM sampling in physical units."""

import keras
import numpy as np
from keras import ops

from calozdc.backend.distribution import replica_rows, scale_loss_for_replicas
from calozdc.models.ddim.ddim_sampler import DDIMSampler, sampling_timesteps
from calozdc.models.ddim.noise_schedule import PREDICTION_TYPES, NoiseSchedule
from calozdc.models.ema import EMAWeightsMixin, clone_network, ema_decay_at  # noqa: F401
from calozdc.models.preprocessing import (
    ImageConditionsMixin,
    apply_zero_threshold,
    check_generate_options,
    fit_zero_threshold,
    get_transform,
    predict_in_whole_batches,
    serialize_transform,
)
from calozdc.models.total_energy import TotalEnergyMixin
from calozdc.utils.progress import predict_progress, progress


@keras.saving.register_keras_serializable(package="calozdc")
class DDIM(TotalEnergyMixin, EMAWeightsMixin, ImageConditionsMixin, keras.Model):
    """Conditional denoising diffusion model with DDIM sampling and an EMA of the weights.

    Training (``fit``) follows DDPM (Ho et al. 2020, algorithm 1): for a batch of showers
    ``x0`` (model space) and conditions ``c``, draw ``t ~ U{1..T}`` and ``eps ~ N(0, I)``,
    form ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` and regress the denoiser output
    on ``eps`` (``prediction_type="epsilon"``) or on ``v = sqrt(abar_t) eps -
    sqrt(1 - abar_t) x0`` (``"v"``, Salimans & Ho 2022) with a mean squared error. With
    ``p_uncond > 0`` the conditions of a random fraction of the batch are replaced by the
    null condition (mask 0) so that classifier-free guidance can be used at sampling
    (Ho & Salimans 2022). The noising lives in ``call`` (random draws from the model's
    ``SeedGenerator``) and the loss in ``compute_loss``, so one optimizer and Keras' own
    train step serve every backend. ``fit`` takes ``x=showers, y=conditions`` (model space,
    see :meth:`preprocess`) or ``x={"showers": ..., "conditions": ...}``.

    After every optimizer step a copy of the denoiser (``ema_denoiser``, non-trainable,
    saved in ``.keras``) is updated as ``ema = d ema + (1 - d) w`` (Polyak averaging; ``d``
    warms up, see :func:`ema_decay_at`). ``generate`` samples with it by default.

    Mixed precision (a ``mixed_float16``/``mixed_bfloat16`` global policy when building):
    the U-Net computes in half precision with float32 weights; the noise schedule, the loss,
    the EMA and the sampler's update stay float32. Under ``mixed_float16`` ``compile`` wraps
    the optimizer in a ``LossScaleOptimizer``; a step it skips (non-finite gradients) skips
    the EMA update too.

    Preprocessing is part of the model: ``shower_transform`` and ``condition_transform``
    (``calozdc.data.transforms`` objects, or None) map physical units to model space; use
    :meth:`fit_transforms` on the training split, :meth:`preprocess` to build the ``fit``
    inputs, and :meth:`generate` returns physical units.

    Args:
        denoiser: Keras model with the dict inputs of
            :class:`~calozdc.models.ddim.ConditionalUNet` (``noisy_showers``,
            ``timesteps``, ``conditions``, ``condition_mask``) returning an image.
        schedule: a :class:`NoiseSchedule`; default cosine with ``T = 1000``.
        prediction_type: ``"v"`` (default) or ``"epsilon"``.
        p_uncond: probability of dropping the condition in training (0 disables
            classifier-free guidance).
        ema_decay: EMA decay in ``[0, 1)``, or None for no EMA (sampling uses the raw
            weights).
        ema_warmup: whether the decay warms up as ``min(d, (1 + n) / (10 + n))``.
        clip_x0: default clip of ``x0_hat`` during sampling (None = no clipping).
        zero_quantile: generated cells below this quantile of the non-empty model-space
            training cells (``zero_threshold``, fitted by :meth:`fit_transforms` for a
            zero-preserving shower transform) are set empty; None disables (see
            :func:`calozdc.models.preprocessing.fit_zero_threshold`).
        zero_threshold: the fitted threshold, or None.
        shower_transform: transform of the showers (physical -> model space; it may read
            the physical conditions, e.g. ``DivideByIncidentEnergy``), a transform name or
            serialized dict, or None.
        condition_transform: transform of the conditions (same forms) or None.
        seed: seed of the model's ``SeedGenerator`` (training noise).
        total_model: None, or a model of the shower total
            (:func:`calozdc.models.total_energy.build_total_model`, :func:`build_ddim`'s
            default): once fitted with :meth:`fit_totals`, ``generate`` scales each shower
            (with ``non_negative``) to a total drawn from it (the energy/shape factorisation).
        zero_fraction: None, or the fraction of a shower's sum below which a generated cell
            is set empty before the scaling (set by :meth:`calibrate_zero_level`).
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: dict ``{"showers": (B, H, W, C), "conditions": (B, k)}`` in model space
            or a pair ``(showers, conditions)``; a showers tensor alone passes through (the
            ``fit(x=showers, y=conditions)`` path, whose forward pass is in ``compute_loss``).
        training: whether condition dropout is applied.

    Returns:
        dict with ``"prediction"`` (denoiser output at a random ``t``) and ``"target"``
        (see :meth:`denoising_outputs`).

    Example:

    >>> unet = ConditionalUNet(image_shape=(44, 44, 1), condition_dim=9)
    >>> model = DDIM(unet, shower_transform=Chain([Log1p(), Standardize()]),
    ...              condition_transform=Standardize())
    >>> model.fit_transforms(train.showers, train.conditions)
    >>> model.compile(optimizer=keras.optimizers.Adam(2e-4))
    >>> showers_t, conditions_t = model.preprocess(train.showers, train.conditions)
    >>> model.fit(showers_t, conditions_t, batch_size=64, epochs=10)
    >>> showers = model.generate(test.conditions, steps=10, seed=0)   # physical units

    References:
        Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models",
        arXiv:2006.11239.
        Song, Meng & Ermon 2021, "Denoising diffusion implicit models", arXiv:2010.02502.
        Salimans & Ho 2022, "Progressive distillation for fast sampling of diffusion
        models", arXiv:2202.00512 (v-prediction).
        Ho & Salimans 2022, "Classifier-free diffusion guidance", arXiv:2207.12598.
        Nichol & Dhariwal 2021, arXiv:2102.09672 (cosine schedule, EMA for sampling).
    """

    def __init__(
        self,
        denoiser,
        schedule=None,
        prediction_type="v",
        p_uncond=0.0,
        ema_decay=0.999,
        ema_warmup=True,
        clip_x0=None,
        zero_quantile=None,
        zero_threshold=None,
        shower_transform=None,
        condition_transform=None,
        seed=None,
        total_model=None,
        zero_fraction=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_total_model(total_model, zero_fraction)
        if not isinstance(denoiser, keras.Model):
            raise ValueError(f"`denoiser` must be a keras.Model. Received: denoiser={denoiser!r}")
        schedule = NoiseSchedule() if schedule is None else schedule
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"`schedule` must be a NoiseSchedule. Received: schedule={schedule!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"`prediction_type` must be one of {PREDICTION_TYPES}. "
                f"Received: prediction_type={prediction_type!r}"
            )
        if not 0 <= p_uncond < 1:
            raise ValueError(f"`p_uncond` must be in [0, 1). Received: p_uncond={p_uncond}")
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise ValueError(f"`ema_decay` must be None or in [0, 1). Received: ema_decay={ema_decay}")
        if clip_x0 is not None and not clip_x0 > 0:
            raise ValueError(f"`clip_x0` must be None or > 0. Received: clip_x0={clip_x0}")
        if zero_quantile is not None and not 0 <= zero_quantile < 1:
            raise ValueError(
                f"`zero_quantile` must be None or in [0, 1). Received: zero_quantile={zero_quantile}"
            )
        self.zero_quantile = None if zero_quantile is None else float(zero_quantile)
        self.zero_threshold = None if zero_threshold is None else float(zero_threshold)
        self.image_shape, self.condition_dim = _denoiser_shapes(denoiser)
        self.denoiser = denoiser
        self.schedule = schedule
        self.prediction_type = prediction_type
        self.p_uncond = float(p_uncond)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_warmup = bool(ema_warmup)
        self.clip_x0 = None if clip_x0 is None else float(clip_x0)
        self.shower_transform = get_transform(shower_transform)
        self.condition_transform = get_transform(condition_transform)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        if self.ema_decay is not None:
            self.ema_denoiser = clone_network(denoiser)
            self._make_ema_counter()
            self.reset_ema()
        else:
            self.ema_denoiser = None
        # Compiled samplers keyed by their settings; a plain dict set without Keras'
        # attribute tracking, so they are neither weights of this model nor saved.
        object.__setattr__(self, "_samplers", {})
        self.built = True

    # -- EMA ------------------------------------------------------------------------------
    def _ema_networks(self):
        return [(self.ema_denoiser, self.denoiser)]

    # -- training -------------------------------------------------------------------------
    def _unpack(self, inputs):
        if isinstance(inputs, dict) and {"showers", "conditions"} <= set(inputs):
            return inputs["showers"], inputs["conditions"]
        if isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            return inputs[0], inputs[1]
        raise ValueError(
            "DDIM inputs must be a dict {'showers', 'conditions'} or a pair "
            f"(showers, conditions). Received: inputs of type {type(inputs).__name__}"
        )

    def denoising_outputs(self, showers, conditions, training=False):
        """The DDPM regression pair at random ``t`` and noise (Ho et al. 2020, alg. 1).

        Returns ``{"prediction": denoiser(x_t, t, c), "target": eps or v}``.
        """
        x0 = ops.cast(showers, "float32")
        conditions = ops.cast(conditions, "float32")
        column = ops.ones_like(x0[:, :1, 0, 0])  # (B, 1)
        batch = ops.shape(x0)[0]
        # replica_rows: under a TF strategy each replica keeps its slice of a global-batch
        # draw, so t, noise and dropped conditions do not depend on the number of devices.
        uniform = replica_rows(
            lambda n: keras.random.uniform((n, 1), seed=self.seed_generator), batch
        )
        steps = self.schedule.num_timesteps
        t = ops.clip(ops.cast(ops.floor(uniform * steps), "int32") + 1, 1, steps)[:, 0]
        noise = replica_rows(
            lambda n: keras.random.normal((n, *x0.shape[1:]), seed=self.seed_generator), batch
        )
        x_t = self.schedule.add_noise(x0, noise, t)
        mask = column
        if training and self.p_uncond > 0:
            keep = replica_rows(
                lambda n: keras.random.uniform((n, 1), seed=self.seed_generator), batch
            )
            mask = ops.cast(keep >= self.p_uncond, "float32")
        prediction = self.denoiser(
            {
                "noisy_showers": x_t,
                "timesteps": ops.cast(t, "float32")[:, None],
                "conditions": conditions,
                "condition_mask": mask,
            },
            training=training,
        )
        target = self.schedule.target(x0, noise, t, self.prediction_type)
        return {"prediction": prediction, "target": target}

    def call(self, inputs, training=False):
        if not isinstance(inputs, (dict, tuple, list)):
            # fit(x=showers, y=conditions): the conditions arrive in compute_loss, which
            # does the forward pass; here the showers pass through.
            return inputs
        showers, conditions = self._unpack(inputs)
        return self.denoising_outputs(showers, conditions, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean squared error between denoiser output and its target (per-example weights)."""
        if not isinstance(y_pred, dict):
            if y is None:
                raise ValueError(
                    "DDIM is fitted on showers and conditions: fit(x=showers, y=conditions) "
                    "or fit({'showers': ..., 'conditions': ...}). Received: no conditions"
                )
            y_pred = self.denoising_outputs(x, y, training=training)
        # float32 under mixed precision (a custom denoiser may return float16/bfloat16).
        prediction = ops.cast(y_pred["prediction"], "float32")
        error = ops.square(prediction - ops.cast(y_pred["target"], "float32"))
        per_example = ops.mean(error, axis=tuple(range(1, len(error.shape))))
        if sample_weight is None:
            loss = ops.mean(per_example)
        else:
            weights = ops.reshape(ops.cast(sample_weight, per_example.dtype), (-1,))
            loss = ops.sum(per_example * weights) / ops.maximum(ops.sum(weights), 1e-12)
        for extra in self.losses:
            loss = loss + ops.sum(extra)
        # Under a TF strategy (one step per replica, gradients summed) Keras' losses divide
        # by the replica count; so does this override (identity on one device and on JAX).
        return scale_loss_for_replicas(loss)

    # -- preprocessing --------------------------------------------------------------------
    def fit_transforms(self, showers, conditions):
        """Fits the shower and condition transforms (on the training split only)."""
        showers, conditions = self._check_arrays(showers, conditions)
        if self.shower_transform is not None:
            self.shower_transform.fit(showers, conditions)
        if self.condition_transform is not None:
            self.condition_transform.fit(conditions)
        self.zero_threshold = fit_zero_threshold(self.shower_transform, showers, conditions,
                                                 self.zero_quantile)
        return self

    def preprocess(self, showers, conditions=None):
        """Physical-unit arrays (or a ShowerDataset) -> ``(showers, conditions)`` in model space.

        Returns float32 arrays ``(N, H, W, C)`` and ``(N, k)`` for
        ``fit(x=showers, y=conditions)``.
        """
        if conditions is None and hasattr(showers, "showers") and hasattr(showers, "conditions"):
            showers, conditions = showers.showers, showers.conditions
        showers, conditions = self._check_arrays(showers, conditions)
        if self.shower_transform is not None:
            showers = self.shower_transform.forward(showers, conditions)
        return np.asarray(showers, dtype="float32"), self._transform_conditions(conditions)

    # -- sampling -------------------------------------------------------------------------
    def sampler(self, steps=50, eta=0.0, guidance=0.0, use_ema=True, clip_x0="default"):
        """The (cached) :class:`DDIMSampler` for these settings, on EMA or raw weights."""
        sampling_timesteps(self.schedule.num_timesteps, steps)
        if not eta >= 0:
            raise ValueError(f"`eta` must be >= 0. Received: eta={eta}")
        if guidance != 0 and self.p_uncond == 0:
            raise ValueError(
                "Classifier-free guidance needs a model trained with p_uncond > 0. "
                f"Received: guidance={guidance}, p_uncond={self.p_uncond}"
            )
        clip_x0 = self.clip_x0 if clip_x0 == "default" else clip_x0
        use_ema = bool(use_ema) and self.ema_denoiser is not None
        key = (steps, float(eta), float(guidance), use_ema, clip_x0)
        if key not in self._samplers:
            self._samplers[key] = DDIMSampler(
                self.ema_denoiser if use_ema else self.denoiser,
                self.schedule,
                prediction_type=self.prediction_type,
                steps=steps,
                eta=eta,
                guidance=guidance,
                clip_x0=clip_x0,
                name=f"ddim_sampler_{len(self._samplers)}",
            )
        return self._samplers[key]

    def generate(
        self,
        conditions,
        steps=50,
        eta=0.0,
        guidance=0.0,
        seed=None,
        batch_size=256,
        use_ema=True,
        clip_x0="default",
        non_negative=True,
        return_model_space=False,
        verbose=False,
    ):
        """Samples one shower per condition row, in physical units.

        Args:
            conditions: ``(N, k)`` conditions in physical units (``(N,)`` if ``k == 1``).
            steps: number of DDIM steps (fewer = faster, coarser).
            eta: 0 = deterministic DDIM, 1 = DDPM-like stochastic sampling.
            guidance: classifier-free guidance scale (needs ``p_uncond > 0``).
            seed: integer seed; the same seed gives the same showers (``eta = 0``: the
                starting noise is drawn with numpy, so it is the same on every backend).
            batch_size: showers per compiled sampler call.
            use_ema: sample with the EMA weights (default) or the raw weights.
            clip_x0: clip of ``x0_hat`` (``"default"`` = the model's ``clip_x0``).
            non_negative: set negative values to 0 in physical units (showers are energies
                or photon counts; an inverse ``Log1p`` can give values down to -1); with a
                fitted total model, also scale each shower to a generated total.
            return_model_space: skip the inverse shower transform (and ``non_negative``).
            verbose: show a progress bar of the showers generated (stderr).

        Returns:
            float32 numpy array ``(N, H, W, C)``.
        """
        conditions = self._check_conditions(conditions)
        check_generate_options(batch_size, seed)
        sampler = self.sampler(steps, eta, guidance, use_ema, clip_x0)
        n = len(conditions)
        if n == 0:
            return np.zeros((0,) + self.image_shape, dtype="float32")
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((n,) + self.image_shape, dtype=np.float32)
        sampler.seed_generator.state.assign(
            ops.convert_to_tensor(
                [int(rng.integers(0, 2**31 - 1)), 0], dtype=sampler.seed_generator.state.dtype
            )
        )
        model_conditions = self._transform_conditions(conditions)
        batch = min(batch_size, n)
        with progress(n, "generate", verbose, unit="shower") as bar:
            samples = predict_in_whole_batches(
                sampler, model_conditions, noise, batch,
                callbacks=[predict_progress(bar, batch, n)] if verbose else None,
            )
        samples = apply_zero_threshold(samples, self.zero_threshold, len(self.image_shape))
        if not return_model_space and self.shower_transform is not None:
            samples = self.shower_transform.inverse(samples, conditions)
            samples = np.asarray(samples, dtype="float32")
        if non_negative and not return_model_space:
            samples = np.maximum(samples, 0.0)
            samples = self.scale_to_totals(samples, conditions, seed, batch_size)
        return samples

    # -- serialisation --------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "denoiser": keras.saving.serialize_keras_object(self.denoiser),
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "prediction_type": self.prediction_type,
                "p_uncond": self.p_uncond,
                "ema_decay": self.ema_decay,
                "ema_warmup": self.ema_warmup,
                "clip_x0": self.clip_x0,
                "zero_quantile": self.zero_quantile,
                "zero_threshold": self.zero_threshold,
                "shower_transform": serialize_transform(self.shower_transform),
                "condition_transform": serialize_transform(self.condition_transform),
                "seed": self.seed,
                **self._total_energy_config(),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["denoiser"] = keras.saving.deserialize_keras_object(config["denoiser"])
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        config["shower_transform"] = get_transform(config.get("shower_transform"))
        config["condition_transform"] = get_transform(config.get("condition_transform"))
        config["total_model"] = cls._deserialize_total_model(config.get("total_model"))
        return cls(**config)


def _denoiser_shapes(denoiser):
    """``(image_shape, condition_dim)`` of a denoiser with the DDIM dict inputs."""
    if hasattr(denoiser, "image_shape") and hasattr(denoiser, "condition_dim"):
        return tuple(denoiser.image_shape), int(denoiser.condition_dim)
    try:
        inputs = denoiser.input
        image_shape = tuple(inputs["noisy_showers"].shape[1:])
        condition_dim = int(inputs["conditions"].shape[-1])
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            "`denoiser` must expose `image_shape` and `condition_dim` or have dict inputs "
            f"'noisy_showers' and 'conditions'. Received: denoiser={denoiser.name!r}"
        ) from err
    return image_shape, condition_dim
