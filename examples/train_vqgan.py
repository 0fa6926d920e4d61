"""Train a VQ-GAN generator (VQ-VAE + patch discriminator, then the transformer prior).

Steps: simulate data with the built-in simulator (or load an HDF5 file), split 70/10/20, fit
the preprocessing on the training split only (the VQ family's transforms), then
``VQGenerator.fit``: phase 1 trains the VQ-GAN (reconstruction + commitment, and after
``--warmup`` steps the adversarial term with the adaptive weight of Esser et al. 2021 eq. 7;
the discriminator starts then too), phase 2 the prior on the frozen autoencoder's codes.
Finally: reconstruction error on the test split, generation speed (the prior samples with
its key/value cache) and channel-sum Wasserstein-1 vs the real-vs-real floor
(arXiv:2407.16704 eq. 4.2). Works on every backend:

    KERAS_BACKEND=jax python examples/train_vqgan.py --geometry ecal20 --n 4000 --epochs 5
    python examples/train_vqgan.py --data zn.h5 --epochs 30 --warmup 2000 --output vqgan.keras
"""

import argparse
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="zn44", help="zn44 or ecal20 (if simulating)")
    parser.add_argument("--data", default=None, help="HDF5 file (default: simulate)")
    parser.add_argument("--n", type=int, default=4000, help="showers to simulate")
    parser.add_argument("--epochs", type=int, default=5, help="VQ-GAN epochs")
    parser.add_argument("--prior-epochs", type=int, default=None, help="default: --epochs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=500,
                        help="autoencoder steps before the adversarial term starts")
    parser.add_argument("--adversarial-loss", default="hinge",
                        choices=["hinge", "non_saturating"])
    parser.add_argument("--adversarial-weight", type=float, default=0.5)
    parser.add_argument("--feature-matching", type=float, default=0.0,
                        help="weight of the feature-matching term (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="save the generator to this .keras path")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from calozdc import data, metrics
    from calozdc.models.registry import build_model, default_transforms

    dataset = data.load(args.data) if args.data else data.simulate(args.geometry, args.n,
                                                                   seed=args.seed)
    geometry = dataset.geometry or data.get_geometry(args.geometry)
    train, val, test = dataset.split((0.7, 0.1, 0.2), seed=args.seed)

    shower_t, cond_t = default_transforms("vqgan")
    model = build_model("vqgan", geometry, train.conditions.shape[1], seed=args.seed,
                        shower_transform=shower_t, condition_transform=cond_t,
                        warmup_steps=args.warmup, adversarial_loss=args.adversarial_loss,
                        adversarial_weight=args.adversarial_weight,
                        feature_matching_weight=args.feature_matching)
    model.fit_transforms(train.showers, train.conditions)  # training split only
    if getattr(model, "total_model", None) is not None:  # energy/shape factorisation
        model.fit_totals(train.showers, train.conditions)
    kw = dict(shower_transform=model.shower_transform,
              condition_transform=model.condition_transform)
    history = model.fit(train.batches(args.batch_size, seed=args.seed, **kw),
                        validation_data=val.batches(args.batch_size, shuffle=False, **kw),
                        epochs=args.epochs, prior_epochs=args.prior_epochs, verbose=2)
    logs = history.history
    print("per epoch: reconstruction", np.round(logs["reconstruction_loss"], 3),
          "d_loss", np.round(logs["d_loss"], 3), "adaptive weight",
          np.round(logs["adaptive_weight"], 3))

    x, c = model.vqvae.preprocess(test.showers, test.conditions)
    rec = model.vqvae.decode_model_space(model.vqvae.encode_model_space(x), c)
    print(f"test MSE (model space): reconstruction {np.mean((rec - x) ** 2):.3f}, "
          f"mean shower {np.mean((x.mean(axis=0, keepdims=True) - x) ** 2):.3f}")

    start = time.perf_counter()
    generated = model.generate(test.conditions, seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"generation: {1e3 * seconds / len(generated):.2f} ms/shower (incl. compilation)")
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
