import math

import keras
import numpy as np
import pytest

from calozdc.schedules import CyclicLR


def _values(schedule, n):
    return np.array([float(keras.ops.convert_to_numpy(schedule(t))) for t in range(n)])


def _smith(t, base, top, step_size, mode, gamma=1.0):
    """Smith 2017, arXiv:1506.01186, section 3.1 (symmetric cycle)."""
    cycle = math.floor(1 + t / (2 * step_size))
    x = abs(t / step_size - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return base + (top - base) * max(0.0, 1 - x) * scale


def test_triangular_hand_computed():
    got = _values(CyclicLR(0.0, 1.0, step_size_up=2, mode="triangular"), 9)
    np.testing.assert_allclose(got, [0, 0.5, 1, 0.5, 0, 0.5, 1, 0.5, 0], atol=1e-7)


def test_triangular2_halves_each_cycle():
    got = _values(CyclicLR(0.0, 1.0, step_size_up=2, mode="triangular2"), 11)
    want = [0, 0.5, 1, 0.5, 0, 0.25, 0.5, 0.25, 0, 0.125, 0.25]
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_exp_range_hand_computed():
    got = _values(CyclicLR(0.0, 1.0, step_size_up=2, mode="exp_range", gamma=0.5), 5)
    np.testing.assert_allclose(got, [0, 0.25, 0.25, 0.0625, 0], atol=1e-7)


def test_asymmetric_up_down():
    got = _values(CyclicLR(1.0, 2.0, step_size_up=1, step_size_down=3), 6)
    np.testing.assert_allclose(got, [1, 2, 1 + 2 / 3, 1 + 1 / 3, 1, 2], rtol=1e-6)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_matches_smith_formula(mode):
    sched = CyclicLR(1e-6, 1e-4, step_size_up=7, mode=mode, gamma=0.99)
    got = _values(sched, 60)
    want = [_smith(t, 1e-6, 1e-4, 7, mode, 0.99) for t in range(60)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_seed000_default_peaks_at_step_size_up():
    sched = CyclicLR(1e-6, 1e-4, step_size_up=40, step_size_down=160, mode="exp_range",
                     gamma=0.999925)
    got = _values(sched, 401)
    assert got[0] == pytest.approx(1e-6)
    assert got[40] == pytest.approx(1e-6 + (1e-4 - 1e-6) * 0.999925**40, rel=1e-5)
    assert got[200] == pytest.approx(1e-6, rel=1e-5)
    assert np.argmax(got[:200]) == 40 and np.argmax(got[200:]) == 40


def test_serialisation_and_optimizer_use(tmp_path):
    sched = CyclicLR(1e-5, 1e-3, step_size_up=3, step_size_down=5, mode="exp_range", gamma=0.9)
    cfg = keras.optimizers.schedules.serialize(sched)
    clone = keras.optimizers.schedules.deserialize(cfg)
    assert isinstance(clone, CyclicLR) and clone.get_config() == sched.get_config()
    np.testing.assert_allclose(_values(clone, 12), _values(sched, 12))
    opt = keras.optimizers.Adam(learning_rate=sched)
    opt2 = keras.optimizers.Adam.from_config(opt.get_config())
    assert isinstance(opt2._learning_rate, CyclicLR)
    var = keras.Variable(np.ones(2, "float32"))
    opt.apply([keras.ops.ones((2,))], [var])
    opt.apply([keras.ops.ones((2,))], [var])
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(
        float(keras.ops.convert_to_numpy(sched(2))), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"base_lr": -1.0}, "base_lr"), ({"max_lr": 1e-9}, "max_lr"),
     ({"step_size_up": 0}, "step_size_up"), ({"step_size_down": 2.5}, "step_size_down"),
     ({"mode": "cosine"}, "mode"), ({"gamma": 0.0}, "gamma"), ({"gamma": 1.5}, "gamma")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CyclicLR(**kwargs)
