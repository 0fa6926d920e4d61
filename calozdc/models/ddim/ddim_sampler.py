"""DDIM reverse process as a Keras model (so ``predict`` compiles it on every backend)."""

import keras
import numpy as np
from keras import ops

from calozdc.models.ddim.noise_schedule import PREDICTION_TYPES, NoiseSchedule


def sampling_timesteps(num_timesteps, steps):
    """The ``steps + 1`` timesteps ``0 = t_0 < t_1 < ... < t_S = T`` visited by DDIM.

    Evenly spaced ("linspace" spacing) and rounded to integers; strictly increasing for
    ``1 <= steps <= T``.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= num_timesteps:
        raise ValueError(
            f"`steps` must be an integer in [1, {num_timesteps}]. Received: steps={steps}"
        )
    return np.round(np.linspace(0, num_timesteps, steps + 1)).astype("int32")


@keras.saving.register_keras_serializable(package="calozdc")
class DDIMSampler(keras.Model):
    """Runs the DDIM reverse process from noise ``x_T`` to a sample ``x_0``.

    At each of ``steps`` steps ``t -> s`` (``s < t``, evenly spaced over ``T .. 0``) the
    denoiser output is turned into ``x0_hat`` and ``eps_hat`` and (Song et al. 2021, eq. 12)

    ``x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z``,
    ``sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)``.

    ``eta = 0`` is the deterministic DDIM, ``eta = 1`` the DDPM ancestral sampler. With
    ``guidance = w != 0`` the output is classifier-free guided,
    ``out = (1 + w) out(c) - w out(null)`` (Ho & Salimans 2022, eq. 6); the conditional and
    unconditional passes share one batched call. The loop is an ``ops.fori_loop``; the
    stochastic noise of all steps (only when ``eta > 0``) is drawn before the loop from the
    sampler's ``SeedGenerator``, which costs ``steps`` images of memory per sample.

    Args:
        denoiser: Keras model taking the dict inputs of
            :class:`~calozdc.models.ddim.ConditionalUNet`.
        schedule: the :class:`NoiseSchedule` the denoiser was trained with.
        prediction_type: ``"epsilon"`` or ``"v"`` (what the denoiser predicts).
        steps: number of denoising steps ``S`` (``1 .. T``).
        eta: stochasticity ``>= 0``.
        guidance: classifier-free guidance scale ``w`` (0 = plain conditional sampling).
        clip_x0: if set, ``x0_hat`` is clipped to ``[-clip_x0, clip_x0]`` at every step.
        seed: initial seed of the sampler's ``SeedGenerator`` (used only when ``eta > 0``).
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: dict with ``"conditions"`` ``(B, k)`` (model space) and ``"noise"``
            ``(B, H, W, C)``, the starting point ``x_T ~ N(0, I)``.

    Returns:
        ``x_0`` of shape ``(B, H, W, C)`` in model (transformed) space, float32 (the update
        and its coefficients are float32 under mixed precision too).

    Example:

    >>> sampler = DDIMSampler(unet, NoiseSchedule(), steps=10)
    >>> x0 = sampler.predict({"conditions": c, "noise": z}, batch_size=256)

    References:
        Song, Meng & Ermon 2021, "Denoising diffusion implicit models", arXiv:2010.02502,
        eqs. 12 and 16.
        Ho & Salimans 2022, "Classifier-free diffusion guidance", arXiv:2207.12598.
    """

    def __init__(
        self,
        denoiser,
        schedule,
        prediction_type="v",
        steps=50,
        eta=0.0,
        guidance=0.0,
        clip_x0=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(
                f"`schedule` must be a NoiseSchedule. Received: schedule={schedule!r}"
            )
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"`prediction_type` must be one of {PREDICTION_TYPES}. "
                f"Received: prediction_type={prediction_type!r}"
            )
        if not eta >= 0:
            raise ValueError(f"`eta` must be >= 0. Received: eta={eta}")
        if clip_x0 is not None and not clip_x0 > 0:
            raise ValueError(f"`clip_x0` must be None or > 0. Received: clip_x0={clip_x0}")
        self._timesteps = sampling_timesteps(schedule.num_timesteps, steps)
        self.denoiser = denoiser
        self.schedule = schedule
        self.prediction_type = prediction_type
        self.steps = steps
        self.eta = float(eta)
        self.guidance = float(guidance)
        self.clip_x0 = None if clip_x0 is None else float(clip_x0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    @property
    def input_dtype(self):
        # The reverse process runs in float32 under any dtype policy (the starting noise is
        # not rounded to float16/bfloat16); only the denoiser follows the policy.
        return "float32"

    def denoise(self, x_t, t, conditions):
        """Guided denoiser output at integer timestep(s) ``t`` broadcast to ``(B,)``."""
        column = ops.ones_like(x_t[:, :1, 0, 0])  # (B, 1) without a dynamic-shape op
        timesteps = column * ops.cast(t, x_t.dtype)
        if self.guidance == 0.0:
            return self.denoiser(
                {
                    "noisy_showers": x_t,
                    "timesteps": timesteps,
                    "conditions": conditions,
                    "condition_mask": column,
                },
                training=False,
            )
        both = self.denoiser(
            {
                "noisy_showers": ops.concatenate([x_t, x_t], axis=0),
                "timesteps": ops.concatenate([timesteps, timesteps], axis=0),
                "conditions": ops.concatenate([conditions, ops.zeros_like(conditions)], axis=0),
                "condition_mask": ops.concatenate([column, ops.zeros_like(column)], axis=0),
            },
            training=False,
        )
        conditional, unconditional = ops.split(both, 2, axis=0)
        return (1.0 + self.guidance) * conditional - self.guidance * unconditional

    def coefficients(self):
        """Per-step constants of the update, computed in float64 (index ``k = 1 .. S``).

        Returns a dict of float64 arrays of length ``S + 1`` (entry 0 unused): ``t``,
        ``signal_t = sqrt(abar_t)``, ``noise_t = sqrt(1 - abar_t)``, ``signal_s``,
        ``direction_s = sqrt(1 - abar_s - sigma^2)`` and ``sigma``, where ``s = t_{k-1}``.
        """
        abar = self.schedule.alpha_bars
        t = self._timesteps
        s = np.concatenate([[0], t[:-1]])
        abar_t, abar_s = abar[t], abar[s]
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma2 = (1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)
        sigma2 = self.eta**2 * np.nan_to_num(sigma2)
        sigma2[0] = 0.0
        return {
            "t": t.astype("float64"),
            "signal_t": np.sqrt(abar_t),
            "noise_t": np.sqrt(1 - abar_t),
            "signal_s": np.sqrt(abar_s),
            "direction_s": np.sqrt(np.maximum(1 - abar_s - sigma2, 0.0)),
            "sigma": np.sqrt(sigma2),
        }

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs["noise"], "float32")
        conditions = ops.convert_to_tensor(inputs["conditions"], "float32")
        table = {
            key: ops.convert_to_tensor(value.astype("float32"))
            for key, value in self.coefficients().items()
        }
        timesteps = ops.convert_to_tensor(self._timesteps)
        n_steps = self.steps
        if self.eta > 0:
            step_noise = keras.random.normal(
                (n_steps,) + tuple(ops.shape(x)), seed=self.seed_generator
            )

        def step(i, x_t):
            k = n_steps - i  # walk t_S = T -> t_0 = 0

            def coefficient(name):
                return ops.take(table[name], k)

            t = ops.take(timesteps, k)
            t_vector = ops.cast(ops.ones_like(x_t[:, 0, 0, 0]), "int32") * t
            prediction = ops.cast(self.denoise(x_t, t, conditions), x_t.dtype)
            x0, eps = self.schedule.split_prediction(x_t, prediction, t_vector, self.prediction_type)
            if self.clip_x0 is not None:
                x0 = ops.clip(x0, -self.clip_x0, self.clip_x0)
                eps = (x_t - coefficient("signal_t") * x0) / coefficient("noise_t")
            x_s = coefficient("signal_s") * x0 + coefficient("direction_s") * eps
            if self.eta > 0:
                x_s = x_s + coefficient("sigma") * ops.take(step_noise, i, axis=0)
            return x_s

        return ops.fori_loop(0, n_steps, step, x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "denoiser": keras.saving.serialize_keras_object(self.denoiser),
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "prediction_type": self.prediction_type,
                "steps": self.steps,
                "eta": self.eta,
                "guidance": self.guidance,
                "clip_x0": self.clip_x0,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["denoiser"] = keras.saving.deserialize_keras_object(config["denoiser"])
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
