"""``CachedCodeSampler``: a :class:`CodePrior`'s autoregressive sampling with a key/value cache."""

import keras
from keras import ops


def gumbel_max_sample(logits, uniform, temperature=1.0, top_k=None):
    """One index per row of ``logits`` ``(B, K)`` from given uniform noise ``(B, K)``.

    The Gumbel-max trick: ``argmax(logits / temperature + g)`` with ``g = −log(−log u)``
    is a draw from ``softmax(logits / temperature)`` (Gumbel 1954; Maddison, Tarlow & Minka
    2014, "A* sampling", arXiv:1411.0030, sec. 2). With the noise drawn beforehand, the
    same noise gives the same codes whichever way the logits were computed (cached or
    not). ``top_k`` keeps the ``top_k`` largest logits (ties at the k-th value kept; Fan,
    Lewis & Dauphin 2018, arXiv:1805.04833); ``temperature == 0`` is the argmax.

    Args:
        logits: float ``(B, K)``.
        uniform: float ``(B, K)`` in ``(0, 1)`` (clipped away from 0 and 1).
        temperature: Python float >= 0.
        top_k: None or a Python int in ``[1, K]``.

    Returns:
        int32 ``(B,)``.
    """
    logits = ops.cast(logits, "float32")
    num_codes = int(logits.shape[-1])
    if top_k is not None and top_k < num_codes:
        kth = ops.top_k(logits, int(top_k), sorted=True)[0][:, -1:]
        logits = ops.where(logits < kth, -1e9, logits)
    if float(temperature) == 0.0:
        return ops.cast(ops.argmax(logits, axis=-1), "int32")
    u = ops.clip(ops.cast(uniform, "float32"), 1e-7, 1.0 - 1e-7)
    gumbel = -ops.log(-ops.log(u))
    return ops.cast(ops.argmax(logits / float(temperature) + gumbel, axis=-1), "int32")


class CachedCodeSampler(keras.Model):
    """Samples a :class:`CodePrior`'s code sequences in one loop with a key/value cache.

    The prior's own forward pass recomputes the whole sequence for every code (``T`` passes
    of length ``T`` per shower). Here each step runs the transformer on one new token: its
    keys and values are written into per-layer caches ``(B, m + T − 1, heads, head_dim)`` and
    its query attends to the cached positions up to itself (Vaswani et al. 2017's causal
    attention, computed incrementally as in GPT-2's ``past`` keys/values, Radford et al.
    2019). The condition tokens fill the first ``m`` positions, then ``ops.fori_loop`` samples
    code ``t`` from the last hidden state (:func:`gumbel_max_sample` with the noise of step
    ``t``) and feeds its embedding at position ``m + t``. ``predict_on_batch`` compiles the
    loop once per batch size (TensorFlow graph, JAX ``jit``; PyTorch runs it eagerly).

    The weights are the prior's: the attention projections are the kernels of the
    ``MultiHeadAttention`` layers' own query/key/value/output sub-layers (fused into one
    matmul per step), so a saved prior needs no conversion. Weightless itself, not saved;
    :meth:`CodePrior.sample` makes one per ``(temperature, top_k)``.

    Args:
        prior: a :class:`CodePrior`.
        temperature: sampling temperature >= 0 (0 = argmax).
        top_k: None or an integer in ``[1, num_codes]``.
        **kwargs: :class:`keras.Model` arguments.

    Call arguments:
        inputs: dict ``{"conditions": (B, k) model space, "noise": (B, T, num_codes)}``,
            ``noise`` uniform in ``(0, 1)`` (one row of Gumbel noise per step).

    Returns:
        int32 codes ``(B, T)``.

    Example:

    >>> sampler = CachedCodeSampler(prior, temperature=1.0, top_k=32)
    >>> codes = sampler.predict_on_batch({"conditions": c, "noise": u})  # doctest: +SKIP

    References:
        Vaswani et al. 2017, arXiv:1706.03762; Radford et al. 2019 (GPT-2: cached keys and
        values of past positions).
        Esser, Rombach & Ommer 2021, arXiv:2012.09841 (transformer prior over VQ codes).
    """

    def __init__(self, prior, temperature=1.0, top_k=None, **kwargs):
        super().__init__(**kwargs)
        from calozdc.models.vqvae.prior import CodePrior, _check_sampling

        if not isinstance(prior, CodePrior):
            raise ValueError(f"`prior` must be a CodePrior. Received: prior={prior!r}")
        _check_sampling(temperature, top_k, prior.num_codes)
        for attention in prior.attentions:
            if getattr(attention, "_use_gate", False):
                raise ValueError("Gated MultiHeadAttention is not supported by the cache. "
                                 f"Received: {attention.name} with use_gate=True")
        self.prior = prior
        self.temperature = float(temperature)
        self.top_k = top_k
        self.built = True

    @property
    def input_dtype(self):
        # The noise and conditions stay float32 under mixed precision (float16 would round
        # the uniforms to 1 and the Gumbel noise to infinity).
        return "float32"

    def _empty_caches(self, conditions):
        p = self.prior
        length = p.num_condition_tokens + p.sequence_length - 1
        head_dim = p.embed_dim // p.num_heads
        # (B, H, L, hd) zeros without a dynamic-shape op (the batch may be unknown in a graph).
        column = ops.reshape(ops.zeros_like(conditions[:, :1]), (-1, 1, 1, 1))
        zeros = column + ops.zeros((1, p.num_heads, length, head_dim), "float32")
        return [(zeros, zeros) for _ in range(p.num_layers)]

    def _projections(self):
        """Per block: the attention's query/key/value kernels as one ``(d, 3·H·hd)`` matrix
        with its bias, and the output kernel ``(H·hd, d)`` with its bias (float32).

        Read from ``MultiHeadAttention``'s ``EinsumDense`` sub-layers (``abc,cde->abde``
        kernels ``(d, H, hd)``, output ``abcd,cde->abe`` kernel ``(H, hd, d)``): one matmul
        per projection instead of four einsum layer calls per step.
        """
        out = []
        d = self.prior.embed_dim
        for attention in self.prior.attentions:
            kernels, biases = [], []
            for dense in (attention._query_dense, attention._key_dense, attention._value_dense):
                kernel = ops.reshape(ops.cast(dense.kernel, "float32"), (d, -1))
                kernels.append(kernel)
                bias = getattr(dense, "bias", None)
                biases.append(ops.zeros((kernel.shape[-1],), "float32") if bias is None
                              else ops.reshape(ops.cast(bias, "float32"), (-1,)))
            dense = attention._output_dense
            w_out = ops.reshape(ops.cast(dense.kernel, "float32"), (-1, d))
            bias = getattr(dense, "bias", None)
            b_out = ops.zeros((d,), "float32") if bias is None else ops.cast(bias, "float32")
            out.append((ops.concatenate(kernels, axis=1), ops.concatenate(biases), w_out, b_out))
        return out

    def _token_step(self, token, position, caches, projections):
        """Run one token ``(B, 1, d)`` at ``position`` through the blocks; update the caches."""
        p = self.prior
        heads, head_dim = p.num_heads, p.embed_dim // p.num_heads
        length = p.num_condition_tokens + p.sequence_length - 1
        x = token + ops.cast(p.position_embedding(ops.reshape(position, (1,))), token.dtype)
        visible = ops.arange(length, dtype="int32") <= ops.cast(position, "int32")
        scale = 1.0 / float(head_dim) ** 0.5
        new_caches = []
        for i in range(p.num_layers):
            w_qkv, b_qkv, w_out, b_out = projections[i]
            h = ops.cast(p.attention_norms[i](x), "float32")[:, 0]  # (B, d)
            qkv = ops.reshape(ops.matmul(h, w_qkv) + b_qkv, (-1, 3, heads, 1, head_dim))
            start = (0, 0, position, 0)
            keys = ops.slice_update(caches[i][0], start, qkv[:, 1])  # (B, H, L, hd)
            values = ops.slice_update(caches[i][1], start, qkv[:, 2])
            scores = ops.matmul(qkv[:, 0] * scale, ops.transpose(keys, (0, 1, 3, 2)))
            scores = ops.where(visible, scores, -1e9)  # (B, H, 1, L): causal, filled part
            attended = ops.matmul(ops.softmax(scores, axis=-1), values)  # (B, H, 1, hd)
            attended = ops.matmul(ops.reshape(attended, (-1, heads * head_dim)), w_out) + b_out
            x = x + ops.cast(attended[:, None], x.dtype)
            h = p.mlp_hidden[i](p.mlp_norms[i](x))
            x = x + ops.cast(p.mlp_out[i](h), x.dtype)
            new_caches.append((keys, values))
        return x, new_caches

    def _logits(self, x):
        return self.prior.to_logits(self.prior.final_norm(x))[:, 0]

    def call(self, inputs):
        p = self.prior
        conditions = ops.convert_to_tensor(inputs["conditions"], "float32")
        noise = ops.convert_to_tensor(inputs["noise"], "float32")
        m, d, length = p.num_condition_tokens, p.embed_dim, p.sequence_length
        cond = ops.reshape(p.condition_tokens(conditions), (-1, m, d))
        caches = self._empty_caches(conditions)
        projections = self._projections()
        x = None
        for j in range(m):  # prefill: the condition tokens at positions 0 .. m-1
            x, caches = self._token_step(cond[:, j:j + 1], ops.convert_to_tensor(j, "int32"),
                                         caches, projections)
        codes = ops.cast(ops.zeros_like(noise[:, :, 0]), "int32")

        def draw(t, x):
            step_noise = ops.take(noise, t, axis=1)
            return gumbel_max_sample(self._logits(x), step_noise, self.temperature, self.top_k)

        def step(t, state):
            codes, x, caches = state
            code = draw(t, x)
            codes = ops.slice_update(codes, (0, t), code[:, None])
            token = p.code_embedding(code[:, None])
            x, caches = self._token_step(token, ops.cast(t, "int32") + m, caches, projections)
            return codes, x, caches

        if length > 1:
            codes, x, caches = ops.fori_loop(0, length - 1, step, (codes, x, caches))
        last = draw(length - 1, x)
        return ops.slice_update(codes, (0, length - 1), last[:, None])
