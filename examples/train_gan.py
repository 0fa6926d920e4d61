"""Train a ConditionalGAN on built-in ecal20 showers and generate new ones.

    KERAS_BACKEND=jax python examples/train_gan.py --epochs 5

Seed 000 settings: soft labels 0.7/0.3, ratio 1:1, asymmetric CyclicLR (G max 1e-4,
D max 7e-5, exp_range), simplified discriminator; seed 001 "extended 2" generator.
"""

import argparse

import keras
import numpy as np

from calozdc.data import simulate, transforms
from calozdc.models.gan import ConditionalGAN, cnn_discriminator, cnn_generator
from calozdc.schedules import CyclicLR


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", default="gan_example.keras")
    args = parser.parse_args()

    train, valid, test = simulate("ecal20", args.n, seed=0).split((0.7, 0.1, 0.2), seed=0)
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
    cond_t = transforms.Standardize(axis="feature")
    x = shower_t.fit_forward(train.showers).astype("float32")
    c = cond_t.fit_forward(train.conditions).astype("float32")

    latent_dim = 16
    gan = ConditionalGAN(
        cnn_generator((20, 20, 1), c.shape[1], latent_dim, hidden_dim=16, variant="extended2"),
        cnn_discriminator((20, 20, 1), c.shape[1], hidden_dim=16, variant="simplified"),
        latent_dim, real_label=0.7, fake_label=0.3, training_ratio=(1, 1),
        shower_transform=shower_t, condition_transform=cond_t, seed=0,
    )
    gan.compile(
        g_optimizer=keras.optimizers.Adam(CyclicLR(1e-6, 1e-4, 100, 100, "exp_range", 0.995)),
        d_optimizer=keras.optimizers.Adam(CyclicLR(1e-6, 7e-5, 100, 100, "exp_range", 0.995)),
    )
    gan.fit(x, c, batch_size=args.batch_size, epochs=args.epochs)

    generated = gan.generate(test.conditions, seed=0)
    real_total = np.asarray(test.showers).reshape(len(test), -1).sum(1)
    fake_total = generated.reshape(len(generated), -1).sum(1)
    print(f"mean total energy: real {real_total.mean():.1f}, generated {fake_total.mean():.1f}")
    gan.save(args.output)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
