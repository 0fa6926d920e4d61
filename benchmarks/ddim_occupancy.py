"""DDIM zero level: an occupancy channel beside the energy channel, vs the learning-test recipe.

Trains the recipe of ``tests/test_learning_ddim.py`` (same data, U-Net, optimizer, 940
steps) with one of three model spaces and prints one JSON line of channel W1, generated /
real mean totals per energy bin and the empty-cell fraction gen - real at 1, 10, 25 steps:

* ``base``: the test's recipe (energy fraction -> Log1p -> standardised, one channel);
* ``occ``: two channels, occupancy +-1 ("analog bits", Chen et al. 2022, arXiv:2208.04202)
  and log1p(fraction) standardised over occupied cells (0 in empty ones); a cell is
  generated where the occupancy is > 0, with at least one photon;
* ``mask``: two channels, occupancy +-1 and the ``base`` channel; the ``base`` shower
  masked by the generated occupancy (at least one photon where occupied).

Usage: ``KERAS_BACKEND=tensorflow python benchmarks/ddim_occupancy.py SEED MODE``
(~6 min per run on 2 CPU cores). A research benchmark: the library does not use this.
"""

import json
import pathlib
import sys
import time

import keras
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import test_learning_ddim as L  # noqa: E402

from calozdc import metrics  # noqa: E402
from calozdc.data import simulate, transforms  # noqa: E402
from calozdc.models.ddim.conditional_unet import ConditionalUNet  # noqa: E402
from calozdc.models.ddim.ddim import DDIM  # noqa: E402
from calozdc.models.ddim.noise_schedule import NoiseSchedule  # noqa: E402


def encode(showers, energy, stats=None):
    """``occ`` model space: occupancy +-1 and standardised log1p(fraction) of occupied cells."""
    frac = np.log1p(showers[..., 0] / energy[:, None, None])
    occ = (showers[..., 0] > 0)
    if stats is None:
        stats = (frac[occ].mean(), frac[occ].std())
    m, s = stats
    ch1 = np.where(occ, (frac - m) / s, 0.0)  # empty cells: 0 (carries no information)
    ch0 = np.where(occ, 1.0, -1.0)
    return np.stack([ch0, ch1], -1).astype("float32"), stats


def decode(u, energy, stats, min_count=1.0):
    """Inverse of :func:`encode`: photons where the occupancy is > 0, at least ``min_count``."""
    m, s = stats
    occ = u[..., 0] > 0
    frac = np.expm1(u[..., 1] * s + m) * energy[:, None, None]
    counts = np.where(occ, np.maximum(frac, min_count), 0.0)
    return counts[..., None].astype("float32")


def fit_two_channels(x, c, seed, steps_total):
    """The learning test's DDIM and optimizer on a two-channel model space."""
    mp = {k: v for k, v in L.MODEL.items() if k not in ("p_uncond", "ema_decay")}
    unet = ConditionalUNet((44, 44, 2), c.shape[1], seed=seed + 1000, **mp)
    model = DDIM(unet, NoiseSchedule("cosine", num_timesteps=1000), prediction_type="v",
                 p_uncond=0.0, ema_decay=0.99, seed=seed)
    schedule = keras.optimizers.schedules.CosineDecay(L.LEARNING_RATE, steps_total)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0))
    model.fit(x, c, batch_size=L.BATCH, epochs=L.EPOCHS, verbose=0)
    return model


MODES = ("base", "occ", "mask")


def run(seed, mode):
    """Trains and samples one model space; prints one JSON line ("worst": the channel-sum
    ratio per energy bin farthest from 1)."""
    if mode not in MODES:
        raise ValueError(f"MODE must be one of {MODES}. Received: mode={mode!r}")
    keras.utils.set_random_seed(seed)
    train = simulate("zn44", L.N_TRAIN, seed=1000 + seed, **L.SETUP)
    test = simulate("zn44", L.N_TEST, seed=2000 + seed, **L.SETUP)
    g = train.geometry
    steps_total = L.EPOCHS * -(-L.N_TRAIN // L.BATCH)
    t0 = time.time()
    if mode == "base":
        model = L.build(g, train.conditions.shape[1], seed, decay_steps=steps_total)
        model.fit_transforms(train.showers, train.conditions)
        x, c = model.preprocess(train.showers, train.conditions)
        model.fit(x, c, batch_size=L.BATCH, epochs=L.EPOCHS, verbose=0)

        def gen(st):
            return model.generate(test.conditions, steps=st, eta=0.0, seed=seed + 1)
    else:  # the two-channel spaces standardise the conditions outside the model
        ct = transforms.Standardize(axis="feature")
        c, ctest = ct.fit_forward(train.conditions), ct.forward(test.conditions)
    if mode == "mask":
        st_ = L.shower_transform()
        ch1 = st_.fit_forward(train.showers, train.conditions)
        occ = np.where(train.showers > 0, 1.0, -1.0).astype("float32")
        x = np.concatenate([occ, ch1], -1)
        model = fit_two_channels(x, c, seed, steps_total)

        def gen(st):
            u = model.generate(ctest, steps=st, eta=0.0, seed=seed + 1)
            phys = st_.inverse(u[..., 1:], test.conditions)
            return np.where(u[..., :1] > 0, np.maximum(phys, 1.0), 0.0).astype("float32")
    elif mode == "occ":
        x, stats = encode(train.showers, train.conditions[:, 0])
        model = fit_two_channels(x, c, seed, steps_total)

        def gen(st):
            u = model.generate(ctest, steps=st, eta=0.0, seed=seed + 1)
            return decode(u, test.conditions[:, 0], stats)
    out = {"mode": mode, "seed": seed, "train_s": round(time.time() - t0)}
    real = g.channel_sums(test.showers)
    e = test.conditions[:, 0]
    for st in (1, 10, 25):
        sh = gen(st)
        sh = np.maximum(sh, 0)
        r = L.bin_mean_ratios(real, g.channel_sums(sh), e)
        out[st] = {"w1": round(float(metrics.wasserstein_channels(test.showers, sh, g)[0]), 2),
                   "worst": round(float(r[np.unravel_index(np.argmax(abs(r - 1)), r.shape)]), 3),
                   "total_bins": [round(float(v), 3) for v in r[:, 6]],
                   "empty_gen_minus_real": round(float((sh == 0).mean() - (test.showers == 0).mean()), 3)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    run(int(sys.argv[1]), sys.argv[2])
