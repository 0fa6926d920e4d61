"""Key/value-cached sampling of the VQ prior: the same codes as the full forward passes, the
Gumbel-max draw's distribution, top-k and argmax rules, a reloaded prior."""

import keras
import numpy as np
import pytest
from keras import ops

from calozdc.models.vqvae import CodePrior
from calozdc.models.vqvae.cached_code_sampler import CachedCodeSampler, gumbel_max_sample


@pytest.fixture(scope="module")
def prior():
    # Two condition tokens (a prefill of two steps), two blocks, two heads.
    return CodePrior(12, 7, 2, embed_dim=8, num_heads=2, num_layers=2, num_condition_tokens=2,
                     seed=0)


@pytest.fixture(scope="module")
def conditions():
    return np.random.default_rng(1).normal(size=(5, 2)).astype("float32")


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, 3)])
def test_cached_sampling_gives_the_codes_of_the_full_forward_passes(prior, conditions,
                                                                    temperature, top_k):
    # batch 4 for 5 rows: two batches, the second padded
    cached = prior.sample(conditions, temperature, top_k, seed=4, batch_size=4, cache=True)
    full = prior.sample(conditions, temperature, top_k, seed=4, batch_size=4, cache=False)
    assert cached.shape == (5, 7) and cached.dtype == np.int32
    np.testing.assert_array_equal(cached, full)
    assert not np.array_equal(
        prior.sample(conditions, temperature, top_k, seed=5, batch_size=4), cached)


def test_cached_step_logits_equal_the_prior_forward_pass(prior, conditions):
    """Teacher forcing through the cache: the logits of every step equal the full pass's."""
    codes = np.random.default_rng(2).integers(0, 12, (5, 7)).astype("int32")
    full = ops.convert_to_numpy(prior({"codes": codes, "conditions": conditions}))
    sampler = CachedCodeSampler(prior)
    c = ops.convert_to_tensor(conditions)
    cond = ops.reshape(prior.condition_tokens(c), (-1, 2, 8))
    caches, proj = sampler._empty_caches(c), sampler._projections()
    for j in range(2):
        x, caches = sampler._token_step(cond[:, j:j + 1], ops.convert_to_tensor(j, "int32"),
                                        caches, proj)
    for t in range(7):
        np.testing.assert_allclose(ops.convert_to_numpy(sampler._logits(x)), full[:, t],
                                   rtol=1e-4, atol=1e-5)
        if t < 6:
            token = prior.code_embedding(ops.convert_to_tensor(codes[:, t:t + 1]))
            x, caches = sampler._token_step(token, ops.convert_to_tensor(2 + t, "int32"),
                                            caches, proj)


def test_gumbel_max_draws_follow_the_tempered_top_k_softmax():
    logits = np.array([[2.0, 1.0, 0.0, -1.0]], "float32")
    n = 20000
    u = keras.random.uniform((n, 4), seed=0)
    many = np.repeat(logits, n, axis=0)
    for temperature, top_k in ((1.0, None), (0.5, None), (1.0, 2)):
        draws = ops.convert_to_numpy(gumbel_max_sample(many, u, temperature, top_k))
        freq = np.bincount(draws, minlength=4) / n
        kept = logits[0] if top_k is None else np.where(np.arange(4) < top_k, logits[0], -np.inf)
        p = np.exp(kept / temperature - np.max(kept / temperature))
        np.testing.assert_allclose(freq, p / p.sum(), atol=0.015)
    argmax = ops.convert_to_numpy(gumbel_max_sample(many[:3], u[:3], 0.0))
    np.testing.assert_array_equal(argmax, [0, 0, 0])


def test_saved_prior_samples_with_the_cache_after_loading(prior, conditions, tmp_path):
    path = str(tmp_path / "prior.keras")
    prior.save(path)
    loaded = keras.saving.load_model(path)
    assert [w.shape for w in loaded.weights] == [w.shape for w in prior.weights]
    np.testing.assert_array_equal(loaded.sample(conditions, seed=2),
                                  prior.sample(conditions, seed=2, cache=False))


def test_sampler_rejects_bad_settings(prior):
    with pytest.raises(ValueError, match="top_k=13"):
        prior.cached_sampler(top_k=13)
    with pytest.raises(ValueError, match="temperature=-1"):
        CachedCodeSampler(prior, temperature=-1)
    with pytest.raises(ValueError, match="prior="):
        CachedCodeSampler("prior")
