"""Tiny models of the four families (ecal20, fitted transforms) shared by the hardening tests.

Also run as a script by ``tests/test_cross_backend.py`` (see :func:`main`): it must only use
numpy, Keras and calozdc, so that it works under every ``KERAS_BACKEND``.
"""

import json
import os
import sys

import numpy as np

FAMILIES = ("gan", "twostep", "vqvae", "ddim", "flow", "latent-flow", "vqgan")

#: Builder options small enough to build, fit and save in about a second each.
TINY_OPTIONS = {
    "gan": {"latent_dim": 4, "hidden_dim": 4},
    "twostep": {"latent_dim": 4, "hidden_dim": 4, "switch_epoch": 0},
    "vqvae": {"num_codes": 8, "code_dim": 4, "filters": (4, 8), "prior_embed_dim": 8,
              "prior_layers": 1, "prior_heads": 1},
    "ddim": {"widths": (8, 16), "blocks_per_level": 1, "embedding_dim": 8, "attention": False,
             "num_timesteps": 20},
    "flow": {"widths": (8, 16), "blocks_per_level": 1, "embedding_dim": 8, "attention": False,
             "total_width": 8, "total_blocks": 1},
    "latent-flow": {"latent_channels": 2, "autoencoder_widths": (4, 4), "widths": (8,),
                    "embedding_dim": 8, "total_width": 8, "total_blocks": 1},
    "vqgan": {"num_codes": 8, "code_dim": 4, "filters": (4, 8), "prior_embed_dim": 8,
              "prior_layers": 1, "prior_heads": 1, "discriminator_filters": (4,),
              "warmup_steps": 0},
}

#: Optimizer steps of the total model (energy/shape factorisation) of the families that have
#: one: enough to be fitted (so saving and generation exercise it), not to be good.
TOTAL_STEPS = 4

#: Generation options per family (DDIM: few steps).
GENERATE_OPTIONS = {"gan": {}, "twostep": {}, "vqvae": {}, "ddim": {"steps": 3},
                    "flow": {"steps": 3}, "latent-flow": {"steps": 3}, "vqgan": {}}


#: Image shape of the tiny models: the central 12 x 12 cells of ecal20 (small = fast).
IMAGE_SHAPE = (12, 12, 1)


def tiny_data(n=16, seed=0):
    """Simulated ecal20 showers (MeV, central 12 x 12 cells) and incident energies (MeV)."""
    from calozdc.data import simulate

    ds = simulate("ecal20", n, seed=seed, energy_range=(1e3, 1e4), workers=1)
    showers = np.asarray(ds.showers, "float32")[:, 4:16, 4:16]
    return showers, np.asarray(ds.conditions, "float32")


def tiny_model(family, seed=0, data=None):
    """A compiled tiny model of ``family`` with transforms fitted on ``data``."""
    from calozdc.cli.train import default_transforms
    from calozdc.models.registry import build_model

    x, c = tiny_data() if data is None else data
    shower_t, cond_t = default_transforms(family)
    shower_t.fit(x, conditions=c)
    cond_t.fit(c)
    model = build_model(family, IMAGE_SHAPE, c.shape[1], shower_transform=shower_t,
                        condition_transform=cond_t, seed=seed, epochs=1, **TINY_OPTIONS[family])
    if getattr(model, "fit_with_preprocess", False):
        model.fit_transforms(x, c)
    if getattr(model, "total_model", None) is not None:
        model.fit_totals(x, c, steps=TOTAL_STEPS, batch_size=8)
    return model


def fit_briefly(model, data):
    """One epoch on the transformed data (so that saved optimizer state is not empty)."""
    x, c = data
    for sub in (model, getattr(model, "vqvae", None), getattr(model, "prior", None)):
        if sub is not None:  # one step: tracing/compiling a graph would cost more than it saves
            sub.run_eagerly = True
    if getattr(model, "fit_with_preprocess", False):
        xt, ct = model.preprocess(x, c)
    else:
        xt = np.asarray(model.shower_transform.forward(x, conditions=c), "float32")
        ct = np.asarray(model.condition_transform.forward(c), "float32")
    kwargs = {"prior_epochs": 1} if hasattr(model, "fit_prior") else {}
    model.fit(xt, ct, batch_size=8, epochs=1, verbose=0, **kwargs)
    return model


# -- cross-backend reference outputs ---------------------------------------------------------
def fixed_inputs(family, model):
    """Deterministic inputs of the network forward pass checked across backends."""
    rng = np.random.default_rng(123)
    if family in ("gan", "twostep"):
        return {"z": rng.standard_normal((3, model.latent_dim)).astype("float32"),
                "p": rng.standard_normal((3, 1)).astype("float32")}
    if family in ("flow", "latent-flow"):
        return {"x": rng.standard_normal((3,) + tuple(model.state_shape)).astype("float32"),
                "t": np.array([[0.0], [300.0], [900.0]], "float32"),
                "p": rng.standard_normal((3, 2)).astype("float32")}
    if family == "ddim":
        return {"x": rng.standard_normal((3,) + tuple(model.image_shape)).astype("float32"),
                "t": np.array([[0.0], [7.0], [19.0]], "float32"),
                "p": rng.standard_normal((3, 1)).astype("float32")}
    h, w = model.vqvae.latent_shape[:-1]
    return {"codes": rng.integers(0, model.vqvae.num_codes, (3, h, w)).astype("int32"),
            "p": rng.standard_normal((3, 1)).astype("float32")}


def forward(family, model, inputs):
    """Outputs of the networks on fixed inputs, as float64 numpy arrays by name."""
    import keras

    def np64(v):
        return np.asarray(keras.ops.convert_to_numpy(v), dtype="float64")

    if family in ("gan", "twostep"):
        return {"generator": np64(model([inputs["z"], inputs["p"]], training=False))}
    if family == "ddim":
        return {"denoiser": np64(model.denoiser(
            {"noisy_showers": inputs["x"], "timesteps": inputs["t"], "conditions": inputs["p"],
             "condition_mask": np.ones((len(inputs["p"]), 1), "float32")}, training=False))}
    if family in ("flow", "latent-flow"):  # velocity (conditions + log total) and total nets
        ones = np.ones((len(inputs["p"]), 1), "float32")
        image = model.velocity_network(
            {"noisy_showers": inputs["x"], "timesteps": inputs["t"], "conditions": inputs["p"],
             "condition_mask": ones}, training=False)
        total = model.total_network(
            {"noisy_showers": inputs["p"][:, 1:], "timesteps": inputs["t"],
             "conditions": inputs["p"][:, :1], "condition_mask": ones}, training=False)
        out = {"velocity": np64(image), "total_velocity": np64(total)}
        if family == "latent-flow":
            out["decoder"] = np64(model.decoder(inputs["x"], training=False))
        return out
    codes = inputs["codes"]
    logits = model.prior.predict_on_batch(
        {"codes": codes.reshape(len(codes), -1), "conditions": inputs["p"]})
    decoded = model.vqvae.decode_model_space(codes, inputs["p"], 8)
    out = {"prior_logits": np64(logits), "decoder": np64(decoded)}
    if family == "vqgan":  # the patch discriminator's logits on the decoded showers
        out["discriminator"] = np64(model.vqvae.discriminator([decoded, inputs["p"]])[0])
    return out


GENERATE_CONDITIONS = np.array([[1500.0], [4000.0], [9000.0]], "float32")


def outputs(family, model):
    """Forward pass on fixed inputs plus ``generate`` (seed 5) on fixed conditions."""
    out = forward(family, model, fixed_inputs(family, model))
    out["generate"] = np.asarray(
        model.generate(GENERATE_CONDITIONS, seed=5, **GENERATE_OPTIONS[family]), "float64")
    return out


def main(argv):
    """``python _tiny_models.py save OUTDIR`` or ``... compare OUTDIR`` (see test_cross_backend).

    ``save``: build + fit briefly (not on JAX: too slow to compile) + save each family to
    ``OUTDIR/<backend>/<family>.keras`` and its outputs to ``<family>.npz``. ``compare``:
    load the files of every backend, recompute the outputs under this backend and print one
    JSON line per (source backend, family) with the largest differences (relative to the
    output scale).
    """
    import keras

    import calozdc.models  # noqa: F401  (registers the classes)

    mode, root = argv
    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    if mode == "save":
        out_dir = os.path.join(root, backend)
        os.makedirs(out_dir, exist_ok=True)
        data = tiny_data()
        for family in FAMILIES:
            model = tiny_model(family, seed=1, data=data)
            if backend != "jax":  # JAX's step compilation (or eager dispatch) costs minutes
                model = fit_briefly(model, data)  # the saved files then hold optimizer state
            model.save(os.path.join(out_dir, f"{family}.keras"))
            np.savez(os.path.join(out_dir, f"{family}.npz"), **outputs(family, model))
        return 0
    for source in sorted(os.listdir(root)):
        for family in FAMILIES:
            path = os.path.join(root, source, f"{family}.keras")
            model = keras.saving.load_model(path)
            got = outputs(family, model)
            with np.load(os.path.join(root, source, f"{family}.npz")) as ref:
                diffs = {}
                for name, value in got.items():
                    expected = ref[name]
                    scale = max(1.0, float(np.abs(expected).max()))
                    diffs[name] = {
                        "shape_ok": value.shape == expected.shape,
                        "max_rel": float(np.abs(value - expected).max() / scale)
                        if value.shape == expected.shape else None,
                    }
            generated = got["generate"]
            print(json.dumps({"source": source, "target": backend, "family": family,
                              "class": type(model).__name__, "diffs": diffs,
                              "generate_ok": bool(np.isfinite(generated).all()
                                                  and (generated >= 0).all())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
