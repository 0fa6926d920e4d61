"""Search ConditionalGAN hyperparameters on the channel-W1 physics objective.

    KERAS_BACKEND=jax python examples/tune_gan.py --trials 10 --epochs 5

Rerunning continues the search stored in --directory; the best model is saved as .keras.
The same search from the command line: calozdc tune gan --data FILE --max-trials 10.
"""

import argparse

from calozdc.data import simulate, transforms
from calozdc.tuning import GANHyperModel, make_tuner


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tuner", default="random", choices=["random", "bayesian", "hyperband"])
    parser.add_argument("--directory", default="tuning_gan")
    args = parser.parse_args()

    train, valid, _ = simulate("ecal20", args.n, seed=0).split((0.7, 0.1, 0.2), seed=0)
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
    cond_t = transforms.Standardize(axis="feature")
    x = shower_t.fit_forward(train.showers).astype("float32")
    c = cond_t.fit_forward(train.conditions).astype("float32")

    # fixed: geometry, conditions, transforms, validation showers of the objective;
    # searched: GANHyperModel.DEFAULT_SPACE, here narrowed to two widths
    hypermodel = GANHyperModel(train.geometry, c.shape[1], valid.showers, valid.conditions,
                               shower_transform=shower_t, condition_transform=cond_t,
                               space={"hidden_dim": [16, 32]})
    tuner = make_tuner(args.tuner, hypermodel, args.directory, "gan", max_trials=args.trials,
                       max_epochs=args.epochs)
    tuner.search(x, c, epochs=args.epochs, batch_size=64)
    tuner.results_summary(3)

    best = tuner.get_best_models(1)[0]
    best.save(f"{args.directory}/best_gan.keras")
    print(f"saved {args.directory}/best_gan.keras")


if __name__ == "__main__":
    main()
