"""Learning test of the flow-matching family (issue 18) against the DDIM's.

The same data and training budget as ``tests/test_learning_ddim.py`` (3,000 simulated zn44
electron showers in the Geant4-reference setup, 10 epochs of batch 32 = 940 optimizer steps,
Adam at 2e-3 cosine-decayed to 0, EMA 0.99) and the same U-Net widths, with the flow
family's own recipe (:func:`calozdc.models.flow.presets.default_transforms`, the
energy/shape factorisation, uniform time). Checked on held-out showers:

* the mean sums of the common PMT, of the four towers and of all channels per incident-energy
  bin within 10 % of the real ones (the DDIM's test allows 15 %), on 2,000 held-out showers
  (the total has a long right tail, fibre-entry events: ~100 showers per bin move a mean by
  10 % and a spread by 30 %);
* the energy resolution per energy bin: the relative RMS90 of the total (the RMS of the
  narrowest window holding 90 % of the showers, over the mean; the calorimetry convention)
  within 15 % of the real one, and the fraction of fibre-entry showers (total above twice
  the bin's median) within 50 %, on the same 2,000 (the total's own flow learns the width
  and the tail, not only the mean). Not the plain relative RMS: at 10-25 GeV it is set by
  the 2-9 showers beyond 4x the median and moves by +-30 % with the noise seed (0.96-1.32x
  for the same total model, RESULTS.md);
* the channel Wasserstein-1 distance (arXiv:2407.16704 eq. 4.2) at 10 Euler steps below the
  DDIM's at 10 DDIM steps, both on the same 2,000 held-out showers (the DDIM of the
  session-wide ``ddim_learning_run`` fixture; on the DDIM test's 360 showers the
  real-vs-real floor is ~14 photons and both models score at or below it, so that sample
  cannot rank them);
* Heun at 5 steps (10 network evaluations) within 10 % of Euler at 10 in W1 (360 showers);
* an untrained model of the same architecture far off in the totals per energy bin and in
  W1 (so the test can fail).
"""

import keras
import numpy as np
import pytest
from test_learning_ddim import (
    BATCH,
    COMPARE_STEPS,
    ENERGY_BINS,
    EPOCHS,
    FEATURE_NAMES,
    LEARNING_RATE,
    N_CHECK,
    N_TEST,
    N_TRAIN,
    SETUP,
    bin_mean_ratios,
)

from calozdc import metrics
from calozdc.data import simulate
from calozdc.models.flow.presets import build_flow, default_transforms

pytestmark = [pytest.mark.large, pytest.mark.learning]

SEED = 0
MODEL = {"widths": (8, 16, 32), "blocks_per_level": 1, "embedding_dim": 64, "attention": False,
         "p_uncond": 0.0, "ema_decay": 0.99}
TOLERANCE = 0.10


def build(geometry, condition_dim, seed, decay_steps=1):
    shower_t, cond_t = default_transforms()
    model = build_flow(geometry, condition_dim, shower_transform=shower_t,
                       condition_transform=cond_t, seed=seed, **MODEL)
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0))
    return model


def train_and_sample(seed=SEED):
    """Trains the flow on the DDIM test's data and samples the held-out conditions."""
    keras.utils.set_random_seed(seed)
    train = simulate("zn44", N_TRAIN, seed=1000 + seed, **SETUP)
    test = simulate("zn44", N_TEST, seed=2000 + seed, **SETUP)  # the DDIM test's
    check = simulate("zn44", N_CHECK, seed=3000 + seed, **SETUP)
    geometry = train.geometry
    model = build(geometry, train.conditions.shape[1], seed,
                  decay_steps=EPOCHS * -(-N_TRAIN // BATCH))
    model.fit_transforms(train.showers, train.conditions)
    x, c = model.preprocess(train.showers, train.conditions)
    history = model.fit(x, c, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    out = {"energies": check.conditions[:, 0], "real": geometry.channel_sums(check.showers),
           "real_totals": check.showers.reshape(N_CHECK, -1).sum(1),
           "loss": history.history["loss"]}
    generated = model.generate(check.conditions, steps=COMPARE_STEPS, seed=seed + 1)
    out["euler"] = geometry.channel_sums(generated)
    out["euler_totals"] = generated.reshape(N_CHECK, -1).sum(1)
    out["w1_check"] = metrics.wasserstein_channels(check.showers, generated, geometry)[0]
    for solver, steps in (("euler", COMPARE_STEPS), ("heun", COMPARE_STEPS // 2)):
        generated = model.generate(test.conditions, steps=steps, solver=solver, seed=seed + 1)
        out[f"w1_{solver}"] = metrics.wasserstein_channels(test.showers, generated, geometry)[0]
    untrained = build(geometry, train.conditions.shape[1], seed)
    untrained.fit_transforms(train.showers, train.conditions)
    out["untrained"] = geometry.channel_sums(
        untrained.generate(check.conditions, steps=2, seed=seed + 1))
    generated = untrained.generate(test.conditions, steps=2, seed=seed + 1)
    out["w1_untrained"] = metrics.wasserstein_channels(test.showers, generated, geometry)[0]
    return out


@pytest.fixture(scope="module")
def trained():
    return train_and_sample(SEED)


def test_training_reduces_the_loss(trained):
    loss = trained["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.7 * loss[0], loss


def test_channel_sum_means_per_energy_bin_within_10_percent(trained):
    ratios = bin_mean_ratios(trained["real"], trained["euler"], trained["energies"])
    for (low, high), row in zip(ENERGY_BINS, ratios):
        for name, ratio in list(zip(FEATURE_NAMES, row))[4:]:
            assert abs(ratio - 1.0) < TOLERANCE, (
                f"{low:g}-{high:g} GeV, {name}: generated/real mean = {ratio:.3f}; all: {ratios}"
            )


def relative_rms90(totals):
    """RMS of the narrowest window holding 90 % of ``totals``, over their mean."""
    x = np.sort(np.asarray(totals, dtype=np.float64))
    k = int(np.ceil(0.9 * len(x)))
    start = int(np.argmin(x[k - 1:] - x[: len(x) - k + 1]))
    return x[start:start + k].std() / x.mean()


def test_resolution_and_fibre_entry_tail_per_energy_bin(trained):
    energies = trained["energies"]
    for low, high in ENERGY_BINS:
        rows = (energies >= low) & (energies < high)
        real, gen = trained["real_totals"][rows], trained["euler_totals"][rows]
        ratio = relative_rms90(gen) / relative_rms90(real)
        assert abs(ratio - 1.0) < 0.15, f"{low:g}-{high:g} GeV: relative RMS90 ratio {ratio:.3f}"
        tail_real, tail_gen = (np.mean(t > 2.0 * np.median(t)) for t in (real, gen))
        assert tail_real > 0.02 and abs(tail_gen / tail_real - 1.0) < 0.5, (
            f"{low:g}-{high:g} GeV: fibre-entry fraction {tail_gen:.4f} vs {tail_real:.4f}")


def test_channel_w1_below_the_ddims_at_the_same_steps(trained, ddim_learning_run):
    flow, ddim = trained["w1_check"], ddim_learning_run["w1_check"]
    assert flow < ddim, (flow, ddim)


def test_heun_at_half_the_steps_matches_euler(trained):
    assert trained["w1_heun"] < 1.1 * trained["w1_euler"], (trained["w1_heun"],
                                                            trained["w1_euler"])


def test_untrained_model_is_far_off(trained):
    # Untrained, the total's flow is the identity on its noise: totals drawn from the
    # fitted marginal distribution whatever the energy, so low energies get far too much
    # and high energies far too little; the image is noise.
    ratios = bin_mean_ratios(trained["real"], trained["untrained"], trained["energies"])
    assert ratios[0, -1] > 1 + 3 * TOLERANCE and ratios[-1, -1] < 1 - 3 * TOLERANCE, ratios
    assert trained["w1_untrained"] > 1.5 * trained["w1_euler"]
