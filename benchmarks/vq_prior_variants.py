"""What limits the VQ generators on zn44: the prior. Prior variants on fixed autoencoders.

Trains the VQ-VAE (``vqvae``) and the VQ-GAN (``vqgan``) autoencoders once each on the same
built-in zn44 showers (``calozdc simulate zn44``'s default particle mix) for the same steps,
as ``benchmarks/vqgan_vs_vq.py`` builds them (the families' transforms, total model off in the
networks). Then, on each autoencoder's codes, trains fresh :class:`CodePrior` variants for the
same number of steps and scores the generated test showers (channel W1 and FPD beside the
floor, as in ``vqgan_vs_vq.py``):

* ``base``: 2 blocks of width 64, Adam at a constant 3e-4 (the builders' defaults until
  2026-12-05);
* ``lr1e3``: the same prior, Adam at 1e-3 cosine-decayed per step to 5 %;
* ``big``: 4 blocks of width 128, the same decayed rate (the builders' defaults since);
* ``long``, ``biglong``: ``lr1e3``/``big`` with 3× the prior steps.

``--score-totals``: also one total model (``build_total_model`` + ``fit_totals``), fitted once
on the training split before the autoencoders and shared by both, scales each generated
and reconstructed shower to a drawn total (the families' default factorisation), so the
networks' shapes are compared at equal totals. Reconstructions are scored too: the prior
cannot do better than them.

    KERAS_BACKEND=jax python benchmarks/vq_prior_variants.py --variants base,lr1e3,big --temps 1.0,0.9 --out v0.json
    KERAS_BACKEND=jax python benchmarks/vq_prior_variants.py --seed 1 --variants big --score-totals --out v1.json
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

VARIANTS = {
    "base": dict(embed=64, layers=2, lr=3e-4, cosine=False, epochs_mult=1),
    "lr1e3": dict(embed=64, layers=2, lr=1e-3, cosine=True, epochs_mult=1),
    "big": dict(embed=128, layers=4, lr=1e-3, cosine=True, epochs_mult=1),
    "long": dict(embed=64, layers=2, lr=1e-3, cosine=True, epochs_mult=3),
    "biglong": dict(embed=128, layers=4, lr=1e-3, cosine=True, epochs_mult=3),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=6, help="autoencoder epochs (batch 64); "
                   "each prior variant gets as many epochs times its multiplier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default="base,lr1e3,big", help=f"of {sorted(VARIANTS)}")
    p.add_argument("--families", default="vqvae,vqgan")
    p.add_argument("--temps", default="1.0", help="sampling temperatures, comma-separated")
    p.add_argument("--score-totals", action="store_true",
                   help="also score with one shared total model (see the docstring)")
    p.add_argument("--out", required=True, help="JSON written after every row")
    args = p.parse_args(argv)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--variants must be of {sorted(VARIANTS)}. Received: {unknown}")
    return args


def main(argv=None):
    a = parse_args(argv)
    import keras
    import vqgan_vs_vq as B

    from calozdc.models.total_energy import TotalEnergyMixin, build_total_model
    from calozdc.models.vqvae.prior import CodePrior

    args = B.parse_args(["--data", "zn44", "--n-train", str(a.n_train), "--n-test",
                         str(a.n_test), "--epochs", str(a.epochs), "--seed", str(a.seed)])
    _, train, test, _ = B.load_data(args)
    rng = np.random.default_rng(args.seed + 1)
    reference = train[np.sort(rng.choice(len(train), min(len(test), len(train)),
                                         replace=False))]
    steps = args.epochs * -(-len(train) // args.batch_size)
    results, totals = [], None
    for family in a.families.split(","):
        keras.utils.set_random_seed(args.seed)
        model = B.build(family, train, args, steps)
        if a.score_totals and totals is None:  # the data and conditions only: one for both
            class _Totals(TotalEnergyMixin):
                condition_transform = model.vqvae.condition_transform
            totals = _Totals()
            totals._set_total_model(build_total_model(train.conditions.shape[1], seed=300))
            totals.fit_totals(train.showers, train.conditions)
        x, c = model.vqvae.preprocess(train.showers, train.conditions)
        start = time.perf_counter()
        model.fit(x, c, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                  prior_epochs=0)
        ae_s = time.perf_counter() - start
        codes, conds = model.codes_of((x, c))
        rec = model.vqvae.reconstruct(test.showers, test.conditions)
        scores = {"reconstruction": B.w1_and_fpd(test, reference, rec)}
        if totals is not None:
            scores["reconstruction_total_model"] = B.w1_and_fpd(
                test, reference, totals.scale_to_totals(rec, test.conditions, args.seed + 2))
        print(f"{family}: autoencoder {ae_s:.0f} s, {len(np.unique(codes))} codes used; "
              f"reconstruction W1 {scores['reconstruction']['w1_ratio']:.2f}x", flush=True)
        mc = model.vqvae.transform_conditions(test.conditions)
        for name in a.variants.split(","):
            v = VARIANTS[name]
            keras.utils.set_random_seed(args.seed + 7)
            prior = CodePrior(model.prior.num_codes, model.prior.sequence_length,
                              model.prior.condition_dim, embed_dim=v["embed"],
                              num_layers=v["layers"], num_heads=4, seed=args.seed)
            prior_epochs = args.epochs * v["epochs_mult"]
            prior_steps = prior_epochs * -(-len(codes) // 64)
            rate = keras.optimizers.schedules.CosineDecay(v["lr"], prior_steps, alpha=0.05) \
                if v["cosine"] else v["lr"]
            prior.compile(optimizer=keras.optimizers.Adam(rate))
            start = time.perf_counter()
            history = prior.fit({"codes": codes, "conditions": conds}, codes, batch_size=64,
                                epochs=prior_epochs, verbose=0)
            prior_s = time.perf_counter() - start
            for temperature in (float(t) for t in a.temps.split(",")):
                sampled = prior.sample(mc, temperature=temperature, seed=args.seed + 2)
                grids = sampled.reshape((len(sampled),) + tuple(model.vqvae.latent_shape[:-1]))
                raw = model.vqvae.postprocess(model.vqvae.decode_model_space(grids, mc, 256),
                                              test.conditions)
                row = {"family": family, "variant": name, "temperature": temperature,
                       "seed": a.seed, "autoencoder_steps": steps, "autoencoder_s": ae_s,
                       "prior_steps": prior_steps, "prior_s": prior_s,
                       "prior_params": prior.count_params(),
                       "final_prior_loss": float(history.history["loss"][-1]),
                       "codes_used": int(len(np.unique(codes))),
                       "generated": B.w1_and_fpd(test, reference, raw), **scores}
                if totals is not None:
                    row["generated_total_model"] = B.w1_and_fpd(
                        test, reference,
                        totals.scale_to_totals(raw, test.conditions, args.seed + 2))
                results.append(row)
                extra = (f", with the total model {row['generated_total_model']['w1_ratio']:.2f}x"
                         if totals is not None else "")
                print(f"  {name} T={temperature}: prior loss {row['final_prior_loss']:.3f}, "
                      f"generated W1 {row['generated']['w1_ratio']:.2f}x{extra}", flush=True)
                from calozdc.data import atomic_path

                with atomic_path(a.out, overwrite=True) as tmp, open(tmp, "w") as f:
                    json.dump({"command": " ".join(sys.argv), "rows": results}, f, indent=1,
                              default=float)
    return results


if __name__ == "__main__":
    main()
