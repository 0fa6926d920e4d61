"""A trained generator as one deterministic function ``(conditions, noise) -> showers``.

``generate`` of every family draws its random numbers with numpy and runs the networks in
batches, with numpy pre- and post-processing around them. :func:`generator_graph` puts all
of it in one Keras model written in ``keras.ops``, so that one traced graph holds the
condition transform, the network(s), the fixed-step sampler, the zero threshold and the
inverse shower transform, and every random number is an input (``noise``, drawn by the
caller). Given the noise that ``generate(seed=s)`` draws (:func:`generation_noise`), it gives
``generate``'s showers.

The model is dispatched by capability, not by class name: a model with an autoregressive
code ``prior`` and a ``vqvae`` (the VQ generators) exports its decoder given codes only; a
``velocity_network`` is the flow family (a ``decoder`` and ``latent_scale``: the latent
flow); a ``denoiser`` with a ``schedule`` is the DDIM; a ``generator`` with a ``latent_dim``
is a GAN (a ``phase`` of 1: the two-step GAN's regression phase, noise ignored).
"""

import keras
import numpy as np
from keras import ops

from calozdc.export.transform_ops import forward_ops, inverse_ops

#: What can be exported: the whole generator, or the decoder given code indices.
PARTS = ("generator", "decoder")


def _kind(model):
    if hasattr(model, "prior") and hasattr(model, "vqvae"):
        return "vq"
    if hasattr(model, "velocity_network"):
        return "flow"
    if hasattr(model, "denoiser") and hasattr(model, "schedule"):
        return "ddim"
    if hasattr(model, "generator") and hasattr(model, "latent_dim"):
        return "gan"
    raise ValueError(
        "Cannot export this model: it is none of the calozdc families (GAN, two-step GAN, VQ "
        f"generator, DDIM, flow). Received: model of class {type(model).__name__}"
    )


def _zero_threshold(samples, threshold):
    """:func:`calozdc.models.preprocessing.apply_zero_threshold` in ``keras.ops``."""
    if threshold is None:
        return samples
    kept = ops.where(samples < threshold, 0.0, samples)
    flat = ops.reshape(kept, (ops.shape(kept)[0], -1))
    any_left = ops.max(ops.cast(flat > 0, "float32"), axis=1)
    any_left = ops.reshape(any_left, (-1,) + (1,) * (len(samples.shape) - 1))
    return ops.where(any_left > 0, kept, samples)


def _scale_to_totals(showers, totals):
    """Each non-negative shower scaled to sum to its total (an empty one stays empty)."""
    sums = ops.sum(ops.reshape(showers, (ops.shape(showers)[0], -1)), axis=1)
    scale = ops.where(sums > 0, totals / ops.where(sums > 0, sums, 1.0), 0.0)
    return showers * ops.reshape(scale, (-1,) + (1,) * (len(showers.shape) - 1))


class GeneratorGraph(keras.Model):
    """Base of the exported graphs: ``[conditions, noise] -> showers`` (physical units).

    Subclasses set ``condition_dim``, ``image_shape``, ``noise_layout`` (a list of
    ``(name, shape)`` segments, concatenated flat along axis 1 of ``noise``; for the decoder
    export: one segment ``("codes", (h, w))`` of integer code indices) and ``settings`` (the
    sampler settings baked in), and implement :meth:`showers`.

    Call arguments:
        inputs: ``[conditions (B, k) float32 in physical units, noise (B, D) float32]``.

    Returns:
        ``(B, H, W, C)`` float32 showers in physical units.
    """

    noise_dtype = "float32"

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.condition_transform = model.condition_transform
        self.shower_transform = model.shower_transform
        self.settings = {}
        self.built = True  # the networks it calls are built

    @property
    def noise_size(self):
        return int(sum(int(np.prod(shape)) for _, shape in self.noise_layout))

    def _segments(self, noise):
        out, start = {}, 0
        for name, shape in self.noise_layout:
            size = int(np.prod(shape))
            out[name] = ops.reshape(noise[:, start:start + size], (-1,) + tuple(shape))
            start += size
        return out

    def attach_total_model(self, model):
        """Scale the showers to totals of ``model``'s fitted total model, as ``generate`` does
        (the energy/shape factorisation of :mod:`calozdc.models.total_energy`): one more
        noise segment, ``shower_total``, and the total model's 1-D flow inside the graph."""
        self.total_graph = None
        if not getattr(model, "totals_fitted", False):
            return
        total = model.total_model
        self.total_graph = _FlowGraph(total, steps=int(total.total_steps),
                                      solver=total.total_solver, name="total_graph")
        self.noise_layout.append(("shower_total", (1,)))
        self.settings.update({"total_model": {"steps": int(total.total_steps),
                                              "solver": total.total_solver}})

    def call(self, inputs):
        conditions, noise = inputs
        conditions = ops.cast(conditions, "float32")
        segments = self._segments(noise)
        showers = self.showers(conditions, segments)
        if getattr(self, "total_graph", None) is None:
            return showers
        totals = self.total_graph.showers(self.model_conditions(conditions),
                                          {"image": segments["shower_total"]})[:, 0]
        return _scale_to_totals(showers, totals)

    def model_conditions(self, conditions):
        return forward_ops(self.condition_transform, conditions)

    def physical(self, samples, conditions):
        return inverse_ops(self.shower_transform, samples, conditions)


class _GANGraph(GeneratorGraph):
    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        self.generator = model.generator
        self.mask_value = bool(model._has_mask_value_heads())
        self.zero_noise = getattr(model, "phase", 2) != 2  # two-step GAN, regression phase
        self.condition_dim = int(model.generator.input_shape[1][-1])
        self.image_shape = tuple(model.generator.output_shape[1:-1]) + (
            int(model.discriminator.input_shape[0][-1]),)
        self.noise_layout = [("latent", (int(model.latent_dim),))]
        self.settings = {"phase": 1 if self.zero_noise else 2} if hasattr(model, "phase") else {}

    def showers(self, conditions, noise):
        z = noise["latent"] * 0.0 if self.zero_noise else noise["latent"]
        raw = self.generator([z, self.model_conditions(conditions)], training=False)
        if self.mask_value:
            raw = raw[..., :1] * raw[..., 1:]
        return ops.maximum(self.physical(raw, conditions), 0.0)


class _DDIMGraph(GeneratorGraph):
    def __init__(self, model, steps=None, guidance=0.0, use_ema=True, **kwargs):
        super().__init__(model, **kwargs)
        steps = 50 if steps is None else steps
        self.sampler = model.sampler(steps, 0.0, guidance, use_ema, "default")
        self.zero_threshold = model.zero_threshold
        self.condition_dim = int(model.condition_dim)
        self.image_shape = tuple(model.image_shape)
        self.noise_layout = [("image", self.image_shape)]
        self.settings = {"steps": int(steps), "eta": 0.0, "guidance": float(guidance),
                         "use_ema": bool(use_ema)}

    def showers(self, conditions, noise):
        samples = self.sampler({"conditions": self.model_conditions(conditions),
                                "noise": noise["image"]})
        samples = _zero_threshold(ops.cast(samples, "float32"), self.zero_threshold)
        return ops.maximum(self.physical(samples, conditions), 0.0)


class _FlowGraph(GeneratorGraph):
    def __init__(self, model, steps=None, solver=None, guidance=0.0, use_ema=True, **kwargs):
        super().__init__(model, **kwargs)
        steps = 10 if steps is None else steps
        solver = "euler" if solver is None else solver
        self.image_sampler = model.sampler(steps, solver, guidance, use_ema)
        self.factorised = model.total_network is not None
        self.latent = hasattr(model, "decoder") and hasattr(model, "latent_scale")
        self.condition_dim = int(model.condition_dim)
        self.image_shape = tuple(model.image_shape)
        self.zero_threshold = model.zero_threshold
        self.noise_layout = []
        if self.factorised:
            if model.total_stats is None:
                raise ValueError("The flow's log-total statistics are not fitted: nothing to "
                                 "export. Received: total_stats=None")
            self.total_sampler = model.sampler(model.total_steps, model.total_solver, guidance,
                                               use_ema, part="total")
            self.total_stats = [float(v) for v in model.total_stats]
            self.noise_layout.append(("total", (1,)))
        self.noise_layout.append(("latent" if self.latent else "image",
                                  tuple(model.state_shape)))
        if self.latent:
            self.decoder = model.decoder
            self.latent_scale = float(model._scale)
        self.settings = {"steps": int(steps), "solver": solver, "guidance": float(guidance),
                         "use_ema": bool(use_ema)}
        if self.factorised:
            self.settings.update({"total_steps": int(model.total_steps),
                                  "total_solver": model.total_solver})

    def showers(self, conditions, noise):
        model_conditions = self.model_conditions(conditions)
        if self.factorised:
            z = ops.cast(self.total_sampler({"conditions": model_conditions,
                                             "noise": noise["total"]}), "float32")
            mean, std, floor = self.total_stats
            # generate() clips at +-700 in float64; float32 exp overflows above ~88.
            totals = ops.exp(ops.clip(z[:, 0] * std + mean, -80.0, 80.0))
            totals = ops.where(totals > 2.0 * floor, totals, 0.0)  # the floor stands for 0
            model_conditions = ops.concatenate([model_conditions, z], axis=1)
        state = noise["latent" if self.latent else "image"]
        samples = ops.cast(self.image_sampler({"conditions": model_conditions,
                                               "noise": state}), "float32")
        if self.latent:
            samples = ops.cast(self.decoder(samples * self.latent_scale, training=False),
                               "float32")
        samples = self.physical(_zero_threshold(samples, self.zero_threshold), conditions)
        samples = ops.maximum(samples, 0.0)
        if not self.factorised:
            return samples
        return _scale_to_totals(samples, totals)


class _VQDecoderGraph(GeneratorGraph):
    """The VQ generator's decoder given code indices (the prior stays outside)."""

    noise_dtype = "int32"

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        vqvae = model.vqvae
        self.quantizer = vqvae.quantizer
        self.decoder = vqvae.decoder
        self.num_codes = int(vqvae.num_codes)
        self.condition_dim = int(vqvae.condition_dim)
        self.image_shape = tuple(vqvae.image_shape)
        self.noise_layout = [("codes", tuple(int(s) for s in vqvae.latent_shape[:-1]))]
        self.settings = {"part": "decoder"}

    def _segments(self, noise):
        codes = ops.cast(noise, "int32")
        return {"codes": ops.reshape(codes, (-1,) + self.noise_layout[0][1])}

    def showers(self, conditions, noise):
        latent = self.quantizer.lookup(noise["codes"])
        rec = self.decoder([latent, self.model_conditions(conditions)], training=False)
        return ops.maximum(self.physical(ops.cast(rec, "float32"), conditions), 0.0)


def generator_graph(model, steps=None, solver=None, guidance=0.0, use_ema=True,
                    part="generator"):
    """The exportable graph of ``model`` (a :class:`GeneratorGraph`).

    Args:
        model: a trained calozdc generator (any family; see the module docstring).
        steps: sampler steps baked in (DDIM: default 50, flow: default 10; ignored by GANs).
        solver: flow ODE solver (``"euler"``, ``"midpoint"``, ``"heun"``; default Euler).
        guidance: classifier-free guidance scale (DDIM, flow).
        use_ema: sample with the EMA weights (the default of ``generate``).
        part: ``"generator"`` (the whole generator) or ``"decoder"`` (a VQ generator's
            decoder given code indices: its autoregressive prior samples code by code with
            categorical draws and is not exported).

    Raises:
        ValueError: an unknown model or part, steps <= 0, a solver for a family without one,
            or the whole of a VQ generator (naming ``part="decoder"``).
    """
    kind = _kind(model)
    if part not in PARTS:
        raise ValueError(f"`part` must be one of {PARTS}. Received: part={part!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 1):
        raise ValueError(f"`steps` must be a positive integer. Received: steps={steps!r}")
    if solver is not None and kind != "flow":
        raise ValueError(f"`solver` applies to the flow family only. Received: solver={solver!r}")
    if kind == "vq":
        if part != "decoder":
            raise ValueError(
                f"A {type(model).__name__} cannot be exported whole: its autoregressive prior "
                "samples the codes one by one with categorical draws. Export the decoder "
                "given codes with part='decoder' (calozdc export --part decoder) and sample "
                f"the codes with model.prior.sample in Python. Received: part={part!r}"
            )
        return _VQDecoderGraph(model, name="vq_decoder_graph")
    if part != "generator":
        raise ValueError(
            f"part='decoder' applies to VQ generators only. Received: part={part!r} for a "
            f"{type(model).__name__}"
        )
    if kind == "gan":
        graph = _GANGraph(model, name="gan_graph")
    elif kind == "ddim":
        graph = _DDIMGraph(model, steps=None if steps is None else int(steps),
                           guidance=guidance, use_ema=use_ema, name="ddim_graph")
    else:
        if solver is not None:
            from calozdc.models.flow.flow_sampler import check_solver

            check_solver(solver, 1)
        graph = _FlowGraph(model, steps=None if steps is None else int(steps), solver=solver,
                           guidance=guidance, use_ema=use_ema, name="flow_graph")
    graph.attach_total_model(model)
    return graph


def generation_noise(model, n, seed=None):
    """The ``noise`` input, ``(n, D)``, that reproduces ``model.generate(conditions, seed=seed)``.

    Draws what each family's ``generate`` draws from ``numpy.random.default_rng(seed)``, in
    its order (flow: the totals' noise, then the image's), then, with a fitted total model,
    the total's noise from ``default_rng(seed + 1)``, flattened in the layout of
    :func:`generator_graph`. Not defined for VQ generators (their prior draws inside Keras).
    """
    kind = _kind(model)
    rng = np.random.default_rng(seed)
    if kind == "gan":
        parts = [rng.standard_normal((n, model.latent_dim)).astype("float32")]
    elif kind == "ddim":
        parts = [rng.standard_normal((n,) + tuple(model.image_shape), dtype=np.float32)]
    elif kind == "flow":
        parts = []
        if model.total_network is not None:
            parts.append(rng.standard_normal((n, 1), dtype=np.float32))
        parts.append(rng.standard_normal((n,) + tuple(model.state_shape), dtype=np.float32))
    if kind != "vq":
        if getattr(model, "totals_fitted", False):  # scale_to_totals: drawn from seed + 1
            totals_rng = np.random.default_rng(None if seed is None else int(seed) + 1)
            parts.append(totals_rng.standard_normal((n, 1), dtype=np.float32))
        return np.concatenate([p.reshape(n, -1) for p in parts], axis=1)
    raise ValueError(
        "A VQ generator's noise is drawn inside its prior (keras.random), not with numpy; "
        f"its export takes code indices instead. Received: model of class {type(model).__name__}"
    )
