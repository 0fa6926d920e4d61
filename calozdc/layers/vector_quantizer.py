"""Vector quantiser with an EMA-updated codebook, ℓ2-normalised codes and dead-code restarts."""

import keras
from keras import ops

from calozdc.backend.distribution import gather_replicas


@keras.saving.register_keras_serializable(package="calozdc")
class VectorQuantizerEMA(keras.layers.Layer):
    """Maps each input vector to its nearest codebook entry; the codebook learns by EMA.

    The last axis of the input holds vectors of size ``code_dim``; each is replaced by the
    nearest of ``num_codes`` codes (Euclidean distance; van den Oord et al. 2017, eq. 1).
    The codebook is *not* trained by the optimizer: it is a non-trainable weight updated in
    ``call`` when ``training=True`` with exponential moving averages of the inputs assigned
    to each code (van den Oord et al. 2017, appendix A.1; Razavi et al. 2019)::

        N_k ← γ N_k + (1 − γ) n_k                 n_k = number of inputs assigned to k
        m_k ← γ m_k + (1 − γ) Σ_{i→k} z_i
        Ñ_k = (N_k + ε) / (Σ_j N_j + K ε) · Σ_j N_j      (Laplace smoothing)
        e_k = m_k / Ñ_k                            (then ℓ2-normalised if ``l2_normalize``)

    ``N`` starts at 1 and ``m`` at the initial codes, so an unused code stays put instead of
    being divided by ~ε. With ``training=False`` nothing is assigned.

    Against codebook collapse (seed 002: few codes used, the rest dead):

    * ``l2_normalize=True`` normalises inputs and codes to unit length, so the distance is a
      cosine distance and no code can be stranded far from the data by its norm (Yu et al.
      2022, "Vector-quantized image modeling with improved VQGAN", sec. 3.2).
    * ``restart_after=k``: a code that received no input for ``k`` consecutive training
      steps is restarted at a random encoder output of the current batch (the most recent
      outputs), with ``N_k = 1``, ``m_k = e_k`` (Dhariwal et al. 2020, Jukebox, sec. 2.2).
      Codes restarted together get distinct outputs (a random permutation of the batch's
      rows; repeats only when the batch has fewer rows than codes): twin codes would split
      their inputs by index alone and one of them would die again.

    The output uses the straight-through estimator ``z + stop_gradient(e − z)`` so the
    encoder receives the decoder's gradient (van den Oord et al. 2017, sec. 3.2), and the
    commitment loss ``β · mean((z − stop_gradient(e))²)`` is added with ``add_loss`` (and
    returned with ``return_dict=True``). Codebook statistics of the batch, perplexity
    ``exp(−Σ p_k log p_k)`` (``p_k = n_k / n``) and usage (fraction of codes with
    ``n_k > 0``), are returned with ``return_dict=True``; :class:`calozdc.models.VQVAE`
    logs them as ``perplexity`` and ``codebook_usage`` in ``fit``.

    Args:
        num_codes: codebook size ``K`` (>= 2).
        code_dim: vector size ``D`` (the input's last axis).
        decay: EMA decay ``γ`` in ``[0, 1)``.
        epsilon: Laplace smoothing ``ε`` > 0.
        commitment_cost: ``β`` >= 0 of the commitment loss.
        l2_normalize: ℓ2-normalise inputs and codes.
        restart_after: restart codes unused for this many training steps (int >= 1), or
            None for no restarts.
        add_commitment_loss: add the commitment loss with ``add_loss``.
        seed: seed of the initial codebook and of the restarts' random choice.
        **kwargs: :class:`keras.layers.Layer` arguments.

    Call arguments:
        inputs: tensor ``(..., code_dim)``.
        training: update the codebook (EMA, restarts) when True.
        return_dict: return a dict instead of the quantised tensor.

    Returns:
        The quantised tensor (same shape, straight-through gradients), or with
        ``return_dict=True`` a dict with ``"quantized"``, ``"indices"`` (int32,
        ``inputs.shape[:-1]``), ``"commitment_loss"``, ``"perplexity"`` and ``"usage"``.

    Example:

    >>> vq = VectorQuantizerEMA(num_codes=64, code_dim=8, restart_after=20)
    >>> out = vq(np.random.randn(4, 5, 5, 8).astype("float32"), return_dict=True)
    >>> out["quantized"].shape, out["indices"].shape
    ((4, 5, 5, 8), (4, 5, 5))

    References:
        van den Oord, Vinyals & Kavukcuoglu 2017, "Neural discrete representation learning",
        arXiv:1711.00937 (VQ-VAE, straight-through, commitment loss, EMA appendix).
        Razavi, van den Oord & Vinyals 2019, "Generating diverse high-fidelity images with
        VQ-VAE-2", arXiv:1906.00446 (EMA with Laplace smoothing).
        Dhariwal et al. 2020, "Jukebox: a generative model for music", arXiv:2005.00341
        (random restarts of dead codes).
        Yu et al. 2022, "Vector-quantized image modeling with improved VQGAN",
        arXiv:2110.04627 (ℓ2-normalised codes).
    """

    def __init__(self, num_codes, code_dim, decay=0.99, epsilon=1e-5, commitment_cost=0.25,
                 l2_normalize=True, restart_after=32, add_commitment_loss=True, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value, low in (("num_codes", num_codes, 2), ("code_dim", code_dim, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"`decay` must be in (0, 1). Received: decay={decay}")
        if not float(epsilon) > 0.0:
            raise ValueError(f"`epsilon` must be > 0. Received: epsilon={epsilon}")
        if not float(commitment_cost) >= 0.0:
            raise ValueError(
                f"`commitment_cost` must be >= 0. Received: commitment_cost={commitment_cost}"
            )
        if restart_after is not None and (
            isinstance(restart_after, bool) or not isinstance(restart_after, int)
            or restart_after < 1
        ):
            raise ValueError(
                f"`restart_after` must be None or an integer >= 1. Received: "
                f"restart_after={restart_after!r}"
            )
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.commitment_cost = float(commitment_cost)
        self.l2_normalize = bool(l2_normalize)
        self.restart_after = restart_after
        self.add_commitment_loss = bool(add_commitment_loss)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] not in (None, self.code_dim):
            raise ValueError(
                f"The last axis of the input must be code_dim={self.code_dim}. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        k, d = self.num_codes, self.code_dim
        init = keras.initializers.RandomNormal(stddev=1.0, seed=self.seed)
        self.codebook = self.add_weight(shape=(k, d), initializer=init, trainable=False,
                                        dtype="float32", autocast=False, name="codebook")
        if self.l2_normalize:
            self.codebook.assign(self._normalize(self.codebook.value))
        self.ema_count = self.add_weight(shape=(k,), initializer="ones", trainable=False,
                                         dtype="float32", autocast=False, name="ema_count")
        self.ema_sum = self.add_weight(shape=(k, d), initializer="zeros", trainable=False,
                                       dtype="float32", autocast=False, name="ema_sum")
        self.ema_sum.assign(ops.copy(self.codebook.value))
        self.unused_steps = self.add_weight(shape=(k,), initializer="zeros", trainable=False,
                                            dtype="float32", autocast=False,
                                            name="unused_steps")

    @staticmethod
    def _normalize(x):
        return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))

    def nearest_codes(self, flat):
        """Indices ``(n,)`` of the nearest codes of vectors ``(n, code_dim)`` (no normalising)."""
        codes = self.codebook.value
        distances = (
            ops.sum(ops.square(flat), axis=1, keepdims=True)
            - 2.0 * ops.matmul(flat, ops.transpose(codes))
            + ops.sum(ops.square(codes), axis=1)[None, :]
        )
        return ops.cast(ops.argmin(distances, axis=1), "int32")

    def lookup(self, indices):
        """Codes of integer ``indices`` (any shape) → ``indices.shape + (code_dim,)``."""
        return ops.take(self.codebook.value, ops.cast(indices, "int32"), axis=0)

    def call(self, inputs, training=False, return_dict=False):
        z = ops.cast(inputs, "float32")
        if self.l2_normalize:
            z = self._normalize(z)
        flat = ops.reshape(z, (-1, self.code_dim))
        # The batch is quantised with the codebook before this step's EMA update.
        codes = ops.stop_gradient(self.codebook.value)
        indices = self.nearest_codes(ops.stop_gradient(flat))
        one_hot = ops.one_hot(indices, self.num_codes, dtype="float32")
        # Under a TF strategy every replica gathers the global batch's assignments, so all
        # replicas make the same codebook update as one device would (identity elsewhere).
        all_one_hot = gather_replicas(one_hot)
        counts = ops.sum(all_one_hot, axis=0)
        quantized = ops.reshape(ops.take(codes, indices, axis=0), ops.shape(z))
        if training:
            self._update_codebook(gather_replicas(ops.stop_gradient(flat)), all_one_hot, counts)
        commitment = self.commitment_cost * ops.mean(
            ops.square(z - ops.stop_gradient(quantized))
        )
        if self.add_commitment_loss:
            self.add_loss(commitment)
        out = z + ops.stop_gradient(quantized - z)
        out = ops.cast(out, self.compute_dtype)
        if not return_dict:
            return out
        n = ops.maximum(ops.sum(counts), 1.0)
        probs = counts / n
        perplexity = ops.exp(-ops.sum(probs * ops.log(probs + 1e-10)))
        usage = ops.mean(ops.cast(counts > 0, "float32"))
        return {
            "quantized": out,
            "indices": ops.reshape(indices, ops.shape(z)[:-1]),
            "commitment_loss": commitment,
            "perplexity": perplexity,
            "usage": usage,
        }

    def _update_codebook(self, flat, one_hot, counts):
        d = self.decay
        ema_count = d * self.ema_count.value + (1.0 - d) * counts
        ema_sum = d * self.ema_sum.value + (1.0 - d) * ops.matmul(ops.transpose(one_hot), flat)
        total = ops.sum(ema_count)
        smoothed = (ema_count + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        codes = ema_sum / smoothed[:, None]
        if self.l2_normalize:
            codes = self._normalize(codes)
        unused = ops.where(counts > 0, 0.0, self.unused_steps.value + 1.0)
        if self.restart_after is not None:
            dead = unused >= float(self.restart_after)
            n = ops.shape(flat)[0]
            # the first K rows of a random permutation of the n rows (cycled if n < K)
            order = ops.argsort(keras.random.uniform((n,), seed=self.seed_generator))
            pick = ops.take(order, ops.arange(self.num_codes) % n, axis=0)
            fresh = ops.take(flat, pick, axis=0)
            dead_col = dead[:, None]
            codes = ops.where(dead_col, fresh, codes)
            ema_sum = ops.where(dead_col, fresh, ema_sum)
            ema_count = ops.where(dead, 1.0, ema_count)
            unused = ops.where(dead, 0.0, unused)
        self.codebook.assign(codes)
        self.ema_count.assign(ema_count)
        self.ema_sum.assign(ema_sum)
        self.unused_steps.assign(unused)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_codes": self.num_codes,
            "code_dim": self.code_dim,
            "decay": self.decay,
            "epsilon": self.epsilon,
            "commitment_cost": self.commitment_cost,
            "l2_normalize": self.l2_normalize,
            "restart_after": self.restart_after,
            "add_commitment_loss": self.add_commitment_loss,
            "seed": self.seed,
        })
        return config
