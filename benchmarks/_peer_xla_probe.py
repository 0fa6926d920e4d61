"""One program, two XLA versions: where the ViT GAN's step time goes (``peer_zdc.py --xla-probe``).

Times the forward + backward pass (jitted ``value_and_grad`` of a mean square) of the ZDC peer's
transformer trunk — 4 pre-LN blocks, d = 128, 4 heads, MLP 512, 37 tokens, batch 256 — written
in plain ``jax.numpy`` so that the very same program runs under the peer's pinned jax 0.4.26
and under calozdc's jax (no Keras, no flax: any difference is the XLA version). With
``--keras`` the trunk is built from :class:`calozdc.layers.TransformerBlock` instead and called
through ``stateless_call`` (the cost of the Keras layers against the same XLA), with
``--dropout`` the blocks' MLP dropout (the random masks' share). This script imports JAX on
purpose: it is a probe of the framework below Keras and must also run where Keras is absent.
Prints one JSON line.
"""

import argparse
import json
import os
import time

import numpy as np

B, N, D, H, L = 256, 37, 128, 4, 4


def plain_jax_loss():
    import jax
    import jax.numpy as jnp

    def norm(x, g, b):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / jnp.sqrt(v + 1e-6) * g + b

    def block(p, x):
        h = norm(x, p["g1"], p["b1"])
        q, k, v = (jnp.einsum("bnd,dhk->bnhk", h, p[w]) for w in ("wq", "wk", "wv"))
        a = jax.nn.softmax(jnp.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(D // H), -1)
        x = x + jnp.einsum("bqhk,hkd->bqd", jnp.einsum("bhqs,bshk->bqhk", a, v), p["wo"])
        h = jax.nn.gelu(norm(x, p["g2"], p["b2"]) @ p["w1"] + p["c1"], approximate=True)
        return x + h @ p["w2"] + p["c2"]

    def loss(params, x):
        for p in params:
            x = block(p, x)
        return (x ** 2).mean()

    rng = np.random.default_rng(0)

    def w(*shape):
        return jnp.asarray(rng.normal(size=shape).astype("float32") / np.sqrt(shape[0]))

    params = [dict(g1=jnp.ones(D), b1=jnp.zeros(D), g2=jnp.ones(D), b2=jnp.zeros(D),
                   wq=w(D, H, D // H), wk=w(D, H, D // H), wv=w(D, H, D // H),
                   wo=w(H, D // H, D), w1=w(D, 4 * D), c1=jnp.zeros(4 * D), w2=w(4 * D, D),
                   c2=jnp.zeros(D)) for _ in range(L)]
    return jax.jit(jax.value_and_grad(loss)), (params,)


def keras_loss(dropout):
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras

    from calozdc.layers import TransformerBlock

    x = inputs = keras.Input((N, D))
    for _ in range(L):
        x = TransformerBlock(H, 4 * D, dropout=dropout, seed=0)(x)
    model = keras.Model(inputs, x)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss(trainable, non_trainable, x):
        y, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return (y ** 2).mean()

    return jax.jit(jax.value_and_grad(loss)), (trainable, non_trainable)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras", action="store_true", help="calozdc TransformerBlocks")
    parser.add_argument("--dropout", type=float, default=0.0, help="MLP dropout (--keras)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import jax
    import jax.numpy as jnp

    fn, params = keras_loss(args.dropout) if args.keras else plain_jax_loss()
    x = jnp.asarray(np.random.default_rng(1).normal(size=(B, N, D)).astype("float32"))
    jax.block_until_ready(fn(*params, x))
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*params, x))
        times.append(time.perf_counter() - start)
    what = f"calozdc TransformerBlock, dropout {args.dropout}" if args.keras else "plain jax.numpy"
    print(json.dumps({"program": what, "jax": jax.__version__,
                      "median_ms": 1e3 * float(np.median(times)), "n": args.reps}))


if __name__ == "__main__":
    main()
