"""Train a VQ-VAE generator (EMA codebook + conditional transformer prior) and sample it.

Steps: simulate data with the built-in simulator (or load an HDF5 file), split 70/10/20, fit
the preprocessing on the training split only (log1p + standardisation of the showers,
per-feature standardisation of the conditions), then ``VQGenerator.fit``: phase 1 trains the
VQ-VAE (codebook perplexity and usage are logged: no collapse), phase 2 the prior on the
frozen VQ-VAE's codes. Finally: reconstruction vs mean-shower error on the test split,
generation speed with and without the prior's sampling cost, channel-sum Wasserstein-1 vs
the real-vs-real floor (arXiv:2407.16704 eq. 4.2). Works on every backend:

    KERAS_BACKEND=jax python examples/train_vqvae.py --geometry ecal20 --n 4000 --epochs 5
    python examples/train_vqvae.py --data zn.h5 --epochs 30 --output vq.keras
"""

import argparse
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="zn44", help="zn44 or ecal20 (if simulating)")
    parser.add_argument("--data", default=None, help="HDF5 file (default: simulate)")
    parser.add_argument("--n", type=int, default=4000, help="showers to simulate")
    parser.add_argument("--epochs", type=int, default=5, help="VQ-VAE epochs")
    parser.add_argument("--prior-epochs", type=int, default=None, help="default: --epochs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-codes", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="save the generator to this .keras path")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from calozdc import data, metrics
    from calozdc.data import transforms
    from calozdc.models.vqvae.presets import build_vq_generator

    dataset = data.load(args.data) if args.data else data.simulate(args.geometry, args.n,
                                                                   seed=args.seed)
    geometry = dataset.geometry or data.get_geometry(args.geometry)
    train, val, test = dataset.split((0.7, 0.1, 0.2), seed=args.seed)

    model = build_vq_generator(
        geometry, train.conditions.shape[1], num_codes=args.num_codes,
        temperature=args.temperature, top_k=args.top_k, seed=args.seed,
        shower_transform=transforms.Chain([transforms.Log1p(), transforms.Standardize()]),
        condition_transform=transforms.Standardize(axis="feature"),
    )
    model.fit_transforms(train.showers, train.conditions)  # training split only
    # energy/shape factorisation: the total's own small flow (generate scales to its totals)
    model.fit_totals(train.showers, train.conditions)
    kw = dict(shower_transform=model.shower_transform,
              condition_transform=model.condition_transform)
    history = model.fit(train.batches(args.batch_size, seed=args.seed, **kw),
                        validation_data=val.batches(args.batch_size, shuffle=False, **kw),
                        epochs=args.epochs, prior_epochs=args.prior_epochs, verbose=2)
    print("codebook perplexity per epoch:", np.round(history.history["perplexity"], 1))

    x, c = model.vqvae.preprocess(test.showers, test.conditions)
    rec = model.vqvae.decode_model_space(model.vqvae.encode_model_space(x), c)
    baseline = np.mean((x.mean(axis=0, keepdims=True) - x) ** 2)
    print(f"test MSE (model space): reconstruction {np.mean((rec - x) ** 2):.3f}, "
          f"mean shower {baseline:.3f}")

    start = time.perf_counter()
    generated, codes = model.generate(test.conditions, seed=args.seed, return_codes=True)
    with_prior = time.perf_counter() - start
    start = time.perf_counter()
    model.vqvae.decode(codes, test.conditions)
    decode_only = time.perf_counter() - start
    n = len(generated)
    print(f"generation: {n / with_prior:.0f} showers/s with prior sampling, "
          f"{n / decode_only:.0f} showers/s decoding only (incl. compilation)")
    real = test.showers
    half = len(real) // 2
    floor, _ = metrics.wasserstein_channels(real[:half], real[half:], geometry)
    w1, _ = metrics.wasserstein_channels(real, generated, geometry)
    print(f"channel W1: generated {w1:.3f}, real vs real floor {floor:.3f}")
    if args.output:
        model.save(args.output)
        print("saved", args.output)


if __name__ == "__main__":
    main()
