"""Conditional flow matching (rectified flow) with an optional energy/shape factorisation."""

import keras
import numpy as np
from keras import ops

from calozdc.backend.distribution import replica_rows, scale_loss_for_replicas
from calozdc.models.ddim.ddim import _denoiser_shapes
from calozdc.models.ema import EMAWeightsMixin, clone_network
from calozdc.models.flow.flow_sampler import TIME_SCALE, FlowSampler, check_solver
from calozdc.models.preprocessing import (
    ImageConditionsMixin,
    apply_zero_threshold,
    check_generate_options,
    fit_zero_threshold,
    get_transform,
    predict_in_whole_batches,
    serialize_transform,
    total_floor,
)
from calozdc.utils.progress import predict_progress, progress

#: Distributions of the training time ``t``.
TIME_SAMPLINGS = ("uniform", "logit-normal")


@keras.saving.register_keras_serializable(package="calozdc")
class FlowMatching(EMAWeightsMixin, ImageConditionsMixin, keras.Model):
    """Conditional flow matching: a velocity field that carries noise to showers.

    Training (Lipman et al. 2023; the straight "rectified" path of Liu et al. 2023): for a
    batch of showers ``x1`` (model space) and conditions ``c``, draw ``x0 ~ N(0, I)`` and a
    time ``t``, form ``x_t = (1 - t) x0 + t x1`` (:meth:`interpolate`) and regress the network
    output ``v(x_t, t, c)`` on the constant velocity of that path, ``x1 - x0``
    (:meth:`target_velocity`), with a mean squared error. ``t`` is uniform on [0, 1] or
    logit-normal, ``t = sigmoid(m + s n)``, ``n ~ N(0, 1)`` (Esser et al. 2024, eq. 19),
    which spends the training on the middle of the path (:meth:`sample_time`). With
    ``p_uncond > 0`` the conditions of a random fraction of the batch are replaced by the
    null condition (mask 0) for classifier-free guidance (Ho & Salimans 2022).
    ``generate`` integrates ``dx/dt = v`` from ``t = 0`` to 1 with the fixed-step Euler,
    midpoint or Heun solver of :class:`FlowSampler`, with the EMA weights.

    **Energy/shape factorisation** (``total_network`` given; the builders' default): the
    total of a shower is generated first and the image only carries its shape, as in
    CaloFlow's flow I / flow II (Krause & Shih 2021) and CaloDREAM's energy and shape
    networks (Favaro et al. 2024). The image model space is the shower divided by its own
    total (then ``shower_transform``); the standardised ``log(total)`` is a second flow,
    learnt by ``total_network`` (a :class:`ConditionalMLP`) given the conditions, and it is
    appended to the image network's conditions (the true total in training, the generated
    one in sampling). A generated image is set non-negative, normalised to sum 1 and scaled
    by its generated total. Why: most cells of a calorimeter image are empty, and a generator
    leaves small noise around their zero level; clipped to zero it adds energy (the DDIM
    put 25-35 % too much energy into Geant4 electron showers, ``benchmarks/RESULTS.md``).
    With the factorisation that noise cannot change the total, whose distribution per
    incident energy, including its width (the impact-point effect of a fibre calorimeter),
    is learnt directly as a one-dimensional flow.

    ``fit`` takes ``x=showers, y=conditions`` in model space, built with :meth:`preprocess`
    (with the factorisation the model-space conditions carry one more column, the
    standardised log total). Preprocessing is part of the model (:meth:`fit_transforms` on
    the training split; ``generate`` returns physical units).

    Args:
        velocity_network: image network with the dict inputs of
            :class:`~calozdc.models.ddim.ConditionalUNet`; its ``condition_dim`` is ``k`` or,
            with a ``total_network``, ``k + 1``.
        total_network: None, or a network of state size 1 (:class:`ConditionalMLP`) taking
            the ``k`` conditions: enables the energy/shape factorisation.
        time_sampling: ``"uniform"`` (default) or ``"logit-normal"`` (with 940 steps on
            3,000 zn44 electrons, channel W1 6.1 uniform vs 12.5 logit-normal on 2,000
            held-out showers; ``benchmarks/RESULTS.md``).
        logit_normal_mean, logit_normal_std: ``m`` and ``s`` of the logit-normal time.
        p_uncond: probability of dropping the conditions in training.
        ema_decay: EMA decay in ``[0, 1)`` or None; ``ema_warmup``: warm-up of the decay.
        total_weight: weight of the total's flow-matching loss.
        total_stats: ``[mean, std, floor]`` of ``log(total)`` (set by :meth:`fit_transforms`).
        total_time_sampling: time distribution of the total's flow (default uniform: the
            total's distribution has a long right tail, the fibre-entry events of a
            quartz-fibre calorimeter, which lives near ``t = 1``; logit-normal undersampled
            it, see ``benchmarks/RESULTS.md``).
        total_repeats: (t, noise) draws per shower and step for the total's loss.
        total_steps, total_solver: the total's ODE solver at sampling (default 50 Heun
            steps: the MLP is cheap next to the U-Net, and few steps shrank the tail).
        zero_quantile: cells of a generated image below this quantile of the non-empty
            model-space cells of the training data (``zero_threshold``, fitted by
            :meth:`fit_transforms` when the shower transform keeps empty cells at 0; see
            :func:`calozdc.models.preprocessing.fit_zero_threshold`) are set empty. The
            flow leaves small noise around the zero level of empty cells; without the
            threshold 67 % of the cells of generated zn44 showers were non-empty against
            5.4 % of real ones, and the noise took its share of the total from the shower
            (``benchmarks/RESULTS.md``). None disables.
        zero_threshold: the fitted threshold (model space), or None.
        shower_transform, condition_transform: transforms (physical -> model space), names,
            serialized dicts or None.
        seed: seed of the training noise.
        **kwargs: standard `keras.Model` arguments.

    Example:

    >>> model = build_flow("zn44", condition_dim=5)          # compiled, factorised
    >>> model.fit_transforms(train.showers, train.conditions)
    >>> x, c = model.preprocess(train.showers, train.conditions)
    >>> model.fit(x, c, batch_size=64, epochs=50)
    >>> showers = model.generate(test.conditions, steps=10, solver="heun", seed=0)

    References:
        Lipman, Chen, Ben-Hamu, Nickel & Le 2023, "Flow matching for generative modeling",
        arXiv:2210.02747, eqs. 20-23.
        Liu, Gong & Liu 2023, "Flow straight and fast: learning to generate and transfer
        data with rectified flow", arXiv:2209.03003.
        Esser et al. 2024, "Scaling rectified flow transformers for high-resolution image
        synthesis", arXiv:2403.03206, §3.1 (logit-normal time).
        Krause & Shih 2021, "CaloFlow", arXiv:2106.05285 (energy then shape).
        Favaro, Ore, Palacios Schweitzer, Plehn 2024, "CaloDREAM", arXiv:2405.09629.
        Ho & Salimans 2022, "Classifier-free diffusion guidance", arXiv:2207.12598.
    """

    #: Batches in model space come from :meth:`preprocess` (the conditions gain the shower's
    #: log total), not from the transforms alone (read by ``calozdc train``).
    fit_with_preprocess = True

    def __init__(
        self,
        velocity_network,
        total_network=None,
        time_sampling="uniform",
        logit_normal_mean=0.0,
        logit_normal_std=1.0,
        p_uncond=0.1,
        ema_decay=0.999,
        ema_warmup=True,
        total_weight=1.0,
        total_stats=None,
        total_time_sampling="uniform",
        total_repeats=8,
        total_steps=50,
        total_solver="heun",
        zero_quantile=0.01,
        zero_threshold=None,
        shower_transform=None,
        condition_transform=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, net in (("velocity_network", velocity_network), ("total_network", total_network)):
            if net is not None and not isinstance(net, keras.Model):
                raise ValueError(f"`{name}` must be a keras.Model. Received: {name}={net!r}")
        if velocity_network is None:
            raise ValueError("`velocity_network` must be a keras.Model. Received: None")
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(
                f"`time_sampling` must be one of {TIME_SAMPLINGS}. "
                f"Received: time_sampling={time_sampling!r}"
            )
        if not logit_normal_std > 0:
            raise ValueError(f"`logit_normal_std` must be > 0. Received: {logit_normal_std}")
        if not 0 <= p_uncond < 1:
            raise ValueError(f"`p_uncond` must be in [0, 1). Received: p_uncond={p_uncond}")
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise ValueError(f"`ema_decay` must be None or in [0, 1). Received: ema_decay={ema_decay}")
        if total_time_sampling not in TIME_SAMPLINGS:
            raise ValueError(
                f"`total_time_sampling` must be one of {TIME_SAMPLINGS}. "
                f"Received: total_time_sampling={total_time_sampling!r}"
            )
        if isinstance(total_repeats, bool) or int(total_repeats) != total_repeats \
                or total_repeats < 1:
            raise ValueError(f"`total_repeats` must be an integer >= 1. Received: {total_repeats!r}")
        check_solver(total_solver, total_steps)
        if zero_quantile is not None and not 0 <= zero_quantile < 1:
            raise ValueError(
                f"`zero_quantile` must be None or in [0, 1). Received: zero_quantile={zero_quantile}"
            )
        if not total_weight >= 0:
            raise ValueError(f"`total_weight` must be >= 0. Received: total_weight={total_weight}")
        self.image_shape, image_conditions = _denoiser_shapes(velocity_network)
        # The space the flow runs in: the model-space image here, a latent grid in
        # LatentFlowMatching (whose image_shape is then the showers').
        self.state_shape = self.image_shape
        self.condition_dim = image_conditions
        if total_network is not None:
            state, total_conditions = _denoiser_shapes(total_network)
            if tuple(state) != (1,) or total_conditions + 1 != image_conditions:
                raise ValueError(
                    "`total_network` must map a state of size 1 given k conditions, and the "
                    "velocity network take k + 1 conditions (the log total appended). "
                    f"Received: total state {tuple(state)}, total_network k={total_conditions}, "
                    f"velocity_network k={image_conditions}"
                )
            self.condition_dim = total_conditions
        self.velocity_network = velocity_network
        self.total_network = total_network
        self.time_sampling = time_sampling
        self.logit_normal_mean = float(logit_normal_mean)
        self.logit_normal_std = float(logit_normal_std)
        self.p_uncond = float(p_uncond)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_warmup = bool(ema_warmup)
        self.total_weight = float(total_weight)
        self.total_stats = None if total_stats is None else [float(v) for v in total_stats]
        self.total_time_sampling = total_time_sampling
        self.total_repeats = int(total_repeats)
        self.total_steps = int(total_steps)
        self.total_solver = total_solver
        self.zero_quantile = None if zero_quantile is None else float(zero_quantile)
        self.zero_threshold = None if zero_threshold is None else float(zero_threshold)
        self.shower_transform = get_transform(shower_transform)
        self.condition_transform = get_transform(condition_transform)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        if self.ema_decay is not None:
            self.ema_velocity_network = clone_network(velocity_network)
            self.ema_total_network = (
                None if total_network is None else clone_network(total_network)
            )
            self._make_ema_counter()
            self.reset_ema()
        else:
            self.ema_velocity_network = self.ema_total_network = None
        object.__setattr__(self, "_samplers", {})
        self.built = True

    @property
    def factorised(self):
        """Whether the total is generated first (``total_network`` given)."""
        return self.total_network is not None

    def _ema_networks(self):
        pairs = [(self.ema_velocity_network, self.velocity_network)]
        if self.total_network is not None:
            pairs.append((self.ema_total_network, self.total_network))
        return pairs

    # -- the objective --------------------------------------------------------------------
    @staticmethod
    def interpolate(x0, x1, t):
        """The straight path ``x_t = (1 - t) x0 + t x1`` (Liu et al. 2023, eq. 1);
        ``t`` of shape ``(B, 1)`` broadcasts over the remaining axes."""
        t = ops.reshape(t, (-1,) + (1,) * (len(x1.shape) - 1))
        return (1.0 - t) * x0 + t * x1

    @staticmethod
    def target_velocity(x0, x1):
        """The velocity of the straight path, ``x1 - x0`` (Lipman et al. 2023, eq. 23 with
        ``sigma_min = 0``)."""
        return x1 - x0

    def sample_time(self, batch, sampling=None):
        """``(B, 1)`` training times: uniform, or logit-normal (Esser et al. 2024, eq. 19);
        ``sampling`` defaults to the model's ``time_sampling``."""
        if (sampling or self.time_sampling) == "uniform":
            return replica_rows(lambda n: keras.random.uniform((n, 1), seed=self.seed_generator),
                                batch)
        normal = replica_rows(lambda n: keras.random.normal((n, 1), seed=self.seed_generator),
                              batch)
        return ops.sigmoid(self.logit_normal_mean + self.logit_normal_std * normal)

    def _regression_pair(self, network, x1, conditions, mask, training, sampling=None):
        batch = ops.shape(x1)[0]
        t = self.sample_time(batch, sampling)
        x0 = replica_rows(
            lambda n: keras.random.normal((n, *x1.shape[1:]), seed=self.seed_generator), batch
        )
        prediction = network(
            {
                "noisy_showers": self.interpolate(x0, x1, t),
                "timesteps": t * TIME_SCALE,
                "conditions": conditions,
                "condition_mask": mask,
            },
            training=training,
        )
        return prediction, self.target_velocity(x0, x1)

    def flow_outputs(self, showers, conditions, training=False):
        """Network outputs and targets at random times and noise.

        Returns ``{"prediction", "target"}`` for the image and, with the factorisation,
        ``{"total_prediction", "total_target"}`` for the standardised log total (the last
        model-space condition column).
        """
        x1 = ops.cast(showers, "float32")
        conditions = ops.cast(conditions, "float32")
        batch = ops.shape(x1)[0]
        mask = ops.ones_like(conditions[:, :1])
        if training and self.p_uncond > 0:
            keep = replica_rows(
                lambda n: keras.random.uniform((n, 1), seed=self.seed_generator), batch
            )
            mask = ops.cast(keep >= self.p_uncond, "float32")
        prediction, target = self._regression_pair(
            self.velocity_network, x1, conditions, mask, training
        )
        outputs = {"prediction": prediction, "target": target}
        if self.total_network is not None:
            # The total's network is small: ``total_repeats`` draws of (t, noise) per shower
            # and step lower the variance of its gradient at little cost.
            k, repeats = self.condition_dim, self.total_repeats
            total_prediction, total_target = self._regression_pair(
                self.total_network,
                ops.repeat(conditions[:, k:], repeats, axis=0),
                ops.repeat(conditions[:, :k], repeats, axis=0),
                ops.repeat(mask, repeats, axis=0),
                training,
                self.total_time_sampling,
            )
            outputs.update(total_prediction=total_prediction, total_target=total_target)
        return outputs

    def call(self, inputs, training=False):
        if not isinstance(inputs, (dict, tuple, list)):
            return inputs  # fit(x=showers, y=conditions): the pass is in compute_loss
        if isinstance(inputs, dict) and {"showers", "conditions"} <= set(inputs):
            showers, conditions = inputs["showers"], inputs["conditions"]
        elif isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            showers, conditions = inputs
        else:
            raise ValueError(
                "FlowMatching inputs must be a dict {'showers', 'conditions'} or a pair "
                f"(showers, conditions). Received: inputs of type {type(inputs).__name__}"
            )
        return self.flow_outputs(showers, conditions, training=training)

    @staticmethod
    def _mse(prediction, target, sample_weight):
        error = ops.square(ops.cast(prediction, "float32") - ops.cast(target, "float32"))
        per_example = ops.mean(error, axis=tuple(range(1, len(error.shape))))
        if sample_weight is None:
            return ops.mean(per_example)
        weights = ops.reshape(ops.cast(sample_weight, per_example.dtype), (-1,))
        return ops.sum(per_example * weights) / ops.maximum(ops.sum(weights), 1e-12)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Flow-matching MSE of the image (+ ``total_weight`` x that of the log total)."""
        if not isinstance(y_pred, dict):
            if y is None:
                raise ValueError(
                    "FlowMatching is fitted on showers and conditions: fit(x=showers, "
                    "y=conditions) or fit({'showers': ..., 'conditions': ...}). "
                    "Received: no conditions"
                )
            y_pred = self.flow_outputs(x, y, training=training)
        loss = self._mse(y_pred["prediction"], y_pred["target"], sample_weight)
        if "total_prediction" in y_pred:
            total_weights = None if sample_weight is None else ops.repeat(
                ops.reshape(ops.cast(sample_weight, "float32"), (-1,)), self.total_repeats, axis=0
            )  # one weight per (t, noise) draw of the total
            loss = loss + self.total_weight * self._mse(
                y_pred["total_prediction"], y_pred["total_target"], total_weights
            )
        for extra in self.losses:
            loss = loss + ops.sum(extra)
        return scale_loss_for_replicas(loss)

    # -- preprocessing --------------------------------------------------------------------
    def _shapes_and_totals(self, showers):
        """``(showers / total, total)`` per shower (float64 totals; empty showers stay 0)."""
        totals = np.sum(showers.reshape(len(showers), -1), axis=1, dtype=np.float64)
        scale = np.where(totals > 0, totals, 1.0).reshape((-1,) + (1,) * (showers.ndim - 1))
        return (showers / scale).astype("float32"), totals

    def fit_transforms(self, showers, conditions):
        """Fits the transforms (and the log-total statistics) on the training split."""
        showers, conditions = self._check_arrays(showers, conditions)
        if self.total_network is not None:
            showers, totals = self._shapes_and_totals(showers)
            floor = total_floor(totals)
            log_total = np.log(np.maximum(totals, floor))
            self.total_stats = [float(np.mean(log_total)), float(np.std(log_total) or 1.0), floor]
        if self.shower_transform is not None:
            self.shower_transform.fit(showers, conditions)
        if self.condition_transform is not None:
            self.condition_transform.fit(conditions)
        self.zero_threshold = fit_zero_threshold(self.shower_transform, showers, conditions,
                                                 self.zero_quantile)
        return self

    def preprocess(self, showers, conditions=None):
        """Physical-unit arrays (or a ShowerDataset) -> ``(showers, conditions)`` in model
        space for ``fit(x=showers, y=conditions)``; with the factorisation the conditions
        gain the standardised log total as their last column."""
        if conditions is None and hasattr(showers, "showers") and hasattr(showers, "conditions"):
            showers, conditions = showers.showers, showers.conditions
        showers, conditions = self._check_arrays(showers, conditions)
        model_conditions = self._transform_conditions(conditions)
        if self.total_network is not None:
            if self.total_stats is None:
                raise ValueError(
                    "The log-total statistics are not fitted: call fit_transforms(showers, "
                    "conditions) on the training split first. Received: total_stats=None"
                )
            showers, totals = self._shapes_and_totals(showers)
            mean, std, floor = self.total_stats
            log_total = (np.log(np.maximum(totals, floor)) - mean) / std
            model_conditions = np.concatenate(
                [model_conditions, log_total[:, None].astype("float32")], axis=1
            )
        if self.shower_transform is not None:
            showers = self.shower_transform.forward(showers, conditions)
        return np.asarray(showers, dtype="float32"), model_conditions

    # -- sampling -------------------------------------------------------------------------
    def sampler(self, steps=10, solver="euler", guidance=0.0, use_ema=True, part="image"):
        """The (cached) :class:`FlowSampler` of the image (``part="image"``) or the total."""
        check_solver(solver, steps)
        if guidance != 0 and self.p_uncond == 0:
            raise ValueError(
                "Classifier-free guidance needs a model trained with p_uncond > 0. "
                f"Received: guidance={guidance}, p_uncond={self.p_uncond}"
            )
        use_ema = bool(use_ema) and self.ema_decay is not None
        key = (part, int(steps), solver, float(guidance), use_ema)
        if key not in self._samplers:
            if part == "image":
                net = self.ema_velocity_network if use_ema else self.velocity_network
            else:
                net = self.ema_total_network if use_ema else self.total_network
            self._samplers[key] = FlowSampler(
                net, steps=steps, solver=solver, guidance=guidance,
                name=f"flow_sampler_{len(self._samplers)}",
            )
        return self._samplers[key]

    def generate_totals(self, conditions, guidance=0.0, seed=None, batch_size=256,
                        use_ema=True):
        """Samples the total of one shower per condition row (physical units, ``(N,)``), with
        the model's ``total_steps`` steps of ``total_solver`` (the total's network is cheap,
        so its ODE is solved finely whatever the image's step count)."""
        if self.total_network is None:
            raise ValueError("This model has no total network (energy/shape factorisation "
                             "off). Received: total_network=None")
        conditions = self._check_conditions(conditions)
        rng = np.random.default_rng(seed)
        return self._sample_totals(self._transform_conditions(conditions), guidance, rng,
                                   min(batch_size, len(conditions)), use_ema)[1]

    def _sample_totals(self, model_conditions, guidance, rng, batch, use_ema):
        noise = rng.standard_normal((len(model_conditions), 1), dtype=np.float32)
        sampler = self.sampler(self.total_steps, self.total_solver, guidance, use_ema,
                               part="total")
        z = predict_in_whole_batches(sampler, model_conditions, noise, batch)
        mean, std, floor = self.total_stats
        totals = np.exp(np.clip(z[:, 0].astype(np.float64) * std + mean, -700.0, 700.0))
        # A total at the floor is an empty shower (the floor stands for log 0).
        return z, np.where(totals > 2.0 * floor, totals, 0.0)

    def generate(
        self,
        conditions,
        steps=10,
        solver="euler",
        guidance=0.0,
        seed=None,
        batch_size=256,
        use_ema=True,
        non_negative=True,
        return_model_space=False,
        verbose=False,
    ):
        """Samples one shower per condition row, in physical units.

        Args:
            conditions: ``(N, k)`` conditions in physical units (``(N,)`` if ``k == 1``).
            steps: solver steps of the image (network evaluations: ``steps`` for Euler,
                ``2 steps`` for midpoint and Heun); the total uses ``total_steps``.
            solver: ``"euler"``, ``"midpoint"`` or ``"heun"``.
            guidance: classifier-free guidance scale (needs ``p_uncond > 0``).
            seed: integer seed; the same seed gives the same showers on a backend (all
                noise is drawn with numpy, so it is the same on every backend).
            batch_size: showers per compiled solver call.
            use_ema: integrate the EMA weights (default) or the raw weights.
            non_negative: set negative cells to 0 in physical units (always on with the
                energy/shape factorisation, which normalises the non-negative image).
            return_model_space: skip the inverse transforms (image in model space).
            verbose: progress bar of the showers generated (stderr).

        Returns:
            float32 numpy array ``(N, H, W, C)``.
        """
        conditions = self._check_conditions(conditions)
        check_generate_options(batch_size, seed)
        image_sampler = self.sampler(steps, solver, guidance, use_ema)
        n = len(conditions)
        rng = np.random.default_rng(seed)
        batch = min(batch_size, n)
        model_conditions = self._transform_conditions(conditions)
        if self.total_network is not None:
            z, totals = self._sample_totals(model_conditions, guidance, rng, batch, use_ema)
            model_conditions = np.concatenate([model_conditions, z], axis=1)
        noise = rng.standard_normal((n,) + self.state_shape, dtype=np.float32)
        with progress(n, "generate", verbose, unit="shower") as bar:
            samples = predict_in_whole_batches(
                image_sampler, model_conditions, noise, batch,
                callbacks=[predict_progress(bar, batch, n)] if verbose else None,
            )
        samples = self.decode_states(samples, batch)
        samples = apply_zero_threshold(samples, self.zero_threshold, len(self.image_shape))
        if return_model_space:
            return samples
        if self.shower_transform is not None:
            samples = np.asarray(self.shower_transform.inverse(samples, conditions), "float32")
        if self.total_network is not None:
            samples = np.maximum(samples, 0.0).astype(np.float64)
            sums = samples.reshape(n, -1).sum(axis=1)
            scale = np.where(sums > 0, totals / np.where(sums > 0, sums, 1.0), 0.0)
            samples = (samples * scale.reshape((-1,) + (1,) * len(self.image_shape)))
            return samples.astype("float32")
        if non_negative:
            samples = np.maximum(samples, 0.0)
        return samples

    def calibrate_zero_threshold(self, showers, conditions, n=512, steps=10, solver="euler",
                                 seed=0, batch_size=256):
        """Sets ``zero_threshold`` so that generated showers have the real occupancy.

        The fixed :attr:`zero_quantile` of the non-empty training cells sets the zero level
        without looking at what the trained model generates; how much noise the model leaves
        in empty cells depends on the data and on the training. After training, this draws
        ``n`` showers for training conditions (model space, no threshold) and sets the
        threshold to the quantile of their cells that leaves the fraction of non-empty cells
        of the real showers (the CaloChallenge "sparsity" feature). On 1,240 Geant4
        electrons (300 steps of the default flow, 10 Euler steps) the 1 % quantile left 20 %
        of the cells non-empty against 14.8 % real and FPD 11x the floor; a threshold at the
        real occupancy gave ~7.5-8x (``benchmarks/RESULTS.md``). A no-op (None) when the model
        space does not keep empty cells at 0 (``zero_threshold`` is None).

        Args:
            showers, conditions: training showers and conditions (physical units).
            n: showers drawn for the calibration (a random subset of the rows).
            steps, solver: the sampler the showers will be generated with.
            seed: seed of the subset and of the noise.
            batch_size: showers per compiled solver call.

        Returns:
            The new threshold (model space), or None.
        """
        if self.zero_threshold is None:
            return None
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"`n` must be a positive integer. Received: n={n!r}")
        showers, conditions = self._check_arrays(showers, conditions)
        rows = np.sort(np.random.default_rng(seed).permutation(len(showers))[:n])
        occupancy = float(np.mean(showers[rows] > 0))
        threshold = self.zero_threshold
        try:
            self.zero_threshold = None
            raw = self.generate(conditions[rows], steps=steps, solver=solver, seed=seed,
                                batch_size=batch_size, return_model_space=True)
        finally:
            self.zero_threshold = threshold
        if 0.0 < occupancy < 1.0:
            threshold = float(np.quantile(raw, 1.0 - occupancy))
            self.zero_threshold = max(threshold, 0.0)
        return self.zero_threshold

    def decode_states(self, states, batch_size=256):
        """Model-space images of the flow's end states (the identity here; the decoder in
        :class:`LatentFlowMatching`)."""
        return states

    # -- serialisation --------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "velocity_network": keras.saving.serialize_keras_object(self.velocity_network),
                "total_network": None if self.total_network is None
                else keras.saving.serialize_keras_object(self.total_network),
                "time_sampling": self.time_sampling,
                "logit_normal_mean": self.logit_normal_mean,
                "logit_normal_std": self.logit_normal_std,
                "p_uncond": self.p_uncond,
                "ema_decay": self.ema_decay,
                "ema_warmup": self.ema_warmup,
                "total_weight": self.total_weight,
                "total_stats": self.total_stats,
                "total_time_sampling": self.total_time_sampling,
                "total_repeats": self.total_repeats,
                "total_steps": self.total_steps,
                "total_solver": self.total_solver,
                "zero_quantile": self.zero_quantile,
                "zero_threshold": self.zero_threshold,
                "shower_transform": serialize_transform(self.shower_transform),
                "condition_transform": serialize_transform(self.condition_transform),
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("velocity_network", "total_network"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        config["shower_transform"] = get_transform(config.get("shower_transform"))
        config["condition_transform"] = get_transform(config.get("condition_transform"))
        return cls(**config)
