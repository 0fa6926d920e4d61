"""Property-based tests of the transforms (hypothesis) and their non-finite-input checks."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calozdc.data import transforms as T

_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def showers_and_energies(draw):
    """Non-negative float64 showers (N, H, W) with energies E >= the largest cell (N, 1)."""
    n = draw(st.integers(2, 12))
    h = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.integers(-3, 4))
    x = rng.gamma(0.3, scale, (n, h, h)) * (rng.random((n, h, h)) < 0.7)
    energies = x.reshape(n, -1).sum(1, keepdims=True) * draw(st.floats(1.0, 100.0)) + scale
    return x, energies


@st.composite
def finite_features(draw):
    n = draw(st.integers(2, 20))
    k = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    offset = draw(st.floats(-1e4, 1e4))
    scale = 10.0 ** draw(st.integers(-3, 4))
    x = offset + scale * rng.standard_normal((n, k))
    if draw(st.booleans()):
        x[:, 0] = offset  # a constant column
    return x


def _chains():
    return [
        T.Log1p(scale=2.0),
        T.Chain([T.Log1p(), T.Standardize()]),
        T.Chain([T.DivideByIncidentEnergy(), T.Log1p(scale=1e-3), T.MinMax(axis=None)]),
        T.LogitFraction(eps=1e-6),
        T.Chain([T.LogitFraction(), T.Standardize(axis="feature")]),
    ]


@_SETTINGS
@given(data=showers_and_energies(), which=st.integers(0, 4))
def test_shower_transforms_round_trip_and_survive_json(data, which):
    x, energies = data
    t = _chains()[which].fit(x, conditions=energies)
    u = t.forward(x, conditions=energies)
    assert u.shape == x.shape and np.isfinite(u).all()
    back = t.inverse(u, conditions=energies)
    np.testing.assert_allclose(back, x, rtol=1e-7, atol=1e-9 * max(1.0, float(x.max())))
    again = T.deserialize(json.loads(json.dumps(T.serialize(t))))
    np.testing.assert_array_equal(again.forward(x, conditions=energies), u)


@_SETTINGS
@given(x=finite_features(), which=st.sampled_from(["standardize", "minmax"]))
def test_condition_transforms_fit_on_random_finite_data(x, which):
    t = (T.Standardize(axis="feature") if which == "standardize" else T.MinMax()).fit(x)
    u = t.forward(x)
    assert np.isfinite(u).all()
    varying = np.ptp(x, axis=0) > 1e-9 * np.maximum(1.0, np.abs(x).max(axis=0))
    if which == "standardize":
        np.testing.assert_allclose(u.mean(0), 0.0, atol=1e-6)
        np.testing.assert_allclose(u.std(0)[varying], 1.0, rtol=1e-6)
    else:
        assert u.min() >= -1e-9 and u.max() <= 1 + 1e-9
    np.testing.assert_allclose(t.inverse(u), x, rtol=1e-9, atol=1e-9 * np.abs(x).max())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("transform", [T.Standardize, T.MinMax, T.Log1p,
                                       lambda: T.Chain([T.Log1p(), T.Standardize()])],
                         ids=["standardize", "minmax", "log1p", "chain"])
def test_non_finite_data_is_refused_naming_the_value(transform, bad):
    x = np.ones((4, 3))
    x[2, 1] = bad
    with pytest.raises(ValueError, match=rf"x\[2, 1\]={bad}"):
        transform().fit(x)
    fitted = transform().fit(np.ones((4, 3)))
    with pytest.raises(ValueError, match=rf"x\[2, 1\]={bad}"):
        fitted.forward(x)
