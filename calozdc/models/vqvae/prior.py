"""Conditional autoregressive transformer prior over VQ-VAE code indices."""

import keras
import numpy as np
from keras import ops

from calozdc.models.vqvae.cached_code_sampler import CachedCodeSampler, gumbel_max_sample
from calozdc.utils.progress import batch_ranges


def sample_logits(logits, temperature=1.0, top_k=None, seed=None):
    """Draw one index per row of ``logits`` ``(B, K)`` with temperature and top-k.

    Keeps the ``top_k`` largest logits (the others get probability 0; ties at the k-th value
    are kept), divides by ``temperature`` and samples from the softmax with
    ``keras.random.categorical``. ``temperature == 0`` returns the argmax (the limit
    ``temperature → 0``). Top-k sampling: Fan, Lewis & Dauphin 2018, arXiv:1805.04833.

    Args:
        logits: float tensor ``(B, K)``.
        temperature: >= 0.
        top_k: None (all codes) or an integer in ``[1, K]``.
        seed: int, None or a ``keras.random.SeedGenerator``.

    Returns:
        int32 tensor ``(B,)``.
    """
    logits = ops.cast(logits, "float32")
    num_codes = int(logits.shape[-1])
    _check_sampling(temperature, top_k, num_codes)
    if top_k is not None and top_k < num_codes:
        kth = ops.top_k(logits, int(top_k), sorted=True)[0][:, -1:]
        logits = ops.where(logits < kth, -1e9, logits)
    if float(temperature) == 0.0:
        return ops.cast(ops.argmax(logits, axis=-1), "int32")
    draws = keras.random.categorical(logits / float(temperature), 1, seed=seed, dtype="int32")
    return draws[:, 0]


def _check_sampling(temperature, top_k, num_codes):
    try:
        ok = float(temperature) >= 0.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"`temperature` must be a number >= 0. Received: temperature={temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                              or not 1 <= top_k <= num_codes):
        raise ValueError(f"`top_k` must be None or an integer in [1, {num_codes}]. Received: "
                         f"top_k={top_k!r}")


@keras.saving.register_keras_serializable(package="calozdc")
class CodePrior(keras.Model):
    """Autoregressive transformer ``p(codes | particle)`` over a VQ-VAE's code grid.

    The ``h × w`` code indices of a shower are read in raster order as a sequence of length
    ``T = h·w``. ``num_condition_tokens`` tokens made from the (model-space) conditions by a
    dense layer are prepended, the code embeddings of positions ``0..T−2`` follow, learned
    position embeddings are added, and ``num_layers`` pre-norm transformer blocks with causal
    self-attention (Vaswani et al. 2017; GPT-2 layout, Radford et al. 2019) produce, at the
    position before code ``t``, the logits of code ``t`` given the particle and codes
    ``< t`` (the VQ-VAE prior of van den Oord et al. 2017 / Esser et al. 2021, with a
    transformer instead of a PixelCNN).

    Trained with Keras' own ``fit``: ``x = {"codes": (N, T) int, "conditions": (N, k)}``,
    ``y = codes``, loss ``SparseCategoricalCrossentropy(from_logits=True)`` (see
    :meth:`compile`'s default). :meth:`sample` draws codes with temperature and top-k.

    Args:
        num_codes: codebook size ``K``.
        sequence_length: ``T`` (codes per shower).
        condition_dim: number of condition features ``k``.
        embed_dim: token width.
        num_heads: attention heads (``embed_dim`` divisible by it).
        num_layers: transformer blocks.
        mlp_dim: hidden width of the blocks' MLP (default ``4 · embed_dim``).
        num_condition_tokens: tokens the conditions are mapped to.
        dropout: dropout rate in attention and MLP.
        seed: seed of the sampling ``SeedGenerator`` (``sample(seed=None)``).
        **kwargs: :class:`keras.Model` arguments.

    Call arguments:
        inputs: dict ``{"codes": (B, T) int, "conditions": (B, k)}``.
        training: dropout on/off.

    Returns:
        logits ``(B, T, num_codes)``.

    Example:

    >>> prior = CodePrior(num_codes=128, sequence_length=25, condition_dim=1)
    >>> prior.compile(optimizer="adam")
    >>> prior.fit({"codes": codes, "conditions": cond}, codes, epochs=5)  # doctest: +SKIP
    >>> new_codes = prior.sample(cond, temperature=1.0, top_k=32, seed=0)

    References:
        Vaswani et al. 2017, "Attention is all you need", arXiv:1706.03762.
        van den Oord et al. 2017, arXiv:1711.00937 (autoregressive prior over codes).
        Esser, Rombach & Ommer 2021, "Taming transformers", arXiv:2012.09841 (conditional
        transformer prior with prepended condition tokens, top-k sampling).
    """

    def __init__(self, num_codes, sequence_length, condition_dim, embed_dim=64, num_heads=4,
                 num_layers=2, mlp_dim=None, num_condition_tokens=1, dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value, low in (("num_codes", num_codes, 2),
                                 ("sequence_length", sequence_length, 1),
                                 ("condition_dim", condition_dim, 1),
                                 ("embed_dim", embed_dim, 1), ("num_heads", num_heads, 1),
                                 ("num_layers", num_layers, 1),
                                 ("num_condition_tokens", num_condition_tokens, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"`embed_dim` must be divisible by `num_heads`. Received: "
                             f"embed_dim={embed_dim}, num_heads={num_heads}")
        mlp_dim = 4 * embed_dim if mlp_dim is None else mlp_dim
        if isinstance(mlp_dim, bool) or not isinstance(mlp_dim, int) or mlp_dim < 1:
            raise ValueError(f"`mlp_dim` must be None or an integer >= 1. Received: mlp_dim={mlp_dim!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.num_codes = num_codes
        self.sequence_length = sequence_length
        self.condition_dim = condition_dim
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.mlp_dim = mlp_dim
        self.num_condition_tokens = num_condition_tokens
        self.dropout = float(dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

        length = num_condition_tokens + sequence_length - 1
        self.condition_tokens = keras.layers.Dense(num_condition_tokens * embed_dim,
                                                   name="condition_tokens")
        self.code_embedding = keras.layers.Embedding(num_codes, embed_dim, name="code_embedding")
        self.position_embedding = keras.layers.Embedding(length, embed_dim,
                                                         name="position_embedding")
        self.attention_norms, self.attentions, self.mlp_norms = [], [], []
        self.mlp_hidden, self.mlp_out = [], []
        for i in range(num_layers):
            self.attention_norms.append(keras.layers.LayerNormalization(name=f"ln_attn_{i}"))
            # float32 attention under mixed precision (softmax; JAX on CPU cannot lower
            # the float16 attention kernel).
            self.attentions.append(keras.layers.MultiHeadAttention(
                num_heads, embed_dim // num_heads, dropout=self.dropout, dtype="float32",
                name=f"attention_{i}"))
            self.mlp_norms.append(keras.layers.LayerNormalization(name=f"ln_mlp_{i}"))
            self.mlp_hidden.append(keras.layers.Dense(mlp_dim, activation="gelu",
                                                      name=f"mlp_hidden_{i}"))
            self.mlp_out.append(keras.layers.Dense(embed_dim, name=f"mlp_out_{i}"))
        self.final_norm = keras.layers.LayerNormalization(name="ln_final")
        # float32 logits (they feed the cross-entropy and the sampling softmax).
        self.to_logits = keras.layers.Dense(num_codes, dtype="float32", name="to_logits")
        self.dropout_layer = keras.layers.Dropout(self.dropout)
        self._build_layers(length)

    def _build_layers(self, length):
        # Built now so that a freshly constructed (or deserialised) prior has its weights.
        d = self.embed_dim
        self.condition_tokens.build((None, self.condition_dim))
        self.code_embedding.build((None, None))
        self.position_embedding.build((None,))
        seq = (None, length, d)
        for i in range(self.num_layers):
            self.attention_norms[i].build(seq)
            self.attentions[i].build(seq, seq)
            self.mlp_norms[i].build(seq)
            self.mlp_hidden[i].build(seq)
            self.mlp_out[i].build((None, length, self.mlp_dim))
        self.final_norm.build(seq)
        self.to_logits.build(seq)
        self.built = True

    def call(self, inputs, training=False):
        if not isinstance(inputs, dict) or not {"codes", "conditions"} <= set(inputs):
            raise ValueError("CodePrior inputs must be a dict with 'codes' and 'conditions'. "
                             f"Received: {type(inputs).__name__}")
        codes = ops.cast(inputs["codes"], "int32")
        conditions = ops.cast(inputs["conditions"], "float32")
        m, d = self.num_condition_tokens, self.embed_dim
        cond = ops.reshape(self.condition_tokens(conditions), (-1, m, d))
        tokens = cond
        if self.sequence_length > 1:
            tokens = ops.concatenate([cond, self.code_embedding(codes[:, :-1])], axis=1)
        length = m + self.sequence_length - 1
        x = tokens + self.position_embedding(ops.arange(length, dtype="int32"))[None]
        x = self.dropout_layer(x, training=training)
        for i in range(self.num_layers):
            h = self.attention_norms[i](x)
            attended = self.attentions[i](h, h, use_causal_mask=True, training=training)
            x = x + ops.cast(attended, x.dtype)
            h = self.mlp_hidden[i](self.mlp_norms[i](x))
            x = x + self.dropout_layer(self.mlp_out[i](h), training=training)
        x = self.final_norm(x)[:, m - 1:]
        return self.to_logits(x)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Keras ``compile``; the default loss is sparse cross-entropy on logits."""
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        # compile() keeps Keras' signature, so the saved compile config applies as is.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def sample(self, conditions, temperature=1.0, top_k=None, seed=None, batch_size=256,
               verbose=False, cache=True):
        """Draw code sequences ``(N, T)`` (int32 numpy) for model-space conditions ``(N, k)``.

        Autoregressive, in padded batches of ``batch_size`` (one input shape, one
        compilation). Per batch, uniform noise ``(batch, T, num_codes)`` is drawn from the
        prior's ``SeedGenerator`` and code ``t`` is :func:`gumbel_max_sample` of the logits
        at position ``t`` with the noise of step ``t`` (a draw from the softmax at
        ``temperature``, restricted to the ``top_k`` largest logits).

        ``cache=True`` (default): one compiled loop with cached keys and values
        (:class:`CachedCodeSampler`; each step runs the transformer on one token).
        ``cache=False``: one compiled forward pass of the full sequence per code (``T``
        passes), the reference the cache is tested against: the same seed gives the same
        codes either way. ``seed`` (int) resets the prior's ``SeedGenerator``, so the same
        seed gives the same codes. ``verbose`` shows a progress bar of the sequences sampled
        (stderr).
        """
        conditions = np.asarray(conditions, "float32")
        if conditions.ndim != 2 or conditions.shape[1] != self.condition_dim:
            raise ValueError(f"`conditions` must have shape (N, {self.condition_dim}). "
                             f"Received: conditions.shape={conditions.shape}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: "
                             f"batch_size={batch_size!r}")
        _check_sampling(temperature, top_k, self.num_codes)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"`seed` must be None or a non-negative integer. Received: "
                                 f"seed={seed!r}")
            self.seed_generator.state.assign(
                ops.convert_to_tensor([int(seed), 0], dtype=self.seed_generator.state.dtype))
        n = len(conditions)
        codes = np.zeros((n, self.sequence_length), "int32")
        batch = max(1, min(batch_size, n))
        sampler = self.cached_sampler(temperature, top_k) if cache else None
        for start, _ in batch_ranges(n, batch, "generate", verbose):
            cond = conditions[start:start + batch]
            size = len(cond)
            if size < batch:  # pad: one input shape, one compilation
                cond = np.concatenate([cond, np.repeat(cond[:1], batch - size, axis=0)])
            noise = ops.convert_to_numpy(keras.random.uniform(
                (batch, self.sequence_length, self.num_codes), seed=self.seed_generator))
            if sampler is not None:
                current = np.asarray(sampler.predict_on_batch(
                    {"conditions": cond, "noise": noise}), "int32")
            else:
                current = np.zeros((batch, self.sequence_length), "int32")
                for t in range(self.sequence_length):
                    logits = self.predict_on_batch({"codes": current, "conditions": cond})
                    draw = gumbel_max_sample(np.asarray(logits)[:, t], noise[:, t],
                                             temperature, top_k)
                    current[:, t] = ops.convert_to_numpy(draw)
            codes[start:start + size] = current[:size]
        return codes

    def cached_sampler(self, temperature=1.0, top_k=None):
        """The :class:`CachedCodeSampler` of this prior for ``(temperature, top_k)`` (made
        once per setting, not saved)."""
        _check_sampling(temperature, top_k, self.num_codes)
        samplers = self.__dict__.setdefault("_cached_samplers", {})
        key = (float(temperature), top_k)
        if key not in samplers:
            samplers[key] = CachedCodeSampler(self, temperature, top_k,
                                              name=f"{self.name}_cached_sampler_{len(samplers)}")
        return samplers[key]

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_codes": self.num_codes,
            "sequence_length": self.sequence_length,
            "condition_dim": self.condition_dim,
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "mlp_dim": self.mlp_dim,
            "num_condition_tokens": self.num_condition_tokens,
            "dropout": self.dropout,
            "seed": self.seed,
        })
        return config
