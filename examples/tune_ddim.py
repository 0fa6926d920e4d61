"""Search DDIM hyperparameters on the channel-W1 physics objective.

    KERAS_BACKEND=jax python examples/tune_ddim.py --trials 6 --epochs 5

The objective samples with the trial's ``sampling_steps``; rerunning continues the search.
The same search from the command line: calozdc tune ddim --data FILE --max-trials 6.
"""

import argparse

from calozdc.data import simulate, transforms
from calozdc.tuning import DDIMHyperModel, make_tuner


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tuner", default="bayesian", choices=["random", "bayesian", "hyperband"])
    parser.add_argument("--directory", default="tuning_ddim")
    args = parser.parse_args()

    train, valid, _ = simulate("ecal20", args.n, seed=0).split((0.7, 0.1, 0.2), seed=0)
    shower_t = transforms.Chain([transforms.Log1p(), transforms.Standardize()])
    cond_t = transforms.Standardize(axis="feature")
    x = shower_t.fit_forward(train.showers).astype("float32")
    c = cond_t.fit_forward(train.conditions).astype("float32")

    # small U-Nets and few sampling steps keep a CPU search affordable
    hypermodel = DDIMHyperModel(
        train.geometry, c.shape[1], valid.showers[:500], valid.conditions[:500],
        shower_transform=shower_t, condition_transform=cond_t,
        space={"base_width": [8, 16], "embedding_dim": [32, 64], "sampling_steps": [10, 25]},
    )
    tuner = make_tuner(args.tuner, hypermodel, args.directory, "ddim", max_trials=args.trials,
                       max_epochs=args.epochs)
    tuner.search(x, c, epochs=args.epochs, batch_size=64)
    tuner.results_summary(3)

    best = tuner.get_best_models(1)[0]
    best.save(f"{args.directory}/best_ddim.keras")
    print(f"saved {args.directory}/best_ddim.keras")


if __name__ == "__main__":
    main()
