"""Learning test of the DDIM (issue 7): a short training on zn44 reproduces the channel sums.

A small conditional U-Net DDIM is trained for a few hundred optimizer steps on simulated
zn44 electron showers in the Geant4-reference setup (10-200 GeV, impact points within
+-5 mm of the centre, angles within +-2 mrad), then samples showers for the conditions of
held-out simulated showers. Checked, per incident-energy bin, against the held-out showers
with the same conditions:

* the mean sums of the common PMT, of the four towers together and of all five channels
  are within 15%;
* the share of each tower (which depends sharply on the impact point, a condition)
  correlates with that of the real shower for the same conditions;
* the channel Wasserstein-1 distance (arXiv:2407.16704 eq. 4.2) is lower with 25 DDIM
  steps than with 1 step (the speed/fidelity trade-off);
* an untrained model of the same architecture is far off (so the test can fail).

Shower transform: energy fraction per cell (``DivideByIncidentEnergy``; the network does
not have to learn the energy scale), ``Log1p(scale=1)`` (compresses the few hot cells while
staying near-linear for single photons) and a standardisation. Everything is seeded, so the
numbers are reproducible on a backend. Marked ``large`` and ``learning`` (~6 minutes on
a 2-core CPU with TensorFlow); see ``benchmarks/generate.py`` for the same recipe with a
longer training.

Margins (TensorFlow, 940 optimizer steps): seed 0 (the test's) worst channel-sum ratio
1.063 (60-200 GeV four towers), W1 11.6 at 25 steps vs 18.9 at 1 step; ``train_and_sample(s)``
for s = 1, 2, 3 gives worst ratios 1.043, 0.898 and 1.129 (W1 14.5 vs 16.3, 12.2 vs 29.9,
12.3 vs 15.3). With half the training (5 epochs) seed 2 failed (common PMT 1.16-1.19): the
sum is a balance of two biases that shrink with training (learning in log space pulls the
totals low; setting the generated zero-level noise to 0 pushes them up). Tried and worse at
this budget (seed 2, 25 steps, 60-200 GeV total): photon counts without dividing by E
(0.73), a stronger log (``Log1p(scale=0.01)`` on the fraction, 0.82), no log (1.54), uniform
dequantisation of the counts with ``floor`` after sampling (1.81).
"""

import keras
import numpy as np
import pytest

from calozdc import metrics
from calozdc.data import simulate, transforms
from calozdc.models.ddim.presets import build_ddim

pytestmark = [pytest.mark.large, pytest.mark.learning]

SEED = 0
SETUP = {"particles": "e-", "energy_range": (10.0, 200.0), "impact_halfwidth_mm": 5.0,
         "angle_halfwidth_mrad": 2.0}
ENERGY_BINS = ((10.0, 25.0), (25.0, 60.0), (60.0, 200.0))
N_TRAIN, N_TEST, EPOCHS, BATCH = 3000, 360, 10, 32
FEW_STEPS, MANY_STEPS = 1, 25
COMPARE_STEPS = 10  # the flow family's learning test compares its W1 with the DDIM's here
N_CHECK = 2000  # ... on this many held-out showers (360 leave W1 dominated by the sample)
MODEL = {"widths": (8, 16, 32), "blocks_per_level": 1, "embedding_dim": 64, "attention": False,
         "p_uncond": 0.0, "ema_decay": 0.99}
LEARNING_RATE = 2e-3  # cosine-decayed to 0 over the training (a settled final model)
TOLERANCE = 0.15


def shower_transform():
    return transforms.Chain([transforms.DivideByIncidentEnergy(), transforms.Log1p(scale=1.0),
                             transforms.Standardize()])


def build(geometry, condition_dim, seed, decay_steps=1):
    model = build_ddim(geometry, condition_dim, shower_transform=shower_transform(),
                       condition_transform=transforms.Standardize(axis="feature"), seed=seed,
                       **MODEL)
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0))
    return model


def channel_features(sums):
    """``(N, 7)``: the five channel sums, the four-tower sum and the total."""
    towers = sums[:, :4].sum(axis=1, keepdims=True)
    return np.concatenate([sums, towers, sums.sum(axis=1, keepdims=True)], axis=1)


FEATURE_NAMES = ("tower 1", "tower 2", "tower 3", "tower 4", "common PMT", "4 towers", "total")


def bin_mean_ratios(real_sums, generated_sums, energies):
    """``(bins, 7)`` ratios generated / real of the mean channel features per energy bin."""
    real, generated = channel_features(real_sums), channel_features(generated_sums)
    ratios = []
    for low, high in ENERGY_BINS:
        rows = (energies >= low) & (energies < high)
        ratios.append(generated[rows].mean(axis=0) / real[rows].mean(axis=0))
    return np.array(ratios)


def train_and_sample(seed=SEED):
    """Trains the DDIM and samples; returns a dict of channel sums, W1s and timings."""
    keras.utils.set_random_seed(seed)
    train = simulate("zn44", N_TRAIN, seed=1000 + seed, **SETUP)
    test = simulate("zn44", N_TEST, seed=2000 + seed, **SETUP)
    geometry = train.geometry
    model = build(geometry, train.conditions.shape[1], seed,
                  decay_steps=EPOCHS * -(-N_TRAIN // BATCH))
    model.fit_transforms(train.showers, train.conditions)
    x, c = model.preprocess(train.showers, train.conditions)
    history = model.fit(x, c, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    out = {"energies": test.conditions[:, 0], "real": geometry.channel_sums(test.showers),
           "loss": history.history["loss"]}
    for steps in (FEW_STEPS, COMPARE_STEPS, MANY_STEPS):
        generated = model.generate(test.conditions, steps=steps, eta=0.0, seed=seed + 1)
        out[steps] = geometry.channel_sums(generated)
        out[f"w1_{steps}"] = metrics.wasserstein_channels(test.showers, generated, geometry)[0]
    check = simulate("zn44", N_CHECK, seed=3000 + seed, **SETUP)
    generated = model.generate(check.conditions, steps=COMPARE_STEPS, eta=0.0, seed=seed + 1)
    out["w1_check"] = metrics.wasserstein_channels(check.showers, generated, geometry)[0]
    # The same architecture and transforms, untrained (its output layer starts at zero).
    untrained = build(geometry, train.conditions.shape[1], seed)
    untrained.fit_transforms(train.showers, train.conditions)
    generated = untrained.generate(test.conditions, steps=2, eta=0.0, seed=seed + 1)
    out["untrained"] = geometry.channel_sums(generated)
    out["w1_untrained"] = metrics.wasserstein_channels(test.showers, generated, geometry)[0]
    return out


@pytest.fixture(scope="module")
def trained(ddim_learning_run):
    return ddim_learning_run  # session-wide: tests/test_learning_flow.py compares with it


def test_training_reduces_the_loss(trained):
    loss = trained["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.5 * loss[0], loss


def test_channel_sum_means_per_energy_bin_within_15_percent(trained):
    # The individual towers are not compared bin by bin: their sums follow the impact point
    # within +-5 mm of the corner where the four towers meet (a tower fraction is ~97%
    # determined by the conditions) and are heavy-tailed (std up to ~2.5x the mean), so
    # ~120 showers per bin do not pin a tower mean to 15%, and a few minutes of training
    # learn the quadrant sharing only in part (see the correlation test below).
    ratios = bin_mean_ratios(trained["real"], trained[MANY_STEPS], trained["energies"])
    for (low, high), row in zip(ENERGY_BINS, ratios):
        for name, ratio in list(zip(FEATURE_NAMES, row))[4:]:
            assert abs(ratio - 1.0) < TOLERANCE, (
                f"{low:g}-{high:g} GeV, {name}: generated/real mean = {ratio:.3f}; all: {ratios}"
            )


def tower_share_correlations(real_sums, generated_sums):
    """Per tower, the correlation of its share of the total, generated vs real (paired)."""
    real = real_sums[:, :4] / real_sums.sum(axis=1, keepdims=True)
    generated = generated_sums[:, :4] / np.maximum(generated_sums.sum(axis=1, keepdims=True), 1e-9)
    return np.array([np.corrcoef(real[:, k], generated[:, k])[0, 1] for k in range(4)])


def test_tower_shares_follow_the_impact_point(trained):
    correlations = tower_share_correlations(trained["real"], trained[MANY_STEPS])
    assert np.all(correlations > 0.25), correlations
    # The untrained model ignores the conditions.
    untrained = tower_share_correlations(trained["real"], trained["untrained"])
    assert np.all(np.abs(untrained) < 0.25), untrained


def test_more_steps_give_lower_channel_w1(trained):
    few, many = trained[f"w1_{FEW_STEPS}"], trained[f"w1_{MANY_STEPS}"]
    assert many < few, (few, many)


def test_untrained_model_is_far_off(trained):
    ratios = bin_mean_ratios(trained["real"], trained["untrained"], trained["energies"])
    assert np.all(np.abs(ratios[:, -1] - 1.0) > 3 * TOLERANCE), ratios
    assert trained["w1_untrained"] > 3 * trained[f"w1_{MANY_STEPS}"]
