"""Train a TwoStepGAN (seed 004): L2 pretraining of G(p), then adversarial + λ·L2.

    KERAS_BACKEND=tensorflow python examples/train_two_step_gan.py --epochs 6

Two ways to switch phase, both shown:
1. one fit call: ``TwoStepGAN(..., switch_epoch=E)`` (or ``switch_step=S``);
2. two fit calls: ``fit`` in phase 1, ``set_phase(2)``, ``fit`` again.
"""

import argparse

import numpy as np

from calozdc.data import simulate, transforms
from calozdc.models.gan import TwoStepGAN, cnn_discriminator, cnn_generator


def build(c_dim, shower_t, cond_t, switch_epoch=None):
    latent_dim = 8
    model = TwoStepGAN(
        cnn_generator((20, 20, 1), c_dim, latent_dim, hidden_dim=16, variant="extended2"),
        cnn_discriminator((20, 20, 1), c_dim, hidden_dim=16, variant="simplified"),
        latent_dim, l2_weight=10.0, switch_epoch=switch_epoch,
        shower_transform=shower_t, condition_transform=cond_t, seed=0,
    )
    model.compile(g_optimizer="adam", d_optimizer="adam")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    train, _, test = simulate("ecal20", args.n, seed=0).split((0.7, 0.1, 0.2), seed=0)
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
    cond_t = transforms.Standardize(axis="feature")
    x = shower_t.fit_forward(train.showers).astype("float32")
    c = cond_t.fit_forward(train.conditions).astype("float32")
    first = max(1, args.epochs // 3)

    # 1. one fit call, phase 2 from epoch `first` on
    model = build(c.shape[1], shower_t, cond_t, switch_epoch=first)
    history = model.fit(x, c, batch_size=args.batch_size, epochs=args.epochs)
    print("phase per epoch:", history.history["phase"])

    # 2. two fit calls
    model2 = build(c.shape[1], shower_t, cond_t)
    model2.fit(x, c, batch_size=args.batch_size, epochs=first)           # L2 pretraining
    model2.set_phase(2)
    model2.fit(x, c, batch_size=args.batch_size, epochs=args.epochs - first)  # adversarial

    for name, m in (("one fit", model), ("two fits", model2)):
        generated = m.generate(test.conditions, seed=0)
        real = np.asarray(test.showers).reshape(len(test), -1).sum(1).mean()
        fake = generated.reshape(len(generated), -1).sum(1).mean()
        print(f"{name}: mean total energy real {real:.1f}, generated {fake:.1f}")


if __name__ == "__main__":
    main()
