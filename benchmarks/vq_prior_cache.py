"""VQ prior sampling with and without the key/value cache: time per shower, same codes.

Builds the default VQ generator of a geometry (``build_vq_generator``; zn44: 11 x 11 = 121
codes, 256 codes in the book, the default 2-layer prior; untrained weights: the cost of
sampling does not depend on their values), then times ``prior.sample`` with ``cache=True``
(one compiled loop, one token per step) and ``cache=False`` (one full forward pass per code)
on the same conditions and seed: one untimed call to compile, then ``--repeats`` timed
calls (best kept). Also times decoding given codes, the floor of generation. Checks that
both paths give the same codes. Prints a markdown block with the command, date and machine.
Run on the current ``KERAS_BACKEND``:

    KERAS_BACKEND=jax python benchmarks/vq_prior_cache.py --batch-size 128
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="zn44", help="zn44 or ecal20 (default zn44)")
    parser.add_argument("--batch-size", type=int, default=128, help="showers per call")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per path")
    parser.add_argument("--uncached-repeats", type=int, default=1,
                        help="timed calls of the slow path (default 1)")
    parser.add_argument("--prior-layers", type=int, default=None,
                        help="prior blocks (default: the builder's)")
    parser.add_argument("--prior-embed-dim", type=int, default=None,
                        help="prior width (default: the builder's)")
    return parser.parse_args(argv)


def _best(fn, repeats):
    fn()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None):
    args = parse_args(argv)
    import keras

    from calozdc.data import get_geometry
    from calozdc.models.vqvae.presets import build_vq_generator

    geometry = get_geometry(args.geometry)
    sizes = {k: v for k, v in (("prior_layers", args.prior_layers),
                               ("prior_embed_dim", args.prior_embed_dim)) if v is not None}
    model = build_vq_generator(geometry, geometry.n_conditions, seed=0, **sizes)
    prior = model.prior
    n = args.batch_size
    cond = np.random.default_rng(0).normal(size=(n, geometry.n_conditions)).astype("float32")

    def run(cache):
        return prior.sample(cond, seed=1, batch_size=n, cache=cache)

    cached_s, cached_codes = _best(lambda: run(True), args.repeats)
    plain_s, plain_codes = _best(lambda: run(False), args.uncached_repeats)
    grids = cached_codes.reshape((n,) + tuple(model.vqvae.latent_shape[:-1]))
    decode_s, _ = _best(lambda: model.vqvae.decode_model_space(grids, cond, n), args.repeats)
    same = float(np.mean(cached_codes == plain_codes))

    print("## VQ prior sampling with a key/value cache\n")
    print(f"- command: `KERAS_BACKEND={keras.backend.backend()} "
          f"{shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}`")
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; Python {platform.python_version()}, keras "
          f"{keras.__version__}, backend {keras.backend.backend()}")
    print(f"- model: {args.geometry} VQ generator, {prior.sequence_length} codes per "
          f"shower, {prior.num_codes} in the book, prior {prior.num_layers} layers x "
          f"{prior.embed_dim} ({prior.count_params():,} parameters); batch {n}; best of "
          f"{args.repeats} (uncached: {args.uncached_repeats}) after one compiling call\n")
    print("| what is timed | ms / shower | showers / s |")
    print("|---|---:|---:|")
    for what, seconds in (("prior sampling, no cache (T full passes)", plain_s),
                          ("prior sampling, key/value cache (one loop)", cached_s),
                          ("decoding given codes", decode_s)):
        print(f"| {what} | {1e3 * seconds / n:.3f} | {n / seconds:.1f} |")
    print(f"\nSpeed-up of the cache: {plain_s / cached_s:.1f}x; codes equal to the uncached "
          f"path's: {100 * same:.2f} % of {cached_codes.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
